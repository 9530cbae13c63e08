"""File ▸ Compare runs in case…: two runs of the open case side by side — what differs in their settings and
each verdict on the same evidence (`engine.run_comparison`). Disagreements are highlighted, never resolved:
which run to believe is the examiner's call."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QDialogButtonBox, QHBoxLayout, QHeaderView,
                               QLabel, QPlainTextEdit, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

DIFFERENT = QColor("#f4cccc")


class RunComparisonDialog(QDialog):
    COLUMNS = ("File", "Method", "Verdict A (p)", "Verdict B (p)", "")

    def __init__(self, folder, history: list[dict], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder = folder
        self.setWindowTitle("Compare runs in the case")
        self.resize(900, 560)
        lay = QVBoxLayout(self)
        pick = QHBoxLayout()
        labels = [f"run {n}: {h.get('model_id')}, {h.get('started_utc')}" for n, h in enumerate(history, start=1)]
        self.run_a, self.run_b = QComboBox(), QComboBox()
        for box in (self.run_a, self.run_b):
            box.addItems(labels)
        self.run_a.setCurrentIndex(max(0, len(labels) - 2))
        self.run_b.setCurrentIndex(len(labels) - 1)
        pick.addWidget(QLabel("A:"))
        pick.addWidget(self.run_a, 1)
        pick.addWidget(QLabel("B:"))
        pick.addWidget(self.run_b, 1)
        lay.addLayout(pick)
        self.summary = QLabel()
        self.summary.setTextFormat(Qt.TextFormat.PlainText)       # file names are untrusted
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)
        self.settings = QPlainTextEdit(readOnly=True)
        self.settings.setMaximumHeight(110)
        lay.addWidget(self.settings)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        lay.addWidget(self.table, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.comparison = None
        self.run_a.currentIndexChanged.connect(self.refresh)
        self.run_b.currentIndexChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Reopen the two chosen runs (evidence re-hashed, no recompute) and fill the table."""
        from engine.case_file import CaseFileError
        from engine.case_folder import load_run
        from engine.run_comparison import compare_runs

        a, b = self.run_a.currentIndex() + 1, self.run_b.currentIndex() + 1
        try:
            c = compare_runs(load_run(self.folder, a).run, load_run(self.folder, b).run, f"run {a}", f"run {b}")
        except (CaseFileError, ValueError, OSError) as exc:
            self.summary.setText(f"These runs cannot be compared: {exc}")
            self.table.setRowCount(0)
            self.comparison = None
            return
        self.comparison = c
        self.summary.setText(
            f"{c.label_a} vs {c.label_b}: {len(c.pairs)} verdict(s) on the same evidence (matched by SHA-256), "
            f"{len(c.disagreements)} differ. {len(c.only_a)} file(s) only in {c.label_a}, {len(c.only_b)} only in "
            f"{c.label_b}. A difference is for the examiner to weigh: two models sharing a VAE can both "
            f"explain an image.")
        self.settings.setPlainText("\n".join(c.settings_differences) or "The two runs used the same settings.")
        self.table.setRowCount(len(c.pairs))
        for row, p in enumerate(c.pairs):
            cells = (p.name, p.method, f"{p.verdict_a} (p={p.p_a:.2g})", f"{p.verdict_b} (p={p.p_b:.2g})",
                     "same" if p.agree else "DIFFERENT")
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if not p.agree:
                    item.setBackground(QBrush(DIFFERENT))
                self.table.setItem(row, col, item)
