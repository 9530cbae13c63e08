"""Keys named, and wrong keys named, on altered watermarked images: the shipped calibration with its identification
null under alteration (engine/altered_calibration.py) against the same calibration without it, on the same images.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/identification_under_alteration.py --method encoder
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/identification_under_alteration.py --method gradient-free \\
        --conditions none,brightness:1.0

The images are the robustness benchmark's references (`benchmarks/robustness.py`'s cache: 50 per key, seeds
300000…), disjoint from the calibration's seeds (100000…): an out-of-sample check. Conditions are
`attack:strength` (relative strength, as `engine.attacks.Attack` takes it) or `none`; brightness 1.75
(strength 0.75) lies between the strengths the calibration simulates.
"""

from __future__ import annotations

import time

import numpy as np
import torch

import harness

DEFAULT_CONDITIONS = ("none,brightness:0.5,brightness:0.75,brightness:1.0,contrast:1.0,resizedcrop:0.38,"
                      "resizedcrop:0.72,jpeg:0.75,blur:0.2,noise:1.0,downscale:1.0,erasing:0.8")


def main() -> None:
    p = harness.parser(__doc__, "identification_under_alteration", keys=True)
    p.add_argument("--method", default="encoder")
    p.add_argument("--conditions", default=DEFAULT_CONDITIONS)
    p.add_argument("--calibration", help="a calibration file instead of the one shipped for the model")
    args = p.parse_args()

    from dataclasses import replace

    from engine.attacks import Attack
    from engine.model_loader import load_model
    from engine.options import AnalysisOptions
    from engine.rates import clopper_pearson
    from engine.recovery import recover_z_t
    from engine.calibration import choose_calibration
    from engine.robustness_verdicts import latent_conclusions
    from engine.treering import KeySet
    from robustness import cached_references
    from scipy import stats

    started = time.time()
    model = load_model(args.model, device=args.device)
    keys = KeySet.load(args.keys)
    config = AnalysisOptions(methods=(args.method,)).to_config(model)
    choice = choose_calibration(model, keys, config, path=args.calibration)
    with_altered = choice.for_method(args.method)
    if with_altered is None or not with_altered.identification_null_altered:
        raise SystemExit(f"the shipped {args.model} calibration has no identification null under alteration for "
                         f"{args.method}")
    without = replace(with_altered, identification_null_altered={})
    refs, cache = cached_references(model, keys, 50, 150, 300_000)
    marked = [r for r in refs if r.key_id is not None]
    rows = []
    for condition in args.conditions.split(","):
        t = time.time()
        if condition == "none":
            attack, pixels = None, np.stack([r.pixels for r in marked])
        else:
            name, strength = condition.split(":")
            attack = Attack(name, float(strength))
            pixels = np.stack([Attack(name, float(strength), seed=r.seed).apply(r.pixels) for r in marked])
        x = torch.from_numpy(pixels.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1)
        z = recover_z_t(model, x, args.method, config)
        row = {"condition": "unaltered" if attack is None else f"{attack.name} {attack.parameter:g}",
               "images": len(marked)}
        for label, cal in (("with", with_altered), ("without", without)):
            cs = latent_conclusions(keys, z, x, config, args.method, cal)
            named = [c.outcome == "identified" for c in cs]
            wrong = [c.outcome == "identified" and c.key != r.key_id for c, r in zip(cs, marked)]
            row[label] = {"named": int(sum(named)), "wrong": int(sum(wrong)),
                          "detected": int(sum(c.detected and c.calibration != "outside calibration" for c in cs)),
                          "named_per_image": named, "wrong_per_image": wrong}
        # McNemar (exact) on the images named under one rule and not the other
        a = np.array(row["without"]["named_per_image"]) & ~np.array(row["with"]["named_per_image"])
        b = np.array(row["with"]["named_per_image"]) & ~np.array(row["without"]["named_per_image"])
        row["mcnemar_p"] = float(stats.binomtest(int(a.sum()), int(a.sum() + b.sum())).pvalue) if a.sum() + b.sum() else 1.0
        row["seconds"] = time.time() - t
        rows.append(row)
        print(row["condition"], {k: (row[k]["named"], row[k]["wrong"]) for k in ("with", "without")}, flush=True)
    summary = {**harness.provenance(started), "model": args.model, "method": args.method, "references": cache.name,
               "calibration": choice.to_json_dict(),
               "altered_null_sizes": {k: len(v) for k, v in with_altered.identification_null_altered.items()},
               "rows": rows}

    def count(k: int, n: int) -> str:
        lo, hi = clopper_pearson(k, n)
        return f"{k}/{n} [{lo:.3f}, {hi:.3f}]"

    lines = [f"# Keys named on altered watermarked images (`{args.model}`, {args.method})", "",
             harness.command_line(summary), "",
             f"{len(marked)} watermarked images per condition ({cache.name}; seeds disjoint from the calibration's). "
             f"*With*: the shipped calibration ({choice.calibration.describe()}), whose identification null includes "
             f"its watermarked images under {len(with_altered.identification_null_altered)} simulated alterations; "
             "*without*: the same calibration with that null removed (the rule before). Counts with 95 % "
             "Clopper–Pearson intervals; McNemar's exact test on the images named under one rule only.", "",
             "| condition | detected (defended) | key named, with | wrong key, with | key named, without | "
             "wrong key, without | McNemar p |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        n = r["images"]
        lines.append(f"| {r['condition']} | {r['with']['detected']}/{n} | {count(r['with']['named'], n)} | "
                     f"{count(r['with']['wrong'], n)} | {count(r['without']['named'], n)} | "
                     f"{count(r['without']['wrong'], n)} | {r['mcnemar_p']:.2g} |")
    harness.write_results(harness.out_stem(args, f"identification_under_alteration_{args.model}_{args.method}"),
                          summary, lines)


if __name__ == "__main__":
    main()
