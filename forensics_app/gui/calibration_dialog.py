"""Analysis ▸ Calibrate on the model…: make a calibration (engine.calibration_making.calibrate) with the window's
current model, keys and settings, with progress and cancel, off the GUI thread; the file it writes is then
used by the window's runs."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)

from forensics_app.gui.task_dialog import TaskDialog


class CalibrationDialog(TaskDialog):
    made = Signal(str)          # the path of the calibration written
    failure_prefix = "Calibration failed"

    def __init__(self, model_id: str, keys, settings, parent: QWidget | None = None) -> None:
        super().__init__("Start", parent)
        self.setWindowTitle("Calibrate on the model")
        self.model_id, self.keys, self.settings = model_id, keys, settings
        lay = QVBoxLayout(self)
        intro = QLabel(
            f"Generates un-watermarked and watermarked images with <b>{model_id}</b> and analyses them with the "
            "current settings, so that the conclusions' p-values come from this model's own images. The file is "
            "bound to the model's weights, the key set and these settings: a scan with other settings is "
            "uncalibrated. The smallest p-value it can support is 1 / (clean images + 1).")
        intro.setWordWrap(True)
        lay.addWidget(intro)
        form = QFormLayout()
        self.clean = QSpinBox()
        self.clean.setRange(10, 100_000)
        self.clean.setValue(300)
        self.per_key = QSpinBox()
        self.per_key.setRange(0, 100_000)
        self.per_key.setValue(100)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2_000_000_000)
        self.seed.setValue(100_000)
        self.out = QLineEdit()
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_out)
        row = QHBoxLayout()
        row.addWidget(self.out, 1)
        row.addWidget(browse)
        form.addRow("Un-watermarked images", self.clean)
        form.addRow("Watermarked images per key", self.per_key)
        form.addRow("First seed", self.seed)
        form.addRow("Calibration file", row)
        lay.addLayout(form)
        for w in (self.progress, self.status, self.buttons):
            lay.addWidget(w)

    def _choose_out(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Calibration file", f"{self.model_id}_calibration.json",
                                              "Calibration (*.json)")
        if path:
            self.out.setText(path)

    def start(self) -> None:
        from engine.output_paths import check_output

        out = self.out.text().strip()
        if not out:
            self.status.setText("Choose where to write the calibration file.")
            return
        try:
            check_output(out, force=False, what="calibration file")
        except ValueError as exc:
            self.status.setText(str(exc))
            return
        counts = (self.clean.value(), self.per_key.value(), self.seed.value())
        self.run_task(lambda state: self._work(out, counts, state), self._done, "Loading the model …")

    def _work(self, out: str, counts, state):
        from engine.calibration_making import calibrate
        from engine.model_loader import load_model
        from engine.progress import Cancelled

        model = load_model(self.model_id, dtype=self.settings.dtype, device=self.settings.device)
        config = self.settings.to_config(model)
        try:
            cal = calibrate(model, self.keys, config, clean_count=counts[0], per_key_count=counts[1], seed=counts[2],
                            progress=state)
        except Cancelled:
            return None
        cal.save(out)
        return out, cal

    def _done(self, result) -> None:
        if result is None:
            self.status.setText("Cancelled: no calibration was written.")
            return
        out, cal = result
        lines = [f"Wrote {out}: {cal.describe()}."]
        for m, c in cal.methods.items():
            lines.append(f"{m}: smallest supportable detection p = {c.min_supported_p:.2g}.")
        self.status.setText(" ".join(lines) + " The window's runs now use it.")
        self.made.emit(out)


def open_calibration_dialog(w) -> None:
    """Analysis ▸ Calibrate on the model…, for the window's current model, keys and settings."""
    loc = w.model_chooser.current_location()
    keys = w.key_chooser.current_keys()
    if loc is None or not loc.found or keys is None:
        w.report_error("choose a model that is on this machine and a key set first")
        return
    try:
        settings = w.advanced.settings()
    except ValueError as exc:
        w.report_error(str(exc))
        return
    dialog = CalibrationDialog(loc.spec.id, keys, settings, w)

    def use(path: str) -> None:
        w.calibration_path = path
        w.log(f"calibration: runs now use {path}")
    dialog.made.connect(use)
    dialog.show()


def choose_calibration_file(w) -> None:
    """Analysis ▸ Use calibration file…: checked now (a bad file is one message and changes nothing)."""
    from engine.calibration import Calibration, CalibrationError

    path, _ = QFileDialog.getOpenFileName(w, "Calibration file", "", "Calibration (*.json)")
    if not path:
        return
    try:
        cal = Calibration.load(path)
    except CalibrationError as exc:
        w.report_error(str(exc))
        return
    w.calibration_path = path
    w.log(f"calibration: runs now use {cal.describe()} ({path})")


def use_shipped_calibration(w) -> None:
    w.calibration_path = None
    w.log("calibration: runs use the calibration shipped for a bundled model, where its settings match")
