"""A non-blocking banner over the views: what depth needs, and the buttons that provide it.

Shown when the model's weights are not downloaded (at first launch, say) or the model cannot run:
it never takes the keyboard, and the rest of the window stays usable. "Choose model file…",
"Use a depth file…" and "Download" (with progress) are the three ways forward.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QToolButton, QVBoxLayout


class Banner(QFrame):
    choose_model = Signal()
    use_depth_file = Signal()
    download = Signal()
    closed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(10, 6, 6, 6)
        row = QHBoxLayout()
        self.text = QLabel()
        self.text.setObjectName("bannerText")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.text, 1)
        self.buttons = {}
        for key, label, signal, tip in (
            ("choose", "Choose model file…", self.choose_model, "A local .onnx file or transformers folder"),
            ("depth", "Use a depth file…", self.use_depth_file, "Your own depth map for this photo: no model runs"),
            ("download", "Download", self.download, "Fetch the model's weights into the local cache"),
        ):
            button = QPushButton(label)
            button.setToolTip(tip)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(signal)
            row.addWidget(button)
            self.buttons[key] = button
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Hide this message")
        close.setAutoRaise(True)
        close.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        close.clicked.connect(self.dismiss)
        row.addWidget(close)
        outer.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(True)
        self.progress.hide()
        outer.addWidget(self.progress)
        self.kind = ""
        self.hide()

    def show_message(self, kind: str, text: str, download: bool = False, hint: str = "") -> None:
        """``kind`` "weights" (the model is not downloaded) or "model" (it cannot run)."""
        self.kind = kind
        self.text.setText(text + (f"\n{hint}" if hint else ""))
        self.buttons["download"].setVisible(download)
        self.buttons["download"].setEnabled(True)
        self.progress.hide()
        self.show()

    def set_downloading(self, message: str | None) -> None:
        """Download progress (None: finished)."""
        busy = message is not None
        self.progress.setVisible(busy)
        self.buttons["download"].setEnabled(not busy)
        if busy:
            self.progress.setFormat(message)

    def dismiss(self) -> None:
        self.hide()
        self.kind = ""
        self.closed.emit()
