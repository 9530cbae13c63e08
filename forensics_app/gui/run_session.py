"""Everything that runs off the GUI thread, through one mechanism: plain callables on a `QThreadPool`
(`BackgroundJobs`), whose outcomes and progress reach the GUI thread through one queued signal.

`RunSession` owns an analysis run over the evidence list: it loads the model and calls
`engine.analysis.analyze` on its pool thread, keeps the list's statuses and the progress bookkeeping
in the GUI thread, and tells the window through its signals. Previews and exports are `BackgroundJobs`
too. Engine progress arrives through a `TaskState` listener in the worker thread, rate-limited so a fast
loop cannot flood the event loop. The engine and torch are imported in the worker, never here: the
window must come up without them.
"""

from __future__ import annotations

import gc
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QObject, QThreadPool, Signal, Slot

from engine.progress import Phase, ProgressEvent, TaskState
from forensics_app.gui.evidence_list import Status, summary_of
from forensics_app.gui.run_progress import RunTracker, format_duration

if TYPE_CHECKING:
    from engine.analysis import AnalysisRun
    from engine.treering import KeySet
    from forensics_app.gui.evidence_list import EvidenceItem, EvidenceModel
    from engine.options import AnalysisOptions

PROGRESS_INTERVAL_S = 0.05      # at most ~20 progress signals a second (plus every stage change and end)


def freeze_long_lived_objects() -> None:
    """Move every object alive now (torch, diffusers, the loaded model: ~500k objects) out of the cyclic
    garbage collector's reach. A full collection over them holds the GIL for ~250 ms on a small CPU,
    and when the worker thread triggers one the GUI thread stalls with it; after `gc.freeze()` a
    collection only walks objects made since. Cheap (no collection), safe to call repeatedly; the cost
    is that cycles among frozen objects are never reclaimed (refcounting still frees the rest)."""
    gc.freeze()


class BackgroundJobs(QObject):
    """Runs plain callables on its own pool threads (one by default, so jobs run in order). Each job's
    outcome, and anything a job `post`s, is handed to its callback in the GUI thread.

    Expected failures (ValueError, OSError — e.g. EvidenceError) become their message; anything else is
    reported with its type, never as a traceback dialog."""

    _deliver = Signal(object, object)     # (callback, value): queued into the GUI thread when emitted elsewhere

    def __init__(self, parent: QObject | None = None, threads: int = 1) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._deliver.connect(self._call)

    def post(self, callback: Callable[[object], None], value: object = None) -> None:
        """From any thread: call `callback(value)` in the thread this object lives in (the GUI's)."""
        try:
            self._deliver.emit(callback, value)
        except RuntimeError:        # this object was deleted (a window destroyed without closing): no one to tell
            pass

    def submit(self, fn: Callable[[], object], on_done: Callable[[object], None],
               on_failed: Callable[[str], None]) -> None:
        def job() -> None:
            try:
                out = fn()
            except (ValueError, OSError) as exc:
                self.post(on_failed, str(exc))
            except Exception as exc:  # noqa: BLE001
                self.post(on_failed, f"unexpected error ({type(exc).__name__}): {exc}")
            else:
                self.post(on_done, out)

        self.pool.start(job)

    def drop_waiting(self) -> None:
        """Forget the jobs not started yet (the running one finishes)."""
        self.pool.clear()

    def wait(self, timeout_ms: int) -> bool:
        return self.pool.waitForDone(timeout_ms)

    @Slot(object, object)
    def _call(self, callback, value) -> None:
        callback(value)


def warm_up_engine(device: str) -> str:
    """Import the engine (torch, diffusers: seconds) — on a worker thread, while the window is already
    usable — and say which device `device` ("auto", …) means."""
    import engine.analysis  # noqa: F401
    import engine.model_loader  # noqa: F401
    from engine.device import device_name, pick_device

    return device_name(pick_device(device))


@dataclass(frozen=True)
class RunRequest:
    model: str                   # model id or diffusers folder
    keys: KeySet
    paths: list[str]
    settings: AnalysisOptions
    not_analysed: tuple = ()     # engine NotAnalysed of the listed files that are not run, carried into the record
    ray_address: str = ""        # "" = this computer; else the Ray cluster the run is submitted to (gui/executor_setting)
    calibration_path: str | None = None   # None: the calibration shipped for a bundled model, where it applies
    search: object = None        # gui.search_controls.SearchChoice: a re-alignment search after the analysis
    restore: object = None       # gui.restore_controls.RestoreChoice: a restored reading after the analysis (and search)


