"""Which candidate and which key a re-alignment search should name, compared offline and paired: the robustness
row's search is run once per image and every candidate's recovered z_T is kept (`benchmarks/cache/`), so each
naming rule reads the same latents.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/search_rules.py --model demo --attack resizedcrop --levels 0.75

The watermarked robustness references (`benchmarks/robustness.py`'s cache: 50 per key, seeds 300000…) are attacked
as the robustness table attacks them (`--attack rotation`: `--levels` in degrees; `resizedcrop`: the side kept;
0 and 1 leave the image as it was, to see what a rule costs unattacked evidence)
and searched as its re-aligned rows search them (rotations of ±10, ±20, ±30° with black corners; crops keeping
0.75, 0.8, 0.9 of the side at 3 × 3 positions with edge fill; and the identity), encoder, no decoys: no rule
here changes the detection statistic (the smallest p-value over candidates and keys), only what is named.

The rules, each naming a (candidate, key):
- *smallest p*: the candidate and key of the smallest p-value (the engine's rule for crops);
- *p winner, covered fit*: that candidate; where it leaves part of the latent uncovered, the key whose pattern
  fits the latent it covers best at a free gain g ≥ 0 (`engine.treering_scoring.covered_key_residuals`; the
  engine's rule on `demo`), else the smallest p-value's key;
- *matched filter*: the (candidate, key) of the largest matched-filter score over the covered latent,
  ⟨z, w⟩ / (‖w‖ · sd(z)) on the key channel's covered pixels (a N(0, 1) score where z is white noise
  unrelated to the key: comparable between candidates that cover different areas);
- *Fisher over candidates*: the p winner; the key of the smallest Σ log p over all candidates (every candidate's
  vote, weighted by its evidence; the candidates are not independent, so this names a key and tests nothing);
- *matched filter, top 5 summed*: the matched filter's candidate; the key of the largest matched-filter score
  summed over the 5 candidates with the largest best score.
The last two were added after seeing crops at 0.75 and 0.8 of the side (where they did best of several
variants tried); 0.9 and the rotations are their held-out check.
Per level: identification under each rule (Wilson 95 %), an exact McNemar test of each against *smallest p*, and
how often the named candidate is the one nearest the attack's inverse (for crops: the grid position nearest the
attack's true box; for rotations: the undoing angle). Clean images are not searched: the detection null does not
depend on these rules. Also per level: for how many images the search conclusion's exclusion test (on the p
winner's whole latent, at the nominal level; `engine.search_verdict`) excludes the true key.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

import harness
from robustness import watermarked_references

ROTATIONS = (-30.0, -20.0, -10.0, 10.0, 20.0, 30.0)     # the robustness table's re-aligned rows
CROP_SIDES = (0.75, 0.8, 0.9)
RULES = ("smallest p", "p winner, covered fit", "matched filter", "Fisher over candidates",
         "matched filter, top 5 summed")


def search_config(attack: str):
    from engine.realignment import SearchConfig

    if attack == "rotation":
        return SearchConfig(families=("rotation",), rotations=ROTATIONS, decoys=0)
    return SearchConfig(families=("crop",), crop_sides=CROP_SIDES, decoys=0)


def attacked_pixels(r, attack: str, level: float) -> torch.Tensor:
    """One reference attacked as the robustness table attacks it at this level, (3, T, T) in [−1, 1]."""
    from engine.attacks import apply_attacks, combined
    from engine.pixel_levels import from_uint8

    strength = level / 45 if attack == "rotation" else (1 - level ** 2) / 0.5
    return torch.from_numpy(from_uint8(apply_attacks(r.pixels, combined(attack, strength, r.seed))))


def nearest_candidate(r, attack: str, level: float, transforms, size: int) -> int:
    """The index of the candidate nearest the attack's exact inverse (the identity for an unattacked level)."""
    if (attack == "rotation" and level == 0) or (attack == "resizedcrop" and level >= 1):
        return next(i for i, t in enumerate(transforms) if t.is_identity)
    if attack == "rotation":
        return next(i for i, t in enumerate(transforms) if t.angle == -level)
    from crop_grid import crop_box

    left, top, side_px = crop_box(r.seed, level, size)
    side, cx, cy = side_px / size, (left + side_px / 2) / size, (top + side_px / 2) / size
    distance = [abs(t.side - side) * 10 + abs(t.cx - cx) + abs(t.cy - cy) if t.side < 1 else np.inf
                for t in transforms]
    return int(np.argmin(distance))


