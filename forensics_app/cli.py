"""`treering-forensics`: the headless CLI (and, with no subcommand, the desktop window).

Exit codes: 0 done; 2 usage or configuration error (bad option or number, unknown model, unreadable key
file, an output that may not be written, a folder that is not a case); 3 at least one input could not be
analysed (one line per bad file on stderr; the others were analysed), or `case verify` found evidence changed,
missing or unreadable, or `case compare` found verdicts that differ; 1 an internal error (one line; `--debug` shows the traceback); 4 `self-test` found
a failing check (one FAIL line per check); 130 interrupted. No
traceback reaches the user without `--debug`.

`scan` walks folders into subfolders (`--no-recursive`: the folder's own files only); every file found that
is not analysed is listed (stderr, the JSON's "not_analysed", the report, the case) with its reason and
SHA-256. When stderr is not a terminal, `scan` writes one progress line per finished image and a periodic
summary there (`--quiet` silences them); file names in those lines are escaped, one line each.
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
    from engine.key_vault import load_keys_for_scan

    model_id = spec.id
    if path is None:
        default = spec.default_keys_path
        if default is None or not default.is_file():
            raise UsageError(f"no key set given: use --keys KEYS.json (model {model_id!r} has no bundled keys)")
        path = str(default)
    try:
        return load_keys_for_scan(path)      # a key vault (any schemes) or a Tree-Ring key file
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


PROGRESS_SUMMARY_INTERVAL_S = 30.0


class _ProgressLines:
    """When stderr is not a terminal (a log file, a pipe, a job runner): one line per finished image and a
    summary at most every PROGRESS_SUMMARY_INTERVAL_S seconds, with the ETA from the measured time per image.
    File names are escaped (`engine.intake.shown_path`): a crafted name cannot break or forge a line."""

    def __init__(self, total: int, enabled: bool, stream=None) -> None:
        import time

        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.total = total
        self.done = 0
        self.failed = 0
        self._clock = time.monotonic
        self.started = self._clock()
        self._last_summary = self.started

    def _say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def on_result(self, r) -> None:
        from engine.analysis import ImageAnalysis
        from engine.intake import shown_path

        self.done += 1
        if not self.enabled:
            return
        if isinstance(r, ImageAnalysis):
            self._say(f"[{self.done}/{self.total}] {shown_path(r.evidence.path)}: {_conclusion_line(r.conclusion)}")
        else:
            self.failed += 1
            self._say(f"[{self.done}/{self.total}] {shown_path(r.path)}: failed ({_one_line(r.shown_reason)})")
        self.maybe_summary()

    def on_event(self, event) -> None:
        if self.enabled:
            self.maybe_summary()

    def maybe_summary(self, force: bool = False) -> None:
        now = self._clock()
        if self.enabled and (force or now - self._last_summary >= PROGRESS_SUMMARY_INTERVAL_S):
            self._last_summary = now
            self._say(self.summary_line(now))

    def summary_line(self, now: float | None = None) -> str:
        elapsed = (now if now is not None else self._clock()) - self.started
        eta = "–"
        if 0 < self.done < self.total:
            eta = _duration(elapsed / self.done * (self.total - self.done))
        elif self.done >= self.total:
            eta = "0 s"
        return (f"progress: {self.done}/{self.total} image(s) finished, {self.failed} failed, "
                f"elapsed {_duration(elapsed)}, ETA {eta}")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


def _one_line(text: str) -> str:
    from engine.intake import one_line

    return one_line(text, None)


def cmd_models(args) -> int:
    from engine.model_registry import all_model_specs, locate

    for spec in all_model_specs():
        loc = locate(spec)
        status = f"found: {loc.path}" if loc.found else f"not found (looked in: {'; '.join(loc.searched)})"
        print(f"{spec.id:12s} {spec.kind:5s} {spec.title} — {status}")
    return EXIT_OK


def _warn_if_close(keys) -> None:
    """keys new / import: say when keys are too close to be told apart after inversion (a stated simulation)."""
    from engine.key_separability import separability

    for line in separability(keys).warnings():
        print(f"warning: {_one_line(line)}", file=sys.stderr)


def _key_values(args) -> dict:
    """The scheme's own `keys new` options (engine.key_parameters: one table for the CLI and the window)."""
    from engine.key_parameters import KEY_OPTIONS

    mine = {p.name for p in KEY_OPTIONS[args.scheme].parameters}
    others = [p.flag for o in KEY_OPTIONS.values() for p in o.parameters
              if p.name not in mine and getattr(args, p.name, None) is not None]
    if others:
        raise UsageError(f"{', '.join(others)}: not an option of --scheme {args.scheme}")
    return {name: getattr(args, name) for name in mine}


