"""How much a crop search loses to its position grid: on crops resized back (the robustness table's "resizedcrop",
a random square position per image), nearest-key identification at the crop candidate nearest to the attack's
true position on the search's grid (3 × 3 positions per side, as the robustness rows search) and on a finer grid,
and at the exact inverse of the attack (no grid), encoder, edge fill as the search fills.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/crop_grid.py --sides 0.75,0.9 --grids 3,7

No candidate selection: each image is read at the one candidate named, so the figures bound what a search with
that grid can give. Each candidate is read with the smallest p-value (the key rule crops use) and with the
covered-latent pattern fit that rotations use on `demo` (`engine.treering_scoring.covered_key_residuals` over
the latent the candidate fills from the suspect; docs/algorithms.md §6), paired. The watermarked robustness references (`benchmarks/robustness.py`'s cache) are used, and the
attack's crop box is drawn exactly as `engine.attacks` draws it from the reference's seed.
"""

from __future__ import annotations

import time

import numpy as np
import torch

import harness
from robustness import watermarked_references


def crop_box(seed: int, side_share: float, size: int) -> tuple[int, int, int]:
    """(left, top, side) in pixels of the attack's square, from its seed (as `engine.attacks` draws it)."""
    from PIL import Image

    from engine.attacks import _square

    left, top, right, _ = _square(Image.new("RGB", (size, size)), side_share ** 2, np.random.default_rng(seed))
    return left, top, right - left


def nearest_on_grid(centre: float, side: float, positions: int) -> float:
    """The grid centre nearest to `centre` among a search's `positions` per axis for a crop of this side."""
    grid = np.linspace(side / 2, 1 - side / 2, positions) if positions > 1 else np.array([0.5])
    return float(grid[np.argmin(np.abs(grid - centre))])


def main() -> None:
    p = harness.parser(__doc__, "crop_grid", keys=True)
    p.add_argument("--per-key", type=int, default=50)
    p.add_argument("--sides", default="0.75,0.9")
    p.add_argument("--grids", default="3,7", help="positions per axis of the grids compared")
    p.add_argument("--method", default="encoder")
    args = p.parse_args()

    from engine.attacks import apply_attacks, combined
    from engine.decoys import p_value_matrix
    from engine.pixel_levels import from_uint8
    from engine.rates import mcnemar
    from engine.realignment import Transform, apply_transforms, covered_latent
    from engine.treering_scoring import covered_key_residuals
    from engine.recovery import recover_z_t

    started = time.time()
    model, keys, config, chosen, cache = watermarked_references(args)
    truth = np.array([keys.ids.index(r.key_id) for r in chosen])
    size = model.image_size
    grids = [int(g) for g in args.grids.split(",")]
    rows = []
    for side_share in (float(s) for s in args.sides.split(",")):
        strength = (1 - side_share ** 2) / 0.5           # the robustness plan's resizedcrop strength for this side
        places = [f"{g} × {g} grid" for g in grids] + ["exact inverse"]
        readings = {f"{place}{rule}": [] for place in places for rule in ("", ", fit")}
        shifts = {g: [] for g in grids}
        for r in chosen:
            attacked = torch.from_numpy(from_uint8(apply_attacks(r.pixels, combined("resizedcrop", strength, r.seed))))
            left, top, side_px = crop_box(r.seed, side_share, size)
            side = side_px / size
            cx, cy = (left + side_px / 2) / size, (top + side_px / 2) / size
            transforms = [Transform(side=side, cx=cx, cy=cy, fill="border")]
            for g in grids:
                gx, gy = nearest_on_grid(cx, side, g), nearest_on_grid(cy, side, g)
                shifts[g].append(max(abs(gx - cx), abs(gy - cy)) * size)
                transforms.append(Transform(side=side, cx=gx, cy=gy, fill="border"))
            x = apply_transforms(attacked, tuple(transforms))
            z = recover_z_t(model, x, args.method, config)
            picks = p_value_matrix(z, keys.keys, config.score_target).argmin(1)
            covered = covered_latent(tuple(transforms), size, z.shape[-1])
            fits = [int(np.argmin(covered_key_residuals(z[i], keys, covered[i], config.score_target)))
                    for i in range(len(transforms))]
            for i, place in enumerate([places[-1]] + places[:-1]):
                readings[place].append(int(picks[i]))
                readings[f"{place}, fit"].append(fits[i])
        right = {name: np.array(v) == truth for name, v in readings.items()}
        row = {"side": side_share, "images": len(chosen),
               "mcnemar_p_fit": {place: mcnemar(right[f"{place}, fit"], right[place])[2] for place in places},
               "identified": {name: int((np.array(v) == truth).sum()) for name, v in readings.items()},
               "largest_shift_px": {f"{g} × {g} grid": float(max(shifts[g])) for g in grids},
               "median_shift_px": {f"{g} × {g} grid": float(np.median(shifts[g])) for g in grids}}
        rows.append(row)
        print(row, flush=True)
    names = list(rows[0]["identified"])
    summary = {**harness.provenance(started), "model": args.model, "method": args.method, "keys": list(keys.ids),
               "references": cache.name, "per_key": args.per_key, "rows": rows}
    lines = [f"# Crop candidates: the search's position grid against a finer one and the exact inverse "
             f"(`{args.model}`, {args.method})", "", harness.command_line(summary), "",
             f"{len(chosen)} watermarked references ({args.per_key} per key, {cache.name}), cropped to a random "
             f"square and resized back; each read at one candidate, edge fill. Nearest-key identification by the "
             f"smallest p-value and (\", fit\") by the covered-latent pattern fit, 95 % Wilson interval; in "
             f"brackets the median and largest offset, in image pixels of {size}, between the attack's position "
             f"and the grid's nearest, or the exact McNemar p-value of the fit against the smallest p-value on the "
             f"same candidates.", "",
             "| side kept | " + " | ".join(names) + " |", "| --- | " + " | ".join("---" for _ in names) + " |"]
    for r in rows:
        n, cells = r["images"], []
        for name in names:
            where = (f"; offset {r['median_shift_px'][name]:.1f} / {r['largest_shift_px'][name]:.1f} px"
                     if name in r["median_shift_px"] else "")
            if name.endswith(", fit"):
                where = f"; McNemar p = {r['mcnemar_p_fit'][name[:-5]]:.2g}"
            cells.append(harness.rate_cell(r["identified"][name], n, where))
        lines.append(f"| {r['side']:g} | " + " | ".join(cells) + " |")
    harness.write_results(harness.out_stem(args), summary, lines)


if __name__ == "__main__":
    main()
