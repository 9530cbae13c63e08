"""Progress and cooperative cancellation for long engine calls.

The engine reports (phase, stage, step, total) and polls for cancellation between iterations; it never knows
who listens. The CLI backs this with a progress bar, the GUI with Qt signals from a worker thread (the
same split as Orange's `concurrent` module: plain functions plus a task-state object).
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from typing import Callable, Protocol


class Cancelled(Exception):
    """Raised inside an engine call when the user asked to stop; finished results are kept by the caller."""


class Phase(enum.Enum):
    """What kind of work an event reports, for listeners that act on it (the GUI's status per image, the
    ETA); `ProgressEvent.stage` stays the human-readable text and may change wording freely."""

    LOADING_MODEL = "loading model"             # reported by the caller around `load_model`
    READING_EVIDENCE = "reading evidence"
    DECODER_INVERSION = "decoder inversion"      # x → z0, any method
    DIFFUSION_INVERSION = "diffusion inversion"  # z0 → z_T: DDIM, backward Euler, flow
    SAMPLING = "sampling"                        # z_T → z0 steps while generating
    GENERATING = "generating"                    # images finished while generating
    REMOTE_ANALYSIS = "remote analysis"          # images finished by workers elsewhere (engine.ray_executor)


@dataclass(frozen=True)
class ProgressEvent:
    stage: str          # e.g. "decoder inversion (gradient-free)", "DDIM inversion"
    step: int           # 0 … total (total 0: no count known, e.g. while a model loads)
    total: int
    item: str = ""      # which image / batch, for display
    phase: Phase = field(kw_only=True)          # required: every emitter says what it reports


class Progress(Protocol):
    def report(self, event: ProgressEvent) -> None: ...
    def check_cancelled(self) -> None:
        """Raise `Cancelled` if a stop was requested."""


class TaskState:
    """Thread-safe progress sink: a cancel flag plus listeners called with each `ProgressEvent`.

    Listeners run in the engine's thread; a GUI listener should only emit a queued Qt signal.
    """

    def __init__(self, listener: Callable[[ProgressEvent], None] | None = None) -> None:
        self._cancel = threading.Event()
        self._listeners: list[Callable[[ProgressEvent], None]] = [listener] if listener else []
        self.last_event: ProgressEvent | None = None

    def add_listener(self, listener: Callable[[ProgressEvent], None]) -> None:
        self._listeners.append(listener)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def report(self, event: ProgressEvent) -> None:
        self.last_event = event
        for listener in self._listeners:
            listener(event)

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise Cancelled("cancelled by the user")


class NullProgress:
    """For callers that want neither progress nor cancellation."""

    def report(self, event: ProgressEvent) -> None:
        pass

    def check_cancelled(self) -> None:
        pass


NULL_PROGRESS = NullProgress()
