#!/usr/bin/env bash
# The desktop bundle: a PyInstaller one-folder build, dist/treering-forensics/ (one executable: no subcommand
# opens the window, a subcommand is the CLI), and the wheel it is made from, dist/treering_forensics-*.whl.
#
#   packaging/build_app.sh            # PYTHON=python3.11 BUILD_VENV=build/bundle-venv by default
#
# Steps: a build venv (reused when present) with the pinned PyInstaller and the tool's dependencies; the
# committed weight manifest checked against resources/models; the wheel; the wheel installed into the venv;
# PyInstaller on packaging/treering-forensics.spec; the bundle's weight files checked against the manifest
# again. Prints the bundle's size and the build's time. Everything goes to build/ and dist/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
PY=${PYTHON:-python3.11}
VENV=${BUILD_VENV:-build/bundle-venv}
PYINSTALLER="pyinstaller==6.22.3 pyinstaller-hooks-contrib==2026.9"
pip_q() { nice "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@"; }

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# shellcheck disable=SC2086
pip_q $PYINSTALLER "setuptools>=68" wheel

# The wheel, built from this checkout (stale modules in setuptools' build/lib must not slip into it).
rm -rf build/lib build/bdist.* dist/treering_forensics-*.whl
nice "$VENV/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation -w dist .
WHEEL=$(ls dist/treering_forensics-*.whl)
pip_q "$WHEEL"                                    # its dependencies (torch==2.13.0: the CPU build)
pip_q --force-reinstall --no-deps "$WHEEL"        # and this build of the tool itself, whatever was there

# Never bundle weights other than the reviewed ones.
"$VENV/bin/python" packaging/weight_manifest.py

nice "$VENV/bin/pyinstaller" --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
    packaging/treering-forensics.spec

# The weight files that landed in the bundle, against the same manifest.
BUNDLE=dist/treering-forensics
RES=$(dirname "$(find "$BUNDLE" -path '*/treering_resources/models/weights.sha256.json' | head -1)")/..
"$VENV/bin/python" - "$RES" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, ".")
from forensics_app.self_test import bundled_weight_hashes, compare_weight_hashes, manifest_path, read_manifest
res = Path(sys.argv[1]).resolve()
problems = compare_weight_hashes(read_manifest(manifest_path(res)), bundled_weight_hashes(res))
if problems:
    sys.exit("build_app: the bundle's weights differ from the manifest: " + "; ".join(problems))
print(f"bundle weights match the manifest ({res})")
PY

# No pickle-format file in the bundle; the Qt platform plugins the tool needs are there.
PICKLES=$(find "$BUNDLE" -type f \( -iname '*.pt' -o -iname '*.pth' -o -iname '*.ptl' -o -iname '*.pkl' \
          -o -iname '*.pickle' -o -iname '*.ckpt' \) | head -5)
[ -z "$PICKLES" ] || { echo "build_app: pickle-format files in the bundle: $PICKLES" >&2; exit 1; }
for plugin in offscreen xcb; do
    find "$BUNDLE" -path "*/Qt/plugins/platforms/*q$plugin.*" | grep -q . ||
        { echo "build_app: the Qt platform plugin '$plugin' is missing from the bundle" >&2; exit 1; }
done

end=$(date +%s)
echo "bundle: $BUNDLE ($(du -sh "$BUNDLE" | cut -f1), $(find "$BUNDLE" -type f | wc -l) files)"
echo "wheel: $WHEEL ($(du -h "$WHEEL" | cut -f1))"
echo "build time: $((end - start)) s"
