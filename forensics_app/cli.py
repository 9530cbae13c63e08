"""`treering-forensics`: the headless CLI (and, with no subcommand, the desktop window).

Exit codes: 0 done; 2 usage or configuration error (bad option or number, unknown model, unreadable key
file, an output that may not be written); 3 at least one input could not be analysed (one line per bad file
on stderr; the others were analysed); 1 an internal error (one line; `--debug` shows the traceback);
4 `self-test` found a failing check (one FAIL line per check); 130 interrupted. No traceback reaches the user
without `--debug`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_BAD_INPUT = 0, 1, 2, 3


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (argparse prints the whole usage block first)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"treering-forensics: error: {message} (see {self.prog} --help)\n")


def _load_keys(path: str | None, spec):
    from engine.treering import KeySet

    model_id = spec.id
    if path is None:
        default = spec.default_keys_path
        if default is None or not default.is_file():
            raise UsageError(f"no key set given: use --keys KEYS.json (model {model_id!r} has no bundled keys)")
        path = str(default)
    try:
        return KeySet.load(path)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def _load_model(args):
    from engine.model_loader import ModelLoadError, load_model

    try:
        return load_model(args.model, dtype=args.dtype, device=args.device)
    except (ModelLoadError, ValueError) as exc:
        raise UsageError(str(exc)) from exc


class _ProgressBar:
    """A progress bar on stderr per stage (tqdm), plus Ctrl-C → cooperative cancel."""

    def __init__(self, enabled: bool = True):
        from engine.progress import TaskState

        self.enabled = enabled
        self.state = TaskState(self._on_event)
        self._bar = None
        self._stage = None

    def _on_event(self, event) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if event.stage != self._stage or self._bar is None:
            if self._bar is not None:
                self._bar.close()
            self._stage = event.stage
            self._bar = tqdm(total=event.total, desc=event.stage, file=sys.stderr, leave=False,
                             dynamic_ncols=True, mininterval=0.25, disable=None)  # None: off when stderr is no terminal
        self._bar.total = event.total
        self._bar.n = event.step
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def cmd_models(args) -> int:
    from engine.model_registry import all_model_specs, locate

    for spec in all_model_specs():
        loc = locate(spec)
        status = f"found: {loc.path}" if loc.found else f"not found (looked in: {'; '.join(loc.searched)})"
        print(f"{spec.id:12s} {spec.kind:5s} {spec.title} — {status}")
    return EXIT_OK


def cmd_keys_new(args) -> int:
    from engine.treering import new_random_keys

    if args.model:
        shape = _load_model(args).latent_shape
    else:
        try:
            shape = tuple(int(v) for v in args.latent_shape.split(","))
        except ValueError:
            shape = ()
        if len(shape) != 3:
            raise UsageError(f"--latent-shape takes three integers C,H,W, e.g. 4,32,32 (got {args.latent_shape!r})")
    try:
        keys = new_random_keys(args.count, latent_shape=shape, radius=args.radius, channel=args.channel,
                               scale=args.scale, seed=args.seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    _save_keys(keys, args)
    return EXIT_OK


def _save_keys(keys, args) -> None:
    from engine.output_paths import check_output

    try:
        check_output(args.out, evidence=getattr(args, "files", ()), force=args.force, what="key file")
        keys.save(args.out)
    except (ValueError, OSError) as exc:
        raise UsageError(str(exc)) from exc
    print(f"wrote {len(keys)} keys to {args.out}")


def cmd_keys_import(args) -> int:
    from engine.treering import KeySet, import_reference_npy

    try:
        keys = KeySet(tuple(import_reference_npy(p) for p in args.files))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    _save_keys(keys, args)
    return EXIT_OK


def cmd_generate(args) -> int:
    from engine.denoiser import Conditioning
    from engine.generation import GenerationConfig, generate_reference_set

    model = _load_model(args)
    key = None
    if not args.no_watermark:
        if not args.key:
            raise UsageError("give --key ID (or --no-watermark for un-watermarked images)")
        keys = _load_keys(args.keys, model.spec)
        try:
            key = keys[args.key]
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from exc
    config = GenerationConfig(steps=args.steps, grid=args.grid, conditioning=Conditioning(args.prompt, args.guidance))
    bar = _ProgressBar(not args.quiet)
    out = Path(args.out)
    try:
        made = generate_reference_set(model, key, args.count, out, seed=args.seed, config=config, progress=bar.state,
                                      force=args.force)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    finally:
        bar.close()
    print(f"wrote {len(made)} images to {out}")
    return EXIT_OK


def cmd_scan(args) -> int:
    from engine.options import AnalysisOptions

    from engine.analysis import analyze, run_to_json
    from engine.atomic_write import write_json_atomic
    from engine.decoder_inversion import METHODS
    from engine.intake import EvidenceError, expand_evidence_paths

    paths = []
    for given in args.paths:
        try:
            paths += expand_evidence_paths([given])
        except EvidenceError:
            paths.append(Path(given))     # reported per file by the analysis (exit 3), the others still run
    if not paths:
        raise UsageError("no images found in the given paths")
    _check_scan_outputs(args, paths)
    model = _load_model(args)
    keys = _load_keys(args.keys, model.spec)
    options = AnalysisOptions(
        methods=METHODS if args.method == "all" else (args.method,), iterations=args.iterations, lr=args.lr,
        optimizer=args.optimizer, schedule=args.schedule, precision=args.precision, inversion=args.inversion,
        steps=args.steps, grid=args.grid, exact_iterations=args.exact_iterations, prompt=args.prompt,
        guidance=args.guidance, fpr=args.fpr, score_target=args.score_target, batch_size=args.batch_size,
        device=args.device, dtype=args.dtype)
    try:
        config = options.to_config(model)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    bar = _ProgressBar(not args.quiet)
    try:
        run = analyze(model, keys, paths, config, progress=bar.state)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    except KeyboardInterrupt:
        bar.close()
        print("interrupted: nothing was written", file=sys.stderr)
        return 130
    finally:
        bar.close()
    for f in run.failures:
        print(f"error: {f.message}", file=sys.stderr)
    result = run_to_json(run)
    if args.json:
        _write_output(args.json, lambda: write_json_atomic(args.json, result, indent=2))
    if args.report:
        from forensics_app.report import ReportInfo, write_report

        _write_output(args.report, lambda: write_report(run, args.report, ReportInfo(case_id=args.case_id,
                                                                                      examiner=args.examiner)))
    if not args.quiet:
        _print_summary(run)
    return EXIT_BAD_INPUT if run.failures else EXIT_OK


def _write_output(path: str, write) -> None:
    """A read-only or full file system is one line naming the output (not its temporary file), exit 2."""
    try:
        write()
    except OSError as exc:
        raise UsageError(f"{path}: cannot be written ({exc.strerror or exc})") from None


def _check_scan_outputs(args, evidence) -> None:
    """Before anything runs: no output may be evidence, a folder, or an existing file that is not ours."""
    from engine.output_paths import check_output

    outputs = []
    if args.json:
        outputs.append((args.json, "--json"))
    if args.report:
        if Path(args.report).suffix.lower() == ".json":
            raise UsageError(f"--report {args.report}: the report is a PDF; its JSON twin is written beside it")
        outputs += [(args.report, "--report"), (str(Path(args.report).with_suffix(".json")), "the report's JSON twin")]
    real = [os.path.realpath(p) for p, _ in outputs]
    if len(set(real)) != len(real):
        raise UsageError("--json and the report's JSON twin (the report's name with .json) are the same file: "
                         "choose other names")
    try:
        for path, what in outputs:
            check_output(path, evidence=evidence, force=args.force, what=what)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _print_summary(run) -> None:
    for a in run.images:
        name = Path(a.evidence.path).name
        parts = []
        for m, r in a.methods.items():
            verdict = r.verdict.predicted_key or "none"
            parts.append(f"{m}: {verdict} (p={r.verdict.nearest_p_value:.2g})")
        print(f"{name}: " + "; ".join(parts))


def cmd_self_test(args) -> int:
    from forensics_app.self_test import main as self_test

    return self_test(debug=args.debug)


def build_parser() -> argparse.ArgumentParser:
    from engine.options import DEFAULT_METHOD

    p = _Parser(prog="treering-forensics", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command")

    def model_args(sp, with_keys=True):
        sp.add_argument("--model", default="demo", help="model id (see `models`) or a diffusers folder (default demo)")
        sp.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1 …")
        sp.add_argument("--dtype", default="fp32", choices=("fp32", "fp16"), help="weights' precision (fp16: GPU only)")
        if with_keys:
            sp.add_argument("--keys", help="key set JSON (default: the bundled demo keys for demo models)")

    m = sub.add_parser("models", help="list the known models and whether they are on this machine")
    m.set_defaults(func=cmd_models)

    k = sub.add_parser("keys", help="create or import key sets")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    kn = ksub.add_parser("new", help="new random ring keys (dec-inv style per-ring constants)")
    kn.add_argument("--count", type=int, required=True)
    kn.add_argument("--out", required=True)
    kn.add_argument("--model", help="take the latent shape from this model")
    kn.add_argument("--latent-shape", default="4,32,32", help="C,H,W (default 4,32,32, the demo models')")
    kn.add_argument("--device", default="cpu")
    kn.add_argument("--dtype", default="fp32")
    kn.add_argument("--radius", type=int, default=6)
    kn.add_argument("--channel", type=int, default=0)
    kn.add_argument("--scale", type=float, help="ring value scale (default 80 × side/64, dec-inv's strength)")
    kn.add_argument("--seed", type=int)
    kn.add_argument("--force", action="store_true", help="replace an earlier output of this tool (never evidence or other files)")
    kn.set_defaults(func=cmd_keys_new)
    ki = ksub.add_parser("import-npy", help="import keys saved by the reference tree-ring package (.npy, no pickle)")
    ki.add_argument("files", nargs="+")
    ki.add_argument("--out", required=True)
    ki.add_argument("--force", action="store_true", help="replace an earlier output of this tool (never evidence or other files)")
    ki.set_defaults(func=cmd_keys_import)

    g = sub.add_parser("generate", help="generate 8-bit PNGs (watermarked with a key, or not) and a manifest")
    model_args(g)
    g.add_argument("--key", help="key id to embed")
    g.add_argument("--no-watermark", action="store_true")
    g.add_argument("--count", type=int, required=True)
    g.add_argument("--out", required=True)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--steps", type=int, default=50)
    g.add_argument("--grid", default="diffusers", choices=("diffusers", "reference"),
                   help="DDIM timestep grid (reference = the papers' code; scan the images with the same --grid)")
    g.add_argument("--prompt", default="")
    g.add_argument("--guidance", type=float, default=1.0)
    g.add_argument("--quiet", action="store_true")
    g.add_argument("--force", action="store_true", help="replace an earlier output of this tool (never evidence or other files)")
    g.set_defaults(func=cmd_generate)

    s = sub.add_parser("scan", help="analyse images or folders for Tree-Ring keys")
    s.add_argument("paths", nargs="+")
    model_args(s)
    s.add_argument("--method", default=DEFAULT_METHOD, choices=("encoder", "gradient-free", "gradient-based", "all"))
    s.add_argument("--json", help="write the results as JSON here")
    s.add_argument("--report", help="write a PDF report here")
    s.add_argument("--case-id", default="")
    s.add_argument("--examiner", default="")
    s.add_argument("--iterations", type=int, default=100, help="decoder-inversion iterations (default 100)")
    s.add_argument("--optimizer", choices=("adam", "forward-step", "inertial-km"),
                   help="gradient-free optimiser (default: the model's; the papers' Adam unless measured otherwise)")
    s.add_argument("--lr", type=float,
                   help="gradient-free step size (default: the model's for its optimiser, else the paper's)")
    s.add_argument("--schedule", choices=("scheduled", "fixed"),
                   help="gradient-free step schedule: warm-up + cosine, or fixed (default: as --lr)")
    s.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16"),
                   help="gradient-free network precision (auto: fp16 on a CUDA GPU, fp32 elsewhere)")
    s.add_argument("--inversion", choices=("naive", "backward-euler"), help="diffusion inversion (default per model)")
    s.add_argument("--steps", type=int, help="DDIM inversion steps (default 50)")
    s.add_argument("--grid", choices=("diffusers", "reference"), help="timestep grid (reference = the papers' code)")
    s.add_argument("--exact-iterations", type=int,
                   help="backward-Euler fixed-point iterations per DDIM step (default 50, dec-inv's; inv-dpm used 500)")
    s.add_argument("--prompt", default="", help="the generation prompt if known (default: unknown → empty)")
    s.add_argument("--guidance", type=float, default=1.0)
    s.add_argument("--fpr", type=float, default=0.01, help="family-wise false-positive level (default 0.01)")
    s.add_argument("--score-target", default="effective", choices=("effective", "reference"),
                   help="compare with what injection leaves in a real latent (default) or the key as written (the papers')")
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--quiet", action="store_true")
    s.add_argument("--force", action="store_true", help="replace an earlier output of this tool (never evidence or other files)")
    s.set_defaults(func=cmd_scan)

    t = sub.add_parser("self-test", help="installation check on the bundled demo model (under a minute): one "
                                         "PASS/FAIL line per check, exit 0 only if all pass")
    t.set_defaults(func=cmd_self_test)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from forensics_app.gui.app import run_gui

        return run_gui(argv)
    try:
        return args.func(args)
    except (UsageError, ValueError) as exc:     # engine configs refuse bad values with one sentence
        _say_error(str(exc), args)
        return EXIT_USAGE
    except OSError as exc:                      # a file that cannot be read or written (full disk, read-only)
        _say_error(f"{exc.filename + ': ' if getattr(exc, 'filename', None) else ''}{exc.strerror or exc}", args)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("treering-forensics: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 — one line for the user; the traceback with --debug
        _say_error(f"internal error ({type(exc).__name__}): {exc}", args)
        return EXIT_INTERNAL


def _say_error(message: str, args) -> None:
    import traceback

    if getattr(args, "debug", False):
        traceback.print_exc()
    # One line, whatever the message holds (file names can carry newlines and control characters).
    line = " ".join(str(message).split()) or "unknown error"
    print(f"treering-forensics: error: {line}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
