"""The DepthStudio main window: views, panels, menus and dialogs over the document and its controller.

The pipeline lives in depthstudio.app.controller (no Qt): it turns document changes into work and
work results into events. This window builds the widgets, forwards the user's actions to the
controller, and subscribes its views to the controller's and the document's events.
"""
from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QIcon, QUndoStack
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QProgressDialog,
    QPushButton,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from depthstudio.app import core, menus, theme
from depthstudio.app.controller import Controller
from depthstudio.app.document import Document, PhotoItem
from depthstudio.app.panels import SettingsPanels, label_for
from depthstudio.app.tasks import PREVIEW_CHANNELS, TaskRunner
from depthstudio.app.undo import SetSection, SetSetting
from depthstudio.app.views.banner import Banner
from depthstudio.app.views.dialogs import DepthTab, ElidedLabel, PhotoTab
from depthstudio.errors import DepthStudioError, SettingsError
from depthstudio.io.images import IMAGE_SUFFIXES

MAX_RECENT = 10
IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ");;All files (*)"
DEPTH_FILTER = "Depth maps (*.npy *.png *.exr *.tif *.tiff);;All files (*)"
SETTINGS_FILTER = "DepthStudio settings (*.settings.json *.json);;All files (*)"
#: Smallest window the layout is usable at, and the size a first launch opens with.
MIN_SIZE, DEFAULT_SIZE = QSize(760, 520), QSize(1360, 860)


