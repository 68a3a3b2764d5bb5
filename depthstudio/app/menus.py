"""The main window's actions, menus and toolbar (every action has a shortcut; Help > About is F1)."""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QApplication

from depthstudio.app import theme


def build(w) -> None:
    build_actions(w)
    build_menus(w)
    build_toolbar(w)


def action(w, text: str, slot, shortcut=None, icon: str | None = None, tip: str = "") -> QAction:
    act = QAction(text, w)
    if icon:
        act.setIcon(theme.icon(icon))
    if shortcut is not None:
        act.setShortcut(QKeySequence(shortcut))
    if tip:
        act.setStatusTip(tip)
        act.setToolTip(f"{tip} ({act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
                          if shortcut is not None else tip)
    act.triggered.connect(slot)
    w.addAction(act)  # shortcuts work while menus and toolbars are hidden
    return act


def build_actions(w) -> None:
    K = QKeySequence.StandardKey
    w.act_open = action(w, "&Open…", w.open_dialog, K.Open, "open", "Open photos")
    w.act_open_folder = action(w, "Open &Folder…", w.open_folder_dialog, "Ctrl+Shift+O", None,
                                  "Open every photo in a folder")
    w.act_open_video = action(w, "Open &Video…", w.open_video_dialog, "Ctrl+Shift+V", None,
                                 "Open a video clip in the Video tab")
    w.act_depth_file = action(w, "Use &Depth File…", w.depth_file_dialog, "Ctrl+D", None,
                                 "Use your own depth map (PNG, EXR, TIFF, NPY) for the current photo")
    w.act_load_settings = action(w, "&Load Settings…", w.load_settings_dialog, "Ctrl+L", None,
                                    "Apply a saved <photo>.settings.json (written beside every export)")
    w.act_export = action(w, "&Export…", w.export_current, "Ctrl+E", "export", "Export the current photo")
    w.act_export_all = action(w, "Export &All…", w.export_all, "Ctrl+Shift+E", "export-all",
                                 "Export every photo in the list")
    w.act_remove = action(w, "&Remove from List", w.remove_current, K.Delete, None,
                             "Remove the current photo from the list")
    w.act_quit = action(w, "&Quit", w.close, K.Quit)
    w.act_undo = w.undo_stack.createUndoAction(w, "&Undo")
    w.act_undo.setShortcut(K.Undo)
    w.act_undo.setIcon(theme.icon("undo"))
    w.act_redo = w.undo_stack.createRedoAction(w, "&Redo")
    w.act_redo.setShortcut(K.Redo)
    w.act_redo.setIcon(theme.icon("redo"))
    for act in (w.act_undo, w.act_redo):  # icon only in the toolbar; the tooltip names the step
        act.setPriority(QAction.Priority.LowPriority)
    w.act_reset = action(w, "Reset &Settings", w.reset_settings, "Ctrl+Shift+R", "reset",
                            "Back to the default settings (undoable)")
    w.act_cancel = action(w, "&Cancel", w.cancel_work, "Esc", "cancel", "Cancel the running work")
    w.act_cancel.setEnabled(False)
    w.act_play = action(w, "&Play / Pause Parallax", w.toggle_play, "Space", "play",
                           "Play or pause the parallax preview")
    w.act_play.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    w.act_theme = action(w, "Next &Theme", w.cycle_theme, "Ctrl+Shift+T", None,
                            "Switch between system, light and dark")
    w.act_about = action(w, "&About DepthStudio", w.show_about, K.HelpContents)
    w.tab_actions = []
    for i in range(min(9, w.tabs.count())):
        w.tab_actions.append(action(w, w.tabs.tabText(i), lambda _=False, i=i: w.show_tab(i), f"Ctrl+{i + 1}"))


def build_menus(w) -> None:
    bar = w.menuBar()
    m = bar.addMenu("&File")
    for act in (w.act_open, w.act_open_folder, w.act_open_video):
        m.addAction(act)
    w.recent_menu = m.addMenu("Open &Recent")
    m.addAction(w.act_depth_file)
    m.addAction(w.act_load_settings)
    m.addSeparator()
    m.addAction(w.act_export)
    m.addAction(w.act_export_all)
    m.addSeparator()
    m.addAction(w.act_remove)
    m.addSeparator()
    m.addAction(w.act_quit)
    e = bar.addMenu("&Edit")
    for act in (w.act_undo, w.act_redo, None, w.act_reset, w.act_cancel):
        e.addSeparator() if act is None else e.addAction(act)
    v = bar.addMenu("&View")
    for act in w.tab_actions:
        v.addAction(act)
    v.addSeparator()
    v.addAction(w.act_play)
    v.addAction(w.film_dock.toggleViewAction())
    v.addAction(w.settings_dock.toggleViewAction())
    tm = v.addMenu("&Theme")
    tm.addAction(w.act_theme)
    tm.addSeparator()
    w.theme_group = QActionGroup(w)
    for name in theme.THEMES:
        act = QAction(name.capitalize() if name != "system" else "Follow System", w, checkable=True)
        act.setData(name)
        act.triggered.connect(lambda _=False, n=name: w.set_theme(n))
        w.theme_group.addAction(act)
        tm.addAction(act)
    h = bar.addMenu("&Help")
    h.addAction(w.act_about)
    h.addAction(action(w, "About &Qt", QApplication.aboutQt))
    w._rebuild_recent_menu()


def build_toolbar(w) -> None:
    tb = w.addToolBar("Main")
    tb.setObjectName("mainToolbar")
    tb.setIconSize(QSize(22, 22))
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for act in (w.act_open, None, w.act_export, w.act_export_all, None, w.act_undo, w.act_redo):
        tb.addSeparator() if act is None else tb.addAction(act)
    w.toolbar = tb
