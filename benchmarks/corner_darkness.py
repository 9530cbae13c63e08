"""What a rotation leaves in the corners after a blur, noise or a JPEG: the pure-black share (`corner_fill`, the
trace the corner nulls gate on) and the dark share (`dark_corners`, ≤ 32/255, the candidate trace) of the
robustness benchmark's references (150 clean, 50 per key watermarked, seeds 300000…), unaltered and under
rotations with a crop between the plan's blurs (docs/algorithms.md §4.4); no inversion, pixels only. "Some": images
with more than the median of the same images unaltered, the trace rule's baseline
(`engine.calibration_making.alteration_traces`).

    .venv/bin/python benchmarks/corner_darkness.py --model demo-flow
"""

from __future__ import annotations

import time

import numpy as np

import harness

CONDITIONS = (("clean", "none", 0.0), ("watermarked", "none", 0.0),
              ("clean", "rotation+resizedcrop+blur@0.05", 0.15), ("clean", "rotation+resizedcrop+blur@0.05", 0.2),
              ("clean", "rotation+resizedcrop+blur@0.05+noise", 0.2), ("clean", "rotation+resizedcrop+jpeg", 0.2),
              ("clean", "rotation+resizedcrop+blur@0.075", 0.2), ("clean", "rotation+resizedcrop+blur", 0.1),
              ("clean", "rotation+resizedcrop+blur@0.1", 0.2), ("clean", "rotation+resizedcrop+blur@0.1+noise", 0.2),
              ("clean", "rotation+resizedcrop+blur@0.1", 0.3), ("clean", "rotation+resizedcrop+blur@0.15", 0.2),
              ("clean", "rotation+resizedcrop+blur@0.15", 0.3), ("clean", "rotation+resizedcrop+blur", 0.2),
              ("clean", "combo-all", 0.2), ("clean", "blur", 0.15))


def main() -> None:
    p = harness.parser(__doc__, "corner_darkness", keys=True)
    args = p.parse_args()
    started = time.time()

    from engine.attacks import apply_attacks, combined, describe_parameters
    from engine.model_loader import load_model
    from engine.noise_statistics import corner_fill, dark_corners
    from engine.pixel_levels import from_uint8
    from engine.treering import KeySet
    from robustness import cached_references

    model = load_model(args.model, device=args.device)
    refs, cache = cached_references(model, KeySet.load(args.keys), 50, 150, 300_000)
    groups = {"clean": [r for r in refs if r.key_id is None], "watermarked": [r for r in refs if r.key_id is not None]}
    rows, baseline = [], {}
    for group, name, strength in CONDITIONS:
        x = from_uint8(np.stack([r.pixels if name == "none" else apply_attacks(r.pixels, combined(name, strength, r.seed))
                                 for r in groups[group]]))
        row = {"group": group, "alteration": name, "strength": strength, "images": len(x),
               "parameters": "as generated" if name == "none" else describe_parameters(combined(name, strength))}
        for trace, of in (("corner_fill", corner_fill), ("dark_corners", dark_corners)):
            v = np.array([of(xi) for xi in x])
            if group == "clean" and name == "none":
                baseline[trace] = float(np.median(v))
            row[trace] = {"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max()),
                          "some": int((v > baseline[trace]).sum())}
        rows.append(row)
    lines = [f"# Pure-black and dark corners after a rotation (`{args.model}`, pixels only)", "",
             harness.command_line(harness.provenance(started)), "",
             f"References: {cache.name}. Corner squares of side 1/6; pure black ≤ 2/255, dark ≤ 32/255 in every "
             "channel. *Some*: images above the median of the clean images unaltered "
             f"(pure black {baseline['corner_fill']:g}, dark {baseline['dark_corners']:g}).", "",
             "| images | alteration | parameters | pure black min / median / max | some | dark min / median / max | some |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        c, d = r["corner_fill"], r["dark_corners"]
        lines.append(f"| {r['group']} | {r['alteration']} {r['strength']:g} | {r['parameters']} | "
                     f"{c['min']:.4f} / {c['median']:.4f} / {c['max']:.4f} | {c['some']}/{r['images']} | "
                     f"{d['min']:.4f} / {d['median']:.4f} / {d['max']:.4f} | {d['some']}/{r['images']} |")
    harness.write_results(harness.out_stem(args), {**harness.provenance(started), "model": args.model,
                                                   "references": cache.name, "rows": rows}, lines)


if __name__ == "__main__":
    main()
