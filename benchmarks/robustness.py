"""Robustness of detection and identification under attacks, plain vs re-aligned vs restored, with the
null-control FPR of every row (engine.robustness).

    nice -n 10 .venv/bin/python benchmarks/robustness.py --model demo --per-key 4 --clean 12 --steps 10
    nice -n 10 .venv/bin/python benchmarks/robustness.py --model demo --per-key 6 --clean 18 --steps 10 \
        --plan strong --out benchmarks/results/robustness/robustness_demo_strong

Each attack has its own strengths ("small" plan: rotations of 10° and 20°, crops keeping 90 % and 80 % of the
side, JPEG 50 and 30, blur radius 1 and 2; "strong" plan: rotations of 10°, 20°, 30°, JPEG 20 and 10, blur radius
4 and 8, crops keeping 75 % of the side). The re-alignment searches rotations of
±10, ±20, ±30° for the rotation rows and crops of side 0.75, 0.8 and 0.9 at 3×3 positions for the crop rows
(the identity always; the first "small" run searched sides 0.8 and 0.9 only), with 199 decoy key sets. Results are rewritten after every row, so a stopped run keeps the
rows it finished.
"""

from __future__ import annotations

import time
from dataclasses import replace

import harness

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
}


def main() -> None:
    p = harness.parser(__doc__, "robustness", keys=True)
    p.add_argument("--per-key", type=int, default=4)
    p.add_argument("--clean", type=int, default=12)
    p.add_argument("--steps", type=int, default=None, help="DDIM inversion steps (default the model's)")
    p.add_argument("--method", default="encoder")
    p.add_argument("--decoys", type=int, default=199)
    p.add_argument("--plan", choices=tuple(PLANS), default="small")
    args = p.parse_args()

    from engine.model_loader import load_model
    from engine.options import AnalysisOptions
    from engine.realignment import SearchConfig
    from engine.robustness import StudyConfig, generate_references, plot_rows, rows_markdown, run_study
    from engine.treering import KeySet

    started = time.time()
    model = load_model(args.model, device=args.device)
    keys = KeySet.load(args.keys)
    config = AnalysisOptions(methods=tuple(args.method.split(",")), steps=args.steps).to_config(model)
    refs = generate_references(model, keys, args.per_key, args.clean)
    search = SearchConfig(rotations=(-30.0, -20.0, -10.0, 10.0, 20.0, 30.0), crop_sides=(0.75, 0.8, 0.9),
                          decoys=args.decoys)
    stem = harness.out_stem(args)
    rows = []

    def write():
        summary = {**harness.provenance(started), "model": args.model, "keys": list(keys.ids),
                   "per_key": args.per_key, "clean": args.clean, "steps": config.diffusion.steps,
                   "methods": list(config.methods), "rows": [r.to_json_dict() for r in rows]}
        lines = [f"# Robustness on `{args.model}` ({', '.join(config.methods)}, {config.diffusion.steps} DDIM "
                 f"inversion steps)", "", harness.command_line(summary), "",
                 f"{args.per_key} watermarked images per key ({args.per_key * len(keys)}) and {args.clean} clean, "
                 f"generated in memory (seeds from 300000); nominal FPR {config.fpr:g}.", "",
                 *rows_markdown(rows)]
        harness.write_results(stem, summary, lines, echo=False)
        plot_rows(rows, stem.parent / (stem.name + ".png"))

    first = True
    for attack, strengths, variants in PLANS[args.plan]:
        study = StudyConfig(attacks=(attack,), strengths=strengths, variants=variants, search=search)
        for row in run_study(model, keys, refs, config, study, on_row=lambda r: (rows.append(r), write(),
                             print(f"{r.attack} {r.parameter} {r.variant}: ident {r.identification:.2f} "
                                   f"AUC {r.auc:.3f} null {r.null_flagged}/{r.negatives}", flush=True)),
                             include_baseline=first):
            pass
        first = False


if __name__ == "__main__":
    main()
