"""A dialog that runs one long engine task off the GUI thread, with a progress bar, a status line, Start, Cancel
and Close: the calibration and model-comparison dialogs share it (one place for progress throttling, cancel
and the buttons' states)."""

from __future__ import annotations

import time
from typing import Callable

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QProgressBar, QWidget

from engine.progress import ProgressEvent, TaskState
from forensics_app.gui.run_session import PROGRESS_INTERVAL_S, BackgroundJobs


class TaskDialog(QDialog):
    failure_prefix = "Failed"

    def __init__(self, start_text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.jobs = BackgroundJobs(self)
        self.state: TaskState | None = None
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox()
        self.start_button = self.buttons.addButton(start_text, QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton("Cancel run", QDialogButtonBox.ButtonRole.RejectRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.cancel_button.setEnabled(False)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)

    def start(self) -> None:  # the subclass's task
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.state is not None

    def run_task(self, work: Callable[[TaskState], object], on_done: Callable[[object], None], status: str) -> None:
        """Run `work(state)` on the pool; `on_done(result)` in the GUI thread afterwards."""
        self.state = state = TaskState(self._throttled())
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText(status)

        def done(result) -> None:
            self._idle()
            on_done(result)
        self.jobs.submit(lambda: work(state), done, self._failed)

    def cancel(self) -> None:
        if self.state is not None:
            self.state.cancel()
            self.status.setText("Cancelling after the current step …")

    def closeEvent(self, event) -> None:  # noqa: N802
        self.cancel()
        self.jobs.wait(30000)
        super().closeEvent(event)

    def _idle(self) -> None:
        self.state = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _failed(self, message: str) -> None:
        self._idle()
        self.status.setText(f"{self.failure_prefix}: {message}")

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
