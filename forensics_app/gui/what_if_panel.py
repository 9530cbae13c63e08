"""The what-if panel: for the analysed exhibit, pick an attack and a strength and see how the statistic
responds (the exhibit under that attack, recovered and scored again in memory: `engine.what_if`) and what the
tool would conclude on the altered pixels (with the run's calibration and its coverage check; the analytic
reading alone is not valid on altered evidence). Each computed point is added to the table, so a strength sweep
is built up point by point."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QSlider, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from forensics_app.gui.run_session import BackgroundJobs

COLUMNS = ("attack", "parameter", "method", "min p", "key", "analytic (Bonferroni)", "the tool would conclude")


class WhatIfPanel(QWidget):
    def __init__(self, parent: QWidget | None = None, jobs: BackgroundJobs | None = None) -> None:
        super().__init__(parent)
        from engine.attacks import ATTACKS, SHOWN_COMBINATIONS, describe_attack   # no torch: plain Python

        self._jobs = jobs                             # created on the first computation
        self._exhibit = None                          # ImageAnalysis
        self._run = None                              # the AnalysisRun it came from (model, keys, settings)
        self._model = None                            # loaded on the first computation, kept for the next
        lay = QVBoxLayout(self)
        self.header = QLabel("Select an analysed image: the what-if panel alters it in memory (never the file) "
                             "and recomputes the statistic.")
        self.header.setWordWrap(True)
        lay.addWidget(self.header)
        row = QHBoxLayout()
        self.attack = QComboBox()
        for name in (*ATTACKS, *SHOWN_COMBINATIONS):        # single attacks, then combinations of them
            self.attack.addItem(name, name)
            self.attack.setItemData(self.attack.count() - 1, describe_attack(name), Qt.ItemDataRole.ToolTipRole)
        self.method = QComboBox()
        self.strength = QSlider(Qt.Orientation.Horizontal)
        self.strength.setRange(0, 100)
        self.strength.setValue(25)
        self.parameter = QLabel()
        self.compute = QPushButton("Compute")
        for w in (QLabel("Attack"), self.attack, QLabel("Method"), self.method, QLabel("Strength"), self.strength,
                  self.parameter, self.compute):
            row.addWidget(w)
        lay.addLayout(row)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        lay.addWidget(self.table, 1)
        self.status = QLabel()
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.attack.currentIndexChanged.connect(self._show_parameter)
        self.strength.valueChanged.connect(self._show_parameter)
        self.compute.clicked.connect(self.compute_point)
        self._show_parameter()
        self._update_enabled()

    def strength_value(self) -> float:
        return self.strength.value() / 100

    def _show_parameter(self, *args) -> None:
        from engine.attacks import combined, describe_parameters

        self.parameter.setText(describe_parameters(combined(self.attack.currentData(), self.strength_value())))

    def _update_enabled(self) -> None:
        self.compute.setEnabled(self._exhibit is not None and self._run is not None)

    def set_exhibit(self, analysis, run) -> None:
        """The exhibit (an engine ImageAnalysis with its pixels) and the run whose model, keys and settings
        apply; None clears."""
        if run is not None and self._run is not None and run.model_id != self._run.model_id:
            self._model = None
        self._exhibit, self._run = analysis, run
        self.method.clear()
        if analysis is not None:
            self.method.addItems(list(analysis.methods))
            self.header.setText(f"{analysis.evidence.path.rsplit('/', 1)[-1]}: altered in memory (the file is "
                                f"never changed), recovered and scored again with the run's model "
                                f"{run.model_id if run else '?'}, keys and settings.")
        self._update_enabled()

    def compute_point(self) -> None:
        if self._exhibit is None or self._run is None:
            return
        exhibit, run = self._exhibit, self._run
        attack, method, strength = self.attack.currentData(), self.method.currentText(), self.strength_value()
        cached = self._model

        def work():
            from engine.calibration import choose_calibration
            from engine.model_loader import load_model
            from engine.what_if import attack_response

            model = cached or load_model(run.model_id, device="cpu" if run.device.startswith("cpu") else "auto")
            # the run's calibration (also when it was turned off); a reopened case keeps none ("none"), so the
            # one a scan would choose
            calibration = run.calibration if run.calibration.origin != "none" else \
                choose_calibration(model, run.keys, run.config)
            return model, attack_response(model, run.keys, exhibit.evidence.pixels, run.config, method, attack,
                                          (strength,), calibration=calibration)[0]

        self.compute.setEnabled(False)
        self.status.setText(f"computing {attack} at strength {strength:g} …")
        if self._jobs is None:
            self._jobs = BackgroundJobs(self)
        self._jobs.submit(work, self._on_point, self._on_failed)

    def _on_point(self, value) -> None:
        self._model, point = value
        r = self.table.rowCount()
        self.table.insertRow(r)
        c = point.conclusion
        cells = (point.attack, point.parameter, point.method, f"{point.min_p:.3g}", point.best_key,
                 "below the level" if point.detected else "not below", f"{c.headline()} ({c.calibration})")
        for col, text in enumerate(cells):
            self.table.setItem(r, col, QTableWidgetItem(text))
        self.status.setText(point.describe())
        self._update_enabled()

    def _on_failed(self, message: str) -> None:
        self.status.setText(f"could not compute: {message}")
        self._update_enabled()
