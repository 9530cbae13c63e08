"""The wrong keys named under an attack (issue #17's robustness rows, e.g. "brightness ×2" with the encoder or "JPEG
30" with the gradient-free inversion on `demo`): per watermarked image, the conclusion a scan would draw on the
altered pixels (shipped calibration), the share of clipped pixels, and the recovered noise's coverage statistics;
which images were named a wrong key, and how close the key test came.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/wrong_keys.py --attack brightness --strength 1 \
        --out benchmarks/results/wrong_keys_brightness/wrong_keys_brightness_demo
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/wrong_keys.py --attack jpeg --strength 0.75 --method gradient-free \
        --out benchmarks/results/wrong_keys/wrong_keys_demo_gradient_free_jpeg30

The references are the robustness benchmark's (`benchmarks/robustness.py`'s cache, 50 per key, seeds 300000…),
attacked exactly as there (`engine.attacks.combined` with each reference's seed). The first run (session 8) was
`wrong_keys_brightness.py --factor 2`, the same as the first command above.
"""

from __future__ import annotations

import time

import numpy as np
import torch

import harness


def main() -> None:
    p = harness.parser(__doc__, "wrong_keys", keys=True)
    p.add_argument("--attack", default="brightness", help="an attack or combination of engine.attacks")
    p.add_argument("--strength", type=float, default=1.0, help="its relative strength (WAVES' scale, 0 to 1)")
    p.add_argument("--method", default="encoder")
    args = p.parse_args()

    from engine.attacks import apply_attacks, combined, describe_parameters
    from engine.model_loader import load_model
    from engine.noise_statistics import evidence_statistics, key_region, noise_statistics
    from engine.options import AnalysisOptions
    from engine.recovery import recover_z_t
    from engine.robustness_verdicts import latent_conclusions, study_calibration
    from engine.treering import KeySet
    from robustness import cached_references

    started = time.time()
    model = load_model(args.model, device=args.device)
    keys = KeySet.load(args.keys)
    config = AnalysisOptions(methods=(args.method,)).to_config(model)
    choice = study_calibration(model, keys, config)
    refs, cache = cached_references(model, keys, 50, 150, 300_000)
    marked = [r for r in refs if r.key_id is not None]
    attacked = np.stack([apply_attacks(r.pixels, combined(args.attack, args.strength, r.seed)) for r in marked])
    x = torch.from_numpy(attacked.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1)
    z = recover_z_t(model, x, args.method, config)
    conclusions = latent_conclusions(keys, z, x, config, args.method, choice.for_method(args.method))
    parameter = describe_parameters(combined(args.attack, args.strength))
    region = key_region(keys)
    rows = []
    for r, img, zi, xi, c in zip(marked, attacked, z.numpy(), x.numpy(), conclusions):
        rows.append({"seed": r.seed, "key": r.key_id, "outcome": c.outcome, "named": c.key,
                     "candidates": list(c.candidates), "detection_p": c.detection_p,
                     "runner_up_p": c.identification_p, "calibration": c.calibration,
                     "clipped_share": float((img >= 254).any(-1).mean()),
                     "clipped_share_unaltered": float((r.pixels >= 254).any(-1).mean()),
                     **{f"noise_{k}": v for k, v in {**noise_statistics(zi, region).values,
                                                       **evidence_statistics(xi)}.items()}})
    named = [r for r in rows if r["outcome"] == "identified"]
    wrong = [r for r in named if r["named"] != r["key"]]
    summary = {**harness.provenance(started), "model": args.model, "attack": args.attack, "strength": args.strength,
               "parameter": parameter, "method": args.method, "references": cache.name,
               "calibration": choice.to_json_dict(), "watermarked": len(rows), "named": len(named),
               "wrong": len(wrong), "rows": rows}
    lines = [f"# Wrong keys under {args.attack} {parameter} (`{args.model}`, {args.method}, shipped calibration)", "",
             harness.command_line(summary), "",
             f"{len(rows)} watermarked images ({cache.name}); a key named for {len(named)}, a wrong key for "
             f"{len(wrong)}.", "",
             "| seed | true key | named | detection p | runner-up p | clipped share | clipped share unaltered | "
             "outside calibration |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['seed']} | {r['key']} | {r['named']} | {r['detection_p']:.3g} | {r['runner_up_p']:.3g} | "
              f"{r['clipped_share']:.2f} | {r['clipped_share_unaltered']:.2f} | "
              f"{r['calibration'] == 'outside calibration'} |"
              for r in sorted(named, key=lambda r: r["named"] == r["key"])]
    harness.write_results(harness.out_stem(args), summary, lines)


if __name__ == "__main__":
    main()
