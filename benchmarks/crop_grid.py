"""How much a crop search loses to its position grid: on crops resized back (the robustness table's "resizedcrop",
a random square position per image), nearest-key identification at the crop candidate nearest to the attack's
true position on the search's grid (3 × 3 positions per side, as the robustness rows search) and on a finer grid,
and at the exact inverse of the attack (no grid), encoder, edge fill as the search fills.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/crop_grid.py --sides 0.75,0.9 --grids 3,7

No candidate selection: each image is read at the one candidate named, so the figures bound what a search with
that grid can give. The watermarked robustness references (`benchmarks/robustness.py`'s cache) are used, and the
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
    from engine.rates import wilson
    from engine.realignment import Transform, apply_transforms
    from engine.recovery import recover_z_t

    started = time.time()
    model, keys, config, chosen, cache = watermarked_references(args)
    truth = np.array([keys.ids.index(r.key_id) for r in chosen])
    size = model.image_size
    grids = [int(g) for g in args.grids.split(",")]
    rows = []
    for side_share in (float(s) for s in args.sides.split(",")):
        strength = (1 - side_share ** 2) / 0.5           # the robustness plan's resizedcrop strength for this side
        readings = {f"{g} × {g} grid": [] for g in grids}
        readings["exact inverse"] = []
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
            picks = p_value_matrix(recover_z_t(model, x, args.method, config), keys.keys,
                                   config.score_target).argmin(1)
            readings["exact inverse"].append(int(picks[0]))
            for i, g in enumerate(grids, start=1):
                readings[f"{g} × {g} grid"].append(int(picks[i]))
        row = {"side": side_share, "images": len(chosen),
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
             f"square and resized back; each read at one candidate, edge fill. Nearest-key identification (smallest "
             f"p-value), 95 % Wilson interval; in brackets the median and largest offset, in image pixels of "
             f"{size}, between the attack's position and the grid's nearest.", "",
             "| side kept | " + " | ".join(names) + " |", "| --- | " + " | ".join("---" for _ in names) + " |"]
    for r in rows:
        n, cells = r["images"], []
        for name in names:
            k = r["identified"][name]
            lo, hi = wilson(k, n)
            where = (f"; offset {r['median_shift_px'][name]:.1f} / {r['largest_shift_px'][name]:.1f} px"
                     if name in r["median_shift_px"] else "")
            cells.append(f"{k / n:.2f} ({lo:.2f}–{hi:.2f}{where})")
        lines.append(f"| {r['side']:g} | " + " | ".join(cells) + " |")
    harness.write_results(harness.out_stem(args), summary, lines)


if __name__ == "__main__":
    main()
