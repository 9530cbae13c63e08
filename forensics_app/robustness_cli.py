"""`treering-forensics robustness`: the robustness study (`engine.robustness`) from the command line —
reference sets generated in memory or taken from a `generate` folder, attacks × strengths × methods ×
variants, a table (robustness.md, robustness.json) and a plot (robustness.png) in --out."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from forensics_app.restore_cli import add_restoration_settings, check_restore_model, restoration_settings


def add_parser(sub, model_args) -> None:
    r = sub.add_parser("robustness", help="detection and identification under attacks (WAVES distortions): "
                                          "table and plot, with the null-control FPR of every row")
    model_args(r)
    r.add_argument("--out", required=True, help="folder for robustness.md, robustness.json and robustness.png")
    r.add_argument("--reference", help="a folder made by `generate` (manifest.json); default: generate in memory")
    r.add_argument("--per-key", type=int, default=20, help="watermarked images per key when generating (default 20)")
    r.add_argument("--clean", type=int, default=60, help="clean images when generating (default 60)")
    r.add_argument("--seed", type=int, default=300_000, help="first seed of the generated references")
    r.add_argument("--attacks", default="rotation,resizedcrop,jpeg,blur",
                   help="comma-separated, from engine.attacks (rotation, resizedcrop, erasing, brightness, "
                        "contrast, blur, noise, jpeg, downscale); a combination joins attacks with '+', applied in "
                        "order at the same strength (e.g. downscale+jpeg), or names a WAVES group: combo-geo, "
                        "combo-photo, combo-deg, combo-all")
    r.add_argument("--strengths", default="0.25,0.5,0.75", help="relative strengths in [0, 1] (WAVES' scale)")
    r.add_argument("--method", default="encoder", help="comma-separated decoder inversions (default encoder)")
    r.add_argument("--variants", default="plain", help="comma-separated among plain, realigned, restored")
    add_restoration_settings(r)
    r.add_argument("--search-decoys", type=int, default=199, help="decoy key sets of the re-alignment (default 199)")
    r.add_argument("--steps", type=int, help="DDIM inversion steps (default the model's)")
    r.add_argument("--fpr", type=float, default=0.01, help="nominal false-positive level (default 0.01)")
    which = r.add_mutually_exclusive_group()
    which.add_argument("--calibration", metavar="CAL.json", help="the calibration the conclusions use (default: "
                       "what a scan uses, the one shipped for a bundled model where its settings match)")
    which.add_argument("--no-calibration", action="store_true", help="conclude uncalibrated")
    r.add_argument("--force", action="store_true", help="replace an earlier output of this tool")
    r.set_defaults(func=cmd_robustness)


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{what} must be comma-separated numbers, not {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def cmd_robustness(args) -> int:
    from forensics_app.cli import UsageError, _calibration_choice, _load_keys, _load_model

    from engine.atomic_write import write_json_atomic, write_text_atomic
    from engine.options import AnalysisOptions
    from engine.realignment import SearchConfig
    from engine.robustness import (StudyConfig, generate_references, load_references, plot_rows, rows_markdown,
                                   run_study)

    out = Path(args.out)
    names = ("robustness.md", "robustness.json", "robustness.png")
    if not args.force and any((out / n).exists() for n in names):
        raise UsageError(f"{out}: holds an earlier robustness result; use --force to replace it")
    study = StudyConfig(attacks=_names(args.attacks), strengths=_floats(args.strengths, "--strengths"),
                        variants=_names(args.variants), search=SearchConfig(decoys=args.search_decoys),
                        restoration=restoration_settings(args))
    model = _load_model(args)
    if "restored" in study.variants:
        check_restore_model(study.restoration, model)
    keys = _load_keys(args.keys, model.spec)
    config = AnalysisOptions(methods=_names(args.method), steps=args.steps, fpr=args.fpr,
                             device=args.device).to_config(model)
    calibration = _calibration_choice(args, model, keys, config)
    started = time.time()
    refs = (load_references(args.reference, model) if args.reference else
            generate_references(model, keys, args.per_key, args.clean, args.seed))

    def say(row):
        print(f"{row.attack} {row.parameter} {row.method} {row.variant}: AUC {row.auc:.3f}, identification "
              f"{row.identification:.2f}, null-control FPR {row.null_flagged}/{row.negatives}; conclusion: "
              f"detected {row.verdict_detected:.2f}, identified {row.verdict_identified:.2f}, clean flagged "
              f"{row.verdict_null_flagged}/{row.negatives} ({row.verdict_null_outside} outside calibration)",
              file=sys.stderr)

    rows = run_study(model, keys, refs, config, study, on_row=say, calibration=calibration)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Robustness: model {model.spec.id}, keys {', '.join(keys.ids)}", "",
             f"{sum(r.key_id is not None for r in refs)} watermarked and {sum(r.key_id is None for r in refs)} clean "
             f"references ({'from ' + args.reference if args.reference else f'generated, seeds from {args.seed}'}); "
             f"nominal FPR {args.fpr:g}; wall time {(time.time() - started) / 60:.1f} min.", "",
             *rows_markdown(rows)]
    write_text_atomic(out / "robustness.md", "\n".join(lines) + "\n")
    write_json_atomic(out / "robustness.json", {"model": model.spec.id, "keys": list(keys.ids),
                                                "command": " ".join(sys.argv), "rows": [r.to_json_dict() for r in rows]},
                      indent=1)
    plot_rows(rows, out / "robustness.png")
    print("\n".join(lines))
    return 0
