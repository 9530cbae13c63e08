"""Analysis ▸ Compare models…: the last run's exhibits analysed again under another candidate model, and for
each exhibit which model explains it (engine.model_comparison), with progress and cancel off the GUI thread."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from engine.progress import TaskState
from forensics_app.gui.task_dialog import TaskDialog

COLUMNS = ("Exhibit", "Statement", "Model", "Conclusion", "Detection p", "Calibration", "Round trip (dB)",
           "z0 residual")


class ModelComparisonDialog(TaskDialog):
    failure_prefix = "Comparison failed"

    def __init__(self, run, model_ids: list[str], settings, parent: QWidget | None = None) -> None:
        super().__init__("Compare", parent)
        self.setWindowTitle("Compare models on the same evidence")
        self.resize(1100, 520)
        self.run, self.settings = run, settings
        self.comparison = []
        lay = QVBoxLayout(self)
        intro = QLabel(
            f"The {len(run.images)} exhibit(s) of the last run (model <b>{run.model_id}</b>) are analysed again "
            "under the model chosen here, with the same settings, and compared. Models that share an "
            "autoencoder and have similar generators recover similar initial noise: a positive under both does "
            "not say which made the image, and the window says so.")
        intro.setWordWrap(True)
        lay.addWidget(intro)
        row = QHBoxLayout()
        row.addWidget(QLabel("Other model:"))
        self.model_combo = QComboBox()
        for m in model_ids:
            if m != run.model_id:
                self.model_combo.addItem(m, m)
        row.addWidget(self.model_combo, 1)
        lay.addLayout(row)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setWordWrap(True)
        lay.addWidget(self.table, 1)
        self.start_button.setEnabled(self.model_combo.count() > 0)
        if self.model_combo.count() == 0:
            self.status.setText("No other model is available on this machine.")
        lay.addWidget(self.buttons)

    def start(self) -> None:
        other = self.model_combo.currentData()
        self.run_task(lambda state: self._work(other, state), self._done, f"Loading {other} …")

    def _work(self, other: str, state: TaskState):
        from engine.analysis import analyze
        from engine.model_comparison import compare_models
        from engine.model_loader import load_model

        model = load_model(other, dtype=self.settings.dtype, device=self.settings.device)
        config = self.settings.to_config(model)
        keys = self.run.keys
        from engine.watermarks import scheme_for

        try:
            scheme_for(keys).check_fits(keys, model.latent_shape, model.spec.id)
        except ValueError:
            from engine.treering import KeySet

            if model.spec.default_keys_path is None:
                raise
            keys = KeySet.load(model.spec.default_keys_path)
        other_run = analyze(model, keys, [im.evidence.path for im in self.run.images], config, progress=state)
        return compare_models([self.run, other_run]), other_run.cancelled

    def _done(self, result) -> None:
        self.comparison, cancelled = result
        self.status.setText(("Cancelled: the exhibits finished so far are compared. " if cancelled else "")
                            + "Round trip: the image regenerated from the recovered z_T, against the evidence "
                            "(descriptive; compared only between models of one kind).")
        rows = [(c, e) for c in self.comparison for e in c.models]
        self.table.setRowCount(len(rows))
        for i, (c, e) in enumerate(rows):
            name = c.path.rsplit("/", 1)[-1]
            cells = (name, c.statement, e.model_id, e.conclusion.headline(),
                     "—" if e.conclusion.detection_p is None else f"{e.conclusion.detection_p:.3g}",
                     e.conclusion.calibration, f"{e.round_trip_psnr_db:.1f}", f"{e.z0_residual:.3f}")
            for j, text in enumerate(cells):
                it = QTableWidgetItem(text)
                it.setToolTip(text)
                if j != 1:
                    it.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(i, j, it)
        self.table.resizeRowsToContents()


def open_model_comparison(w) -> None:
    """Analysis ▸ Compare models…: needs a finished run."""
    from engine.model_registry import all_model_specs, locate

    if w.last_run is None or not w.last_run.images:
        w.report_error("run an analysis first: the comparison re-analyses the last run's exhibits")
        return
    try:
        settings = w.advanced.settings()
    except ValueError as exc:
        w.report_error(str(exc))
        return
    ids = [s.id for s in all_model_specs() if locate(s).found]
    ModelComparisonDialog(w.last_run, ids, settings, w).show()
