"""Regenerate resources/samples: watermarked and clean 8-bit PNGs from the bundled demo model, with the
manifest the GUI's batch view and the tests read (file → key id or null, seed).

    .venv/bin/python packaging/make_demo_samples.py [--model demo] [--per-key 2] [--clean 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="demo")
    p.add_argument("--keys", default=str(REPO / "resources" / "keys" / "demo.json"))
    p.add_argument("--per-key", type=int, default=2)
    p.add_argument("--clean", type=int, default=2)
    p.add_argument("--out", default=str(REPO / "resources" / "samples"))
    a = p.parse_args()

    from engine.atomic_write import write_json_atomic
    from engine.generation import generate_reference_set
    from engine.model_loader import load_model
    from engine.treering import KeySet

    model = load_model(a.model, device="cpu")
    keys = KeySet.load(a.keys)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    images = {}
    for n, key in enumerate(keys.keys):
        for g in generate_reference_set(model, key, a.per_key, out, seed=500 + 100 * n):
            images[g.file] = {"key": g.key_id, "seed": g.seed}
    for g in generate_reference_set(model, None, a.clean, out, seed=900):
        images[g.file] = {"key": None, "seed": g.seed}
    write_json_atomic(out / "manifest.json", {"model": model.spec.id, "keys": "resources/keys/demo.json",
                                              "images": images}, indent=2)
    print(f"wrote {len(images)} samples to {out}")


if __name__ == "__main__":
    main()
