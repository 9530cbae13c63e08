"""The line above the results: which model, key set and settings the shown results come from, or the run in
progress; in red when the model box names another model than the shown results'."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

MISMATCH_STYLE = "QLabel#results_context { color: #a40000; font-weight: bold; }"


def context_text(model_id: str, keys, methods, fpr: float, iterations, inversion: str) -> str:
    name = f" ({keys.name})" if getattr(keys, "name", "") else ""
    return (f"model {model_id} · keys {', '.join(keys.ids)}{name} · {' + '.join(methods)}, "
            f"{iterations} it, {inversion}, FPR {fpr:g}")


def run_context(run) -> str:
    """`context_text` of a finished run (`AnalysisRun`)."""
    cfg, d = run.config, run.config.diffusion
    return context_text(run.model_id, run.keys, cfg.methods, cfg.fpr, cfg.gradient_free.iterations,
                        f"{d.method} {d.steps} steps")


class ResultsContext(QLabel):
    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("results_context")
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setContentsMargins(6, 2, 6, 2)
        self.running: str | None = None      # `context_text` of the run in progress

    def refresh(self, run, model_chooser) -> None:
        """Show the run in progress, else `run` (the shown results, or None) against the chosen model."""
        style = ""
        if self.running:
            text = f"Running: {self.running}"
        elif run is not None:
            text = f"Results shown: {run_context(run)} (run started {run.started_utc})"
            selected = model_chooser.current_spec()
            sel_id = selected.id if selected is not None else None
            loc = model_chooser.current_location()
            same = sel_id == run.model_id or (loc is not None and loc.found and loc.path is not None
                                              and os.path.realpath(loc.path) == os.path.realpath(run.model_path))
            if sel_id is not None and not same:
                text = (f"The shown results are from model {run.model_id}, not the selected model {sel_id}: "
                        f"run again to analyse with {sel_id}. " + text)
                style = MISMATCH_STYLE
        else:
            text = "No results yet."
        self.setStyleSheet(style)
        self.setText(text)
