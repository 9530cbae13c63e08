"""Analysis ▸ Calibrate on the model…: make a calibration (engine.calibration.calibrate) with the window's
current model, keys and settings, with progress and cancel, off the GUI thread; the file it writes is then
used by the window's runs."""

from __future__ import annotations

import time
from typing import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from engine.progress import ProgressEvent, TaskState
from forensics_app.gui.run_session import PROGRESS_INTERVAL_S, BackgroundJobs


class CalibrationDialog(QDialog):
    made = Signal(str)          # the path of the calibration written

    def __init__(self, model_id: str, keys, settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Calibrate on the model")
        self.model_id, self.keys, self.settings = model_id, keys, settings
        self.jobs = BackgroundJobs(self)
        self.state: TaskState | None = None
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
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        self.buttons = QDialogButtonBox()
        self.start_button = self.buttons.addButton("Start", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton("Cancel run", QDialogButtonBox.ButtonRole.RejectRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.cancel_button.setEnabled(False)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        lay.addWidget(self.buttons)

    def _choose_out(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Calibration file", f"{self.model_id}_calibration.json",
                                              "Calibration (*.json)")
        if path:
            self.out.setText(path)

    @property
    def running(self) -> bool:
        return self.state is not None

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
        self.state = state = TaskState(self._throttled())
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText("Loading the model …")
        counts = (self.clean.value(), self.per_key.value(), self.seed.value())
        self.jobs.submit(lambda: self._work(out, counts, state), self._done, self._failed)

    def cancel(self) -> None:
        if self.state is not None:
            self.state.cancel()
            self.status.setText("Cancelling after the current step … nothing will be written.")

    def closeEvent(self, event) -> None:  # noqa: N802
        self.cancel()
        self.jobs.wait(30000)
        super().closeEvent(event)

    def _throttled(self) -> Callable[[ProgressEvent], None]:
        last = [0.0]

        def on_event(ev: ProgressEvent) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL_S or ev.step >= ev.total:
                last[0] = now
                self.jobs.post(self._on_progress, ev)
        return on_event

    def _on_progress(self, ev: ProgressEvent) -> None:
        self.progress.setRange(0, max(ev.total, 1))
        self.progress.setValue(min(ev.step, max(ev.total, 1)))
        self.status.setText(f"{ev.stage} {ev.step}/{ev.total}")

    def _work(self, out: str, counts, state: TaskState):
        from engine.calibration import calibrate
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
        self.state = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if result is None:
            self.status.setText("Cancelled: no calibration was written.")
            return
        out, cal = result
        lines = [f"Wrote {out}: {cal.describe()}."]
        for m, c in cal.methods.items():
            lines.append(f"{m}: smallest supportable detection p = {c.min_supported_p:.2g}.")
        self.status.setText(" ".join(lines) + " The window's runs now use it.")
        self.made.emit(out)

    def _failed(self, message: str) -> None:
        self.state = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.status.setText(f"Calibration failed: {message}")


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
