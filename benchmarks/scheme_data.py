"""The watermarked images behind the per-scheme benchmark (`schemes.py`), analysed once and cached.

    .venv/bin/python benchmarks/scheme_data.py --model demo --threads 1    # → benchmarks/cache/verdicts/demo/schemes/

For every scheme beside Tree-Ring, images are generated with the model's own sampler as 8-bit PNGs, exactly as
`generate` writes them, each key with its own seeds, and analysed with the scan's default settings; the
recovered z_T of every decoder inversion are cached (`verdict_data.save_run`'s format, so
`verdict_data.load_group` reads them). The negatives are not made here: they are the verdict benchmark's 1300
(`demo`) or 600 (`demo-flow`) clean images, already cached by `verdict_data.py`, plus a `clean` group analysed
with the gradient-based inversion (the verdict cache has the encoder and gradient-free ones only).

The keys are fixed by seeds (`benchmark_keys`), so nothing secret is stored and both scripts rebuild them.
Work goes key by key in chunks and each chunk is saved, so a stopped run keeps what it did and a rerun goes on.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import harness
from verdict_data import EVALUATION_SEED, group_path, load_group, save_run

KEYS_TAG = "schemes"
SCHEME_SEED = 400_000          # disjoint from the verdict benchmark's 100000… and 200000… ranges
GRADIENT_BASED = "gradient-based"


@dataclass(frozen=True)
class Group:
    name: str                  # cache file name
    scheme: str                # the scheme's name, or "" for clean images
    keys: tuple                # the keys that watermark images (all of the key set's, or a spread subset)
    per_key: int
    methods: tuple[str, ...]


def benchmark_keys(latent_shape) -> dict:
    """The key sets tested, by benchmark name: Gaussian Shading's 100 users, RingID's 64 keys at rings scaled to
    the latent, RingID's 2048 keys at the reference rings, and 10 PRC keys (independent draws)."""
    from engine.watermarks import gaussian_shading, prc, ringid

    return {"gaussian-shading": gaussian_shading.new_keys(100, latent_shape=latent_shape, seed=20_24),
            "ringid": ringid.new_keys(64, latent_shape=latent_shape, seed=42),
            "ringid-2048": ringid.new_keys(latent_shape=latent_shape, seed=42, rings=(ringid.R_OUT, ringid.R_IN),
                                           prefix="ringid-ref"),
            "prc": prc.new_keys(10, latent_shape=latent_shape, seed=7)}


def plan(keys: dict, args) -> list[Group]:
    """Encoder and gradient-free for every group first (cheap), then the gradient-based ones on a spread half
    of the keys and on clean images."""
    fast = ("encoder", "gradient-free")
    spread = lambda ks, n: tuple(ks[int(round(i * (len(ks) - 1) / max(1, n - 1)))] for i in range(n))
    gs, ri, ref, pr = (keys[k].keys for k in ("gaussian-shading", "ringid", "ringid-2048", "prc"))
    groups = [Group("gaussian-shading", "gaussian-shading", gs, args.gs_per_user, fast),
              Group("ringid", "ringid", ri, args.ringid_per_key, fast),
              Group("ringid-2048", "ringid-2048", spread(ref, args.ringid_2048_keys), 1, fast),
              Group("prc", "prc", pr, args.prc_per_key, fast)]
    if not args.no_gradient_based:
        gb = (GRADIENT_BASED,)
        share = lambda n: max(1, round(args.gb_keys_share * n))
        groups += [Group("gaussian-shading@gb", "gaussian-shading", spread(gs, share(len(gs))), args.gs_per_user, gb),
                   Group("ringid@gb", "ringid", spread(ri, share(len(ri))), args.ringid_per_key, gb),
                   Group("ringid-2048@gb", "ringid-2048", spread(ref, share(args.ringid_2048_keys)), 1, gb),
                   Group("prc@gb", "prc", pr[: share(len(pr))], args.prc_per_key, gb),
                   Group("clean@gb", "", (None,), args.clean_gb, gb)]
    return groups


def key_seed(group: Group, index: int) -> int:
    """A key's first seed: disjoint across keys and schemes; the same images for a scheme's @gb group."""
    offset = {"gaussian-shading": 0, "ringid": 200_000, "ringid-2048": 400_000, "prc": 600_000}[group.scheme]
    return SCHEME_SEED + offset + 100 * index


def main() -> None:
    p = harness.parser(__doc__, "schemes", threads=True)
    p.add_argument("--gs-per-user", type=int, default=1)
    p.add_argument("--ringid-per-key", type=int, default=2)
    p.add_argument("--ringid-2048-keys", type=int, default=64, help="reference-ring keys watermarking one image each")
    p.add_argument("--prc-per-key", type=int, default=5)
    p.add_argument("--clean-gb", type=int, default=150, help="clean images (the verdict benchmark's evaluation "
                   "seeds) analysed with the gradient-based inversion")
    p.add_argument("--no-gradient-based", action="store_true")
    p.add_argument("--gb-keys-share", type=float, default=0.5,
                   help="share of each scheme's watermarking keys also analysed with the gradient-based inversion")
    p.add_argument("--chunk", type=int, default=16, help="images analysed and saved at a time")
    args = p.parse_args()

    from engine.analysis import analyze
    from engine.generation import generate_reference_set
    from engine.model_loader import load_model
    from engine.options import AnalysisOptions

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model = load_model(args.model, device=args.device)
    keys = benchmark_keys(model.latent_shape)
    index_of = {k.id: i for ks in keys.values() for i, k in enumerate(ks.keys)}
    work = Path(tempfile.mkdtemp(prefix="scheme_data_"))
    probe = keys["gaussian-shading"]          # analysis needs a key set; the z_T do not depend on it
    for group in plan(keys, args):
        config = AnalysisOptions(methods=group.methods).to_config(model)
        out = group_path(args.model, group.name, KEYS_TAG)
        cached = load_group(args.model, group.name, KEYS_TAG) if out.exists() else None
        done = {} if cached is None else {str(lab): int((cached["label"] == lab).sum()) for lab in set(cached["label"])}
        todo = [(k, n) for k in group.keys
                for n in range(done.get(k.id if k is not None else "", 0), group.per_key)]
        if not todo:
            print(f"{group.name}: cached ({sum(done.values())} images)", flush=True)
            continue
        t = time.time()
        for start in range(0, len(todo), args.chunk):
            made = []
            for key, n in todo[start:start + args.chunk]:
                seed = EVALUATION_SEED + n if key is None else key_seed(group, index_of[key.id]) + n
                made += generate_reference_set(model, key, 1, work / group.name, seed=seed, force=True)
            run = analyze(model, probe, [str(work / group.name / m.file) for m in made], config)
            save_run(out, run, [m.key_id for m in made], [m.seed for m in made], extend=True)
            print(f"{group.name}: {start + len(made)}/{len(todo)} in {time.time() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
