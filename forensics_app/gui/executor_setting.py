"""Analysis ▸ Run on…: where the window's runs go — this computer (the default) or a Ray cluster by its
address — and the Ray side of `RunSession` (engine.ray_executor through the executors seam). The choice
is kept in the settings; a Ray run's notes name the cluster and its workers, so the case records where it
ran."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QInputDialog, QLineEdit

from forensics_app.gui.settings import read_str

if TYPE_CHECKING:
    from engine.executors import ScanJob
    from engine.progress import TaskState
    from forensics_app.gui.main_window import MainWindow
    from forensics_app.gui.run_session import RunSession

SETTINGS_KEY = "executor/ray_address"


def ray_address(settings) -> str:
    """The Ray cluster runs go to, or "" for this computer."""
    return read_str(settings, SETTINGS_KEY).strip()


def executor_text(address: str) -> str:
    return f"Ray cluster at {address}" if address else "this computer"


def set_ray_address(w: MainWindow, address: str) -> None:
    address = address.strip()
    w.settings.setValue(SETTINGS_KEY, address)
    w.log(f"runs now go to {executor_text(address)}")
    w.status.show_text(f"Runs go to {executor_text(address)}")


def choose_executor_dialog(w: MainWindow) -> None:
    text, ok = QInputDialog.getText(
        w, "Run on", "Where runs are analysed. Leave empty for this computer, or give a Ray cluster:\n"
        "  auto — the cluster this computer joined with `ray start`\n"
        "  ray://HOST:10001 — a cluster's head through Ray Client\n"
        "Every worker must see the images and the model at the same paths.",
        QLineEdit.EchoMode.Normal, ray_address(w.settings))
    if ok:
        set_ray_address(w, text)


def run_on_ray(session: RunSession, address: str, job: ScanJob, state: TaskState):
    """`RunSession._run` for a Ray cluster: progress, results and cancel as for a local run."""
    from engine.progress import Cancelled, Phase, ProgressEvent
    from engine.ray_executor import RayExecutor

    post = session.jobs.post

    def ready(meta) -> None:
        post(lambda v: session.model_ready.emit(*v), (f"{meta.device} (Ray workers)", meta.dtype))
        post(session.config_ready.emit, meta.config)

    state.report(ProgressEvent(f"connecting to the Ray cluster at {address} …", 0, 0, phase=Phase.LOADING_MODEL))
    try:
        return RayExecutor(address=address).run(job, state, on_result=lambda r: post(session._on_result, r),
                                                on_meta=ready)
    except Cancelled:          # before the workers were up: nothing ran (as a cancel while a local model loads)
        return None