def _key_count(args) -> int:
    from engine.key_parameters import key_options

    return args.count if args.count is not None else key_options(args.scheme).default_count


def cmd_keys_new(args) -> int:
    from engine.key_parameters import make_keys

    if args.model:
        shape = _load_model(args).latent_shape
    else:
        try:
            shape = tuple(int(v) for v in args.latent_shape.split(","))
        except ValueError:
            shape = ()
        if len(shape) != 3:
            raise UsageError(f"--latent-shape takes three integers C,H,W, e.g. 4,32,32 (got {args.latent_shape!r})")
    if args.scheme != "tree-ring":
        return _new_vault(args, shape)
    try:
        keys = make_keys("tree-ring", _key_count(args), shape, _key_values(args), seed=args.seed,
                         separable=not args.unchecked)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    _warn_if_close(keys)
    _save_keys(keys, args)
    return EXIT_OK


def _new_vault(args, shape) -> int:
    from engine.key_parameters import default_provenance, make_keys
    from engine.key_vault import KeyVault

    try:
        keys = make_keys(args.scheme, _key_count(args), shape, _key_values(args), seed=args.seed).keys
        note = args.provenance or default_provenance(args.scheme, len(keys), shape, args.seed,
                                                     "`treering-forensics keys new`")
        vault = KeyVault(tuple(keys), provenance=note)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    _save_keys(vault, args)
    return EXIT_OK