def candidate_latents(model, config, chosen, attack: str, level: float, method: str,
                      cache: Path) -> tuple[np.ndarray, int]:
    """(images, candidates, C, h, w) recovered z_T for every candidate, from `cache` or computed (and saved
    every 10 images, so an interrupted run resumes); and how many came from the cache."""
    from engine.realignment import apply_transforms, inpaint_uncovered
    from engine.recovery import recover_z_t

    done = list(np.load(cache)["z"]) if cache.exists() else []
    cached = len(done)
    transforms = search_config(attack).transforms()
    for i, r in enumerate(chosen[len(done):], start=len(done)):
        x = inpaint_uncovered(model, apply_transforms(attacked_pixels(r, attack, level), transforms), transforms)
        done.append(recover_z_t(model, x, method, config).numpy())
        print(f"{attack} {level:g}: image {i + 1}/{len(chosen)}", flush=True)
        if (i + 1) % 10 == 0 or i + 1 == len(chosen):
            partial = cache.with_name(cache.stem + ".partial.npz")
            np.savez(partial, z=np.stack(done))
            os.replace(partial, cache)
    return np.stack(done), cached


def matched_filter(z: np.ndarray, patterns: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """(N,) matched-filter scores of one key-channel latent (h, w) against (N, h, w) patterns over `covered`."""
    zc, w = z[covered].astype(np.float64), patterns[:, covered].astype(np.float64)
    return (w @ zc) / (np.sqrt((w ** 2).sum(1)) * max(float(zc.std()), 1e-12))


def main() -> None:
    p = harness.parser(__doc__, "search_rules", keys=True)
    p.add_argument("--per-key", type=int, default=50)
    p.add_argument("--attack", choices=("rotation", "resizedcrop"), default="resizedcrop")
    p.add_argument("--levels", default="0.75", help="angles (rotation) or sides kept (resizedcrop), comma-separated")
    p.add_argument("--method", default="encoder")
    args = p.parse_args()

    from engine.decoys import p_value_matrix
    from engine.rates import mcnemar
    from engine.realignment import covered_latent
    from engine.treering_scoring import covered_key_residuals, exclusion_p_values, exclusion_statistics, key_pattern

    started = time.time()
    model, keys, config, chosen, references = watermarked_references(args)
    if len({k.channel for k in keys.keys}) != 1:
        raise SystemExit("search_rules: the covered-area rules need keys on one channel")
    channel, target = keys.keys[0].channel, config.score_target
    patterns = np.stack([key_pattern(k, target).numpy() for k in keys.keys])
    transforms = search_config(args.attack).transforms()
    truth = np.array([keys.ids.index(r.key_id) for r in chosen])
    rows = []
    for level in (float(v) for v in args.levels.split(",")):
        cache = (harness.REPO / "benchmarks" / "cache" /
                 f"search_latents_{references.stem}_{args.method}_{args.attack}_{level:g}_{len(chosen)}.npz")
        cache.parent.mkdir(parents=True, exist_ok=True)
        z_all, cached = candidate_latents(model, config, chosen, args.attack, level, args.method, cache)
        covered = covered_latent(transforms, model.image_size, z_all.shape[-1])
        named = {rule: [] for rule in RULES}
        near = {rule: [] for rule in RULES}
        excluded_truth = 0
        for i, (r, z) in enumerate(zip(chosen, z_all)):
            zt = torch.from_numpy(z)
            pv = p_value_matrix(zt, keys.keys, target)
            k, n = np.unravel_index(int(np.argmin(pv)), pv.shape)
            fit = (n if covered[k].all() else
                   int(np.argmin(covered_key_residuals(zt[k], keys, covered[k], target))))
            mf = np.stack([matched_filter(z[c, channel], patterns, covered[c]) for c in range(len(transforms))])
            km, nm = np.unravel_index(int(np.argmax(mf)), mf.shape)
            fisher = int(np.argmin(np.log(np.maximum(pv, 1e-300)).sum(0)))
            top = np.argsort(-mf.max(1))[:5]
            stats_k, df = exclusion_statistics(zt[k:k + 1], keys, target)
            excluded_truth += bool(exclusion_p_values(np.asarray(stats_k[0], dtype=np.float64), df,
                                                      len(keys))[truth[i]] <= config.fpr)
            nearest = nearest_candidate(r, args.attack, level, transforms, model.image_size)
            for rule, (cand, key) in zip(RULES, ((k, n), (k, fit), (km, nm), (k, fisher), (km, int(np.argmax(mf[top].sum(0)))))):
                named[rule].append(int(key))
                near[rule].append(int(cand) == nearest)
        right = {rule: np.array(v) == truth for rule, v in named.items()}
        paired = {rule: mcnemar(v, right["smallest p"]) for rule, v in right.items() if rule != "smallest p"}
        rows.append({"level": level, "images": len(chosen), "latents_from_cache": cached, "cache": cache.name,
                     "true_key_excluded": excluded_truth,
                     "identified": {rule: int(v.sum()) for rule, v in right.items()},
                     "nearest_candidate": {rule: int(np.sum(v)) for rule, v in near.items()},
                     "mcnemar_p": {rule: m[2] for rule, m in paired.items()},
                     "only_rule_right": {rule: m[0] for rule, m in paired.items()},
                     "only_smallest_p_right": {rule: m[1] for rule, m in paired.items()},
                     "per_image": [{"seed": r.seed, "key": r.key_id, **{rule: keys.ids[named[rule][i]] for rule in RULES}}
                                   for i, r in enumerate(chosen)]})
        print({k: v for k, v in rows[-1].items() if k != "per_image"}, flush=True)
    unit = "°" if args.attack == "rotation" else " of the side"
    reused = [f"{r['level']:g}" for r in rows if r["latents_from_cache"]]
    from_cache = (f" The candidates' latents at {', '.join(reused)} came from an earlier run's cache "
                  "(`benchmarks/cache/`; a crop level took about 40 min and a rotation about 8 at one thread, two "
                  "runs side by side); the wall time is the rest." if reused else "")
    summary = {**harness.provenance(started), "model": args.model, "method": args.method, "keys": list(keys.ids),
               "references": references.name, "per_key": args.per_key, "attack": args.attack,
               "candidates": len(transforms), "rows": rows}
    lines = [f"# Which candidate and key a re-alignment search names ({args.attack}, `{args.model}`, {args.method})",
             "", harness.command_line(summary), "",
             f"{len(chosen)} watermarked references ({args.per_key} per key, {references.name}), attacked and searched "
             f"as the robustness table's re-aligned rows ({len(transforms)} candidates, no decoys). Per rule: "
             "nearest-key identification (95 % Wilson interval), how often the candidate it names is the one "
             "nearest the attack's inverse, and the exact McNemar p-value against *smallest p* on the same "
             "images (images only that rule gets right : only smallest p gets right). Rules: see the script's "
             f"docstring. *True key excluded*: images whose true key the exclusion test on the p winner excludes "
             f"at {config.fpr:g}." + from_cache, "",
             "| attack | " + " | ".join(RULES) + " | true key excluded |",
             "| --- | " + " | ".join("---" for _ in RULES) + " | --- |"]
    for r in rows:
        n, cells = r["images"], []
        for rule in RULES:
            mc = ("" if rule == "smallest p" else f"; {r['only_rule_right'][rule]} : "
                  f"{r['only_smallest_p_right'][rule]}, McNemar p = {r['mcnemar_p'][rule]:.2g}")
            cells.append(harness.rate_cell(r["identified"][rule], n,
                                           f"; nearest candidate {r['nearest_candidate'][rule]}{mc}"))
        lines.append(f"| {args.attack} {r['level']:g}{unit} | " + " | ".join(cells)
                     + f" | {r['true_key_excluded']} of {n} |")
    harness.write_results(harness.out_stem(args, f"search_rules_{Path(args.model).name}_{args.attack}"), summary, lines)


if __name__ == "__main__":
    main()