class MainWindow(QMainWindow):
    """One window from photo to depth, 3D, effects, video and export."""

    #: emitted after a view showed something new: "photo" | "depth" | "geometry" | "3d" | "parallax" | "dof" | "stereo" | "video"
    views_updated = Signal(str)
    export_finished = Signal(object)  # ExportResult, or None when cancelled / failed
    error_shown = Signal(str)  # a problem the user was shown (dialog, banner or status line)

    def __init__(self, qsettings: QSettings | None = None, document: Document | None = None,
                 restore: bool = True) -> None:
        super().__init__()
        self.setObjectName("DepthStudioMainWindow")
        self.setWindowTitle("DepthStudio")
        self.setWindowIcon(theme.icon("app"))
        self.setAcceptDrops(True)
        self.setMinimumSize(MIN_SIZE)
        self.qsettings = qsettings if qsettings is not None else QSettings("DepthStudio", "DepthStudio")
        self.document = document if document is not None else Document()
        self.runner = TaskRunner(self)
        self.controller = Controller(self.document, self.runner)
        self.controller.apply_change = self._push_change
        self.controller.apply_section = self._push_section
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(200)
        self.theme_choice = "system"
        self.last_error: str | None = None
        self.error_dialog: QMessageBox | None = None

        self._build_views()
        self._build_docks()
        menus.build(self)
        self._build_statusbar()
        self._connect()
        if restore:
            self.restore_state()
        else:
            self.resize(DEFAULT_SIZE)
        self._check_weights_at_launch()

    @property
    def derived(self):
        return self.controller.derived

    # ==== construction ==========================================================================
    def _build_views(self) -> None:
        from depthstudio.app.views.compare import CompareTab
        from depthstudio.app.views.effects import DofTab, ParallaxTab
        from depthstudio.app.views.viewport import ViewportTab

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.setMinimumSize(320, 240)
        self.photo_tab = PhotoTab()
        self.depth_tab = DepthTab()
        self.viewport_tab = ViewportTab(self)
        self.parallax_tab = ParallaxTab(self) if "parallax" in self.document.sections else None
        self.dof_tab = DofTab(self) if "dof" in self.document.sections else None
        self.stereo_preview = self.stereo_tab() if "stereo" in self.document.sections else None
        sources = {"Photo": self.photo_tab.view.image, "Depth": self.depth_tab.view.image,
                   "3D": self.viewport_tab.view.image}
        if self.dof_tab is not None:
            sources["Depth of field"] = self.dof_tab.view.image
        if self.parallax_tab is not None:
            sources["Parallax"] = self.parallax_tab.view.image
        if self.stereo_preview is not None:
            sources["Stereo"] = self.stereo_preview.view.image
        self.compare_tab = CompareTab(sources)
        #: (widget, icon, title) in tab order; Ctrl+1.. follow it.
        tabs = [(self.photo_tab, "photo", "Photo"), (self.depth_tab, "depth", "Depth"),
                (self.viewport_tab, "cube", "3D"), (self.parallax_tab, "parallax", "Parallax"),
                (self.dof_tab, "aperture", "Depth of field"), (self.stereo_preview, "depth", "Stereo"),
                (self.compare_tab, "photo", "Compare")]
        self.video_tab = None
        if "video" in self.document.sections:
            from depthstudio.app.views.video import VideoTab

            self.video_tab = VideoTab(self)
            tabs.append((self.video_tab, "play", "Video"))
        self._tab_icons = []
        for widget, icon, title in tabs:
            if widget is not None:
                self.tabs.addTab(widget, theme.icon(icon), title)
                self._tab_icons.append(icon)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.banner = Banner()
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(4)
        column.addWidget(self.banner)
        column.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        if self.dof_tab is not None:
            self.dof_tab.view.clicked.connect(self.focus_at)
        self.depth_tab.view.hovered.connect(self._on_depth_hover)

    def stereo_tab(self) -> QWidget | None:
        """The Stereo tab (the stereo settings' layout: side by side, anaglyph, ...), or None without it."""
        try:
            from depthstudio.app.views.stereo import StereoTab  # type: ignore[import-not-found]
        except ImportError:
            return None
        return StereoTab(self)

    def _build_docks(self) -> None:
        self.filmstrip = QListWidget()
        self.filmstrip.setObjectName("filmstrip")
        self.filmstrip.setIconSize(QSize(72, 54))
        self.filmstrip.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.filmstrip.currentRowChanged.connect(self.document.set_current)
        self.filmstrip.setToolTip("Photos to work on; Export All writes every one of them")
        self.film_dock = QDockWidget("Photos", self)
        self.film_dock.setObjectName("photosDock")
        self.film_dock.setWidget(self.filmstrip)
        self.film_dock.setMinimumWidth(140)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.film_dock)

        self.panels = SettingsPanels(self.document, self.change_setting)
        self.settings_dock = QDockWidget("Settings", self)
        self.settings_dock.setObjectName("settingsDock")
        self.settings_dock.setWidget(self.panels)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.settings_dock)
        # wide enough that no editor, Auto box or button is clipped; narrower than that it scrolls sideways
        fit = self.panels.widget().minimumSizeHint().width() + self.panels.verticalScrollBar().sizeHint().width() + 8
        self.resizeDocks([self.settings_dock], [max(380, fit)], Qt.Orientation.Horizontal)
        model_panel = self.panels.panels.get("model")
        if model_panel is not None:
            model_panel.download_requested.connect(self.download_model)
        depth_panel = self.panels.panels.get("depth")
        if depth_panel is not None:
            depth_panel.choose_requested.connect(self.depth_file_dialog)
            depth_panel.clear_requested.connect(lambda: self.controller.use_depth_file(None))

    def _build_statusbar(self) -> None:
        sb = self.statusBar()
        self.status_label = ElidedLabel("Ready")
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.hide()
        self.cancel_button = QToolButton()
        self.cancel_button.setDefaultAction(self.act_cancel)
        self.cancel_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.cancel_button.hide()
        self.open_folder_button = QPushButton("Open Folder")
        self.open_folder_button.setToolTip("Show the exported files in the file manager")
        self.open_folder_button.hide()
        self.open_folder_button.clicked.connect(self._open_export_folder)
        self._export_folder: Path | None = None
        sb.addWidget(self.status_label, 1)
        sb.addPermanentWidget(self.open_folder_button)
        sb.addPermanentWidget(self.progress_bar)
        sb.addPermanentWidget(self.cancel_button)

    def _connect(self) -> None:
        doc, c = self.document, self.controller
        doc.items_changed.connect(self._on_items_changed)
        doc.current_changed.connect(self._on_current_changed)
        doc.settings_changed.connect(self._on_settings_changed)
        c.photo_ready.connect(self._on_photo_ready)
        c.photo_failed.connect(self._on_photo_failed)
        c.camera_known.connect(self._on_camera_known)
        c.depth_failed.connect(self._on_depth_failed)
        c.depth_ready.connect(lambda item, used_model: self.banner.kind == "model" and self.banner.dismiss())
        c.weights_missing.connect(self.show_banner_for_weights)
        c.depth_preview.connect(self._on_depth_preview)
        c.geometry_ready.connect(self._on_geometry_ready)
        c.geometry_failed.connect(lambda m, d: self.show_error("Cannot build geometry", m, d))
        c.export_finished.connect(self._on_export_finished)
        c.download_finished.connect(self._on_download_finished)
        c.problem.connect(lambda title, message, details: self.show_error(title, message, details))
        self.runner.started.connect(self._on_task_started)
        self.runner.finished.connect(self._on_task_finished)
        self.banner.choose_model.connect(self._banner_choose_model)
        self.banner.use_depth_file.connect(self.depth_file_dialog)
        self.banner.download.connect(lambda: self.download_model(self.document.get("model", "model"),
                                                                 self.document.get("model", "backend")))
        if self.video_tab is not None:
            self.render_service.frame_ready.connect(
                lambda key, frame, tag: key == "video-parallax" and self.video_tab.parallax_frame(frame))

    # ==== opening photos ========================================================================
    def open_dialog(self) -> None:
        start = self.qsettings.value("paths/last_open_dir", "", str)
        paths, _ = QFileDialog.getOpenFileNames(self, "Open photos", start, IMAGE_FILTER)
        if paths:
            self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        start = self.qsettings.value("paths/last_open_dir", "", str)
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of photos", start)
        if folder:
            self.open_paths([folder])

    def open_video_dialog(self) -> None:
        if self.video_tab is not None:
            self.tabs.setCurrentWidget(self.video_tab)
            self.video_tab.open_dialog()

    def open_paths(self, paths, depth=None, depth_kind: str | None = None) -> list[int]:
        """Add photos (files, folders, .txt lists) to the list and show the first one."""
        indices = self.controller.open_paths(paths, depth, depth_kind)
        for index in indices:
            self.add_recent(self.document.items[index].path)
        if indices:
            self.qsettings.setValue("paths/last_open_dir", str(self.document.items[indices[0]].path.parent))
        return indices

    def depth_file_dialog(self) -> None:
        item = self.document.current
        if item is None:
            self.show_error("No photo", "Open a photo first, then choose the depth map that belongs to it.")
            return
        path, _ = QFileDialog.getOpenFileName(self, f"Depth map for {item.name}", str(item.path.parent), DEPTH_FILTER)
        if path:
            self.use_depth_file(path)

    def use_depth_file(self, path, kind: str | None = None) -> None:
        self.controller.use_depth_file(path, kind)
        if path:
            self.banner.dismiss()

    def remove_current(self) -> None:
        if self.document.current_index >= 0:
            self.document.remove(self.document.current_index)

    def load_settings_dialog(self) -> None:
        start = str(self.document.current.path.parent) if self.document.current else ""
        path, _ = QFileDialog.getOpenFileName(self, "Load settings", start, SETTINGS_FILTER)
        if path:
            self.load_settings(path)

    def load_settings(self, path) -> list[str]:
        """Apply a saved settings file (one undo step); problems are listed, never fatal."""
        self.undo_stack.beginMacro(f"Load settings from {Path(path).name}")
        try:
            problems = self.controller.load_settings_file(path)
        except DepthStudioError as exc:
            problems = [str(exc)]
        finally:
            self.undo_stack.endMacro()
        if problems:
            self.show_error("Some settings were not loaded", "\n".join(problems))
        else:
            self.status_label.setText(f"Loaded settings from {Path(path).name}")
        return problems

    # ---- recent files -----------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self.qsettings.value("recent/files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def add_recent(self, path) -> None:
        path = str(Path(path).absolute())
        files = [f for f in self.recent_files() if f != path]
        files.insert(0, path)
        self.qsettings.setValue("recent/files", files[:MAX_RECENT])
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        menu = self.recent_menu
        menu.clear()
        files = self.recent_files()
        for i, f in enumerate(files):
            act = menu.addAction(f"&{(i + 1) % 10} {Path(f).name}")
            act.setToolTip(f)
            act.setData(f)
            act.setEnabled(Path(f).exists())
            act.triggered.connect(lambda _=False, f=f: self.open_paths([f]))
        if files:
            menu.addSeparator()
            menu.addAction("Clear List", self._clear_recent)
        menu.setEnabled(bool(files))

    def _clear_recent(self) -> None:
        self.qsettings.setValue("recent/files", [])
        self._rebuild_recent_menu()

    # ---- drag and drop ------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self._dropped_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = self._dropped_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    @staticmethod
    def _dropped_paths(mime) -> list[str]:
        if not mime.hasUrls():
            return []
        out = []
        for url in mime.urls():
            if url.isLocalFile():
                p = Path(url.toLocalFile())
                if p.is_dir() or p.suffix.lower() in IMAGE_SUFFIXES or p.suffix.lower() == ".txt":
                    out.append(str(p))
        return out

    # ==== what the controller reports ===========================================================
    def _on_items_changed(self) -> None:
        self.filmstrip.blockSignals(True)
        self.filmstrip.clear()
        for item in self.document.items:
            entry = QListWidgetItem(item.name)
            entry.setToolTip(str(item.path))
            thumb = item.extras.get("thumbnail")
            entry.setIcon(QIcon(theme.pixmap_from(thumb)) if thumb is not None else theme.icon("photo"))
            self.filmstrip.addItem(entry)
        self.filmstrip.setCurrentRow(self.document.current_index)
        self.filmstrip.blockSignals(False)
        self._update_actions()

    def _on_current_changed(self, index: int) -> None:
        if self.filmstrip.currentRow() != index:
            self.filmstrip.blockSignals(True)
            self.filmstrip.setCurrentRow(index)
            self.filmstrip.blockSignals(False)
        item = self.document.current
        preview = item.extras.get("preview") if item else None
        self.photo_tab.view.set_image(preview)
        self.photo_tab.view.set_overlay(None)
        self.photo_tab.info.setText(f"{item.photo.width} × {item.photo.height}" if item and item.photo else "")
        self.setWindowTitle(f"{item.name} — DepthStudio" if item else "DepthStudio")
        self.depth_tab.view.set_depth(None)
        self.viewport_tab.clear()
        for tab in (self.parallax_tab, self.dof_tab, self.stereo_preview):
            if tab is not None:
                tab.clear()
        self._show_camera(item.photo and self._camera_of(item) if item else None)
        if "mapping" in self.panels.panels:
            self.panels.panels["mapping"].show_kind(self.document.get("depth", "depth_kind")
                                                    if self.document.get("depth", "depth") else None)
        if item is not None and self.document.get("depth", "depth") is not None and self.banner.kind:
            self.banner.dismiss()  # this photo brings its own depth: the model's state does not concern it
        self.compare_tab.refresh()
        self._update_actions()

    def _camera_of(self, item: PhotoItem):
        try:
            return core.photo_camera(item.photo, self.document.sections["camera"], item.depth)
        except DepthStudioError:
            return None

    def _show_camera(self, k) -> None:
        for name in ("camera", "dof"):
            panel = self.panels.panels.get(name)
            if panel is not None:
                panel.show_intrinsics(k)

    def _update_actions(self) -> None:
        has = self.document.current is not None
        self.act_export.setEnabled(has)
        self.act_export_all.setEnabled(bool(self.document.items))
        self.act_remove.setEnabled(has)
        self.act_depth_file.setEnabled(has)

    def _update_filmstrip_item(self, item: PhotoItem) -> None:
        try:
            entry = self.filmstrip.item(self.document.items.index(item))
        except ValueError:
            return
        thumb = item.extras.get("thumbnail")
        if entry is not None and thumb is not None:
            entry.setIcon(QIcon(theme.pixmap_from(thumb)))

    def _on_photo_ready(self, item: PhotoItem) -> None:
        self._update_filmstrip_item(item)
        if item is self.document.current:
            self.photo_tab.view.set_image(item.extras["preview"])
            self.photo_tab.info.setText(f"{item.photo.width} × {item.photo.height}")
            if self.derived is not None:  # depth came first: draw the cut edges over the photo now
                self.photo_tab.view.set_overlay(self.derived.cut_overlay)
            self.compare_tab.refresh()
            self.views_updated.emit("photo")

    def _on_photo_failed(self, item: PhotoItem, message: str) -> None:
        """A photo that cannot be opened leaves the list; the message says why."""
        index = self.document.items.index(item) if item in self.document.items else -1
        if index >= 0:
            self.document.remove(index)
        self.show_error("Cannot open photo", message)

    def _on_camera_known(self, item: PhotoItem, k) -> None:
        if item is self.document.current and self.derived is None:
            self._show_camera(k)

    def _on_depth_preview(self, item: PhotoItem, view, intrinsics) -> None:
        self.depth_tab.view.set_depth(view, core.colormap_bar())
        self._show_camera(intrinsics)
        self.views_updated.emit("depth")

    def _on_geometry_ready(self, item: PhotoItem, derived) -> None:
        self.depth_tab.view.set_depth(derived.depth_view, core.colormap_bar())
        self.photo_tab.view.set_overlay(derived.cut_overlay)
        self._show_camera(derived.intrinsics)
        if "mapping" in self.panels.panels:
            self.panels.panels["mapping"].show_kind(derived.depth_view.kind)
        self.viewport_tab.set_geometry(derived)
        if self.parallax_tab is not None:
            self.parallax_tab.set_geometry(derived)
        if self.dof_tab is not None:
            self.dof_tab.request(derived, self.document.sections["dof"])
        if self.stereo_preview is not None:
            self.stereo_preview.set_geometry(derived)
        self.compare_tab.refresh()
        self.views_updated.emit("geometry")

    def _on_depth_failed(self, item: PhotoItem, message: str, details: str) -> None:
        """The model cannot run: a banner with the ways forward, never a modal dialog."""
        self.banner.show_message("model", f"Depth could not be estimated: {message}",
                                 hint="Choose another model file, or use a depth file for this photo.")
        self._problem(message)

    def show_banner_for_weights(self, message: str) -> None:
        self.banner.show_message("weights", message, download=True,
                                 hint="Download it (once; it is kept for offline use), choose a model file you have, "
                                      "or use a depth file for this photo.")
        self._problem(message)

    def _check_weights_at_launch(self) -> None:
        missing = core.weights_missing(self.document.sections["model"])
        if missing:
            self.show_banner_for_weights(missing)

    def _banner_choose_model(self) -> None:
        panel = self.panels.panels.get("model")
        if panel is not None:
            panel.browse()

    # ==== settings ==============================================================================
    def change_setting(self, section: str, name: str, value) -> str | None:
        """Apply a settings change through the undo stack; returns an error message or None."""
        try:
            self.document.updated(section, name, value)  # validate first: bad values never enter the stack
        except SettingsError as exc:
            self.status_label.setText(str(exc))
            return str(exc)
        self._push_change(section, name, value)
        return None

    def _push_change(self, section: str, name: str, value) -> None:
        if self.document.get(section, name) != value:
            self.undo_stack.push(SetSetting(self.document, section, name, value,
                                            label=label_for(self.document, section, name).lower()))

    def _push_section(self, section: str, settings) -> None:
        self.undo_stack.push(SetSection(self.document, section, settings))

    def reset_settings(self) -> None:
        from depthstudio.app.document import PER_PHOTO

        self.undo_stack.beginMacro("Reset settings")
        for section, settings in self.document.sections.items():
            default = type(settings)()
            keep = {n: getattr(settings, n) for n in PER_PHOTO.get(section, ())}  # the photo's own stay
            default = default.replace(**keep) if keep else default
            if default.to_dict() != settings.to_dict():
                self._push_section(section, default)
        self.undo_stack.endMacro()

    def _on_settings_changed(self, section: str, name: str, value) -> None:
        if section == "parallax" and self.parallax_tab is not None:
            self.parallax_tab.settings_changed()
        elif section == "dof" and self.dof_tab is not None and self.derived is not None:
            self.runner.debounce("dof", 120, lambda: self.derived is not None and
                                 self.dof_tab.request(self.derived, self.document.sections["dof"]))
        elif section == "stereo" and self.stereo_preview is not None:
            self.runner.debounce("stereo", 120, self.stereo_preview.settings_changed)
        elif section == "model":
            missing = core.weights_missing(self.document.sections["model"])
            if missing:
                self.show_banner_for_weights(missing)
            elif self.banner.kind:
                self.banner.dismiss()
        elif section == "depth" and name == "depth" and value is not None:
            self.banner.dismiss()

    def focus_at(self, x: float, y: float) -> None:
        """Click-to-focus: focus the DoF preview at the depth under the click (an undoable change)."""
        if self.dof_tab is None or not self.dof_tab.view.has_image():
            return
        image = self.dof_tab.view.image()
        self.controller.focus_at(x / max(1, image.width()), y / max(1, image.height()))

    # ==== work status ===========================================================================
    def _on_task_started(self, task) -> None:
        if task.channel in PREVIEW_CHANNELS or task.channel == "video":
            return  # live previews: quick, and they would make the bar flicker
        task.signals.progress.connect(self._on_progress)
        self.status_label.setText(task.name + "…")
        self.progress_bar.setRange(0, 0)
        self.progress_bar.show()
        self.cancel_button.show()
        self.act_cancel.setEnabled(True)

    def _on_progress(self, fraction: float, message: str) -> None:
        if fraction >= 0:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(fraction * 1000))
        if message:
            self.status_label.setText(message)

    def _on_task_finished(self, task) -> None:
        if task.channel in PREVIEW_CHANNELS or task.channel == "video":
            if task.state == "failed":
                self.status_label.setText(f"{task.name} failed: {task.error}")
            return
        busy = [t for t in self.runner.active if t.channel not in PREVIEW_CHANNELS and t.channel != "video"]
        if busy:
            self.status_label.setText(busy[-1].name + "…")
            return
        self.progress_bar.hide()
        self.cancel_button.hide()
        self.act_cancel.setEnabled(False)
        if task.state == "done" and task.channel in ("export", "download"):
            return  # the export's own summary ("Exported 9 files to ...") stays
        text = {"done": "Ready", "cancelled": "Cancelled", "failed": f"{task.name} failed: {task.error or ''}"}
        self.status_label.setText(text.get(task.state, "Ready"))

    def cancel_work(self) -> None:
        for task in list(self.runner.active):
            if task.channel not in PREVIEW_CHANNELS:
                task.cancel()
        self.status_label.setText("Cancelling…")

    # ==== export ================================================================================
    def export_current(self) -> None:
        item = self.document.current
        if item is not None:
            self.export_items([item])

    def export_all(self) -> None:
        self.export_items(list(self.document.items))

    def export_folder(self) -> Path | None:
        folder = self.document.get("outputs", "folder")
        if folder:
            return Path(folder)
        start = self.qsettings.value("paths/last_export_dir", "", str)
        chosen = QFileDialog.getExistingDirectory(self, "Export to folder", start)
        if not chosen:
            return None
        self.qsettings.setValue("paths/last_export_dir", chosen)
        return Path(chosen)

    def export_items(self, items: list[PhotoItem], folder: Path | None = None, dialog: bool = True):
        """Export photos with the current settings in a child process, with a cancellable progress dialog."""
        if not items:
            return None
        folder = folder or self.export_folder()
        if folder is None:
            return None
        progress = None
        if dialog:
            progress = QProgressDialog("Exporting…", "Cancel", 0, 1000, self)
            progress.setWindowTitle("Export")
            progress.setWindowModality(Qt.WindowModality.WindowModal)
            progress.setMinimumDuration(0)
            progress.setAutoClose(False)
            progress.setAutoReset(False)
            progress.setValue(0)
            self.export_dialog = progress

        def on_progress(fraction, message):
            if progress is not None:
                if fraction >= 0:
                    progress.setValue(int(fraction * 1000))
                progress.setLabelText(message)

        task = self.controller.export(items, folder, on_progress)
        if task is None:
            if progress is not None:
                progress.close()
            return None
        self._export_folder = folder
        if progress is not None:
            progress.canceled.connect(task.cancel)
        return task

    def _on_export_finished(self, result, error) -> None:
        dialog = getattr(self, "export_dialog", None)
        if dialog is not None:
            dialog.close()
            self.export_dialog = None
        if result is not None:
            if result.failed:
                lines = "\n".join(f"• {p.name}: {m}" for p, m in result.failed)
                self.show_error("Some photos were not exported", f"{len(result.failed)} of {len(result.jobs)} failed:\n{lines}")
            self.status_label.setText(f"Exported {len(result.written)} files to {result.folder}")
            self.offer_open_folder(result.folder)
        self.export_finished.emit(result)

    def offer_open_folder(self, folder) -> None:
        self._export_folder = Path(folder)
        self.open_folder_button.show()

    def _open_export_folder(self) -> None:
        if self._export_folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._export_folder)))

    # ==== model download ========================================================================
    def download_model(self, name: str, backend: str) -> None:
        panel = self.panels.panels.get("model")
        if panel is not None:
            panel.set_downloading(True, f"downloading {name}…")
        self.banner.set_downloading(f"Downloading {name}…")

        def progress(fraction: float, message: str) -> None:
            self.banner.set_downloading(message or f"Downloading {name}…")

        self.controller.download(name, backend, on_progress=progress)

    def _on_download_finished(self, name: str, error: str | None) -> None:
        panel = self.panels.panels.get("model")
        if panel is not None:
            panel.set_downloading(False, "not downloaded" if error else "")
            panel.refresh()
        self.banner.set_downloading(None)
        if error is None:
            self.banner.dismiss()
        elif error != "cancelled":
            self.banner.show_message("weights", f"Download of {name} failed: {error}", download=True)
            self._problem(f"Download of {name} failed: {error}")

    # ==== dialogs ===============================================================================
    def _problem(self, message: str) -> None:
        self.last_error = message
        self.status_label.setText(message)
        self.error_shown.emit(message)

    def show_error(self, title: str, message: str, details: str = "") -> QMessageBox:
        """A clear, non-blocking dialog; the window and the user's work stay as they were."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("errorDialog")
        if details:
            box.setDetailedText(details)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.error_dialog = box
        self._problem(message)
        return box

    def show_about(self) -> QMessageBox:
        from depthstudio.app.views.dialogs import about_box

        self.about_dialog = about_box(self)
        return self.about_dialog

    # ==== views =================================================================================
    def show_tab(self, index: int) -> None:
        if 0 <= index < self.tabs.count():
            self.tabs.setCurrentIndex(index)

    def _on_tab_changed(self, index: int) -> None:
        widget = self.tabs.widget(index)
        for tab in (self.viewport_tab, self.parallax_tab, self.dof_tab, self.stereo_preview):
            if tab is not None:
                tab.set_active(tab is widget and self.isVisible())
        self.act_play.setEnabled(widget is self.parallax_tab and self.parallax_tab is not None)
        if widget is self.compare_tab:
            self.compare_tab.refresh()

    def toggle_play(self) -> None:
        if self.parallax_tab is not None and self.tabs.currentWidget() is self.parallax_tab:
            self.parallax_tab.play.toggle()

    def _on_depth_hover(self, x: float, y: float) -> None:
        view = self.depth_tab.view
        self.status_label.setText(f"Depth at ({int(x)}, {int(y)}): {view.readout}" if view.readout else "Ready")

    def set_theme(self, name: str) -> None:
        self.theme_choice = name
        theme.apply_theme(QApplication.instance(), name)
        for act in self.theme_group.actions():
            act.setChecked(act.data() == name)
        for act, icon in ((self.act_open, "open"), (self.act_export, "export"), (self.act_export_all, "export-all"),
                          (self.act_undo, "undo"), (self.act_redo, "redo"), (self.act_reset, "reset"),
                          (self.act_cancel, "cancel"), (self.act_play, "play")):
            act.setIcon(theme.icon(icon))
        for i, icon in enumerate(self._tab_icons):
            self.tabs.setTabIcon(i, theme.icon(icon))
        self.qsettings.setValue("ui/theme", name)

    def cycle_theme(self) -> None:
        self.set_theme(theme.THEMES[(theme.THEMES.index(self.theme_choice) + 1) % len(theme.THEMES)])

    # ==== persistence ===========================================================================
    def save_state(self) -> None:
        s = self.qsettings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/tab", self.tabs.currentIndex())
        s.setValue("settings/json", json.dumps(self.document.settings_dict(session=True)))
        s.setValue("ui/theme", self.theme_choice)
        s.sync()

    def restore_state(self) -> None:
        s = self.qsettings
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        state = s.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        if self.width() < DEFAULT_SIZE.width() * 0.75 or self.height() < DEFAULT_SIZE.height() * 0.6:
            self.resize(DEFAULT_SIZE)  # a window left narrow last time opens at a usable size
        self.show_tab(int(s.value("window/tab", 0, int)))
        saved = s.value("settings/json", "", str)
        if saved:
            try:
                self.document.load_settings_dict(json.loads(saved))
            except (ValueError, TypeError):
                pass
        self.set_theme(s.value("ui/theme", "system", str) or "system")

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self._on_tab_changed(self.tabs.currentIndex())

    def closeEvent(self, event) -> None:  # noqa: N802
        self.save_state()
        self.runner.cancel_all()
        if self.parallax_tab is not None:
            self.parallax_tab.set_active(False)
        self.runner.wait(15000)
        self.viewport_tab.shutdown()
        if self.parallax_tab is not None:
            self.parallax_tab.shutdown()
        super().closeEvent(event)
