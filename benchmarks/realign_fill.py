"""How the re-alignment search fills the area a rotation candidate leaves uncovered: black (the search's default)
against the model's autoencoder inpainting it ("inpaint", `engine.realignment.inpaint_uncovered`), on the
candidate that exactly undoes the rotation (the search's best case: no candidate selection), encoder inversion.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/realign_fill.py --per-key 25 --clean 75 --angles 10,20,30

Per angle and fill: nearest-key identification on the watermarked images, detection AUC against the rotated
clean images, the rotated clean images the analytic test flags (Bonferroni over the keys at 0.01: how far the
per-candidate p-values the search's Bonferroni correction relies on are from valid), and the decoy-key p-value
of this one candidate (199 decoy key sets) at 0.01 on both. The references are the robustness benchmark's
(`benchmarks/robustness.py`'s cache: the first images of each key and of the clean ones).
"""

from __future__ import annotations

import time

import numpy as np
import torch

import harness


def main() -> None:
    p = harness.parser(__doc__, "realign_fill", keys=True)
    p.add_argument("--per-key", type=int, default=25)
    p.add_argument("--clean", type=int, default=75)
    p.add_argument("--angles", default="10,20,30")
    p.add_argument("--decoys", type=int, default=199)
    args = p.parse_args()

    from engine.attacks import Attack
    from engine.decoys import decoy_p_value, decoy_statistics, draw_decoy_sets, p_value_matrix, search_statistic
    from engine.model_loader import load_model
    from engine.options import AnalysisOptions
    from engine.rates import auc
    from engine.realignment import Transform, apply_transforms, inpaint_uncovered
    from engine.recovery import recover_z_t
    from engine.treering import KeySet
    from robustness import cached_references

    started = time.time()
    model = load_model(args.model, device=args.device)
    keys = KeySet.load(args.keys)
    config = AnalysisOptions(methods=("encoder",)).to_config(model)
    refs, cache = cached_references(model, keys, 50, 150, 300_000)
    chosen = [r for k in keys.ids for r in [r for r in refs if r.key_id == k][:args.per_key]]
    chosen += [r for r in refs if r.key_id is None][:args.clean]
    truth = [r.key_id for r in chosen]
    marked = np.array([t is not None for t in truth])
    decoys = draw_decoy_sets(keys, args.decoys, 0)
    rows = []
    for angle in (float(a) for a in args.angles.split(",")):
        fills = {"black": Transform(angle=-angle, fill="black"), "inpaint": Transform(angle=-angle, fill="inpaint")}
        p = {f: [] for f in fills}
        decoy_p = {f: [] for f in fills}
        for r in chosen:
            attacked = Attack("rotation", angle / 45, seed=r.seed).apply(r.pixels)
            x = torch.from_numpy(attacked.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1)
            transforms = tuple(fills.values())
            candidates = inpaint_uncovered(model, apply_transforms(x, transforms), transforms)
            z = recover_z_t(model, candidates, "encoder", config)
            for i, f in enumerate(fills):
                pi = p_value_matrix(z[i:i + 1], keys.keys, config.score_target)
                p[f].append(pi[0])
                decoy_p[f].append(decoy_p_value(search_statistic(pi), decoy_statistics(z[i:i + 1], decoys)))
        for f in fills:
            ps, dp = np.array(p[f]), np.array(decoy_p[f])
            mins = ps.min(axis=1)
            nearest = [keys.ids[int(np.argmin(row))] for row in ps]
            row = {"angle": angle, "fill": f, "watermarked": int(marked.sum()), "clean": int((~marked).sum()),
                   "identification": float(np.mean([n == t for n, t, m in zip(nearest, truth, marked) if m])),
                   "auc": auc(-np.log(mins[marked]), -np.log(mins[~marked])),
                   "clean_flagged_analytic": int((np.minimum(1, len(keys) * mins[~marked]) <= 0.01).sum()),
                   "watermarked_flagged_analytic": int((np.minimum(1, len(keys) * mins[marked]) <= 0.01).sum()),
                   "decoy_detected": int((dp[marked] <= 0.01).sum()), "decoy_clean_flagged": int((dp[~marked] <= 0.01).sum()),
                   "decoy_p_median_watermarked": float(np.median(dp[marked]))}
            rows.append(row)
            print(row, flush=True)
    summary = {**harness.provenance(started), "model": args.model, "keys": list(keys.ids), "references": cache.name,
               "per_key": args.per_key, "clean": args.clean, "decoys": args.decoys, "rows": rows}
    lines = [f"# Re-aligned rotations: black fill against inpainting (`{args.model}`, encoder)", "",
             harness.command_line(summary), "",
             f"{int(marked.sum())} watermarked, {int((~marked).sum())} clean images ({cache.name}); the candidate that "
             "exactly undoes each rotation; analytic: Bonferroni over the keys at 0.01; decoy: this candidate's "
             f"decoy-key p-value ({args.decoys} sets) at 0.01.", "",
             "| angle | fill | identification | AUC | clean flagged (analytic) | watermarked flagged (analytic) | "
             "decoy: watermarked detected | decoy: clean flagged | decoy p median (watermarked) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['angle']:g}° | {r['fill']} | {r['identification']:.2f} | {r['auc']:.3f} | "
              f"{r['clean_flagged_analytic']}/{r['clean']} | {r['watermarked_flagged_analytic']}/{r['watermarked']} | "
              f"{r['decoy_detected']}/{r['watermarked']} | {r['decoy_clean_flagged']}/{r['clean']} | "
              f"{r['decoy_p_median_watermarked']:.3g} |" for r in rows]
    harness.write_results(harness.out_stem(args), summary, lines)


if __name__ == "__main__":
    main()
