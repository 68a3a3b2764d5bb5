"""The stereo preview: the current photo as the stereo settings' layout (side by side, anaglyph, ...).

The picture is drawn on the render thread (depthstudio.app.render_service) by the core's
StereoRenderer, one per photo + depth + camera + mapping: a new layout, anaglyph method or
strength only ``update``-s it, so the layers are prepared once per photo. Only the visible tab
draws; a change made while it is hidden is drawn when it is shown.
"""
from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from depthstudio.app.fields import FieldEditor
from depthstudio.app.views.image_view import ImageView
from depthstudio.settings import info

#: The render service's request key of the stereo preview.
KEY = "stereo"
#: Longest side of the preview picture (the view scales it to fit).
MAX_SIDE = 1600


class StereoTab(QWidget):
    """Draws the stereo layout of the current photo off the UI thread when the geometry or the
    stereo settings change."""

    def __init__(self, window) -> None:
        super().__init__()
        self.window = window
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.setContentsMargins(8, 4, 8, 0)
        # the Stereo settings' Layout field, here too (the same undoable change as the panel's)
        settings = window.document.sections[KEY]
        self.layout_editor = FieldEditor("layout", info(type(settings), "layout"))
        self.layout_editor.set_value(settings.layout)
        self.layout_editor.edited.connect(lambda name, value: window.change_setting(KEY, name, value))
        window.document.settings_changed.connect(self._on_setting)
        self.info = QLabel("Strength, convergence and anaglyph method are in the Stereo settings")
        self.info.setWordWrap(True)
        bar.addWidget(QLabel(self.layout_editor.label))
        bar.addWidget(self.layout_editor)
        bar.addWidget(self.info, 1)
        layout.addLayout(bar)
        self.view = ImageView("The stereo preview appears once depth is ready.")
        layout.addWidget(self.view, 1)
        self.active = False
        self.derived = None
        self.picture = None  # the RGB array shown
        self._wanted = None  # (derived, settings) of the newest request
        self._shown = None  # the request drawn (or being drawn)
        window.render_service.frame_ready.connect(self._frame)
        window.render_service.failed.connect(self._failed)

    def clear(self) -> None:
        self.derived = self.picture = None
        self._wanted = self._shown = None
        self.view.set_image(None)
        self.info.setText("")

    def set_geometry(self, derived) -> None:
        self.derived = derived
        self.settings_changed()

    def settings_changed(self) -> None:
        if self.derived is None:
            return
        self._wanted = (self.derived, self.window.document.sections[KEY])
        if self.active:
            self._render()

    def _on_setting(self, section: str, name: str, value) -> None:
        if section == KEY:
            self.layout_editor.set_value(self.window.document.sections[KEY].layout)

    def set_active(self, active: bool) -> None:
        self.active = active
        if active and self._wanted is not None and self._wanted is not self._shown:
            self._render()

    def _render(self) -> None:
        derived, settings = self._wanted
        self._shown = self._wanted

        def draw(state):
            from depthstudio.app import gl_scene

            return gl_scene.draw_stereo(state, derived, settings, MAX_SIDE)

        self.window.render_service.submit(KEY, draw, tag=self._shown)

    def _frame(self, key: str, frame, tag) -> None:
        if key != KEY or self.derived is None or tag is not self._shown:
            return
        picture, warnings, info = frame
        self.picture = picture
        self.view.set_image(picture)
        self.info.setText(self._describe(tag[1], warnings, info))
        self.window.views_updated.emit("stereo")

    def _failed(self, key: str, message: str) -> None:
        if key == KEY:
            self.info.setText(f"⚠ {message.splitlines()[0]}")

    @staticmethod
    def _describe(settings, warnings: list[str], info: dict) -> str:
        layout = settings.layout + (f" ({settings.anaglyph})" if settings.layout == "anaglyph" else "")
        eyes = "parallel eyes" if info["convergence"] in (None, float("inf")) else f"converged at {info['convergence']:.3g}"
        text = f"{layout} · baseline {info['baseline']:.3g} · {eyes}"
        return text + "".join(f" · ⚠ {w}" for w in warnings)
