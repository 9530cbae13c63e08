"""The images behind the verdict benchmark and the shipped calibrations, analysed once and cached.

    .venv/bin/python benchmarks/verdict_data.py --model demo                 # → benchmarks/cache/verdicts/demo/*.npz

Generates, with the model's own sampler and 8-bit PNGs exactly as `generate` does, a *calibration* range
(seeds 100000…: clean and per key) and a disjoint *evaluation* range (seeds 200000…), plus altered copies of
the evaluation's clean images (rotated, cropped and resized back, JPEG-compressed: `engine.attacks`); then
analyses every group with the scan's default settings and stores, per image, the recovered z_T of every
method with the residuals. `benchmarks/verdicts.py` and `benchmarks/make_calibrations.py` read the cache;
nothing here is committed (the folder is ignored). A group already cached is skipped.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

import harness

CACHE = harness.REPO / "benchmarks" / "cache" / "verdicts"
CALIBRATION_SEED = 100_000
EVALUATION_SEED = 200_000
# Altered clean evidence for the "outside what the calibration covers" check (engine.attacks strengths):
# rotation by 10°, a square crop keeping 88 % of the side (77.4 % of the area) resized back, JPEG quality 50.
EVIDENCE_STATISTICS = ("corner_fill",)     # engine.noise_statistics.evidence_statistics
ALTERATIONS = {"rot10": ("rotation", 10 / 45), "crop88": ("resizedcrop", (1 - 0.88**2) / 0.5),
               "jpeg50": ("jpeg", 0.5)}


def group_path(model: str, group: str, keys_tag: str = "") -> Path:
    """A cached group; `keys_tag` names another key set's watermarked groups (clean groups are shared)."""
    return CACHE / Path(model).name / keys_tag / f"{group}.npz"


