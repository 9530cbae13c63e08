"""Everything that runs off the GUI thread: model loading + analysis (one QThread per run), evidence
previews and exports (QThreadPool). Engine progress arrives through `TaskState` listeners in the worker
thread; they only emit queued Qt signals, rate-limited so a fast loop cannot flood the event loop.
"""

from __future__ import annotations

import gc
import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal, Slot

from engine.progress import ProgressEvent, TaskState

PROGRESS_INTERVAL_S = 0.05      # at most ~20 progress signals a second (plus every stage change and end)


def freeze_long_lived_objects() -> None:
    """Move every object alive now (torch, diffusers, the loaded model: ~500k objects) out of the cyclic
    garbage collector's reach. A full collection over them holds the GIL for ~250 ms on a small CPU,
    and when the worker thread triggers one the GUI thread stalls with it; after `gc.freeze()` a
    collection only walks objects made since. Cheap (no collection), safe to call repeatedly; the cost
    is that cycles among frozen objects are never reclaimed (refcounting still frees the rest)."""
    gc.freeze()


@dataclass
class RunRequest:
    model: str                   # model id or diffusers folder
    keys: object                 # KeySet
    paths: list[str]
    settings: object             # AnalysisSettings


class AnalysisWorker(QObject):
    """Loads the model, builds the config and calls `engine.analysis.analyze` — all in its own thread."""

    stage = Signal(str)                   # coarse phase: "loading model …", "analysing"
    model_ready = Signal(str, str)        # device name, dtype
    config_ready = Signal(object)         # AnalysisConfig
    progress = Signal(object)             # ProgressEvent
    result = Signal(object)               # ImageAnalysis | ImageFailure, as each one finishes
    finished = Signal(object)             # AnalysisRun, or None when nothing ran (error / cancelled before start)
    error = Signal(str)                   # one readable sentence
    details = Signal(str)                 # a traceback for the log panel, after an unexpected error

    def __init__(self, request: RunRequest) -> None:
        super().__init__()
        self.request = request
        self.state = TaskState(self._on_event)
        self._last_emit = 0.0
        self._last_stage = None

    def cancel(self) -> None:
        self.state.cancel()

    def _on_event(self, event: ProgressEvent) -> None:      # worker thread: emit only
        now = time.monotonic()
        if (event.stage != self._last_stage or event.step >= event.total
                or now - self._last_emit >= PROGRESS_INTERVAL_S):
            self._last_emit, self._last_stage = now, event.stage
            self.progress.emit(event)

    @Slot()
    def run(self) -> None:
        from engine.analysis import analyze
        from engine.model_loader import ModelLoadError, load_model

        req = self.request
        run = None
        try:
            s = req.settings
            self.stage.emit(f"loading model {req.model} …")
            model = load_model(req.model, dtype=s.dtype, device=s.device)
            freeze_long_lived_objects()
            from engine.device import device_name

            self.model_ready.emit(device_name(model.device), str(model.dtype).replace("torch.", ""))
            if self.state.is_cancelled:
                return
            config = s.to_config(model)
            self.config_ready.emit(config)
            self.stage.emit("analysing")
            run = analyze(model, req.keys, req.paths, config, progress=self.state, on_result=self.result.emit)
        except (ModelLoadError, ValueError) as exc:
            self.error.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 — shown as a sentence, with the traceback in the log only
            self.details.emit(traceback.format_exc())
            self.error.emit(f"unexpected error ({type(exc).__name__}): {str(exc).splitlines()[0] if str(exc) else ''}")
        finally:
            self.finished.emit(run)


class AnalysisController(QObject):
    """Owns the worker thread of the current run. Signals are the worker's, re-emitted in the GUI thread."""

    stage = Signal(str)
    model_ready = Signal(str, str)
    config_ready = Signal(object)
    progress = Signal(object)
    result = Signal(object)
    finished = Signal(object)
    error = Signal(str)
    details = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: AnalysisWorker | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, request: RunRequest) -> None:
        if self.running:
            raise RuntimeError("a run is already in progress")
        thread = QThread()
        thread.setObjectName("analysis")
        worker = AnalysisWorker(request)
        worker.moveToThread(thread)
        for name in ("stage", "model_ready", "config_ready", "progress", "result", "error", "details"):
            getattr(worker, name).connect(getattr(self, name))
        worker.finished.connect(self._on_finished)
        thread.started.connect(worker.run)
        self._thread, self._worker = thread, worker
        thread.start()

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    @property
    def cancel_requested(self) -> bool:
        """Whether the current (or, after `finished`, the last) run was asked to stop."""
        if self._worker is not None:
            return self._worker.state.is_cancelled
        return self._last_cancelled

    _last_cancelled = False

    @Slot(object)
    def _on_finished(self, run) -> None:
        self._last_cancelled = self._worker is not None and self._worker.state.is_cancelled
        thread, self._thread, self._worker = self._thread, None, None
        if thread is not None:
            thread.quit()
            thread.wait()
        self.finished.emit(run)

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Cancel and wait for the thread (window closing)."""
        if self._thread is not None:
            self.cancel()
            self._thread.quit()
            self._thread.wait(timeout_ms)


# -- progress bookkeeping ----------------------------------------------------------------------------

def is_inversion_stage(stage: str) -> bool:
    """The diffusion-inversion stages ("DDIM inversion", "backward-Euler inversion", "… flow inversion")."""
    return "inversion" in stage and not stage.startswith("decoder")


@dataclass
class RunTracker:
    """Turns the engine's stage events into an overall fraction and an ETA.

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
    _batch_images: int = 0

    def on_event(self, event: ProgressEvent) -> None:
        if event.stage == "reading evidence":
            return
        if self._analysis_started is None:
            self._analysis_started = time.monotonic()
        frac = event.step / event.total if event.total else 1.0
        if is_inversion_stage(event.stage):
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
        batch = min(self.batch_size, remaining) if remaining > 0 else 0
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


# -- small background jobs ---------------------------------------------------------------------------

class _JobSignals(QObject):
    done = Signal(object)
    failed = Signal(str)


class BackgroundJob(QRunnable):
    """Run fn() on a pool thread; `done(result)` or `failed(message)` arrive in the GUI thread.
    Expected failures (ValueError, OSError — e.g. EvidenceError) become their message; anything else is
    reported with its type, never as a traceback dialog."""

    def __init__(self, fn: Callable[[], object]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = _JobSignals()
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            out = self.fn()
        except (ValueError, OSError) as exc:
            self.signals.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001
            self.signals.failed.emit(f"unexpected error ({type(exc).__name__}): {exc}")
        else:
            self.signals.done.emit(out)


def submit(pool: QThreadPool, fn: Callable[[], object], on_done: Callable[[object], None],
           on_failed: Callable[[str], None]) -> BackgroundJob:
    job = BackgroundJob(fn)
    job.signals.done.connect(on_done)
    job.signals.failed.connect(on_failed)
    pool.start(job)
    return job
