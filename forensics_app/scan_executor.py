"""The CLI's `scan --executor local|ray [--address …] [--workers N] [--gpus-per-worker G] [--records DIR]`:
its options, their checks, and the call through `engine.executors` (kept out of cli.py, which other work
changes at the same time)."""

from __future__ import annotations


def add_executor_arguments(s) -> None:
    s.add_argument("--executor", default="local", choices=("local", "ray"),
                   help="where the images are analysed: this process (default) or a Ray cluster")
    s.add_argument("--address",
                   help="Ray only: auto (the cluster this machine joined with `ray start`) or ray://HOST:PORT "
                        "(default: start Ray on this machine for the scan)")
    s.add_argument("--workers", type=int,
                   help="Ray only: workers to start, each loading the model once (default: one per GPU "
                        "share, else one per CPU of the cluster)")
    s.add_argument("--gpus-per-worker", type=float, default=0.0,
                   help="Ray only: GPUs each worker takes (e.g. 1, or 0.5 for two workers per GPU; default 0: CPU)")
    s.add_argument("--records", metavar="DIR",
                   help="append each finished image to DIR/records.jsonl; a rerun with the same settings skips "
                        "the images already done there (any executor)")


def check_executor_args(args) -> None:
    from forensics_app.cli import UsageError

    if args.executor != "ray":
        given = [flag for flag, value in (("--address", args.address), ("--workers", args.workers),
                                          ("--gpus-per-worker", args.gpus_per_worker or None)) if value is not None]
        if given:
            raise UsageError(f"{', '.join(given)} only apply with --executor ray")
    elif args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1 (got {args.workers})")
    elif args.gpus_per_worker < 0:
        raise UsageError(f"--gpus-per-worker must be 0 or more (got {args.gpus_per_worker:g})")


def model_and_keys(args):
    """(model or None, keys): a local scan loads the model here; a Ray scan only needs its spec (for the
    bundled keys), the workers load it."""
    from forensics_app.cli import UsageError, _load_keys, _load_model

    if args.executor == "local":
        model = _load_model(args)
        return model, _load_keys(args.keys, model.spec)
    from engine.model_registry import get_spec

    try:
        spec = get_spec(args.model)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return None, _load_keys(args.keys, spec)


def run_with_executor(args, model, keys, options, paths, not_analysed, progress, on_result):
    from engine.executors import ScanJob, make_executor

    executor = make_executor(args.executor, address=args.address, workers=args.workers,
                             gpus_per_worker=args.gpus_per_worker, model=model)
    job = ScanJob(args.model, keys, options, tuple(str(p) for p in paths), md5=args.md5,
                  not_analysed=tuple(not_analysed), records=args.records,
                  # the report and the re-alignment search read reused images' pixels
                  load_pixels=bool(args.report or getattr(args, "search", None)),
                  calibration_path=getattr(args, "calibration", None),
                  use_calibration=not getattr(args, "no_calibration", False))
    return executor.run(job, progress=progress, on_result=on_result)