class RunSession(QObject):
    """One analysis run at a time over the window's evidence list: start, progress, per-image results,
    finish, cancel. The list's statuses are kept here; the window shows what the signals say."""

    progress = Signal(object)             # ProgressEvent: LOADING_MODEL first, then the engine's
    model_ready = Signal(str, str)        # device name, dtype
    config_ready = Signal(object)         # AnalysisConfig
    result = Signal(object)               # ImageAnalysis | ImageFailure, after its item was updated
    finished = Signal(object)             # AnalysisRun, or None when nothing ran (error / cancelled before start)
    error = Signal(str)                   # one readable sentence
    details = Signal(str)                 # a traceback for the log panel, after an unexpected error

    def __init__(self, evidence: EvidenceModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.evidence = evidence
        self.jobs = BackgroundJobs(self)       # the run, and the engine work that must not overlap it
        self._state: TaskState | None = None
        self._last_cancelled = False
        self.tracker: RunTracker | None = None
        self.started = 0.0
        self.paths: set[str] = set()          # the files of the current / last run (others may be added meanwhile)
        self.finished_count = 0
        self._in_batch: list[EvidenceItem] = []

    @property
    def running(self) -> bool:
        return self._state is not None

    @property
    def cancel_requested(self) -> bool:
        """Whether the current (or, after `finished`, the last) run was asked to stop."""
        return self._state.is_cancelled if self._state is not None else self._last_cancelled

    def start(self, request: RunRequest) -> None:
        if self.running:
            raise RuntimeError("a run is already in progress")
        for item in self.evidence.items:
            if not item.runnable:
                continue                          # listed as not analysed, with its reason: never run
            item.analysis, item.failure = None, None
            self.evidence.set_status(item, Status.QUEUED)
        s = request.settings
        self.tracker = RunTracker(len(request.paths), len(s.methods), s.batch_size)
        self.started = time.monotonic()
        self.paths = set(request.paths)
        self.finished_count = 0
        self._in_batch = []
        state = self._state = TaskState(self._throttled())
        self.jobs.submit(lambda: self._run(request, state), self._on_finished, self._on_crashed)

    def cancel(self) -> None:
        if self._state is not None:
            self._state.cancel()

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Cancel and wait for the worker (window closing)."""
        self.cancel()
        self.jobs.wait(timeout_ms)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def timing_text(self) -> str:
        eta = self.tracker.eta_seconds() if self.tracker is not None else None
        return f"elapsed {format_duration(self.elapsed())} · ETA {format_duration(eta)}"

    # -- worker thread: compute, and post everything to the GUI thread ------------------------------------
    def _throttled(self) -> Callable[[ProgressEvent], None]:
        last = {"emit": 0.0, "stage": None}

        def on_event(event: ProgressEvent) -> None:
            now = time.monotonic()
            if (event.stage != last["stage"] or event.step >= event.total
                    or now - last["emit"] >= PROGRESS_INTERVAL_S):
                last["emit"], last["stage"] = now, event.stage
                self.jobs.post(self._on_progress, event)
        return on_event

    def _run(self, req: RunRequest, state: TaskState) -> AnalysisRun | None:
        from engine.device import device_name
        from engine.executors import LocalExecutor, ScanJob
        from engine.model_loader import ModelLoadError, load_model

        post = self.jobs.post
        try:
            s = req.settings
            job = ScanJob(req.model, req.keys, s, tuple(req.paths), not_analysed=tuple(req.not_analysed),
                          calibration_path=req.calibration_path)
            if req.ray_address:
                from forensics_app.gui.executor_setting import run_on_ray

                run = run_on_ray(self, req.ray_address, job, state)
                if run is not None and req.search is not None:
                    from dataclasses import replace

                    run = replace(run, notes=run.notes + ("the re-alignment search runs on this computer only: it was "
                                                          "not run on the Ray cluster",))
                if run is not None and req.restore is not None:
                    from dataclasses import replace

                    run = replace(run, notes=run.notes + ("the restored reading runs on this computer only: it was "
                                                          "not made on the Ray cluster",))
                return run
            state.report(ProgressEvent(f"loading model {req.model} …", 0, 0, phase=Phase.LOADING_MODEL))
            model = load_model(req.model, dtype=s.dtype, device=s.device)
            freeze_long_lived_objects()
            post(lambda v: self.model_ready.emit(*v), (device_name(model.device), str(model.dtype).replace("torch.", "")))
            if state.is_cancelled:
                return None
            config = s.to_config(model)
            post(self.config_ready.emit, config)
            run = LocalExecutor(model).run(job, state, on_result=lambda r: post(self._on_result, r))
            if req.search is not None and run.images:      # a cancel before or during it: the plain run, noted
                run = self._search(model, req, run, state)
            if req.restore is not None and run.images:     # likewise: a cancel keeps the run, noted
                run = self._restore(model, req, run, state)
            return run
        except (ModelLoadError, ValueError) as exc:
            post(self.error.emit, str(exc))
        except Exception as exc:  # noqa: BLE001 — shown as a sentence, with the traceback in the log only
            post(self.details.emit, traceback.format_exc())
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            post(self.error.emit, f"unexpected error ({type(exc).__name__}): {first_line}")
        return None

    @staticmethod
    def _search(model, req: RunRequest, run, state: TaskState):
        """The run with each image's re-alignment search (engine.search_record), or, when cancelled during the
        search, the plain run with a note: the analysis itself finished."""
        from dataclasses import replace

        from engine.progress import Cancelled
        from engine.search_record import search_run

        try:
            return search_run(model, req.keys, run, req.search.to_config(), state)
        except Cancelled:
            return replace(run, notes=run.notes + ("the re-alignment search was cancelled: no search result is "
                                                   "kept",))
        except ValueError as exc:                  # e.g. keys of another scheme: the analysis itself stands
            return replace(run, notes=run.notes + (f"the re-alignment search did not run: {exc}",))

    @staticmethod
    def _restore(model, req: RunRequest, run, state: TaskState):
        """The run with each image's restored reading (engine.restored_record), or, when cancelled during it, the
        run as it was with a note: the analysis (and any search) finished."""
        from dataclasses import replace

        from engine.progress import Cancelled
        from engine.restored_record import restore_run

        try:
            return restore_run(model, req.keys, run, *req.restore.to_engine(), state)
        except Cancelled:
            return replace(run, notes=run.notes + ("the restored reading was cancelled: no restored result is kept",))
        except ValueError as exc:
            return replace(run, notes=run.notes + (f"the restored reading was not made: {exc}",))

    # -- GUI thread ----------------------------------------------------------------------------------------
    def _on_progress(self, ev: ProgressEvent) -> None:
        if self.tracker is not None:
            self.tracker.on_event(ev)
        if ev.phase is Phase.READING_EVIDENCE:
            item = self.evidence.item_for(ev.item)
            if item is not None:
                self.evidence.set_status(item, Status.READING)
                self._in_batch.append(item)
        elif ev.phase is not Phase.LOADING_MODEL:
            detail = f"{ev.stage} {ev.step}/{ev.total}"
            for item in self._in_batch:
                if item.status in (Status.READING, Status.RUNNING):
                    self.evidence.set_status(item, Status.RUNNING, detail)
        self.progress.emit(ev)

    def _on_result(self, r) -> None:
        from engine.analysis import ImageAnalysis      # loaded by now: the worker imported it

        analysed = isinstance(r, ImageAnalysis)
        item = self.evidence.item_for(r.evidence.path if analysed else r.path)
        if self.tracker is not None:
            self.tracker.on_results(1)
        if item is not None:
            if item in self._in_batch:
                self._in_batch.remove(item)
            if analysed:
                item.analysis = r
                item.sha256 = r.evidence.sha256
                self.evidence.set_status(item, Status.DONE, summary_of(r))
                self.evidence.changed(item)
            else:
                item.failure = r.message
                item.sha256 = item.sha256 or r.sha256
                self.evidence.set_status(item, Status.FAILED, r.shown_reason)
            if item.path in self.paths:
                self.finished_count += 1
        self.result.emit(r)

    def _on_crashed(self, message: str) -> None:
        self.error.emit(message)
        self._on_finished(None)

    def _on_finished(self, run) -> None:
        self._last_cancelled = self._state is not None and self._state.is_cancelled
        self._state = None
        cancelled = (run is not None and run.cancelled) or self._last_cancelled
        for a in run.images if run is not None else ():
            item = self.evidence.item_for(a.evidence.path)
            if item is not None and (a.realignment is not None or a.restoration is not None):
                item.analysis = a                          # the same analysis, with its search / restored reading
        for item in self.evidence.items:
            if item.path not in self.paths:
                continue                                   # added during the run: still queued for the next
            if item.status in (Status.QUEUED, Status.READING, Status.RUNNING):
                if cancelled or run is not None:
                    self.evidence.set_status(item, Status.CANCELLED, "not finished before the cancel")
                else:
                    self.evidence.set_status(item, Status.QUEUED, "not analysed: the run stopped (see the log)")
        self.finished.emit(run)

    def summary(self, run) -> str:
        """The status line after `finished(run)`."""
        elapsed = format_duration(self.elapsed())
        in_run = [i for i in self.evidence.items if i.path in self.paths]
        analysed = sum(1 for i in in_run if i.analysis is not None)
        failed = sum(1 for i in in_run if i.status == Status.FAILED)
        cancelled = (run is not None and run.cancelled) or self._last_cancelled
        if run is None:
            return "Run stopped before analysing (see the log)" if not cancelled else "Cancelled before the analysis started"
        if cancelled:
            return f"Cancelled — {analysed} of {len(in_run)} image(s) finished and kept ({elapsed})"
        return f"Done — {analysed} analysed, {failed} failed ({elapsed})"
