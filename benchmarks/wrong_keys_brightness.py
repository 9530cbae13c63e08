"""The wrong keys named under a brightness change (issue #17's robustness row "brightness ×2" on `demo`, encoder):
per watermarked image, the conclusion a scan would draw on the brightened pixels (shipped calibration), the share
of clipped pixels, and the recovered noise's coverage statistics; which images were named a wrong key.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/wrong_keys_brightness.py --factor 2

The references are the robustness benchmark's (`benchmarks/robustness.py`'s cache, 50 per key, seeds 300000…).
"""

from __future__ import annotations

import time

import numpy as np
import torch

import harness


def main() -> None:
    p = harness.parser(__doc__, "wrong_keys_brightness", keys=True)
    p.add_argument("--factor", type=float, default=2.0, help="brightness factor (1 to 2, WAVES' range)")
    args = p.parse_args()

    from engine.attacks import ATTACKS, Attack
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
    config = AnalysisOptions(methods=("encoder",)).to_config(model)
    choice = study_calibration(model, keys, config)
    refs, cache = cached_references(model, keys, 50, 150, 300_000)
    marked = [r for r in refs if r.key_id is not None]
    spec = ATTACKS["brightness"]
    strength = (args.factor - spec.low) / (spec.high - spec.low)
    attacked = np.stack([Attack("brightness", strength, seed=r.seed).apply(r.pixels) for r in marked])
    x = torch.from_numpy(attacked.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1)
    z = recover_z_t(model, x, "encoder", config)
    conclusions = latent_conclusions(keys, z, x, config, "encoder", choice.for_method("encoder"))
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
    summary = {**harness.provenance(started), "model": args.model, "factor": args.factor, "references": cache.name,
               "calibration": choice.to_json_dict(), "watermarked": len(rows), "named": len(named),
               "wrong": len(wrong), "rows": rows}
    lines = [f"# Wrong keys under brightness ×{args.factor:g} (`{args.model}`, encoder, shipped calibration)", "",
             harness.command_line(summary), "",
             f"{len(rows)} watermarked images ({cache.name}); a key named for {len(named)}, a wrong key for "
             f"{len(wrong)}.", "",
             "| seed | true key | named | runner-up p | clipped share | clipped share unaltered | outside calibration |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['seed']} | {r['key']} | {r['named']} | {r['runner_up_p']:.3g} | {r['clipped_share']:.2f} | "
              f"{r['clipped_share_unaltered']:.2f} | {r['calibration'] == 'outside calibration'} |"
              for r in sorted(named, key=lambda r: r["named"] == r["key"])]
    harness.write_results(harness.out_stem(args), summary, lines)


if __name__ == "__main__":
    main()
