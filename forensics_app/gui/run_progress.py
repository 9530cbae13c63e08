"""Run progress bookkeeping without Qt: an overall fraction and ETA from the engine's measured events,
and durations as the status bar shows them."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from engine.progress import Phase, ProgressEvent


@dataclass
class RunTracker:
    """Turns the engine's progress events into an overall fraction and an ETA.

    Per batch the engine runs, for each method, a decoder-inversion stage then one diffusion-inversion
    stage; so within a batch the fraction is (inversions finished + part of the current method) / methods.
    """

    total_images: int
    methods: int
    batch_size: int
    started: float = field(default_factory=time.monotonic)
    finished_images: int = 0
    _inversions_done: int = 0
    _current: float = 0.0
    _analysis_started: float | None = None
    _read: int = 0

    def on_event(self, event: ProgressEvent) -> None:
        if event.phase is Phase.READING_EVIDENCE:
            self._read = max(self._read, event.step)   # images read so far: the batch in flight is read − finished
        if event.phase in (Phase.LOADING_MODEL, Phase.READING_EVIDENCE):
            return                                 # not analysis work: the ETA's clock starts after them
        if self._analysis_started is None:
            self._analysis_started = time.monotonic()
        if event.phase is Phase.REMOTE_ANALYSIS:   # whole images from Ray workers: counted by `on_results`
            return
        frac = event.step / event.total if event.total else 1.0
        if event.phase is Phase.DIFFUSION_INVERSION:
            if event.step >= event.total:        # always delivered (never rate-limited away)
                self._inversions_done += 1
                self._current = 0.0
            else:
                self._current = 0.5 + 0.5 * frac
        else:
            self._current = 0.5 * frac

    def on_results(self, count: int) -> None:
        self.finished_images += count
        self._inversions_done = 0
        self._current = 0.0

    def fraction(self) -> float:
        if self.total_images <= 0:
            return 1.0
        remaining = self.total_images - self.finished_images
        # The engine's batches grow (1, 2, 4 … up to batch_size): the batch in flight is what was read and is
        # not finished yet; before any image is read, assume a full batch.
        in_flight = self._read - self.finished_images
        batch = (in_flight if in_flight > 0 else min(self.batch_size, remaining)) if remaining > 0 else 0
        in_batch = min(1.0, (self._inversions_done + self._current) / max(1, self.methods))
        return min(1.0, (self.finished_images + batch * in_batch) / self.total_images)

    def eta_seconds(self) -> float | None:
        if self._analysis_started is None:
            return None
        f = self.fraction()
        elapsed = time.monotonic() - self._analysis_started
        if f < 0.02 or elapsed < 1.0:
            return None
        return elapsed * (1 - f) / f


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
