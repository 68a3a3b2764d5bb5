"""The video tab: open a clip, scrub it, preview depth and effects on a frame, export it through the
video pipeline (depthstudio.video.pipeline.process_video) with progress and cancel.

The frame and its depth are made off the UI thread (the inference worker estimates depth, as for
photos); the export runs in a child process, so the window stays responsive however long the clip.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from depthstudio.app import core
from depthstudio.app.views.image_view import ImageView

VIDEO_FILTER = "Videos (*.mp4 *.mov *.m4v *.mkv *.webm *.avi *.gif);;All files (*)"
#: Slider steps per second of clip.
STEPS_PER_SECOND = 10


class VideoTab(QWidget):
    """Owned by the main window; uses its task runner, controller (inference worker) and document."""

    export_finished = Signal(object, object)  # VideoResult | None, error message | None

    def __init__(self, window) -> None:
        super().__init__()
        self.window = window
        self.clip: Path | None = None
        self.info = None
        self.export_task = None
        self._generation = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.setContentsMargins(8, 4, 8, 0)
        self.open_button = QPushButton("Open Video…")
        self.open_button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.open_button.clicked.connect(self.open_dialog)
        self.name = QLabel("No clip open")
        bar.addWidget(self.open_button)
        bar.addWidget(self.name, 1)
        layout.addLayout(bar)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.frame_view = ImageView("Open a video clip (MP4, MOV, MKV, WebM…) to preview its depth and effects.")
        self.preview_view = ImageView("The depth (or the effect) of the frame appears here.")
        split.addWidget(self.frame_view)
        split.addWidget(self.preview_view)
        layout.addWidget(split, 1)
        scrub = QHBoxLayout()
        scrub.setContentsMargins(8, 0, 8, 0)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.slider.valueChanged.connect(self._scrubbed)
        self.time = QLabel("0.0 s")
        scrub.addWidget(self.slider, 1)
        scrub.addWidget(self.time)
        layout.addLayout(scrub)
        from depthstudio.app.panels import SectionPanel

        self.panel = None
        if "video" in window.document.sections:
            self.panel = SectionPanel(window.document, "Video export", [("video", ("parallax", "dof"))],
                                      window.change_setting)
            area = QScrollArea()
            area.setWidgetResizable(True)
            area.setWidget(self.panel)
            area.setMaximumHeight(220)
            layout.addWidget(area)
        foot = QHBoxLayout()
        foot.setContentsMargins(8, 0, 8, 6)
        self.status = QLabel()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.hide()
        self.export_button = QPushButton("Export Video…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.export_dialog)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel)
        foot.addWidget(self.status, 1)
        foot.addWidget(self.progress)
        foot.addWidget(self.export_button)
        foot.addWidget(self.cancel_button)
        layout.addLayout(foot)
        window.document.settings_changed.connect(self._settings_changed)

    # ---- clip ---------------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a video clip", "", VIDEO_FILTER)
        if path:
            self.open(path)

    def open(self, path) -> bool:
        path = Path(path)
        try:
            info = core.video_info(path)
        except Exception as exc:  # a DepthStudioError with the reason; anything else is the same to the user
            self.window.show_error("Cannot open video", str(exc))
            return False
        self.clip, self.info = path, info
        duration = info.duration or ((info.frames or 1) / float(info.fps))
        self.name.setText(f"{path.name} · {info.width}×{info.height} · {float(info.fps):.3g} fps · {duration:.1f} s")
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, int(duration * STEPS_PER_SECOND) - 1))
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self.slider.setEnabled(True)
        self.export_button.setEnabled(True)
        self.request(0.0)
        return True

    def _scrubbed(self, value: int) -> None:
        seconds = value / STEPS_PER_SECOND
        self.time.setText(f"{seconds:.1f} s")
        self.window.runner.debounce("video-scrub", 80, lambda: self.request(seconds))

    def _settings_changed(self, section: str, name: str, value) -> None:
        if self.clip is not None and section in ("video", "model", "dof", "parallax", "mapping", "camera"):
            self.window.runner.debounce("video-scrub", 150, lambda: self.request(self.slider.value() / STEPS_PER_SECOND))

    # ---- preview ------------------------------------------------------------------------------------
    def request(self, seconds: float) -> None:
        """Decode the frame at ``seconds``, estimate its depth, show depth or the effect on it."""
        if self.clip is None:
            return
        self._generation += 1
        generation = self._generation
        doc = self.window.document
        model = doc.sections["model"]
        missing = core.weights_missing(model)
        effect = doc.sections["video"].effect if "video" in doc.sections else "depth"
        sections = dict(doc.sections)
        worker = self.window.controller.inference
        clip = self.clip

        def work(job):
            photo, time = core.video_frame(job, clip, seconds)
            job.partial(photo.rgb)
            if missing:
                return None
            depth = core.estimate(job, photo, model, worker)
            derived = core.derive(None, photo, depth, sections)
            if effect == "dof" and "dof" in sections:
                return "image", core.dof_preview(job, derived, sections["dof"])
            if effect == "parallax":
                return "parallax", derived
            return "image", derived.depth_view.color

        def frame(rgb):
            if generation == self._generation:
                self.frame_view.set_image(rgb)

        def done(result):
            if generation != self._generation:
                return
            if result is None:
                self.preview_view.set_image(None)
                self.preview_view.set_placeholder(missing + "\nUse the banner above to get the model.")
                self.window.show_banner_for_weights(missing)
                return
            kind, value = result
            if kind == "image":
                self.preview_view.set_image(value)
                self.window.views_updated.emit("video")
            else:
                self.window.viewport_tab.render_parallax("video-parallax", value, sections["parallax"], 0.25, None)

        def failed(message, details):
            if generation == self._generation:
                self.preview_view.set_image(None)
                self.preview_view.set_placeholder(message)

        self.window.runner.run(work, channel="video", name="Video frame", replace=True, on_partial=frame,
                               on_done=done, on_failed=failed)

    def parallax_frame(self, frame) -> None:
        self.preview_view.set_image(frame)
        self.window.views_updated.emit("video")

    # ---- export -------------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        if self.clip is None:
            return
        start = str(self.clip.parent)
        folder = QFileDialog.getExistingDirectory(self, "Export the video to folder", start)
        if folder:
            self.export(Path(folder))

    def export(self, folder: Path):
        """process_video in a child process; progress in the tab's bar, Cancel stops it (no file left)."""
        if self.clip is None or self.export_task is not None:
            return None
        doc = self.window.document
        missing = core.weights_missing(doc.sections["model"])
        if missing:
            self.window.show_banner_for_weights(missing)
            return None
        from depthstudio.workers import run_in_process

        video, model, clip = doc.sections["video"], doc.sections["model"], self.clip

        def work(job):
            return run_in_process(job, core.export_video, clip, folder, video, model, niceness=2, name="depthstudio-video")

        def progress(fraction: float, message: str) -> None:
            if fraction >= 0:
                self.progress.setRange(0, 1000)
                self.progress.setValue(int(fraction * 1000))
            else:
                self.progress.setRange(0, 0)
            self.status.setText(message)

        def finish(result, error=None):
            self.export_task = None
            self.progress.hide()
            self.cancel_button.hide()
            self.export_button.setEnabled(True)
            if error:
                self.status.setText(f"Export failed: {error}")
            elif result is None:
                self.status.setText("Export cancelled; no file was left behind")
            else:
                names = ", ".join(p.name for p in result.outputs.values())
                self.status.setText(f"Wrote {names} ({result.frames} frames)")
                self.window.offer_open_folder(folder)
            self.export_finished.emit(result, error)

        self.progress.setValue(0)
        self.progress.show()
        self.cancel_button.show()
        self.export_button.setEnabled(False)
        self.status.setText(f"Exporting {self.clip.name}…")
        self.export_task = self.window.runner.run(work, channel="export", name=f"Exporting {self.clip.name}",
                                                  on_done=finish, on_failed=lambda m, d: finish(None, m),
                                                  on_cancelled=lambda: finish(None), on_progress=progress)
        return self.export_task

    def cancel(self) -> None:
        if self.export_task is not None:
            self.export_task.cancel()
            self.status.setText("Cancelling…")
