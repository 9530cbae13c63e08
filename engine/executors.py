"""Where a scan runs, behind one small interface the CLI and the window call: `executor.run(job, progress,
on_result) -> AnalysisRun`.

`LocalExecutor` (the default) analyses in this process with `engine.analysis.analyze`. `RayExecutor`
(`engine.ray_executor`, imported only when asked for: the local path never imports Ray) sends batches to
model-holding actors on a Ray cluster. Both can keep per-image records (`engine.scan_records`) so that a
rerun with the same settings skips what is done, and both give the same `AnalysisRun` for the same images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

from engine.analysis import AnalysisRun, ImageAnalysis, ImageFailure, analyze, utc_now
from engine.evidence_paths import NotAnalysed
from engine.options import AnalysisOptions
from engine.progress import NULL_PROGRESS, Progress
from engine.treering import KeySet

if TYPE_CHECKING:
    from engine.scan_records import RunMeta

OnResult = Callable[[ImageAnalysis | ImageFailure], None]
OnMeta = Callable[["RunMeta"], None]     # the model and settings as resolved, before the first result
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class ScanJob:
    model: str                           # model id or diffusers folder (as every worker can find it)
    keys: KeySet
    options: AnalysisOptions
    paths: tuple[str, ...]
    md5: bool = False
    not_analysed: tuple[NotAnalysed, ...] = ()
    records: str | None = None           # a record-store folder: resume from it and append to it
    load_pixels: bool = True             # decode reused / remote images again for the evidence view and report
    calibration_path: str | None = None  # an explicit calibration file (else the one shipped for a bundled model)
    use_calibration: bool = True         # False: analytic p-values only (`--no-calibration`)


def job_calibration(model, job: ScanJob, config):
    """The calibration a job's conclusions use, chosen where the model is loaded (engine.calibration)."""
    from engine.calibration import choose_calibration

    return choose_calibration(model, job.keys, config, job.calibration_path, enabled=job.use_calibration)


class Executor(Protocol):
    def describe(self) -> str:
        """Where runs go, in words (recorded in the run's notes, so the case says where it ran)."""

    def run(self, job: ScanJob, progress: Progress = NULL_PROGRESS, on_result: OnResult | None = None,
            on_meta: OnMeta | None = None) -> AnalysisRun: ...


def resume_note(reused: int, folder: str) -> str:
    return f"{reused} image(s) taken from earlier records in {folder} (same SHA-256 and settings hash), not re-analysed"


class LocalExecutor:
    """This process, this machine. `model`: an already loaded model (the CLI loads it first to check the
    settings), else the job's model is loaded here."""

    def __init__(self, model=None) -> None:
        self.model = model

    def describe(self) -> str:
        return "local"

    def run(self, job: ScanJob, progress: Progress = NULL_PROGRESS, on_result: OnResult | None = None,
            on_meta: OnMeta | None = None) -> AnalysisRun:
        from engine.model_loader import load_model
        from engine.scan_records import RunMeta

        model = self.model or load_model(job.model, dtype=job.options.dtype, device=job.options.device)
        config = job.options.to_config(model)
        calibration = job_calibration(model, job, config)
        if on_meta is not None:
            on_meta(RunMeta.of(model, job.keys, config, job.md5, calibration))
        if job.records is None:
            return analyze(model, job.keys, job.paths, config, progress=progress, on_result=on_result, md5=job.md5,
                           not_analysed=job.not_analysed, calibration=calibration)
        from engine.scan_records import (RecordStore, assemble_run, devices_of, record_of, result_of_record,
                                         split_done)

        meta = RunMeta.of(model, job.keys, config, job.md5, calibration)
        store = RecordStore(job.records)
        settings_hash = store.prepare(meta)
        started = utc_now()
        todo, reused = split_done(job.paths, store.done(settings_hash))
        results = {p: result_of_record(r, p, job.load_pixels) for p, r in reused.items()}
        for r in results.values():
            if on_result is not None:
                on_result(r)

        def keep(r) -> None:
            store.append(record_of(r, settings_hash, meta.device))
            if on_result is not None:
                on_result(r)

        fresh = analyze(model, job.keys, todo, config, progress=progress, on_result=keep, md5=job.md5,
                        calibration=calibration)
        for r in fresh.images:
            results[r.evidence.path] = r
        for f in fresh.failures:
            results[f.path] = f
        notes = list(fresh.notes) + ([resume_note(len(reused), job.records)] if reused else [])
        devices = devices_of(reused.values()) | ({meta.device} if todo else set())
        return assemble_run(meta, job.paths, results, calibration=calibration, started_utc=started,
                            cancelled=fresh.cancelled,
                            software=fresh.software, notes=notes, not_analysed=job.not_analysed,
                            device=", ".join(sorted(devices)))


def make_executor(name: str, *, address: str | None = None, workers: int | None = None,
                  gpus_per_worker: float = 0.0, model=None) -> Executor:
    """`name` "local" or "ray" (ValueError otherwise, one sentence)."""
    if name == "local":
        return LocalExecutor(model)
    if name == "ray":
        from engine.ray_executor import RayExecutor

        return RayExecutor(address=address, workers=workers, gpus_per_worker=gpus_per_worker)
    raise ValueError(f"unknown executor {name!r}: choose {' or '.join(EXECUTORS)}")