def cmd_keys_import_gs(args) -> int:
    """A Gaussian Shading key given as hex (official layout: 32-byte key, 12-byte nonce, the watermark's
    packed bits), e.g. read from a deployment's configuration; added to a new key vault."""
    from engine.key_vault import KeyVault
    from engine.watermarks.gaussian_shading import GaussianShadingKey, default_hw

    try:
        shape = tuple(int(v) for v in args.latent_shape.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3:
        raise UsageError(f"--latent-shape takes three integers C,H,W (got {args.latent_shape!r})")
    try:
        key = GaussianShadingKey(id=args.id, key_hex=args.key_hex.lower(), nonce_hex=args.nonce_hex.lower(),
                                 watermark_hex=args.watermark_hex.lower(), latent_shape=shape, ch=args.ch,
                                 hw=args.hw or default_hw(shape), description="imported from hex")
        vault = KeyVault((key,), provenance=args.provenance or "Gaussian Shading key imported from hex")
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    _save_keys(vault, args)
    return EXIT_OK


def cmd_keys_list(args) -> int:
    from engine.key_vault import load_vault

    try:
        vault = load_vault(args.file)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    print(f"{args.file}: {len(vault.keys)} key(s) of {', '.join(vault.schemes)}; created {vault.created_utc or '?'}; "
          f"content sha256 {vault.content_sha256()[:16]}")
    if vault.provenance:
        print(f"provenance: {_one_line(vault.provenance)}")
    for line in vault.summary_lines():
        print(line)
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
    _warn_if_close(keys)
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


def _options(args):
    """The analysis options a `scan` or `calibrate` command line asks for (one mapping: engine.options)."""
    from engine.decoder_inversion import METHODS
    from engine.options import AnalysisOptions

    return AnalysisOptions(
        methods=METHODS if args.method == "all" else (args.method,), iterations=args.iterations, lr=args.lr,
        optimizer=args.optimizer, schedule=args.schedule, precision=args.precision, inversion=args.inversion,
        steps=args.steps, grid=args.grid, exact_iterations=args.exact_iterations, prompt=args.prompt,
        guidance=args.guidance, fpr=args.fpr, score_target=args.score_target, batch_size=args.batch_size,
        device=args.device, dtype=args.dtype)


def _config(options, model):
    try:
        return options.to_config(model)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def _calibration_choice(args, model, keys, config):
    from engine.calibration import CalibrationError, choose_calibration

    try:
        return choose_calibration(model, keys, config, getattr(args, "calibration", None),
                                  enabled=not getattr(args, "no_calibration", False))
    except CalibrationError as exc:
        raise UsageError(str(exc)) from None


def cmd_calibrate(args) -> int:
    from engine.altered_calibration import calibration_alterations, detection_alterations
    from engine.calibration_making import calibrate
    from engine.output_paths import check_output
    from engine.progress import Cancelled

    try:
        check_output(args.out, force=args.force, what="calibration file")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    model = _load_model(args)
    keys = _load_keys(args.keys, model.spec)
    config = _config(_options(args), model)
    bar = _ProgressBar(not args.quiet)
    try:
        cal = calibrate(model, keys, config, clean_count=args.count, per_key_count=args.per_key,
                        work_dir=args.images, seed=args.seed, reference_dir=args.reference, progress=bar.state,
                        alterations=calibration_alterations() if args.alterations else (),
                        altered_per_key=args.altered_per_key,
                        detection_alterations=detection_alterations() if args.detection_alterations else (),
                        altered_clean=args.altered_clean)
    except Cancelled:
        print("interrupted: no calibration was written", file=sys.stderr)
        return 130
    finally:
        bar.close()
    _write_output(args.out, lambda: cal.save(args.out))
    print(f"wrote the calibration ({cal.counts.get('clean', 0)} clean, "
          + ", ".join(f"{cal.counts.get(k, 0)} {k}" for k in keys.ids) + f") to {args.out}")
    for m, c in cal.methods.items():
        print(f"  {m}: smallest supportable detection p = {c.min_supported_p:.2g}; in-sample conclusions at FPR "
              f"{c.summary.get('in_sample_conclusions_at_fpr')}: {c.summary.get('in_sample_conclusions')}")
    return EXIT_OK


def cmd_scan(args) -> int:
    from engine.analysis import analyze, run_to_json
    from engine.atomic_write import write_json_atomic
    from engine.evidence_paths import scan_evidence_paths
    from engine.intake import EvidenceError

    paths = []
    not_analysed = []
    for given in args.paths:
        try:
            found = scan_evidence_paths([given], recursive=not args.no_recursive, md5=args.md5)
        except EvidenceError:
            paths.append(Path(given))     # reported per file by the analysis (exit 3), the others still run
            continue
        paths += found.files
        not_analysed += found.not_analysed
    if not paths:
        raise UsageError(f"no images found in the given paths ({len(not_analysed)} other file(s) or folder(s) "
                         "found, none with an image suffix)" if not_analysed else "no images found in the given paths")
    _check_scan_outputs(args, paths + [Path(n.path) for n in not_analysed])
    from forensics_app.scan_executor import check_executor_args, model_and_keys, run_with_executor

    check_executor_args(args)
    search = _search_config(args)
    from forensics_app.restore_cli import restore_choice

    restoring = restore_choice(args)        # (degradation, settings) or None; refused with ray and --records
    models = args.model or ["demo"]
    if len(models) > 1:
        if search is not None or restoring is not None or args.executor != "local" or args.records:
            raise UsageError("--search, --restore, --executor ray and --records take one model")
        return _scan_models(args, models, paths, not_analysed)
    args.model = models[0]
    model, keys = model_and_keys(args)     # the Ray executor loads the model on its workers only
    from forensics_app.restore_cli import check_restore_model

    check_restore_model(None if restoring is None else restoring[1], model)
    if search is not None:
        from engine.realignment import check_search_keys

        try:
            check_search_keys(keys)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    options = _options(args)
    config = _config(options, model) if model is not None else None
    calibration = _calibration_choice(args, model, keys, config) if model is not None else None
    if search is not None and model is None:
        raise UsageError("--search runs with the local executor")
    lines = _ProgressLines(len(paths), enabled=not args.quiet and not _is_terminal(sys.stderr))
    bar = _ProgressBar(not args.quiet)
    bar.state.add_listener(lines.on_event)
    try:
        if args.executor == "local" and not args.records:
            run = analyze(model, keys, paths, config, progress=bar.state, on_result=lines.on_result, md5=args.md5,
                          not_analysed=not_analysed, calibration=calibration)
        else:
            run = run_with_executor(args, model, keys, options, paths, not_analysed, bar.state, lines.on_result)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    except KeyboardInterrupt:
        bar.close()
        print("interrupted: " + (f"the images finished so far are kept in {_one_line(args.records)}; run the same "
                                 "command again to resume" if args.records else "nothing was written"), file=sys.stderr)
        return 130
    finally:
        bar.close()
    lines.maybe_summary(force=True)
    for f in run.failures:
        print(f"error: {f.message}", file=sys.stderr)
    if not args.quiet:
        from engine.intake import shown_path

        for n in run.not_analysed:
            print(f"not analysed: {shown_path(n.path)}: {_one_line(n.reason)}", file=sys.stderr)
    if search is not None:          # each image gains its search ("realignment"), its own conclusions unchanged
        from engine.search_record import search_run

        run = search_run(model, keys, run, search, bar.state)
    if restoring is not None:       # each image gains its restored reading ("restoration"), its own conclusions unchanged
        from engine.restored_record import restore_run

        run = restore_run(model, keys, run, *restoring, bar.state)
        for a in run.images:                    # a non-finite restoration or inversion: one line, as for a failure
            if a.restoration.failure:
                print(f"error: {_one_line(a.restoration.failure)}", file=sys.stderr)
    audit = None
    if args.case:
        audit = _record_run_in_case(args, run)
    result = run_to_json(run)
    exported = []
    if args.json:
        _write_output(args.json, lambda: write_json_atomic(args.json, result, indent=2))
        exported.append(f"results (JSON) to {args.json}")
    if args.report:
        from forensics_app.report import ReportInfo, write_report

        info = ReportInfo(case_id=args.case_id, examiner=args.examiner,
                          audit=tuple(audit.events) if audit is not None else ())
        _write_output(args.report, lambda: write_report(run, args.report, info))
        exported.append(f"report (PDF) to {args.report} and its JSON twin")
    if audit is not None and exported:           # the case's record names what left it
        from engine.audit import EXPORT
        from engine.case_folder import read_case_folder, update_case

        case_info = read_case_folder(args.case).info
        for what in exported:
            audit.record(EXPORT, what, args.examiner or str(case_info.get("examiner", "")))
        _write_output(args.case, lambda: update_case(args.case, run, case_info, audit))
    if not args.quiet:
        _print_summary(run)
    return EXIT_BAD_INPUT if run.failures else EXIT_OK


def _search_config(args):
    """`--search FAMILIES` → the re-alignment search, or None."""
    if not args.search:
        return None
    from engine.realignment import SearchConfig, parse_families

    return SearchConfig(families=parse_families(args.search), decoys=args.search_decoys)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _record_run_in_case(args, run):
    """`scan --case DIR`: append the run to the case's history, with a "run" event in its audit trail (and a
    "settings changed" event when they differ from the case's previous run). Returns the audit trail."""
    from engine.audit import RUN, SETTINGS, run_detail
    from engine.case_folder import append_run, is_case_folder, read_case_folder
    from engine.case_file import CaseFileError

    try:
        existing = read_case_folder(args.case) if is_case_folder(args.case) else None
    except (CaseFileError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    from engine.audit import AuditTrail

    audit = existing.audit if existing is not None else AuditTrail()
    info = dict(existing.info) if existing is not None else {}
    for field, value in (("case_id", args.case_id), ("examiner", args.examiner)):
        if value:
            info[field] = value
    examiner = str(info.get("examiner", ""))
    settings = _settings_json(run.config)
    previous = info.get("last_settings") if isinstance(info.get("last_settings"), dict) else None
    from engine.audit import settings_changes

    changes = settings_changes(previous, settings) if previous is not None else ""   # the first: in the run file
    if changes:
        audit.record(SETTINGS, changes, examiner)
    info["last_settings"] = settings
    audit.record(RUN, "scan (CLI): " + run_detail(run), examiner)
    _write_output(args.case, lambda: append_run(args.case, run, info, audit))
    if not args.quiet:
        print(f"the run was added to the case {_one_line(args.case)}", file=sys.stderr)
    return audit


def _settings_json(config) -> dict:
    """The run's settings as plain values (for diffs in the audit trail)."""
    from engine.analysis import _config_json

    flat = {}

    def walk(prefix, d):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(f"{prefix}{k}.", v)
            else:
                flat[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    walk("", _config_json(config))
    return flat


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
    if args.case:
        from engine.case_folder import check_case_folder

        try:
            check_case_folder(args.case, evidence)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    real = [os.path.realpath(p) for p, _ in outputs]
    if len(set(real)) != len(real):
        raise UsageError("--json and the report's JSON twin (the report's name with .json) are the same file: "
                         "choose other names")
    try:
        for path, what in outputs:
            check_output(path, evidence=evidence, force=args.force, what=what)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _conclusion_line(c) -> str:
    """One line: the conclusion, its p-values and calibration, and any method that disagrees."""
    text = c.headline()
    if c.detection_p is not None:
        text += f" (detection p={c.detection_p:.2g}"
        if c.identification_p is not None and c.outcome != "not_detected":
            text += f", runner-up p={c.identification_p:.2g}"
        text += f"; {c.calibration}; {c.method})"
    if c.disagreements:
        text += " — DISAGREES: " + "; ".join(c.disagreements)
    return text


def _print_summary(run) -> None:
    from engine.intake import escape_invisible

    for m in run.config.methods:
        print(f"{m}: {_one_line(run.calibration.status(m))}")
    for a in run.images:
        name = escape_invisible(Path(a.evidence.path).name)     # one line per image, whatever the name holds
        print(f"{name}: {_one_line(_conclusion_line(a.conclusion))}")
        if a.realignment is not None:           # a separate test, printed apart from the exhibit's conclusion
            from engine.search_verdict import search_headline

            s = a.realignment
            r = s.results[s.conclusion.method]
            print(f"{name}: re-alignment search (separate, search-corrected): {_one_line(search_headline(s.conclusion))}"
                  f" (p = {s.conclusion.detection_p:.3g}; winner {r.best.describe()}; {len(r.transforms)} transforms)")
        if a.restoration is not None:           # a separate reading, printed after the conclusion as submitted
            from forensics_app.restore_cli import restore_summary_line

            print(_one_line(restore_summary_line(name, a)))


def _scan_models(args, models, paths, not_analysed) -> int:
    """`scan --model A --model B`: the same evidence under each model, then which model explains each exhibit."""
    from engine.analysis import analyze, run_to_json
    from engine.atomic_write import write_json_atomic
    from engine.intake import escape_invisible
    from engine.model_comparison import compare_models

    if args.report or args.case:
        raise UsageError("--report and --case take one model: compare models with --json or in the window")
    if args.calibration:
        raise UsageError("--calibration names one model's calibration: with several models each uses its own "
                         "shipped calibration where one applies")
    runs = []
    for model_id in models:
        args.model = model_id
        model = _load_model(args)
        keys = _load_keys(args.keys, model.spec)
        config = _config(_options(args), model)
        bar = _ProgressBar(not args.quiet)
        try:
            runs.append(analyze(model, keys, paths, config, progress=bar.state, md5=args.md5,
                                not_analysed=not_analysed, calibration=_calibration_choice(args, model, keys, config)))
        except KeyboardInterrupt:
            print("interrupted: nothing was written", file=sys.stderr)
            return 130
        finally:
            bar.close()
    comparison = compare_models(runs)
    if args.json:
        result = {"models": [run_to_json(r) for r in runs], "model_comparison": [c.to_json_dict() for c in comparison]}
        _write_output(args.json, lambda: write_json_atomic(args.json, result, indent=2))
    failures = [f for r in runs for f in r.failures]
    for f in failures:
        print(f"error: {f.message}", file=sys.stderr)
    if not args.quiet:
        for c in comparison:
            print(f"{escape_invisible(Path(c.path).name)}: {_one_line(c.statement)}")
            for e in c.models:
                print(f"  {e.model_id}: {_one_line(_conclusion_line(e.conclusion))}; round trip "
                      f"{e.round_trip_psnr_db:.1f} dB, z0 residual {e.z0_residual:.3f}")
    return EXIT_BAD_INPUT if failures else EXIT_OK


def cmd_self_test(args) -> int:
    from forensics_app.self_test import main as self_test

    return self_test(debug=args.debug)


def build_parser() -> argparse.ArgumentParser:
    from engine.options import DEFAULT_METHOD

    p = _Parser(prog="treering-forensics", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command")

    def model_args(sp, with_keys=True, several=False):
        if several:
            sp.add_argument("--model", action="append", help="model id (see `models`) or a diffusers folder "
                            "(default demo); give it again to compare candidate models on the same evidence")
        else:
            sp.add_argument("--model", default="demo", help="model id (see `models`) or a diffusers folder (default demo)")
        sp.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1 …")
        sp.add_argument("--dtype", default="fp32", choices=("fp32", "fp16"), help="weights' precision (fp16: GPU only)")
        if with_keys:
            sp.add_argument("--keys", help="key set JSON (default: the bundled demo keys for demo models)")

    m = sub.add_parser("models", help="list the known models and whether they are on this machine")
    m.set_defaults(func=cmd_models)

    k = sub.add_parser("keys", help="create or import key sets")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    kn = ksub.add_parser("new", help="new random ring keys (dec-inv style per-ring constants), drawn separable")
    kn.add_argument("--count", type=int, help="number of keys (default per scheme: tree-ring 3, gaussian-shading 1, "
                    "ringid 64, prc 1)")
    kn.add_argument("--out", required=True)
    kn.add_argument("--model", help="take the latent shape from this model")
    kn.add_argument("--latent-shape", default="4,32,32", help="C,H,W (default 4,32,32, the demo models')")
    kn.add_argument("--device", default="cpu")
    kn.add_argument("--dtype", default="fp32")
    from engine.key_parameters import KEY_OPTIONS

    for options in KEY_OPTIONS.values():        # each scheme's own options, from the table the window uses too
        for opt in options.parameters:
            kn.add_argument(opt.flag, dest=opt.name, type=opt.kind, help=f"{opt.help} (default "
                            f"{opt.derived if opt.default is None else format(opt.default, 'g')}; {opt.low:g} … "
                            f"{opt.high:g})")
    kn.add_argument("--seed", type=int)
    kn.add_argument("--unchecked", action="store_true",
                    help="draw keys without the separability check (default: every key can be told apart from the "
                         "others after inversion, by a stated simulation; see docs/algorithms.md §4)")
    kn.add_argument("--force", action="store_true", help="replace an earlier output of this tool (never evidence or other files)")
    kn.add_argument("--scheme", default="tree-ring", choices=("tree-ring", "gaussian-shading", "ringid", "prc"),
                    help="watermark scheme (default tree-ring; the others write a key vault)")
    kn.add_argument("--provenance", help="free text kept in the key vault: who made the keys, for what")
    kn.set_defaults(func=cmd_keys_new)
    kg = ksub.add_parser("import-gs", help="a Gaussian Shading key given as hex (official ChaCha20 layout) → key vault")
    kg.add_argument("--id", required=True)
    kg.add_argument("--key-hex", required=True, help="32-byte ChaCha20 key")
    kg.add_argument("--nonce-hex", required=True, help="12-byte nonce (RFC 8439)")
    kg.add_argument("--watermark-hex", required=True, help="the watermark bits, packed MSB-first, C-order")
    kg.add_argument("--latent-shape", default="4,64,64", help="C,H,W (default 4,64,64, the reference's)")
    kg.add_argument("--ch", type=int, default=1)
    kg.add_argument("--hw", type=int, help="default side/8 (8 on 64×64, the reference's)")
    kg.add_argument("--provenance")
    kg.add_argument("--out", required=True)
    kg.add_argument("--force", action="store_true", help="replace an earlier output of this tool")
    kg.set_defaults(func=cmd_keys_import_gs)
    kl = ksub.add_parser("list", help="the keys of a key vault or key file: scheme, id, parameters, hash (no secrets)")
    kl.add_argument("file")
    kl.set_defaults(func=cmd_keys_list)
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

    def analysis_args(sp):
        sp.add_argument("--method", default=DEFAULT_METHOD, choices=("encoder", "gradient-free", "gradient-based", "all"))
        sp.add_argument("--iterations", type=int, default=100, help="decoder-inversion iterations (default 100)")
        sp.add_argument("--optimizer", choices=("adam", "forward-step", "inertial-km"),
                        help="gradient-free optimiser (default: the model's; the papers' Adam unless measured otherwise)")
        sp.add_argument("--lr", type=float,
                        help="gradient-free step size (default: the model's for its optimiser, else the paper's)")
        sp.add_argument("--schedule", choices=("scheduled", "fixed"),
                        help="gradient-free step schedule: warm-up + cosine, or fixed (default: as --lr)")
        sp.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16"),
                        help="gradient-free network precision (auto: fp16 on a CUDA GPU, fp32 elsewhere)")
        sp.add_argument("--inversion", choices=("naive", "backward-euler"), help="diffusion inversion (default per model)")
        sp.add_argument("--steps", type=int, help="DDIM inversion steps (default 50)")
        sp.add_argument("--grid", choices=("diffusers", "reference"), help="timestep grid (reference = the papers' code)")
        sp.add_argument("--exact-iterations", type=int,
                        help="backward-Euler fixed-point iterations per DDIM step (default 50, dec-inv's; inv-dpm used 500)")
        sp.add_argument("--prompt", default="", help="the generation prompt if known (default: unknown → empty)")
        sp.add_argument("--guidance", type=float, default=1.0)
        sp.add_argument("--fpr", type=float, default=0.01, help="family-wise false-positive level (default 0.01)")
        sp.add_argument("--score-target", default="effective", choices=("effective", "reference"),
                        help="compare with what injection leaves in a real latent (default) or the key as written (the papers')")
        sp.add_argument("--batch-size", type=int, default=8)

    s = sub.add_parser("scan", help="analyse images or folders for Tree-Ring keys")
    s.add_argument("paths", nargs="+")
    model_args(s, several=True)
    which_calibration = s.add_mutually_exclusive_group()
    which_calibration.add_argument(
        "--calibration", metavar="CAL.json",
        help="a calibration made by `calibrate` (default: the one shipped for a bundled model, where its settings match)")
    which_calibration.add_argument("--no-calibration", action="store_true",
                                   help="analytic p-values only (uncalibrated: no key is named)")
    s.add_argument("--json", help="write the results as JSON here")
    s.add_argument("--report", help="write a PDF report here")
    s.add_argument("--case-id", default="")
    s.add_argument("--examiner", default="")
    analysis_args(s)
    s.add_argument("--no-recursive", action="store_true",
                   help="a folder contributes its own files only (default: its subfolders too)")
    s.add_argument("--md5", action="store_true", help="record MD5 beside SHA-256 for every file")
    s.add_argument("--case", metavar="DIR",
                   help="add this run to the case folder DIR (created if new): DIR/case.trcase and its history")
    s.add_argument("--search", metavar="FAMILIES",
                   help="re-alignment search, comma-separated among rotation,scale,crop,flip: every candidate "
                        "inverse transform is inverted and scored; the JSON gets a 'realignment' object per image "
                        "with family-wise corrected p-values (Bonferroni, decoy keys)")
    s.add_argument("--search-decoys", type=int, default=999, metavar="M",
                   help="decoy key sets for the search's max-statistic p-value (default 999; 0: Bonferroni only)")
    from forensics_app.restore_cli import add_restore_arguments

    add_restore_arguments(s)
    s.add_argument("--quiet", action="store_true", help="no progress lines, no summary")
    s.add_argument("--force", action="store_true", help="replace an earlier output of this tool (never evidence or other files)")
    from forensics_app.scan_executor import add_executor_arguments

    add_executor_arguments(s)
    s.set_defaults(func=cmd_scan)

    cal = sub.add_parser("calibrate", help="calibrate the conclusions on the model itself: clean and watermarked "
                                           "reference images analysed with a scan's settings")
    model_args(cal)
    analysis_args(cal)
    cal.add_argument("--out", required=True, metavar="CAL.json")
    cal.add_argument("--count", type=int, default=300, help="un-watermarked images to generate (default 300)")
    cal.add_argument("--per-key", type=int, default=100, help="watermarked images per key (default 100)")
    cal.add_argument("--seed", type=int, default=100_000, help="first seed (use seeds your evaluation does not)")
    cal.add_argument("--reference", metavar="DIR",
                     help="take these images instead of generating (labelled by the folder's manifest.json)")
    cal.add_argument("--images", metavar="DIR", help="keep the generated images in this folder (default: a temporary one)")
    cal.add_argument("--alterations", action="store_true",
                     help="also calibrate identification on the watermarked images under 24 simulated alterations: "
                          "a key is then named only when excluded under every one (fewer keys named; see "
                          "docs/algorithms.md §4.2)")
    cal.add_argument("--altered-per-key", type=int, metavar="N",
                     help="with --alterations, only the first N watermarked images per key (default: all; each "
                          "alteration costs one more analysis of them)")
    cal.add_argument("--detection-alterations", action="store_true",
                     help="also calibrate detection on the clean images under 19 simulated alterations (a rotation "
                          "hidden by a crop and a blur, alone and among WAVES' other distortions; a rotation and crop "
                          "that keep dark corners, alone, blurred with radius 1 or noised; a rotation and crop blurred "
                          "with radius 2, alone or with noise after the blur): a watermark is then "
                          "detected only beyond what every one that applies gives (docs/algorithms.md §4.4)")
    cal.add_argument("--altered-clean", type=int, metavar="N",
                     help="with --detection-alterations, only the first N clean images (default: all; at least "
                          "1/FPR − 1 of them are needed for an alteration to test at the level FPR)")
    cal.add_argument("--quiet", action="store_true")
    cal.add_argument("--force", action="store_true", help="replace an earlier calibration made by this tool")
    cal.set_defaults(func=cmd_calibrate)

    c = sub.add_parser("case", help="show a case folder or re-verify its evidence")
    csub = c.add_subparsers(dest="case_command", required=True)
    cs = csub.add_parser("show", help="the case's fields, its runs and its audit trail")
    cs.add_argument("folder")
    cs.set_defaults(func=cmd_case_show)
    cv = csub.add_parser("verify", help="re-hash every evidence file of the case (exit 0 all verified, 3 if not)")
    cv.add_argument("folder")
    cv.add_argument("--examiner", default="", help="who re-verified (default: the case's examiner)")
    cv.set_defaults(func=cmd_case_verify)
    cc = csub.add_parser("compare", help="two runs of the case side by side: settings and every verdict")
    cc.add_argument("folder")
    cc.add_argument("runs", nargs="*", type=int, metavar="RUN",
                    help="two run numbers as `case show` lists them (default: the last two)")
    cc.set_defaults(func=cmd_case_compare)
    from forensics_app.robustness_cli import add_parser as add_robustness_parser

    add_robustness_parser(sub, model_args)
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


def _read_case(folder: str):
    from engine.case_file import CaseFileError
    from engine.case_folder import read_case_folder

    try:
        return read_case_folder(folder)
    except (CaseFileError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def cmd_case_show(args) -> int:
    s = _read_case(args.folder)
    shown = {k: v for k, v in s.info.items() if k != "last_settings"}
    print(f"case folder: {_one_line(str(s.folder))} (saved {s.saved_utc})")
    for k in sorted(shown):
        print(f"  {_one_line(k)}: {_one_line(str(shown[k]))}")
    print(f"runs: {len(s.history)}")
    for n, h in enumerate(s.history, start=1):
        status = "cancelled" if h.get("cancelled") else "complete"
        print(f"  {n}. {_one_line(str(h.get('file')))}: model {_one_line(str(h.get('model_id')))}, started "
              f"{h.get('started_utc')}, {h.get('images')} analysed, {h.get('failures')} failed, "
              f"{h.get('not_analysed')} not analysed ({status})")
    print(f"audit trail: {len(s.audit)} event(s)")
    for e in s.audit.events:
        print(f"  {e.utc}  {e.examiner or '(no examiner)'}  {e.action}: {e.detail}")
    return EXIT_OK


def cmd_case_verify(args) -> int:
    from engine.case_file import CaseFileError
    from engine.case_folder import record_verification, verify_case_folder
    from engine.intake import shown_path

    s = _read_case(args.folder)
    result = verify_case_folder(args.folder)
    for kind, c in result.checks:
        print(f"{c.status.label:14s} {kind:12s} {shown_path(c.path)}"
              + ("" if c.ok else f": {_one_line(c.detail)}"))
    counts = result.counts()
    print(f"{len(result.checks)} file(s): " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    try:
        record_verification(args.folder, result, args.examiner or str(s.info.get("examiner", "")))
    except (OSError, CaseFileError) as exc:
        print(f"treering-forensics: warning: the re-verification could not be recorded in the case's audit "
              f"trail ({_one_line(exc)})", file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_BAD_INPUT


def cmd_case_compare(args) -> int:
    """Exit 0 when every verdict agrees, 3 when some differ (a difference is a finding to look at)."""
    from engine.case_file import CaseFileError
    from engine.case_folder import load_run
    from engine.run_comparison import compare_runs

    s = _read_case(args.folder)
    runs = args.runs or [len(s.history) - 1, len(s.history)]
    if len(runs) != 2 or len(s.history) < 2:
        raise UsageError("give two run numbers (the case must hold at least two runs; `case show` lists them)")
    try:
        a, b = (load_run(args.folder, n).run for n in runs)
    except (CaseFileError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    c = compare_runs(a, b, f"run {runs[0]}", f"run {runs[1]}")
    print(f"{c.label_a} vs {c.label_b}: {len(c.settings_differences)} setting(s) differ")
    for d in c.settings_differences:
        print(f"  {_one_line(d)}")
    print(f"{len(c.pairs)} verdict(s) compared, {len(c.disagreements)} differ")
    for pair in c.pairs:
        mark = "same" if pair.agree else "DIFFERENT"
        print(f"  {_one_line(pair.name)}  {pair.method}: {c.label_a} {_one_line(pair.verdict_a)} (p={pair.p_a:.2g}), "
              f"{c.label_b} {_one_line(pair.verdict_b)} (p={pair.p_b:.2g})  {mark}")
    for name in c.only_a:
        print(f"  {_one_line(name)}: analysed in {c.label_a} only")
    for name in c.only_b:
        print(f"  {_one_line(name)}: analysed in {c.label_b} only")
    return EXIT_OK if not c.disagreements else EXIT_BAD_INPUT


def _say_error(message: str, args) -> None:
    import traceback

    if getattr(args, "debug", False):
        traceback.print_exc()
    # One line, whatever the message holds (file names can carry newlines and control characters).
    line = _one_line(message) or "unknown error"
    print(f"treering-forensics: error: {line}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
