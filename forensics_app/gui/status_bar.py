"""The status bar: the current stage and its progress, images finished, elapsed time / ETA, device."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar

if TYPE_CHECKING:
    from engine.progress import ProgressEvent


class RunStatusBar(QStatusBar):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.stage_label = QLabel("Ready")
        self.stage_bar = QProgressBar()
        self.stage_bar.setMaximumWidth(220)
        self.stage_bar.setFormat("%v/%m")
        self.stage_bar.setToolTip("Progress of the current stage (iterations or steps)")
        self.images_bar = QProgressBar()
        self.images_bar.setMaximumWidth(220)
        self.images_bar.setFormat("%v/%m images")
        self.images_bar.setToolTip("Images finished (analysed or failed)")
        self.eta_label = QLabel()
        self.device_label = QLabel()
        self.addWidget(self.stage_label, 1)
        self.addPermanentWidget(self.stage_bar)
        self.addPermanentWidget(self.images_bar)
        self.addPermanentWidget(self.eta_label)
        self.addPermanentWidget(self.device_label)
        self.stage_bar.hide()
        self.images_bar.hide()

    def show_text(self, text: str) -> None:
        self.stage_label.setText(text)

    def run_started(self, images: int) -> None:
        self.images_bar.setRange(0, images)
        self.images_bar.setValue(0)
        self.images_bar.show()
        self.stage_bar.setRange(0, 0)           # busy until the first counted step (the model loads first)
        self.stage_bar.show()
        self.eta_label.setText("")

    def show_event(self, ev: ProgressEvent) -> None:
        stage = ev.stage[:1].upper() + ev.stage[1:]
        if ev.total:
            self.stage_label.setText(f"{stage}: {ev.step}/{ev.total}")
            self.stage_bar.setRange(0, ev.total)
            self.stage_bar.setValue(ev.step)
        else:
            self.stage_label.setText(stage)
            self.stage_bar.setRange(0, 0)

    def images_finished(self, count: int) -> None:
        self.images_bar.setValue(count)

    def show_timing(self, text: str) -> None:
        self.eta_label.setText(text)

    def run_finished(self, text: str, elapsed: str) -> None:
        self.stage_label.setText(text)
        self.stage_bar.hide()
        self.eta_label.setText(f"elapsed {elapsed}")

    def show_device(self, text: str) -> None:
        self.device_label.setText(text)
