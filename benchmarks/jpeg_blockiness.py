"""Can the pixels tell that an exhibit was JPEG-compressed? A candidate coverage statistic for the identification
test (issue #17: the gradient-free JPEG 30 row named a wrong key for 1 of 150 watermarked `demo` images, inside
every coverage range the calibration checks, benchmarks/results/wrong_keys/).

The statistic (`engine.noise_statistics.block_artifacts`): on the luma of the image as analysed, the mean absolute
difference across the 8×8 block boundaries over the mean absolute difference inside the blocks (≈ 1 for an image
that never was a JPEG; above 1 when JPEG's block grid shows). It is measured here on the robustness benchmark's references (50 per key and 150 clean, seeds
300000…, all 300 images), unaltered and under the robustness table's attacks; no inversion, pixels only.

    .venv/bin/python benchmarks/jpeg_blockiness.py --out benchmarks/results/jpeg_blockiness/jpeg_blockiness_demo
"""

from __future__ import annotations

import time

import numpy as np

import harness

CONDITIONS = (("none", 0.0), ("jpeg", 0.25), ("jpeg", 0.5), ("jpeg", 0.75), ("blur", 0.05), ("blur", 0.1),
              ("blur", 0.2), ("downscale", 1 / 3), ("downscale", 2 / 3), ("noise", 0.5), ("brightness", 0.5),
              ("contrast", 0.5), ("resizedcrop", 0.38), ("erasing", 0.4), ("downscale+jpeg", 0.5))


def blockiness(rgb: np.ndarray) -> float:
    """(H, W, 3) uint8 → the engine's statistic (`engine.noise_statistics.block_artifacts`) of the image as analysed."""
    from engine.noise_statistics import block_artifacts
    from engine.pixel_levels import from_uint8

    return block_artifacts(from_uint8(rgb[None])[0])


def main() -> None:
    p = harness.parser(__doc__, "jpeg_blockiness", keys=True)
    args = p.parse_args()
    started = time.time()

    from engine.attacks import apply_attacks, combined, describe_parameters
    from engine.model_loader import load_model
    from engine.treering import KeySet
    from robustness import cached_references

    model = load_model(args.model, device=args.device)
    refs, cache = cached_references(model, KeySet.load(args.keys), 50, 150, 300_000)
    values = {(name, strength): np.array([blockiness(r.pixels if name == "none" else
                                                   apply_attacks(r.pixels, combined(name, strength, r.seed)))
                                          for r in refs]) for name, strength in CONDITIONS}
    top = float(values[("none", 0.0)].max())
    rows = [{"attack": name, "strength": strength,
             "parameter": "unaltered" if name == "none" else describe_parameters(combined(name, strength)),
             "min": float(v.min()), "p5": float(np.percentile(v, 5)), "median": float(np.median(v)),
             "p95": float(np.percentile(v, 95)), "max": float(v.max()), "above_unaltered_max": int((v > top).sum())}
            for (name, strength), v in values.items()]
    lines = [f"# JPEG block artefacts in the pixels (`{args.model}`, {len(refs)} reference images)", "",
             harness.command_line({**harness.provenance(started)}), "",
             f"References: {cache.name}. Statistic: boundary / interior mean absolute luma difference of the 8×8 "
             "grid. \"Above\": images whose value exceeds the largest unaltered one "
             f"({top:.3f}), i.e. would lie beyond a coverage range drawn from these unaltered images.", "",
             "| condition | min | 5 % | median | 95 % | max | above the unaltered maximum |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['parameter'] if r['attack'] == 'none' else r['attack'] + ' ' + r['parameter']} | "
              f"{r['min']:.3f} | {r['p5']:.3f} | {r['median']:.3f} | {r['p95']:.3f} | {r['max']:.3f} | "
              f"{r['above_unaltered_max']}/{len(refs)} |" for r in rows]
    harness.write_results(harness.out_stem(args), {**harness.provenance(started), "model": args.model,
                                                   "references": cache.name, "rows": rows}, lines)


if __name__ == "__main__":
    main()
