"""Which key the re-alignment search names after a rotation: the smallest p-value on the winning candidate
against the least-squares fit of each key's pattern to the latent area that candidate covers
(`engine.realignment.COVERED_FIT`, docs/algorithms.md §6), on the same searches, so the comparison is paired.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rotation_key_rule.py --model demo --angles 10,20,30

The watermarked robustness references (`benchmarks/robustness.py`'s cache: 50 per key, seeds 300000…) are rotated
as the robustness table's rotation rows rotate them and searched as those rows search them (rotations of ±10, ±20,
±30° and the identity, encoder); decoy keys are not drawn, as they do not change the key. Per angle: how often the
winner is the rotation that undoes the attack, nearest-key identification under each rule with a Wilson 95 %
interval, and an exact McNemar test on the images where the rules disagree. Clean images are not searched: the
rule changes which key is named, never the detection p-value. Per-image winners and keys are kept in the JSON.

`--at-undoing` instead inverts only the candidate that undoes each rotation (no candidate selection; `--angles`
may include 0) and compares there the smallest p-value, the rule (each key's pattern fitted at its best gain over
the covered latent), the same fit at the written gain, and that over the whole latent (what masking adds).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rotation_key_rule.py --at-undoing --angles 0,10,20,30 \
        --out benchmarks/results/rotation_key_rule/rotation_key_rule_demo_at_undoing
"""

from __future__ import annotations

import time

import numpy as np
import torch

import harness
from robustness import watermarked_references

SEARCH_ANGLES = (-30.0, -20.0, -10.0, 10.0, 20.0, 30.0)    # the robustness table's rotation search


