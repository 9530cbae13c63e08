"""The CLI's `scan --restore KIND:VALUE [--restore-iterations N] [--restore-weight λ]`: restore-then-invert as a
separate reading after the plain analysis (engine.restored_record), its checks and its summary line (kept out of
cli.py, which other work changes at the same time)."""

from __future__ import annotations

# engine.restoration.RestorationConfig's defaults, for the help text without importing torch at parse time
# (tests/test_restored_reading.py checks they agree)
DEFAULT_ITERATIONS, DEFAULT_WEIGHT = 3, 0.1


def add_restore_arguments(s) -> None:
    s.add_argument("--restore", metavar="KIND:VALUE",
                   help="also restore each exhibit from a degradation you state — jpeg:QUALITY, jpeg:auto (each "
                        "JPEG file's quality read from its own quantization table), blur:RADIUS or downscale:SHARE "
                        "(kept share of the side) — and analyse the restored pixels with the same methods, settings, "
                        "keys and calibration; a separate reading, never identified, beside the conclusion as "
                        "submitted (the JSON gets a 'restoration' object per image). Local executor only, and not with "
                        "--records (resumed records keep no pixels to restore)")
    s.add_argument("--restore-iterations", type=int, metavar="N",
                   help=f"data-consistency iterations of the restoration (default {DEFAULT_ITERATIONS})")
    s.add_argument("--restore-weight", type=float, metavar="LAMBDA",
                   help=f"the restoration's trust in the autoencoder's image against the observed one "
                        f"(default {DEFAULT_WEIGHT:g})")


def restore_choice(args):
    """(Degradation, RestorationConfig) from the arguments, or None without --restore. UsageError (one line) for
    a bad value or a combination that cannot run."""
    from forensics_app.cli import UsageError

    given = getattr(args, "restore", None)
    if given is None:
        if args.restore_iterations is not None or args.restore_weight is not None:
            raise UsageError("--restore-iterations and --restore-weight need --restore KIND:VALUE")
        return None
    from engine.restoration import RestorationConfig
    from engine.restored_record import parse_degradation

    try:
        degradation = parse_degradation(given)
        config = RestorationConfig(DEFAULT_ITERATIONS if args.restore_iterations is None else args.restore_iterations,
                                   DEFAULT_WEIGHT if args.restore_weight is None else args.restore_weight)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.executor != "local":
        raise UsageError("--restore runs with the local executor")
    if args.records:
        raise UsageError("--restore does not run with --records: resumed records keep no pixels to restore")
    return degradation, config


def restore_summary_line(name: str, a) -> str | None:
    """The restored reading's line after the exhibit's conclusion, labelled as separate; None when none was made."""
    s = a.restoration
    if s is None:
        return None
    from engine.restored_verdict import restored_headline

    head = f"{name}: restored reading (separate, names no key holder; {s.settings}): "
    if s.failure:
        return head + f"not made — {s.failure}"
    c = s.conclusion
    raw = a.methods.get(c.method)
    raw_c = None if raw is None else raw.conclusion
    same_test = "" if raw_c is None or raw_c.detection_p is None else \
        f"; as submitted, the same test: p = {raw_c.detection_p:.2g}"
    p = "—" if c.detection_p is None else f"{c.detection_p:.2g}"   # as the plain line prints it
    return head + f"{restored_headline(c)} (detection p = {p}, {c.calibration}{same_test}; {c.method})"
