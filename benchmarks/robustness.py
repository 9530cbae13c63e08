"""Robustness of detection and identification under attacks, plain vs re-aligned vs restored, with the
null-control FPR of every row (engine.robustness), read both analytically and as the tool concludes (with the
calibration a scan of this model uses).

    nice -n 10 .venv/bin/python benchmarks/robustness.py --model demo --per-key 4 --clean 12 --steps 10
    nice -n 10 .venv/bin/python benchmarks/robustness.py --model demo --per-key 6 --clean 18 --steps 10 \
        --plan strong --out benchmarks/results/robustness/robustness_demo_strong
    nice -n 10 .venv/bin/python benchmarks/robustness.py --model demo --plan issue --per-key 50 --clean 150 \
        --method encoder --out benchmarks/results/robustness/robustness_demo_issue_encoder

Each attack has its own strengths (engine.attacks maps a relative strength s to the parameter as WAVES does):
* "small": rotations of 10° and 20°, crops keeping 90 % and 80 % of the side, JPEG 50 and 30, blur radius 1, 2;
* "strong": rotations of 10°, 20°, 30°, JPEG 20 and 10, blur radius 4 and 8, crops keeping 75 % of the side;
* "issue" (issue #17's table: 3 strengths per attack): rotation 10°, 20°, 30° (s = θ/45); square crops keeping
  90 %, 80 %, 75 % of the side, resized back (area kept 0.81, 0.64, 0.5625; s = (1 − area)/0.5); JPEG quality
  70, 50, 30 (s = (90 − q)/80); Gaussian blur of PIL radius 1, 2, 4 — mild, medium, strong on 64-px `demo`
  images (s = r/20); then erasing a black square of 5, 10, 20 % of the area; brightness and contrast factors
  1.2, 1.5, 2; Gaussian noise σ 0.02, 0.05, 0.1; a downscale to 0.75, 0.5, 0.25 of the side and back; and
  regeneration by the model (noised to 0.1, 0.2, 0.4 of the grid, denoised; DDIM models only). Rotation and crop
  rows are read plain and re-aligned, JPEG, blur and downscale plain and restored, the others plain;
* "combinations": attacks applied one after another, each at the same relative strength (see PLANS).
The re-alignment searches rotations of ±10, ±20, ±30° for the rotation rows and crops of side 0.75, 0.8 and 0.9
at 3×3 positions for the crop rows (the identity always; the first "small" run searched sides 0.8 and 0.9
only), with 199 decoy key sets. `--method` takes several decoder inversions (comma-separated).

Anytime and resumable: the results are rewritten after every row, and a rerun with the same --out and the same
settings (model and weights, keys, references, level, search, restoration, calibration; per method its
inversion settings) skips the rows already there; other settings are refused rather than mixed. Run one
process per --out (e.g. one per method). The reference images are generated once per (model, keys, counts,
seed) and cached in benchmarks/cache/robustness/ (ignored), so processes share them; --references DIR takes a
folder made by `generate` instead.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import harness

CACHE = harness.REPO / "benchmarks" / "cache" / "robustness"

PLANS = {   # attack, strengths, variants (the order in which rows are run: the goals' rows first)
    "small": (
        ("rotation", (10 / 45, 20 / 45), ("plain", "realigned")),
        ("jpeg", (0.5, 0.75), ("plain", "restored")),
        ("blur", (0.05, 0.1), ("plain", "restored")),
        ("resizedcrop", ((1 - 0.9**2) / 0.5, (1 - 0.8**2) / 0.5), ("plain", "realigned")),
    ),
    # stronger JPEG and blur (the small plan's were harmless on demo), 30° rotations, crops keeping 75 % of the
    # side (the goals' boundary)
    "strong": (
        ("rotation", (10 / 45, 20 / 45, 30 / 45), ("plain", "realigned")),
        ("jpeg", (0.875, 1.0), ("plain", "restored")),
        ("blur", (0.2, 0.4), ("plain", "restored")),
        ("resizedcrop", ((1 - 0.75**2) / 0.5,), ("plain", "realigned")),
    ),
    "issue": (
        ("rotation", (10 / 45, 20 / 45, 30 / 45), ("plain", "realigned")),
        ("resizedcrop", ((1 - 0.9**2) / 0.5, (1 - 0.8**2) / 0.5, (1 - 0.75**2) / 0.5), ("plain", "realigned")),
        ("jpeg", ((90 - 70) / 80, (90 - 50) / 80, (90 - 30) / 80), ("plain", "restored")),
        ("blur", (1 / 20, 2 / 20, 4 / 20), ("plain", "restored")),
        # the other WAVES distortions, a thumbnail brought back to size, and regeneration by the model itself
        ("erasing", (0.05 / 0.25, 0.1 / 0.25, 0.2 / 0.25), ("plain",)),
        ("brightness", (0.2, 0.5, 1.0), ("plain",)),
        ("contrast", (0.2, 0.5, 1.0), ("plain",)),
        ("noise", (0.2, 0.5, 1.0), ("plain",)),
        ("downscale", ((1 - 0.75) / 0.75, (1 - 0.5) / 0.75, (1 - 0.25) / 0.75), ("plain", "restored")),
        ("regeneration", (0.1, 0.2, 0.4), ("plain",)),
    ),
    # combinations (engine.attacks.combined: every part at the same relative strength), as evidence is re-posted:
    # a thumbnail re-encoded (JPEG 70/50/30 with the side at 0.81/0.63/0.44); WAVES' degradation group (blur
    # radius 1/2/4 with noise σ 0.005/0.01/0.02 and JPEG 86/82/74); a crop re-encoded (90 % and 80 % of the side
    # with JPEG 60 and 32); the photometric group (brightness and contrast ×1.2, ×1.5); the geometric group at a
    # 10° rotation (with 89 % of the area kept, 5.6 % erased); everything at 0.1 and 0.2
    "combinations": (
        ("downscale+jpeg", (0.25, 0.5, 0.75), ("plain",)),
        ("combo-deg", (1 / 20, 2 / 20, 4 / 20), ("plain",)),
        ("resizedcrop+jpeg", ((1 - 0.9**2) / 0.5, (1 - 0.8**2) / 0.5), ("plain",)),
        ("combo-photo", (0.2, 0.5), ("plain",)),
        ("combo-geo", (10 / 45,), ("plain",)),
        ("combo-all", (0.1, 0.2), ("plain",)),
    ),
}


def cached_references(model, keys, per_key: int, clean: int, seed: int):
    """`generate_references` once per (model weights, keys, counts, seed), kept as an .npz in CACHE."""
    import numpy as np

    from engine.calibration import canonical_sha256, keyset_sha256
    from engine.robustness import ReferenceImage, generate_references

    tag = canonical_sha256([dict(model.weight_sha256), keyset_sha256(keys)])[:12]
    path = CACHE / f"{Path(model.spec.id).name}_{tag}_{per_key}perkey_{clean}clean_seed{seed}.npz"
    if path.exists():
        with np.load(path) as f:
            return [ReferenceImage(p, str(k) or None, int(s)) for p, k, s in zip(f["pixels"], f["key"], f["seed"])], path
    refs = generate_references(model, keys, per_key, clean, seed)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npz")
    np.savez_compressed(tmp, pixels=np.stack([r.pixels for r in refs]), seed=np.array([r.seed for r in refs]),
                        key=np.array([r.key_id or "" for r in refs]))
    tmp.replace(path)
    return refs, path


def watermarked_references(args):
    """For a script with --model, --device, --keys, --method and --per-key: the model, keys, analysis config (that
    one method), the first --per-key cached watermarked references of each key, and their cache file."""
    from engine.model_loader import load_model
    from engine.options import AnalysisOptions
    from engine.treering import KeySet

    model = load_model(args.model, device=args.device)
    keys = KeySet.load(args.keys)
    config = AnalysisOptions(methods=(args.method,)).to_config(model)
    refs, cache = cached_references(model, keys, 50, 150, 300_000)
    return model, keys, config, [r for k in keys.ids for r in [r for r in refs if r.key_id == k][:args.per_key]], cache


def study_settings(model, keys, config, calibration, search, restoration, references: str) -> dict:
    """What a row's numbers depend on besides its (attack, strength, method, variant): rows are reused only
    under equal settings. `methods`: per decoder inversion, its settings hash (engine.calibration)."""
    from engine.calibration import keyset_sha256, settings_sha256

    cal = calibration.calibration
    return {"common": {"model": model.spec.id, "weights": dict(model.weight_sha256), "keys": keyset_sha256(keys),
                       "references": references, "fpr": config.fpr, "search": repr(search),
                       "restoration": restoration.describe(), "calibration": cal.content_sha256 if cal else None},
            "methods": {m: settings_sha256(config, m, str(model.dtype).replace("torch.", "")) for m in config.methods}}


def resumable_rows(path: Path, settings: dict) -> tuple[list, float]:
    """The rows of an earlier run at `path` measured under `settings` (SystemExit when its settings differ),
    and the wall time that run recorded."""
    from engine.robustness import Row

    if not path.exists():
        return [], 0.0
    old = json.loads(path.read_text())
    before = old.get("study_settings")
    if not isinstance(before, dict) or before.get("common") != settings["common"]:
        what = ("no recorded settings" if not isinstance(before, dict) else "other settings (" + ", ".join(
            k for k in settings["common"] if before.get("common", {}).get(k) != settings["common"][k]) + ")")
        raise SystemExit(f"{path} holds rows measured with {what}: use another --out, or --fresh to replace them")
    same = {m for m, h in settings["methods"].items() if before.get("methods", {}).get(m) == h}
    other = set(before.get("methods", {})) - set(settings["methods"])      # methods this run does not measure
    rows = [Row.from_json_dict(r) for r in old.get("rows", [])]
    return [r for r in rows if r.method in same | other], float(old.get("wall_seconds", 0.0))


def main() -> None:
    p = harness.parser(__doc__, "robustness", keys=True)
    p.add_argument("--per-key", type=int, default=4)
    p.add_argument("--clean", type=int, default=12)
    p.add_argument("--seed", type=int, default=300_000, help="first seed of the generated references")
    p.add_argument("--references", help="a folder made by `generate` (manifest.json) instead of generating")
    p.add_argument("--steps", type=int, default=None, help="DDIM inversion steps (default the model's; the "
                   "shipped calibration applies only at the model's default settings)")
    p.add_argument("--method", default="encoder", help="decoder inversions, comma-separated")
    p.add_argument("--decoys", type=int, default=199)
    p.add_argument("--plan", choices=tuple(PLANS), default="small")
    p.add_argument("--fresh", action="store_true", help="replace earlier rows at --out instead of resuming")
    p.add_argument("--attacks", help="only these attacks of the plan (comma-separated), e.g. to split a plan "
                   "between processes (each with its own --out)")
    p.add_argument("--variants", help="only these variants (plain, realigned, restored; comma-separated)")
    p.add_argument("--no-baseline", action="store_true", help="leave out the unaltered row")
    p.add_argument("--restore-prior", choices=("autoencoder", "diffusion"), default="autoencoder",
                   help="the restored variant's prior (engine.restoration; its default iterations and weight)")
    p.add_argument("--strength-index", help="only these of each attack's strengths in the plan, 0-based and "
                   "comma-separated (e.g. 0: the mildest)")
    args = p.parse_args()

    from engine.model_loader import load_model
    from engine.options import AnalysisOptions
    from engine.realignment import SearchConfig
    from engine.restoration import restoration_config
    from engine.robustness import StudyConfig, load_references, plot_rows, rows_markdown, run_study
    from engine.atomic_write import write_text_atomic
    from engine.robustness_verdicts import study_calibration
    from engine.treering import KeySet

    started = time.time()
    model = load_model(args.model, device=args.device)
    keys = KeySet.load(args.keys)
    config = AnalysisOptions(methods=tuple(m.strip() for m in args.method.split(",") if m.strip()),
                             steps=args.steps).to_config(model)
    calibration = study_calibration(model, keys, config)
    if args.references:
        refs, references = load_references(args.references, model), f"the generate folder {args.references}"
    else:
        refs, cache = cached_references(model, keys, args.per_key, args.clean, args.seed)
        references = f"generated in memory, seeds from {args.seed} (cached as {cache.name})"
    positives, negatives = sum(r.key_id is not None for r in refs), sum(r.key_id is None for r in refs)
    search = SearchConfig(rotations=(-30.0, -20.0, -10.0, 10.0, 20.0, 30.0), crop_sides=(0.75, 0.8, 0.9),
                          decoys=args.decoys)
    base_study = StudyConfig(search=search, restoration=restoration_config(args.restore_prior))
    settings = study_settings(model, keys, config, calibration, search, base_study.restoration, references)
    stem = harness.out_stem(args)
    json_path = stem.parent / (stem.name + ".json")
    rows, earlier_seconds = ([], 0.0) if args.fresh else resumable_rows(json_path, settings)
    if rows:
        print(f"resuming: {len(rows)} row(s) already in {json_path}", flush=True)
    order = [("none", 0.0)] + [(a, float(s)) for a, strengths, _ in PLANS[args.plan] for s in strengths]
    methods = list(config.methods)

    def rank(r):
        where = order.index((r.attack, float(r.strength))) if (r.attack, float(r.strength)) in order else len(order)
        return where, methods.index(r.method) if r.method in methods else len(methods), r.variant != "plain"

    def write():
        rows.sort(key=rank)
        summary = {**harness.provenance(started - earlier_seconds), "model": args.model, "keys": list(keys.ids), "plan": args.plan,
                   "per_key": args.per_key, "clean": args.clean, "references": references,
                   "steps": config.diffusion.steps, "methods": methods,
                   "calibration": calibration.to_json_dict(), "study_settings": settings,
                   "rows": [r.to_json_dict() for r in rows]}
        lines = [f"# Robustness on `{args.model}` ({', '.join(methods)}, {config.diffusion.steps} DDIM "
                 f"inversion steps, plan {args.plan})", "", harness.command_line(summary), "",
                 f"{positives} watermarked images ({len(keys)} keys) and {negatives} clean, {references}; nominal "
                 f"FPR {config.fpr:g}. Conclusions: "
                 + "; ".join(f"{m} {calibration.status(m)}" for m in methods) + ".", "",
                 *rows_markdown(rows)]
        stem.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(json_path, json.dumps(summary, indent=1))
        write_text_atomic(stem.parent / (stem.name + ".md"), "\n".join(lines) + "\n")
        plot_rows(rows, stem.parent / (stem.name + ".png"))

    def finished(r):
        rows.append(r)
        write()
        print(f"{r.attack} {r.parameter} {r.method} {r.variant}: ident {r.identification:.2f} AUC {r.auc:.3f} "
              f"null {r.null_flagged}/{r.negatives} | conclusion: detected {r.verdict_detected:.2f} identified "
              f"{r.verdict_identified:.2f} wrong {r.verdict_wrong_key} null {r.verdict_null_flagged}/{r.negatives} "
              f"(outside {r.verdict_null_outside})", flush=True)

    done = {r.key for r in rows}
    first = not args.no_baseline
    wanted_attacks = set(args.attacks.split(",")) if args.attacks else None
    wanted_variants = set(args.variants.split(",")) if args.variants else None
    wanted_levels = {int(i) for i in args.strength_index.split(",")} if args.strength_index else None
    for attack, strengths, variants in PLANS[args.plan]:
        if wanted_attacks is not None and attack not in wanted_attacks:
            continue
        if attack == "regeneration" and model.kind != "ddim":
            print(f"regeneration skipped: implemented for multi-step (DDIM) models, not {model.kind!r}", flush=True)
            continue
        variants = tuple(v for v in variants if wanted_variants is None or v in wanted_variants)
        if not variants:
            continue
        if wanted_levels is not None:
            strengths = tuple(s for i, s in enumerate(strengths) if i in wanted_levels)
            if not strengths:
                continue
        study = StudyConfig(attacks=(attack,), strengths=strengths, variants=variants, search=search,
                            restoration=base_study.restoration)
        run_study(model, keys, refs, config, study, on_row=finished, include_baseline=first,
                  calibration=calibration, skip=done)
        first = False
    write()


if __name__ == "__main__":
    main()