def save_run(path: Path, run, labels: list[str | None], seeds: list[int], extend: bool = False) -> None:
    """z_T per method, in the order of the paths analysed; failures are refused (they would bias counts)."""
    if run.failures:
        raise SystemExit(f"{len(run.failures)} images failed: {run.failures[0].message}")
    arrays = {"label": np.array([lab or "" for lab in labels]), "seed": np.array(seeds),
              "names": np.array([Path(im.evidence.path).name for im in run.images])}
    from engine.noise_statistics import evidence_statistics

    stats_ = [evidence_statistics(im.evidence.pixels) for im in run.images]
    for name in EVIDENCE_STATISTICS:
        arrays[name] = np.array([s[name] for s in stats_])
    for method in run.config.methods:
        arrays[f"z_t/{method}"] = np.stack([im.methods[method].z_t for im in run.images])
        arrays[f"z0_residual/{method}"] = np.array([im.methods[method].z0_residual for im in run.images])
        arrays[f"pixel_psnr_db/{method}"] = np.array([im.methods[method].pixel_psnr_db for im in run.images])
    if extend and path.exists():
        with np.load(path) as f:
            arrays = merge_groups({k: f[k] for k in f.files}, arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def merge_groups(old: dict[str, np.ndarray], new: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays both have (a statistic one of them lacks is recomputed from the images at load)."""
    return {k: np.concatenate([old[k], new[k]]) for k in old if k in new}


def load_group(model: str, group: str, keys_tag: str = "") -> dict[str, np.ndarray]:
    with np.load(group_path(model, group, keys_tag)) as f:
        data = {k: f[k] for k in f.files}
    missing = [n for n in EVIDENCE_STATISTICS if n not in data]
    if missing:         # cached before the statistic existed: from the images, where still there
        data.update(_statistics_from_files(model, group, keys_tag, data["names"], missing))
    return data


def _work_folder_identity(folder: Path) -> tuple[str | None, str]:
    """(model, keys tag) of one run's work folder: its own record, else (older runs, the demo keys) the model
    named by a manifest of its generated images."""
    import json

    own = folder / "verdict_data.json"
    if own.exists():
        d = json.loads(own.read_text())
        return d.get("model"), d.get("keys_tag", "")
    for manifest in folder.glob("*/manifest.json"):
        return json.loads(manifest.read_text()).get("model"), ""
    return None, ""


def _statistics_from_files(model: str, group: str, keys_tag: str, names, wanted: list[str]) -> dict[str, np.ndarray]:
    """The evidence statistics of a cached group's images, from the work folders of runs of the same model
    (and, for watermarked groups, the same key set); NaN for all when an image is gone."""
    from PIL import Image

    from engine.noise_statistics import evidence_statistics

    keyed = not group.endswith("_clean") and not group.startswith("altered_")
    folders = [f for f in sorted(Path("/tmp").glob("verdict_data_*")) if (f / group).is_dir()
               and _work_folder_identity(f)[0] == Path(model).name
               and (not keyed or _work_folder_identity(f)[1] == keys_tag)]
    out: dict[str, list[float]] = {n: [] for n in wanted}
    for name in names:
        found = next((f / group / str(name) for f in folders if (f / group / str(name)).exists()), None)
        if found is None:
            return {n: np.full(len(names), np.nan) for n in wanted}
        x = np.asarray(Image.open(found).convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1
        s = evidence_statistics(x)
        for n in wanted:
            out[n].append(s[n])
    return {n: np.array(v) for n, v in out.items()}


def pixel_statistics(group_data: dict[str, np.ndarray]) -> list[dict]:
    """Per image, the statistics of the evidence itself that the analysis adds to the noise statistics."""
    names = [n for n in EVIDENCE_STATISTICS if n in group_data]
    return [{n: float(group_data[n][i]) for n in names if np.isfinite(group_data[n][i])}
            for i in range(len(group_data["seed"]))]


def main() -> None:
    p = harness.parser(__doc__, "verdicts", keys=True, threads=True)
    p.add_argument("--calibration-clean", type=int, default=300)
    p.add_argument("--calibration-per-key", type=int, default=100)
    p.add_argument("--evaluation-clean", type=int, default=300)
    p.add_argument("--evaluation-per-key", type=int, default=100)
    p.add_argument("--altered", type=int, default=100, help="altered clean images per alteration")
    p.add_argument("--keys-tag", default="", help="cache folder for the watermarked groups of a key set other "
                   "than the demo keys (e.g. separable3); clean groups are shared")
    p.add_argument("--groups", help="only these groups (comma-separated names, e.g. calibration_clean,"
                   "altered_clean_rot10), so that several processes can share the work")
    args = p.parse_args()

    from PIL import Image

    from engine.analysis import analyze
    from engine.attacks import Attack
    from engine.generation import generate_reference_set
    from engine.model_loader import load_model
    from engine.options import AnalysisOptions
    from engine.treering import KeySet

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model = load_model(args.model, device=args.device)
    keys = KeySet.load(args.keys)
    config = AnalysisOptions().to_config(model)     # exactly a default scan's settings
    work = Path(tempfile.mkdtemp(prefix="verdict_data_"))
    import json

    (work / "verdict_data.json").write_text(json.dumps({"model": Path(args.model).name, "keys_tag": args.keys_tag}))
    plan = [("calibration_clean", None, CALIBRATION_SEED, args.calibration_clean),
            *[(f"calibration_{k.id}", k, CALIBRATION_SEED, args.calibration_per_key) for k in keys.keys],
            ("evaluation_clean", None, EVALUATION_SEED, args.evaluation_clean),
            *[(f"evaluation_{k.id}", k, EVALUATION_SEED, args.evaluation_per_key) for k in keys.keys]]
    wanted = set(args.groups.split(",")) if args.groups else None
    for group, key, seed, count in plan:
        if wanted is not None and group not in wanted:
            continue
        tag = args.keys_tag if key is not None else ""
        out = group_path(args.model, group, tag)
        have = len(load_group(args.model, group, tag)["seed"]) if out.exists() else 0
        if have >= count:
            print(f"{group}: cached ({have} images)")
            continue
        t = time.time()
        folder = work / group          # a smaller cached group is extended by the seeds that follow it
        made = generate_reference_set(model, key, count - have, folder, seed=seed + have)
        paths = [str(folder / m.file) for m in made]
        run = analyze(model, keys, paths, config)
        save_run(out, run, [m.key_id for m in made], [m.seed for m in made], extend=True)
        print(f"{group}: {count} images in {time.time() - t:.0f} s", flush=True)
    for name, (attack, strength) in ALTERATIONS.items():
        group = f"altered_clean_{name}"
        if wanted is not None and group not in wanted:
            continue
        out = group_path(args.model, group)
        have = len(load_group(args.model, group)["seed"]) if out.exists() else 0
        if have >= args.altered:
            print(f"{group}: cached ({have} images)")
            continue
        t = time.time()
        seeds = list(range(EVALUATION_SEED + have, EVALUATION_SEED + args.altered))   # the evaluation's clean seeds
        folder = work / group
        folder.mkdir(parents=True)
        if not all((work / "evaluation_clean" / f"clean_{s:05d}.png").exists() for s in seeds):
            generate_reference_set(model, None, len(seeds), work / "evaluation_clean", seed=seeds[0], force=True)
        paths = []
        for s in seeds:
            pixels = np.asarray(Image.open(work / "evaluation_clean" / f"clean_{s:05d}.png").convert("RGB"))
            altered = Attack(attack, strength, seed=s).apply(pixels)
            paths.append(str(folder / f"clean_{s:05d}_{name}.png"))
            Image.fromarray(altered).save(paths[-1])
        run = analyze(model, keys, paths, config)
        save_run(out, run, [None] * len(seeds), seeds, extend=True)
        print(f"{group}: {len(seeds)} images in {time.time() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
