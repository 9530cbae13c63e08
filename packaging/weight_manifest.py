"""The committed SHA-256 manifest of the bundled weight files (resources/models/weights.sha256.json).

    python packaging/weight_manifest.py           # check: exit 0 if every bundled weight file matches, 1 if not
    python packaging/weight_manifest.py --write   # rewrite it (after retraining a demo model)

`treering-forensics self-test` checks the installed copy against the same file (check (c)); the bundle build
runs the check before packaging, so a bundle is never made from weights that differ from the reviewed ones.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="rewrite the manifest from the bundled weight files")
    a = p.parse_args()

    from engine.atomic_write import write_json_atomic
    from forensics_app.self_test import (CheckFailed, bundled_weight_hashes, compare_weight_hashes, manifest_json,
                                         manifest_path, read_manifest)

    # This checkout's resources/, not whichever copy of the resources package is installed (an editable
    # install may point at another checkout).
    resources = REPO / "resources"
    path = manifest_path(resources)
    found = bundled_weight_hashes(resources)
    if a.write:
        write_json_atomic(path, manifest_json(found), indent=2)
        print(f"wrote {path} ({sum(len(v) for v in found.values())} weight files)")
        return 0
    try:
        problems = compare_weight_hashes(read_manifest(path), found)
    except CheckFailed as exc:
        print(f"weight_manifest: error: {exc}", file=sys.stderr)
        return 1
    for line in problems:
        print(f"weight_manifest: {line}", file=sys.stderr)
    if problems:
        return 1
    print(f"{path}: {sum(len(v) for v in found.values())} weight files match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
