"""The DepthStudio main window: photos in, depth, 3D, effects and exports out.

The window wires views to the document (depthstudio.app.document) and runs every heavy step
(loading, inference, geometry, effects, export) as a task off the UI thread
(depthstudio.app.tasks). Settings changes re-run only the stage they feed: a model change
re-estimates depth, a mesh or camera change rebuilds geometry from the cached depth, an effect
change re-renders the effect.
"""
from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QIcon, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QProgressDialog,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from depthstudio import __version__
from depthstudio.app import core, theme
from depthstudio.app.document import STAGES, Document, PhotoItem
from depthstudio.app.panels import SettingsPanels
from depthstudio.app.tasks import TaskRunner
from depthstudio.app.undo import SetSetting
from depthstudio.app.views.depth_view import DepthImageView
from depthstudio.app.views.image_view import ImageView
from depthstudio.errors import DepthStudioError, SettingsError
from depthstudio.io.images import IMAGE_SUFFIXES, find_inputs

MAX_RECENT = 10
IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ");;All files (*)"
DEPTH_FILTER = "Depth maps (*.npy *.png *.exr *.tif *.tiff);;All files (*)"


class PhotoTab(QWidget):
    """The photo, with the mesh's cut edges drawn over it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.view = ImageView("Open a photo: File ▸ Open, drop one here, or pick one from the list.")
        bar = QHBoxLayout()
        bar.setContentsMargins(8, 4, 8, 0)
        self.show_cuts = QCheckBox("Show cut edges")
        self.show_cuts.setToolTip("Where the mesh is cut at depth discontinuities (red), live as you change Edge cut")
        self.show_cuts.setChecked(True)
        self.show_cuts.toggled.connect(self._toggle)
        self.info = QLabel()
        bar.addWidget(self.show_cuts)
        bar.addStretch(1)
        bar.addWidget(self.info)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)

    def _toggle(self, on: bool) -> None:
        self.view.overlay_visible = on
        self.view.update()


class DepthTab(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.view = DepthImageView()
        layout.addWidget(self.view, 1)


class MainWindow(QMainWindow):
    """One window from photo to depth, 3D, effects and export."""

    #: emitted after the current photo's views were refreshed (tests wait on it)
    views_updated = Signal(str)  # "photo" | "depth" | "geometry" | "dof" | "parallax"
    export_finished = Signal(object)  # list of written paths, or None when cancelled / failed
    error_shown = Signal(str)

    def __init__(self, qsettings: QSettings | None = None, document: Document | None = None,
                 restore: bool = True) -> None:
        super().__init__()
        self.setObjectName("DepthStudioMainWindow")
        self.setWindowTitle("DepthStudio")
        self.setWindowIcon(theme.icon("app"))
        self.setAcceptDrops(True)
        self.qsettings = qsettings if qsettings is not None else QSettings("DepthStudio", "DepthStudio")
        self.document = document if document is not None else Document()
        self.runner = TaskRunner(self)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(200)
        self.theme_choice = "system"
        self.inference_runs = 0  # how many times a model ran (a settings change must not add one needlessly)
        self.last_error: str | None = None
        self.derived = None  # core.Derived for the current photo
        self._depth_pending: dict[int, tuple] = {}
        self._loading: set[int] = set()
        self._geometry_generation = 0
        self._export_task = None
        self._progress_task = None

        self._build_views()
        self._build_docks()
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_statusbar()

        self._geometry_timer = QTimer(self, singleShot=True, interval=120, timeout=self.refresh_geometry)
        self._dof_timer = QTimer(self, singleShot=True, interval=120, timeout=self.refresh_dof)

        doc = self.document
        doc.items_changed.connect(self._on_items_changed)
        doc.current_changed.connect(self._on_current_changed)
        doc.settings_changed.connect(self._on_settings_changed)
        self.runner.started.connect(self._on_task_started)
        self.runner.finished.connect(self._on_task_finished)

        if restore:
            self.restore_state()
        self.resize(self.size() if restore and self.qsettings.contains("window/geometry") else QSize(1360, 860))

    # ==== construction ==========================================================================
    def _build_views(self) -> None:
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.photo_tab = PhotoTab()
        self.depth_tab = DepthTab()
        self.tabs.addTab(self.photo_tab, theme.icon("photo"), "Photo")
        self.tabs.addTab(self.depth_tab, theme.icon("depth"), "Depth")
        from depthstudio.app.views.effects import DofTab, ParallaxTab
        from depthstudio.app.views.viewport import ViewportTab

        self.viewport_tab = ViewportTab(self)
        self.tabs.addTab(self.viewport_tab, theme.icon("cube"), "3D")
        self.parallax_tab = ParallaxTab(self) if "parallax" in self.document.sections else None
        if self.parallax_tab is not None:
            self.tabs.addTab(self.parallax_tab, theme.icon("parallax"), "Parallax")
        self.dof_tab = DofTab(self) if "dof" in self.document.sections else None
        if self.dof_tab is not None:
            self.tabs.addTab(self.dof_tab, theme.icon("aperture"), "Depth of field")
            self.dof_tab.view.clicked.connect(self.focus_at)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.setCentralWidget(self.tabs)
        self.depth_tab.view.hovered.connect(self._on_depth_hover)

    def _build_docks(self) -> None:
        self.filmstrip = QListWidget()
        self.filmstrip.setObjectName("filmstrip")
        self.filmstrip.setViewMode(QListWidget.ViewMode.ListMode)
        self.filmstrip.setIconSize(QSize(72, 54))
        self.filmstrip.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.filmstrip.currentRowChanged.connect(self.document.set_current)
        self.filmstrip.setToolTip("Photos to work on; Export All writes every one of them")
        self.film_dock = QDockWidget("Photos", self)
        self.film_dock.setObjectName("photosDock")
        self.film_dock.setWidget(self.filmstrip)
        self.film_dock.setMinimumWidth(180)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.film_dock)

        self.panels = SettingsPanels(self.document, self.change_setting)
        self.settings_dock = QDockWidget("Settings", self)
        self.settings_dock.setObjectName("settingsDock")
        self.settings_dock.setWidget(self.panels)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.settings_dock)
        model_panel = self.panels.panels.get("model")
        if model_panel is not None:
            model_panel.download_requested.connect(self.download_model)
        source_panel = self.panels.panels.get("source")
        if source_panel is not None:
            source_panel.choose_requested.connect(self.depth_file_dialog)
            source_panel.clear_requested.connect(lambda: self.use_depth_file(None))

    def _action(self, text: str, slot, shortcut=None, icon: str | None = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if icon:
            action.setIcon(theme.icon(icon))
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(f"{tip} ({action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
                              if shortcut is not None else tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey
        self.act_open = self._action("&Open…", self.open_dialog, K.Open, "open", "Open photos")
        self.act_open_folder = self._action("Open &Folder…", self.open_folder_dialog, "Ctrl+Shift+O", None,
                                            "Open every photo in a folder")
        self.act_depth_file = self._action("Use &Depth File…", self.depth_file_dialog, "Ctrl+D", None,
                                           "Use your own depth map (PNG, EXR, TIFF, NPY) for the current photo")
        self.act_export = self._action("&Export…", self.export_current, "Ctrl+E", "export", "Export the current photo")
        self.act_export_all = self._action("Export &All…", self.export_all, "Ctrl+Shift+E", "export-all",
                                           "Export every photo in the list")
        self.act_remove = self._action("&Remove from List", self.remove_current, K.Delete, None,
                                       "Remove the current photo from the list")
        self.act_quit = self._action("&Quit", self.close, K.Quit)
        self.act_undo = self.undo_stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcut(K.Undo)
        self.act_undo.setIcon(theme.icon("undo"))
        self.act_redo = self.undo_stack.createRedoAction(self, "&Redo")
        self.act_redo.setShortcut(K.Redo)
        self.act_redo.setIcon(theme.icon("redo"))
        for act in (self.act_undo, self.act_redo):  # icon only in the toolbar; the tooltip names the step
            act.setPriority(QAction.Priority.LowPriority)
        self.act_reset = self._action("Reset &Settings", self.reset_settings, None, "reset",
                                      "Back to the default settings (undoable)")
        self.act_cancel = self._action("&Cancel", self.cancel_work, "Esc", "cancel", "Cancel the running work")
        self.act_cancel.setEnabled(False)
        self.act_about = self._action("&About DepthStudio", self.show_about)
        self.tab_actions = []
        for i in range(5):
            act = self._action(f"View {i + 1}", lambda _=False, i=i: self.show_tab(i), f"Ctrl+{i + 1}")
            self.tab_actions.append(act)
            self.addAction(act)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        m.addAction(self.act_open)
        m.addAction(self.act_open_folder)
        self.recent_menu = m.addMenu("Open &Recent")
        m.addAction(self.act_depth_file)
        m.addSeparator()
        m.addAction(self.act_export)
        m.addAction(self.act_export_all)
        m.addSeparator()
        m.addAction(self.act_remove)
        m.addSeparator()
        m.addAction(self.act_quit)
        e = bar.addMenu("&Edit")
        e.addAction(self.act_undo)
        e.addAction(self.act_redo)
        e.addSeparator()
        e.addAction(self.act_reset)
        e.addAction(self.act_cancel)
        v = bar.addMenu("&View")
        for i, act in enumerate(self.tab_actions):
            if i < self.tabs.count():
                act.setText(self.tabs.tabText(i))
                v.addAction(act)
        v.addSeparator()
        v.addAction(self.film_dock.toggleViewAction())
        v.addAction(self.settings_dock.toggleViewAction())
        tm = v.addMenu("&Theme")
        self.theme_group = QActionGroup(self)
        for name in theme.THEMES:
            act = QAction(name.capitalize() if name != "system" else "Follow System", self, checkable=True)
            act.setData(name)
            act.triggered.connect(lambda _=False, n=name: self.set_theme(n))
            self.theme_group.addAction(act)
            tm.addAction(act)
        h = bar.addMenu("&Help")
        h.addAction(self.act_about)
        h.addAction(self._action("About &Qt", QApplication.aboutQt))
        self._rebuild_recent_menu()

    def _build_toolbar(self) -> None:
        tb = self.addToolBar("Main")
        tb.setObjectName("mainToolbar")
        tb.setIconSize(QSize(22, 22))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.addAction(self.act_open)
        tb.addSeparator()
        tb.addAction(self.act_export)
        tb.addAction(self.act_export_all)
        tb.addSeparator()
        tb.addAction(self.act_undo)
        tb.addAction(self.act_redo)
        self.toolbar = tb

    def _build_statusbar(self) -> None:
        sb = self.statusBar()
        self.status_label = QLabel("Ready")
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.hide()
        self.cancel_button = QToolButton()
        self.cancel_button.setDefaultAction(self.act_cancel)
        self.cancel_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.cancel_button.hide()
        sb.addWidget(self.status_label, 1)
        sb.addPermanentWidget(self.progress_bar)
        sb.addPermanentWidget(self.cancel_button)

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

    def open_paths(self, paths, depth=None) -> list[int]:
        """Add photos (files, folders, .txt lists) to the list and show the first one.

        ``depth`` is the user's own depth, as the CLI's --depth: one file, or a folder whose files
        pair with the photos by stem; then no model runs for those photos.
        """
        expanded = find_inputs([str(p) for p in paths])
        if not expanded:
            self.show_error("Nothing to open", "No images found in: " + ", ".join(str(p) for p in paths))
            return []
        indices = self.document.add_paths(expanded)
        if depth is not None:
            from depthstudio.geometry.depth import find_depth_file

            for path, index in zip(expanded, indices):
                try:
                    self.document.items[index].depth_file = find_depth_file(path, depth)
                except DepthStudioError as exc:
                    self.show_error("No depth file", str(exc))
        for path in expanded:
            self.add_recent(path)
        self.qsettings.setValue("paths/last_open_dir", str(Path(expanded[0]).parent))
        if indices:
            self.document.set_current(indices[0])
            self.filmstrip.setCurrentRow(indices[0])
        for index in indices[1:]:  # thumbnails for the filmstrip, after the shown photo
            item = self.document.items[index]
            if item.photo is None and item.status != "failed":
                self._load(item)
        return indices

    def depth_file_dialog(self) -> None:
        item = self.document.current
        if item is None:
            self.show_error("No photo", "Open a photo first, then choose the depth map that belongs to it.")
            return
        path, _ = QFileDialog.getOpenFileName(self, f"Depth map for {item.name}", str(item.path.parent), DEPTH_FILTER)
        if path:
            self.use_depth_file(path)

    def use_depth_file(self, path) -> None:
        item = self.document.current
        if item is None:
            return
        item.depth_file = Path(path) if path else None
        if "source" in self.panels.panels:
            self.panels.panels["source"].show_item(item)
        self.ensure_pipeline(item)

    def remove_current(self) -> None:
        if self.document.current_index >= 0:
            self.document.remove(self.document.current_index)

    # ---- recent files -----------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self.qsettings.value("recent/files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def add_recent(self, path) -> None:
        path = str(Path(path).resolve())
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
    def dragEnterEvent(self, event) -> None:
        if self._dropped_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
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

    # ==== the pipeline ==========================================================================
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

    def _update_filmstrip_item(self, item: PhotoItem) -> None:
        try:
            row = self.document.items.index(item)
        except ValueError:
            return
        entry = self.filmstrip.item(row)
        if entry is None:
            return
        thumb = item.extras.get("thumbnail")
        if thumb is not None:
            entry.setIcon(QIcon(theme.pixmap_from(thumb)))
        text = item.name
        if item.status == "failed":
            text += "  ⚠"
            entry.setToolTip(f"{item.path}\n{item.error}")
        entry.setText(text)

    def _on_current_changed(self, index: int) -> None:
        if self.filmstrip.currentRow() != index:
            self.filmstrip.blockSignals(True)
            self.filmstrip.setCurrentRow(index)
            self.filmstrip.blockSignals(False)
        self.derived = None
        self._show_current()
        item = self.document.current
        if item is not None:
            self.ensure_pipeline(item)
        self._update_actions()

    def _update_actions(self) -> None:
        has = self.document.current is not None
        self.act_export.setEnabled(has)
        self.act_export_all.setEnabled(bool(self.document.items))
        self.act_remove.setEnabled(has)
        self.act_depth_file.setEnabled(has)

    def _show_current(self) -> None:
        """Show what is known of the current photo right away (the rest arrives from tasks)."""
        item = self.document.current
        preview = item.extras.get("preview") if item else None
        self.photo_tab.view.set_image(preview)
        self.photo_tab.view.set_overlay(None)
        if item is None:
            self.photo_tab.info.setText("")
            self.setWindowTitle("DepthStudio")
        else:
            self.setWindowTitle(f"{item.name} — DepthStudio")
            if item.photo is not None:
                self.photo_tab.info.setText(f"{item.photo.width} × {item.photo.height}")
            if item.status == "failed":
                self.photo_tab.view.set_placeholder(f"{item.name} could not be used:\n{item.error}")
        self.depth_tab.view.set_depth(None)
        self.viewport_tab.clear()
        if self.parallax_tab is not None:
            self.parallax_tab.clear()
        if self.dof_tab is not None:
            self.dof_tab.clear()
        if "camera" in self.panels.panels:
            self.panels.panels["camera"].show_intrinsics(None)
        if "source" in self.panels.panels:
            self.panels.panels["source"].show_item(item)

    def ensure_pipeline(self, item: PhotoItem) -> None:
        """Run whatever the item still needs: load, then depth, then geometry and effects."""
        if item.status == "failed" and item.photo is None:
            return
        if item.photo is None:
            self._load(item)
        elif self.document.needs_depth(item):
            self._estimate(item)
        elif item is self.document.current:
            self.refresh_geometry()

    def _load(self, item: PhotoItem) -> None:
        if id(item) in self._loading:
            return
        self._loading.add(id(item))
        item.status = "loading"

        def work(ctx, path):
            ctx.progress(0.0, f"Opening {path.name}…")
            photo = core.load_photo(path)
            ctx.partial(photo)  # depth can start now; the display copies follow
            preview = core.preview_rgb(photo.rgb)
            return photo, preview, core.thumbnail(preview)

        def loaded(photo):
            item.photo = photo
            item.status = "loaded"
            if item is self.document.current:
                self.ensure_pipeline(item)

        def done(result):
            self._loading.discard(id(item))
            item.photo, item.extras["preview"], item.extras["thumbnail"] = result
            item.error = None
            self._update_filmstrip_item(item)
            if item is self.document.current:
                self.photo_tab.view.set_image(item.extras["preview"])
                self.photo_tab.info.setText(f"{item.photo.width} × {item.photo.height}")
                if self.derived is not None:  # depth came first: draw the cut edges over the photo now
                    self.photo_tab.view.set_overlay(self.derived.cut_overlay)
                self.views_updated.emit("photo")

        def failed(message, details):
            self._loading.discard(id(item))
            item.status, item.error = "failed", message
            self._update_filmstrip_item(item)
            if item is self.document.current:
                self._show_current()
                self.show_error("Cannot open photo", message, details)
            else:
                self.statusBar().showMessage(message, 8000)

        self.runner.run(work, item.path, channel="load", name=f"Opening {item.name}", on_done=done, on_failed=failed,
                        on_cancelled=lambda: self._loading.discard(id(item)), on_partial=loaded)

    def _estimate(self, item: PhotoItem) -> None:
        key = self.document.depth_key(item)
        if self._depth_pending.get(id(item)) == key:
            return
        self._depth_pending[id(item)] = key
        model = self.document.sections["model"]
        kind = key[2] if key[0] == "file" else "disparity"
        item.status = "estimating"
        uses_model = item.depth_file is None

        def work(ctx, photo, model, depth_file):
            depth = core.estimate(ctx, photo, model, depth_file=depth_file, depth_kind=kind)
            return depth

        def done(depth):
            if self._depth_pending.get(id(item)) == key:
                del self._depth_pending[id(item)]
            if uses_model:
                self.inference_runs += 1
            if self.document.depth_key(item) != key:
                self.ensure_pipeline(item)  # the settings changed meanwhile
                return
            item.depth, item.depth_key, item.status = depth, key, "ready"
            self.document.notify(item, "depth")
            if item is self.document.current:
                self.refresh_geometry()

        def failed(message, details):
            self._depth_pending.pop(id(item), None)
            item.status = "loaded"
            self.show_error("Cannot estimate depth", message, details)

        def cancelled():
            self._depth_pending.pop(id(item), None)
            item.status = "loaded"

        self.runner.run(work, item.photo, model, item.depth_file, channel="depth", name=f"Depth for {item.name}",
                        on_done=done, on_failed=failed, on_cancelled=cancelled)

    def refresh_geometry(self) -> None:
        """Depth view, intrinsics, cut-edge overlay and the preview mesh, from the cached depth."""
        item = self.document.current
        if item is None or item.photo is None or item.depth is None or self.document.needs_depth(item):
            return
        self._geometry_generation += 1
        generation = self._geometry_generation
        sections = dict(self.document.sections)

        def partial(value):
            if generation != self._geometry_generation or item is not self.document.current:
                return
            view, intrinsics = value
            self.depth_tab.view.set_depth(view, core.colormap_bar())
            if "camera" in self.panels.panels:
                self.panels.panels["camera"].show_intrinsics(intrinsics)
            self.views_updated.emit("depth")

        def done(derived):
            if generation != self._geometry_generation or item is not self.document.current:
                return
            self.derived = derived
            self.depth_tab.view.set_depth(derived.depth_view, core.colormap_bar())
            self.photo_tab.view.set_overlay(derived.cut_overlay)
            if "camera" in self.panels.panels:
                self.panels.panels["camera"].show_intrinsics(derived.intrinsics)
            if "mapping" in self.panels.panels:
                self.panels.panels["mapping"].show_kind(derived.depth_view.kind)
            self.viewport_tab.set_geometry(derived)
            if self.parallax_tab is not None:
                self.parallax_tab.set_geometry(derived)
            self.views_updated.emit("geometry")
            self.refresh_dof()

        def failed(message, details):
            if generation == self._geometry_generation:
                self.show_error("Cannot build geometry", message, details)

        self.runner.run(core.derive, item.photo, item.depth, sections, item.extras.get("preview"),
                        channel="geometry", name="Building geometry", replace=True, on_done=done, on_failed=failed,
                        on_partial=partial)

    def refresh_dof(self) -> None:
        if self.dof_tab is None or self.derived is None:
            return
        self.dof_tab.request(self.derived, self.document.sections["dof"])

    def focus_at(self, x: float, y: float) -> None:
        """Click-to-focus: focus the DoF preview at the depth under the click (an undoable change)."""
        if self.derived is None or self.dof_tab is None:
            return
        distance = core.focus_distance_at(self.derived, x / max(1, self.dof_tab.view.image().width()),
                                          y / max(1, self.dof_tab.view.image().height()))
        if distance is not None:
            self.change_setting("dof", core.DOF_FOCUS_FIELD, distance)

    # ==== settings ==============================================================================
    def change_setting(self, section: str, name: str, value) -> str | None:
        """Apply a settings change through the undo stack; returns an error message or None."""
        try:
            self.document.updated(section, name, value)  # validate first: bad values never enter the stack
        except SettingsError as exc:
            self.statusBar().showMessage(str(exc), 5000)
            return str(exc)
        if self.document.get(section, name) == value:
            return None
        self.undo_stack.push(SetSetting(self.document, section, name, value, label=self.panels.label_for(section, name)))
        return None

    def reset_settings(self) -> None:
        defaults = Document().sections
        self.undo_stack.beginMacro("Reset settings")
        for section, settings in defaults.items():
            if section == "export":
                continue
            for f in settings.__dataclass_fields__:
                value = getattr(settings, f)
                if self.document.get(section, f) != value:
                    self.undo_stack.push(SetSetting(self.document, section, f, value))
        self.undo_stack.endMacro()

    def _on_settings_changed(self, section: str, name: str, value) -> None:
        stage = STAGES.get(section, "none")
        item = self.document.current
        if stage == "depth":
            if item is not None and item.photo is not None:
                self.ensure_pipeline(item)
        elif stage == "geometry":
            self._geometry_timer.start()
        elif stage == "parallax":
            if self.parallax_tab is not None:
                self.parallax_tab.settings_changed()
        elif stage == "dof":
            self._dof_timer.start()

    # ==== work status ===========================================================================
    def _on_task_started(self, task) -> None:
        if task.channel in ("geometry", "effects"):
            return  # live previews: quick, and they would make the bar flicker
        self._progress_task = task
        task.signals.progress.connect(self._on_progress)
        self.status_label.setText(task.name + "…")
        self.progress_bar.setValue(0)
        self.progress_bar.show()
        self.cancel_button.show()
        self.act_cancel.setEnabled(True)

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress_bar.setValue(int(fraction * 1000))
        if message:
            self.status_label.setText(message)

    def _on_task_finished(self, task) -> None:
        busy = [t for t in self.runner.active if t.channel not in ("geometry", "effects")]
        if busy:
            self._on_task_started(busy[-1])
            return
        self.progress_bar.hide()
        self.cancel_button.hide()
        self.act_cancel.setEnabled(False)
        text = {"done": "Ready", "cancelled": "Cancelled", "failed": "Failed: " + (task.error or "")}.get(task.state, "Ready")
        if task.channel in ("geometry", "effects") and task.state != "failed":
            text = "Ready"
        self.status_label.setText(text)

    def cancel_work(self) -> None:
        for task in list(self.runner.active):
            if task.channel not in ("geometry", "effects"):
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
        folder = self.document.get("export", "folder")
        if folder:
            return Path(folder)
        start = self.qsettings.value("paths/last_export_dir", "", str)
        chosen = QFileDialog.getExistingDirectory(self, "Export to folder", start)
        if not chosen:
            return None
        self.qsettings.setValue("paths/last_export_dir", chosen)
        return Path(chosen)

    def export_items(self, items: list[PhotoItem], folder: Path | None = None, dialog: bool = True):
        """Export photos with the current settings, off the UI thread, with a cancellable progress dialog."""
        if not items:
            return None
        if self._export_task is not None:
            self.show_error("Export running", "An export is already running; wait for it or cancel it.")
            return None
        folder = folder or self.export_folder()
        if folder is None:
            return None
        jobs = [core.ExportJob(path=i.path, photo=i.photo, depth=i.depth if not self.document.needs_depth(i) else None,
                               depth_file=i.depth_file) for i in items]
        sections = dict(self.document.sections)
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
                progress.setValue(int(fraction * 1000))
                progress.setLabelText(message)

        def finish(result, error=None, details=""):
            self._export_task = None
            if progress is not None:
                progress.close()
            if error:
                self.show_error("Export failed", error, details)
            elif result is not None:
                for job in result.jobs or jobs:
                    if job.new_depth is not None:
                        self._cache_depth(job)
                if result.failed:
                    lines = "\n".join(f"• {p.name}: {m}" for p, m in result.failed)
                    self.show_error("Some photos were not exported", f"{len(result.failed)} of {len(jobs)} failed:\n{lines}")
                self.statusBar().showMessage(f"Exported {len(result.written)} files to {folder}", 8000)
            self.export_finished.emit(None if result is None else result)

        from depthstudio.app.jobs import export_in_process

        task = self.runner.run(export_in_process, jobs, sections, folder, channel="export",
                               name=f"Exporting {len(jobs)} photo{'s' if len(jobs) > 1 else ''}",
                               on_done=lambda r: finish(r), on_failed=lambda m, d: finish(None, m, d),
                               on_progress=on_progress, on_cancelled=lambda: finish(None))
        self._export_task = task
        if progress is not None:
            progress.canceled.connect(task.cancel)
        return task

    def _cache_depth(self, job) -> None:
        index = self.document.index_of(job.path)
        if index < 0:
            return
        item = self.document.items[index]
        if item.photo is None and job.photo is not None:
            item.photo = job.photo
        if self.document.needs_depth(item) and job.depth_key == self.document.depth_key(item):
            item.depth, item.depth_key = job.new_depth, job.depth_key
            if job.used_model:
                self.inference_runs += 1

    # ==== model download ========================================================================
    def download_model(self, name: str, backend: str) -> None:
        panel = self.panels.panels.get("model")
        if panel is not None:
            panel.set_downloading(True, f"downloading {name}…")

        def done(_):
            if panel is not None:
                panel.set_downloading(False)
                panel.refresh()

        def failed(message, details):
            if panel is not None:
                panel.set_downloading(False, "not downloaded")
            self.show_error("Download failed", message, details)

        self.runner.run(core.download_model, name, backend, channel="download", name=f"Downloading {name}",
                        on_done=done, on_failed=failed, on_cancelled=lambda: panel and panel.set_downloading(False))

    # ==== dialogs ===============================================================================
    def show_error(self, title: str, message: str, details: str = "") -> QMessageBox:
        """A clear, non-blocking dialog; the window and the user's work stay as they were."""
        self.last_error = message
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("errorDialog")
        if details:
            box.setDetailedText(details)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.error_dialog = box
        self.statusBar().showMessage(message, 8000)
        self.error_shown.emit(message)
        return box

    def show_about(self) -> QMessageBox:
        rows = "".join(
            f"<tr><td nowrap>{m.name}</td><td nowrap>{m.family}</td><td nowrap>{', '.join(m.outputs)}</td>"
            f"<td nowrap>{m.licence}</td></tr>"
            for m in core.model_catalogue()
        )
        text = (
            f"<h3>DepthStudio {__version__}</h3>"
            "<p>Monocular depth from photos: depth maps, meshes, point clouds, parallax and depth of field.</p>"
            "<p>Models: Depth Anything (V1, V2, metric V2), Distill-Any-Depth, Prompt Depth Anything, Depth Pro "
            "and MoGe-2. Each model's weights carry their own licence; CC-BY-NC-4.0 models are for non-commercial "
            "use only.</p>"
            f"<table cellspacing='6'><tr><th align='left'>Model</th><th align='left'>Family</th>"
            f"<th align='left'>Outputs</th><th align='left'>Licence</th></tr>{rows}</table>"
        )
        box = QMessageBox(self)
        box.setObjectName("aboutDialog")
        box.setStyleSheet("QLabel#qt_msgbox_label { min-width: 620px; }")
        box.setWindowTitle("About DepthStudio")
        box.setIconPixmap(theme.icon("app").pixmap(64, 64))
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(text)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.about_dialog = box
        return box

    # ==== views =================================================================================
    def show_tab(self, index: int) -> None:
        if 0 <= index < self.tabs.count():
            self.tabs.setCurrentIndex(index)

    def _on_tab_changed(self, index: int) -> None:
        widget = self.tabs.widget(index)
        for tab in (self.viewport_tab, self.parallax_tab, self.dof_tab):
            if tab is not None:
                tab.set_active(tab is widget and self.isVisible())

    def _on_depth_hover(self, x: float, y: float) -> None:
        view = self.depth_tab.view
        if view.readout:
            self.statusBar().showMessage(f"Depth at ({int(x)}, {int(y)}): {view.readout}")
        else:
            self.statusBar().clearMessage()

    def set_theme(self, name: str) -> None:
        self.theme_choice = name
        app = QApplication.instance()
        theme.apply_theme(app, name)
        for act in self.theme_group.actions():
            act.setChecked(act.data() == name)
        self._refresh_icons()
        self.qsettings.setValue("ui/theme", name)

    def _refresh_icons(self) -> None:
        for act, name in ((self.act_open, "open"), (self.act_export, "export"), (self.act_export_all, "export-all"),
                          (self.act_undo, "undo"), (self.act_redo, "redo"), (self.act_reset, "reset"),
                          (self.act_cancel, "cancel")):
            act.setIcon(theme.icon(name))
        for i, name in enumerate(("photo", "depth", "cube", "parallax", "aperture")[: self.tabs.count()]):
            self.tabs.setTabIcon(i, theme.icon(name))

    # ==== persistence ===========================================================================
    def save_state(self) -> None:
        s = self.qsettings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/tab", self.tabs.currentIndex())
        s.setValue("settings/json", self.document.settings_json())
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
        tab = s.value("window/tab", 0, int)
        self.show_tab(int(tab))
        saved = s.value("settings/json", "", str)
        if saved:
            try:
                self.document.load_settings_dict(json.loads(saved))
            except (ValueError, TypeError):
                pass
        self.set_theme(s.value("ui/theme", "system", str) or "system")

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._on_tab_changed(self.tabs.currentIndex())

    def closeEvent(self, event) -> None:
        self.save_state()
        self.runner.cancel_all()
        if self.parallax_tab is not None:
            self.parallax_tab.set_active(False)
        self.runner.wait(15000)
        self.viewport_tab.shutdown()
        if self.parallax_tab is not None:
            self.parallax_tab.shutdown()
        super().closeEvent(event)
