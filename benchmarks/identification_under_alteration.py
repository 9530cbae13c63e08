"""Keys named, and wrong keys named, on altered watermarked images: a calibration against the same calibration as
conclusions used it before session 9 — without the clipped-pixel coverage (engine/noise_statistics.py) and without
an identification null under alteration (engine/altered_calibration.py) — on the same images.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/identification_under_alteration.py --method encoder
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/identification_under_alteration.py --method gradient-free \\
        --conditions none,brightness:0.75,brightness:1.0

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
    p.add_argument("--label", default="", help="a name for the results (default: the model and method)")
    args = p.parse_args()

    from dataclasses import replace

    from engine.attacks import Attack
    from engine.model_loader import load_model
    from engine.options import AnalysisOptions
    from engine.pixel_levels import from_uint8
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
    if with_altered is None:
        raise SystemExit(f"no calibration applies to {args.method} on {args.model}")
    without = replace(with_altered, identification_null_altered={},
                      coverage={k: v for k, v in with_altered.coverage.items() if k != "clipped_share"})
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
        x = torch.from_numpy(from_uint8(pixels))
        z = recover_z_t(model, x, args.method, config)
        row = {"condition": "unaltered" if attack is None else f"{attack.name} {attack.parameter:g}",
               "images": len(marked)}
        for label, cal in (("with", with_altered), ("without", without)):
            cs = latent_conclusions(keys, z, x, config, args.method, cal)
            named = [c.outcome == "identified" for c in cs]
            wrong = [c.outcome == "identified" and c.key != r.key_id for c, r in zip(cs, marked)]
            row[label] = {"named": int(sum(named)), "wrong": int(sum(wrong)),
                          "detected": int(sum(c.detected and c.calibration != "outside calibration" for c in cs)),
                          "outside": int(sum(c.calibration == "outside calibration" for c in cs)),
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
               "clipped_share_range": with_altered.coverage.get("clipped_share"),
               "rows": rows}

    def count(k: int, n: int) -> str:
        lo, hi = clopper_pearson(k, n)
        return f"{k}/{n} [{lo:.3f}, {hi:.3f}]"

    lines = [f"# Keys named on altered watermarked images (`{args.model}`, {args.method})", "",
             harness.command_line(summary), "",
             f"{len(marked)} watermarked images per condition ({cache.name}; seeds disjoint from the calibration's). "
             f"*Now*: {choice.calibration.describe()} — clipped-pixel coverage "
             f"{'[%.3g, %.3g]' % with_altered.coverage['clipped_share'] if 'clipped_share' in with_altered.coverage else 'none'}; "
             f"identification null under {len(with_altered.identification_null_altered)} simulated alterations "
             f"({sum(map(len, with_altered.identification_null_altered.values()))} values). *Before*: the same "
             "calibration without either. Counts with 95 % Clopper–Pearson intervals; McNemar's exact test on the "
             "images named under one rule only.", "",
             "| condition | defended, now | outside, now | key named, now | wrong key, now | defended, before | "
             "key named, before | wrong key, before | McNemar p |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        n, a, b = r["images"], r["with"], r["without"]
        lines.append(f"| {r['condition']} | {a['detected']}/{n} | {a['outside']}/{n} | {count(a['named'], n)} | "
                     f"{count(a['wrong'], n)} | {b['detected']}/{n} | {count(b['named'], n)} | "
                     f"{count(b['wrong'], n)} | {r['mcnemar_p']:.2g} |")
    name = args.label or f"{args.model}_{args.method}"
    harness.write_results(harness.out_stem(args, f"identification_under_alteration_{name}"), summary, lines)


if __name__ == "__main__":
    main()