def main() -> None:
    p = harness.parser(__doc__, "rotation_key_rule", keys=True)
    p.add_argument("--per-key", type=int, default=50)
    p.add_argument("--angles", default="10,20,30")
    p.add_argument("--method", default="encoder")
    p.add_argument("--at-undoing", action="store_true", help="only the undoing candidate; the rule's variants")
    args = p.parse_args()
    if args.at_undoing:
        return at_undoing(args)

    from engine.attacks import combined, apply_attacks
    from engine.pixel_levels import from_uint8
    from engine.rates import mcnemar
    from engine.realignment import COVERED_FIT, SearchConfig, realign

    started = time.time()
    model, keys, config, chosen, cache = watermarked_references(args)
    search = SearchConfig(families=("rotation",), rotations=SEARCH_ANGLES, decoys=0)
    rows, lines = [], []
    for angle in (float(a) for a in args.angles.split(",")):
        images = []
        for r in chosen:
            attacked = apply_attacks(r.pixels, combined("rotation", angle / 45, r.seed))
            result = realign(model, keys, from_uint8(attacked[None])[0], config, args.method, search)
            by_p = keys.ids[int(np.argmin(result.p_values[result.best_index]))]
            images.append({"seed": r.seed, "key": r.key_id, "winner_angle": result.best.angle,
                           "key_smallest_p": by_p, "key_rule": result.key_rule, "key_named": result.best_key})
            print(f"{angle:g}° seed {r.seed} {r.key_id}: winner {result.best.angle:g}°, p {by_p}, "
                  f"named {result.best_key} ({result.key_rule})", flush=True)
        n = len(images)
        right_p = np.array([i["key_smallest_p"] == i["key"] for i in images])
        right_fit = np.array([i["key_named"] == i["key"] for i in images])
        only_fit, only_p, paired_p = mcnemar(right_fit, right_p)
        rows.append({"angle": angle, "images": n,
                     "undoing_winner": sum(i["winner_angle"] == -angle for i in images),
                     "fit_used": sum(i["key_rule"] == COVERED_FIT for i in images),
                     "identified_smallest_p": int(right_p.sum()), "identified_named": int(right_fit.sum()),
                     "only_smallest_p": only_p, "only_named": only_fit, "mcnemar_p": paired_p, "per_image": images})
    summary = {**harness.provenance(started), "model": args.model, "method": args.method, "keys": list(keys.ids),
               "references": cache.name, "per_key": args.per_key, "search_angles": list(SEARCH_ANGLES),
               "rows": rows}
    lines = [f"# The key the re-alignment search names after a rotation (`{args.model}`, {args.method})", "",
             harness.command_line(summary), "",
             f"{len(chosen)} watermarked references ({args.per_key} per key, {cache.name}), rotated and searched "
             f"over {', '.join(f'{a:g}' for a in SEARCH_ANGLES)}° and the identity. *Smallest p*: the key of the "
             "winning candidate's smallest p-value (the rule before). *Named*: the key the search names now (the "
             "covered-area fit where the winner rotates, else the smallest p). McNemar: exact, on the images where "
             "the two disagree.", "",
             "| rotation | images | winner undoes it | fit used | identified, smallest p (95 % CI) | "
             "identified, named (95 % CI) | only smallest p right | only named right | McNemar p |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        n = r["images"]
        cells = []
        for k in (r["identified_smallest_p"], r["identified_named"]):
            cells.append(f"{k} = {harness.rate_cell(k, n)}")
        lines.append(f"| {r['angle']:g}° | {n} | {r['undoing_winner']} | {r['fit_used']} | {cells[0]} | {cells[1]} | "
                     f"{r['only_smallest_p']} | {r['only_named']} | {r['mcnemar_p']:.2g} |")
    harness.write_results(harness.out_stem(args), summary, lines)


def variant_keys(z: torch.Tensor, keys, patterns: np.ndarray, covered: np.ndarray, target: str) -> dict[str, int]:
    """The key index each variant picks for one (C, h, w) latent; patterns: (K, h, w), the keys' `key_pattern`."""
    from engine.treering_scoring import covered_key_residuals

    zc = z[keys.keys[0].channel].numpy()
    return {"pattern fit (the rule)": int(np.argmin(covered_key_residuals(z, keys, covered, target))),
            "fit without gain": int(np.argmin(((zc[covered][None] - patterns[:, covered]) ** 2).sum(1))),
            "whole-latent fit without gain": int(np.argmin(((zc[None] - patterns) ** 2).sum((1, 2))))}


def at_undoing(args) -> None:
    from engine.attacks import apply_attacks, combined
    from engine.decoys import p_value_matrix
    from engine.pixel_levels import from_uint8
    from engine.rates import mcnemar
    from engine.realignment import Transform, apply_transforms, covered_latent
    from engine.recovery import recover_z_t
    from engine.treering_scoring import key_pattern

    started = time.time()
    model, keys, config, chosen, cache = watermarked_references(args)
    truth = np.array([keys.ids.index(r.key_id) for r in chosen])
    patterns = np.stack([key_pattern(k, config.score_target).numpy() for k in keys.keys])
    rows = []
    for angle in (float(a) for a in args.angles.split(",")):
        undo = (Transform(angle=-angle, fill="black"),)
        x = torch.cat([apply_transforms(torch.from_numpy(from_uint8(
            apply_attacks(r.pixels, combined("rotation", angle / 45, r.seed)))), undo) for r in chosen])
        z = recover_z_t(model, x, args.method, config)
        covered = covered_latent(undo, model.image_size, z.shape[-1])[0]
        picks = {"smallest p": p_value_matrix(z, keys.keys, config.score_target).argmin(1)}
        per = [variant_keys(zi, keys, patterns, covered, config.score_target) for zi in z]
        picks.update({name: np.array([v[name] for v in per]) for name in per[0]})
        right = {name: picks[name] == truth for name in picks}
        row = {"angle": angle, "images": len(chosen), "covered_share": float(covered.mean()),
               "identified": {name: int(r.sum()) for name, r in right.items()}}
        row["mcnemar_p_vs_smallest_p"] = {name: mcnemar(r, right["smallest p"])[2]
                                          for name, r in right.items() if name != "smallest p"}
        rows.append(row)
        print(row, flush=True)
    names = list(rows[0]["identified"])
    summary = {**harness.provenance(started), "model": args.model, "method": args.method, "keys": list(keys.ids),
               "references": cache.name, "per_key": args.per_key, "rows": rows}
    lines = [f"# Key rules at the candidate that undoes a rotation (`{args.model}`, {args.method})", "",
             harness.command_line(summary), "",
             f"{len(chosen)} watermarked references ({args.per_key} per key, {cache.name}), rotated, then rotated "
             "back with black corners (no search). Nearest-key identification per rule, 95 % Wilson interval, and "
             "the exact McNemar p-value against the smallest p-value on the same images.", "",
             "| rotation | covered share of the latent | " + " | ".join(names) + " |",
             "| --- | --- | " + " | ".join("---" for _ in names) + " |"]
    for r in rows:
        n, cells = r["images"], []
        for name in names:
            mc = "" if name == "smallest p" else f"; McNemar p = {r['mcnemar_p_vs_smallest_p'][name]:.2g}"
            cells.append(harness.rate_cell(r["identified"][name], n, mc))
        lines.append(f"| {r['angle']:g}° | {r['covered_share']:.2f} | " + " | ".join(cells) + " |")
    harness.write_results(harness.out_stem(args), summary, lines)


if __name__ == "__main__":
    main()
