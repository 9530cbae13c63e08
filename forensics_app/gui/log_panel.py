"""The log dock: one time-stamped line per event (tracebacks only here, as "details")."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtWidgets import QDockWidget, QPlainTextEdit, QWidget


class LogPanel(QDockWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Log", parent)
        self.setObjectName("log_dock")          # the name restoreState() finds it by
        self.view = QPlainTextEdit()
        self.view.setReadOnly(True)
        self.view.setMaximumBlockCount(5000)
        self.setWidget(self.view)

    def log(self, message: str, level: str = "info") -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        self.view.appendPlainText(f"[{stamp}] {level}: {message}")
