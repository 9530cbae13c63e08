"""The CLI's `scan --restore KIND:VALUE [--restore-prior P] [--restore-iterations N] [--restore-weight λ]`:
restore-then-invert as a
separate reading after the plain analysis (engine.restored_record), its checks and its summary line (kept out of
cli.py, which other work changes at the same time)."""

from __future__ import annotations

# engine.restoration's defaults, for the help text without importing torch at parse time
# (tests/test_restored_reading.py checks they agree)
DEFAULT_ITERATIONS, DEFAULT_WEIGHT = {"autoencoder": 3, "diffusion": 10}, 0.1
PRIORS = tuple(DEFAULT_ITERATIONS)


def add_restore_arguments(s) -> None:
    s.add_argument("--restore", metavar="KIND:VALUE",
                   help="also restore each exhibit from a degradation you state — jpeg:QUALITY, jpeg:auto (each "
                        "JPEG file's quality read from its own quantization table), blur:RADIUS or downscale:SHARE "
                        "(kept share of the side) — and analyse the restored pixels with the same methods, settings, "
                        "keys and calibration; a separate reading, never identified, beside the conclusion as "
                        "submitted (the JSON gets a 'restoration' object per image). Local executor only, and not with "
                        "--records (resumed records keep no pixels to restore)")
    add_restoration_settings(s)


def add_restoration_settings(s) -> None:
    """The restoration's own settings, shared by `scan --restore` and `robustness --variants restored`."""
    s.add_argument("--restore-prior", choices=PRIORS, default=None,
                   help="what pulls the degraded image back: the model's autoencoder (default) or its diffusion "
                        "denoiser along part of its DDIM grid (multi-step models only; slower)")
    s.add_argument("--restore-iterations", type=int, metavar="N",
                   help="data-consistency iterations of the restoration; with the diffusion prior the steps of its "
                        "50-step grid walked up and down (default " +
                        ", ".join(f"{n} with the {p} prior" for p, n in DEFAULT_ITERATIONS.items()) + ")")
    s.add_argument("--restore-weight", type=float, metavar="LAMBDA",
                   help=f"the restoration's trust in the prior's image against the observed one "
                        f"(default {DEFAULT_WEIGHT:g})")


def restore_choice(args):
    """(Degradation, RestorationConfig) from the arguments, or None without --restore. UsageError (one line) for
    a bad value or a combination that cannot run."""
    from forensics_app.cli import UsageError

    given = getattr(args, "restore", None)
    if given is None:
        if args.restore_iterations is not None or args.restore_weight is not None or args.restore_prior is not None:
            raise UsageError("--restore-prior, --restore-iterations and --restore-weight need --restore KIND:VALUE")
        return None
    from engine.restored_record import parse_degradation

    try:
        degradation = parse_degradation(given)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    config = restoration_settings(args)
    if args.executor != "local":
        raise UsageError("--restore runs with the local executor")
    if args.records:
        raise UsageError("--restore does not run with --records: resumed records keep no pixels to restore")
    return degradation, config


def restoration_settings(args):
    """`engine.restoration.RestorationConfig` from --restore-prior/-iterations/-weight; UsageError (one line)."""
    from engine.restoration import restoration_config
    from forensics_app.cli import UsageError

    try:
        return restoration_config(args.restore_prior or "autoencoder", args.restore_iterations, args.restore_weight)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def check_restore_model(config, model) -> None:
    """UsageError (one line) before any analysis when the restoration `config` (a `RestorationConfig`, or None:
    no restoration) cannot run on the loaded model (None: loaded elsewhere)."""
    if config is None or model is None or config.prior != "diffusion":
        return
    from engine.diffusion_restoration import require_ddim
    from forensics_app.cli import UsageError

    try:
        require_ddim(model)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


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
