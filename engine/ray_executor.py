"""Scans on a Ray cluster: actors that each load the model once and analyse batches of paths.

The driver (this process) splits the paths into batches of the job's batch size and keeps one batch in
flight per actor; each actor reads its images from the paths (so every worker must see the files at the
same paths: a shared or copied folder), runs `engine.analysis.analyze_batch` — the same code as a local
scan — and returns one record per image (`engine.scan_records`), which the driver appends to the record
store as it arrives and turns back into results for the progress lines, the window and the final run.

A worker that dies (killed, out of memory, its machine gone) loses only its batch in flight: the batch goes
back to the queue, a replacement actor is started, and after `max_attempts` tries every image of it is
reported as a failure naming the cause, never dropped. A cancel (the window's, or Ctrl-C on the CLI) kills
the actors; finished images are kept (in the run, and in the records when a store is used).

Ray is imported only here, and only when a Ray scan is asked for.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from dataclasses import dataclass, replace

from engine.analysis import AnalysisRun, ImageFailure, analyze_batch, utc_now
from engine.executors import OnMeta, OnResult, ScanJob, resume_note
from engine.intake import EvidenceError, hash_file, load_evidence
from engine.progress import NULL_PROGRESS, Cancelled, Phase, Progress, ProgressEvent
from engine.scan_records import (RecordStore, RunMeta, assemble_run, devices_of, record_of, result_of_record,
                                 split_done)

RAY_INSTALL_HINT = ('the Ray executor needs Ray, which is not installed: pip install "treering-forensics[ray]" '
                    '(or "ray[default]")')
DEFAULT_MAX_ATTEMPTS = 3          # tries per batch before its images are reported as failed
WAIT_S = 0.2                      # how often the driver looks for a cancel while batches run


def import_ray():
    try:
        import ray
    except ImportError:
        raise ValueError(RAY_INSTALL_HINT) from None
    return ray


class ScanWorker:
    """The body of one Ray actor: the model, keys and settings, loaded once; `analyze(paths)` per batch.
    A plain class (Ray wraps it at run time), so tests can subclass it."""

    def __init__(self, model: str, job: ScanJob, device: str) -> None:
        import torch

        from engine.model_loader import load_model

        cpus = _assigned_cpus()
        if cpus:      # as many threads as Ray gave this actor CPUs, not as many as the machine has
            torch.set_num_threads(cpus)
        self.model = load_model(model, dtype=job.options.dtype, device=device)
        self.keys = job.keys
        self.md5 = job.md5
        self.config = job.options.to_config(self.model)
        from engine.executors import job_calibration

        self.calibration = job_calibration(self.model, job, self.config)
        self.meta = RunMeta.of(self.model, self.keys, self.config, self.md5, self.calibration)
        self.settings_hash = self.meta.settings_hash()
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def describe(self) -> dict:
        from engine.provenance import software_versions

        return {"meta": self.meta, "settings_hash": self.settings_hash, "software": software_versions(),
                "calibration": self.calibration,
                "worker": self.name}

    def analyze(self, paths: list[str]) -> list[dict]:
        import torch

        read_failures, evidence = [], []
        for p in paths:
            try:
                evidence.append(load_evidence(p, self.model.image_size, md5=self.md5))
            except EvidenceError as exc:       # exactly what a local scan records for an unreadable file
                h = hash_file(p, self.md5)
                read_failures.append(ImageFailure(p, str(exc), exc.problem, h.sha256, h.md5, h.note))
        results = list(read_failures)
        if evidence:
            try:
                results += analyze_batch(self.model, self.keys, evidence, self.config, calibration=self.calibration)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                for e in evidence:
                    reason = (f"the GPU ran out of memory at batch size {len(evidence)}: use --precision fp16 or "
                              "a smaller --batch-size")
                    results.append(ImageFailure(e.path, f"{e.path}: {reason}", reason, e.sha256, e.md5))
        return [record_of(r, self.settings_hash, self.meta.device, self.name) for r in results]


def _assigned_cpus() -> int:
    try:
        import ray

        return int(ray.get_runtime_context().get_assigned_resources().get("CPU", 0))
    except Exception:  # noqa: BLE001 — outside an actor: leave torch's default
        return 0


@dataclass
class _Batch:
    paths: list[str]
    attempts: int = 0
    last_error: str = ""


class RayExecutor:
    """`address`: None starts a Ray instance on this machine for the scan (and stops it after); "auto"
    joins the cluster this machine belongs to; "ray://HOST:PORT" a remote one through Ray Client.
    `workers`: actors to start (default: one per `gpus_per_worker` GPUs of the cluster, else one per CPU)."""

    def __init__(self, address: str | None = None, workers: int | None = None, gpus_per_worker: float = 0.0,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS, worker_class: type = ScanWorker) -> None:
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"the number of Ray workers (--workers) must be a whole number ≥ 1 (got {workers!r})")
        if not gpus_per_worker >= 0:
            raise ValueError(f"--gpus-per-worker must be ≥ 0 (got {gpus_per_worker!r})")
        if max_attempts < 1:
            raise ValueError("max_attempts must be ≥ 1")
        self.address = address or None
        self.workers = workers
        self.gpus_per_worker = float(gpus_per_worker)
        self.max_attempts = max_attempts
        self.worker_class = worker_class
        self.retried_batches = 0        # of the last run: batches sent again after a worker stopped or failed
        self.workers_started = 0        # of the last run, replacements included

    def describe(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else "a Ray instance started on this machine"
        return f"Ray ({where})"

    def run(self, job: ScanJob, progress: Progress = NULL_PROGRESS, on_result: OnResult | None = None,
            on_meta: OnMeta | None = None) -> AnalysisRun:
        """The scan's run, `cancelled` if a cancel came after the workers were up (finished images kept);
        a cancel while they start raises `Cancelled` (nothing ran). ValueError (one sentence): Ray missing,
        the cluster unreachable, a worker that cannot load the model, workers that disagree on settings."""
        ray = import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            import logging

            try:
                ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING,
                         configure_logging=True)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ValueError(f"cannot reach the Ray cluster at {self.address}: {_first_line(exc)}") from None
        try:
            return self._run(ray, job, progress, on_result, on_meta)
        finally:
            if started_here:
                ray.shutdown()

    # -- the driver loop -----------------------------------------------------------------------------------
    def _worker_count(self, ray) -> int:
        if self.workers is not None:
            return self.workers
        resources = ray.cluster_resources()
        if self.gpus_per_worker > 0:
            count = int(resources.get("GPU", 0) // self.gpus_per_worker)
            if count < 1:
                raise ValueError(f"the Ray cluster has {resources.get('GPU', 0):g} GPU(s): not enough for one worker "
                                 f"with --gpus-per-worker {self.gpus_per_worker:g}")
            return count
        return max(1, int(resources.get("CPU", 1)))

    def _run(self, ray, job: ScanJob, progress: Progress, on_result: OnResult | None,
             on_meta: OnMeta | None) -> AnalysisRun:
        from ray.exceptions import GetTimeoutError, RayActorError, RayError

        started = utc_now()
        count = self._worker_count(ray)
        device = "cuda" if self.gpus_per_worker > 0 else job.options.device
        remote = ray.remote(num_cpus=1, num_gpus=self.gpus_per_worker, max_restarts=0,
                            max_task_retries=0)(self.worker_class)
        model = os.path.abspath(job.model) if os.path.isdir(job.model) else job.model

        def start_worker():
            self.workers_started += 1
            return remote.remote(model, job, device)

        self.retried_batches = self.workers_started = 0
        self._devices: set[str] = set()        # of the images analysed in this run
        progress.report(ProgressEvent(f"starting {count} Ray worker(s) (each loads the model)", 0, 0,
                                      phase=Phase.LOADING_MODEL))
        actors = [start_worker() for _ in range(count)]
        try:
            pending = [a.describe.remote() for a in actors]
            while True:        # model loading can take minutes on a cluster: stay cancellable meanwhile
                progress.check_cancelled()
                try:
                    described = ray.get(pending, timeout=WAIT_S)
                    break
                except GetTimeoutError:
                    continue
                except RayError as exc:
                    raise ValueError(f"a Ray worker could not start: {_cause(exc)}") from None
            settings_hash = described[0]["settings_hash"]
            if any(d["settings_hash"] != settings_hash for d in described):
                raise ValueError("the Ray workers resolved different settings (e.g. fp16 on a GPU, fp32 on a CPU): "
                                 "give --precision and --device explicitly")
            meta: RunMeta = described[0]["meta"]
            if on_meta is not None:
                on_meta(meta)
            store = RecordStore(job.records) if job.records else None
            reused = {}
            todo = list(job.paths)
            if store is not None:
                store.prepare(meta)
                todo, reused = split_done(job.paths, store.done(settings_hash))
            results = {}
            for p, rec in reused.items():
                results[p] = result_of_record(rec, p, job.load_pixels)
                if on_result is not None:
                    on_result(results[p])
            cancelled = False
            try:
                self._drive(ray, actors, start_worker, todo, job, settings_hash, store, results, progress, on_result,
                            RayActorError, RayError)
            except Cancelled:
                cancelled = True
        finally:
            for a in actors:
                ray.kill(a)
        hosts = sorted({d["worker"].rsplit(":", 1)[0] for d in described})
        notes = [f"executor: {self.describe()}, {count} worker(s)"
                 + (f" with {self.gpus_per_worker:g} GPU each" if self.gpus_per_worker else "")
                 + f" on {', '.join(hosts)}"
                 + (f"; {self.retried_batches} batch(es) sent again after a worker stopped or failed"
                    if self.retried_batches else "")]
        if reused:
            notes.append(resume_note(len(reused), job.records))
        return assemble_run(meta, job.paths, results, calibration=described[0]["calibration"], started_utc=started,
                            cancelled=cancelled,
                            software=described[0]["software"], notes=notes, not_analysed=job.not_analysed,
                            device=", ".join(sorted(devices_of(reused.values()) | self._devices)))

    def _drive(self, ray, actors: list, start_worker, todo: list[str], job: ScanJob, settings_hash: str,
               store: RecordStore | None, results: dict, progress: Progress, on_result: OnResult | None,
               RayActorError, RayError) -> None:
        batch_size = job.options.batch_size
        queue = deque(_Batch(todo[i:i + batch_size]) for i in range(0, len(todo), batch_size))
        total, finished, dispatched = len(job.paths), len(results), len(results)
        inflight: dict = {}            # object ref → (actor, batch)
        stage = f"analysis on {len(actors)} Ray worker(s)"

        def finish(r) -> None:
            nonlocal finished
            path = r.evidence.path if hasattr(r, "evidence") else r.path
            results[path] = r
            finished += 1
            if on_result is not None:
                on_result(r)
            progress.report(ProgressEvent(stage, finished, total, path, phase=Phase.REMOTE_ANALYSIS))

        def give_up(batch: _Batch) -> None:
            for p in batch.paths:
                h = hash_file(p, job.md5)
                reason = (f"could not be analysed: the Ray worker analysing it stopped or failed {batch.attempts} "
                          f"time(s) (last: {batch.last_error}); not tried again")
                failure = ImageFailure(p, f"{p}: {reason}", reason, h.sha256, h.md5, h.note)
                if store is not None:
                    store.append(record_of(failure, settings_hash, "", "driver"))
                finish(failure)

        try:
            while queue or inflight:
                busy = {id(a) for a, _ in inflight.values()}
                for actor in [a for a in actors if id(a) not in busy]:
                    if not queue:
                        break
                    batch = queue.popleft()
                    for p in batch.paths:
                        dispatched += 1
                        progress.report(ProgressEvent("reading evidence", dispatched, total, p,
                                                      phase=Phase.READING_EVIDENCE))
                    inflight[actor.analyze.remote(batch.paths)] = (actor, batch)
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=WAIT_S)
                progress.check_cancelled()
                for ref in ready:
                    actor, batch = inflight.pop(ref)
                    try:
                        records = ray.get(ref)
                    except RayError as exc:
                        batch.attempts += 1
                        batch.last_error = _cause(exc)
                        if isinstance(exc, RayActorError):       # the worker is gone: a new one takes its place
                            actors.remove(actor)
                            actors.append(start_worker())
                        if batch.attempts < self.max_attempts:
                            self.retried_batches += 1
                            dispatched -= len(batch.paths)
                            queue.appendleft(batch)
                        else:
                            give_up(batch)
                        continue
                    for rec in records:
                        if rec.get("settings_sha256") != settings_hash:    # a replacement on another machine
                            batch.attempts = self.max_attempts
                            batch.last_error = f"worker {rec.get('worker')} resolved different settings"
                            give_up(replace(batch, paths=[rec["path"]]))
                            continue
                        if store is not None:
                            store.append(rec)
                        self._devices |= devices_of([rec])
                        finish(result_of_record(rec, None, job.load_pixels))
        finally:
            for ref in inflight:        # a cancel: the actors are killed next, their batches are not kept
                try:
                    ray.cancel(ref)
                except Exception:  # noqa: BLE001 — the actor is killed right after anyway
                    pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _cause(exc: BaseException) -> str:
    """One line for a Ray error: the worker's own exception where there is one, else Ray's first line."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {_first_line(cause)}"
    return _first_line(exc)
