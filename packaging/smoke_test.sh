#!/usr/bin/env bash
# End-to-end check of what ships: builds the wheel and the bundle (packaging/build_app.sh), installs the wheel
# into a new venv (dependencies from PyPI; torch==2.13.0 is the CPU build), then in each of the wheel's venv
# and the bundle, from a directory outside the checkout, without network where `unshare -n` works:
#   * `treering-forensics self-test` (must exit 0),
#   * `scan resources/samples --method gradient-free --json` headless (QT_QPA_PLATFORM=offscreen),
# and compares each scan with the source tree's (packaging/compare_scans.py: same hashes, same verdicts,
# L1 and p-values within tight tolerances). Not part of CI: about 15 minutes on 2 cores.
#
#   packaging/smoke_test.sh          # SKIP_BUILD=1 reuses dist/ from an earlier build_app.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PY=${PYTHON:-python3.11}
BUILD_PY=${BUILD_VENV:-build/bundle-venv}/bin/python
OUT=build/smoke
BUNDLE_EXE=$REPO/dist/treering-forensics/treering-forensics
WHEEL_VENV=$REPO/$OUT/wheel-venv
export QT_QPA_PLATFORM=offscreen
t0=$(date +%s)
step() { echo "== $* ($(( $(date +%s) - t0 )) s)"; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    step "build: packaging/build_app.sh"
    packaging/build_app.sh 2>&1 | grep -E '^(bundle|wheel|build time)' || { echo "smoke_test: the build failed" >&2; exit 1; }
fi
WHEEL=$(ls "$REPO"/dist/treering_forensics-*.whl)
[ -x "$BUNDLE_EXE" ] || { echo "smoke_test: no bundle at $BUNDLE_EXE" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT/elsewhere"
step "wheel: a new venv, $(basename "$WHEEL") and its dependencies"
"$PY" -m venv "$WHEEL_VENV"
nice "$WHEEL_VENV/bin/python" -m pip install -q --disable-pip-version-check "$WHEEL"
echo "wheel venv: $(du -sh "$WHEEL_VENV" | cut -f1)"

OFFLINE=()
if unshare -n true 2>/dev/null; then OFFLINE=(unshare -n); echo "(self-tests and scans run without network: unshare -n)"
else echo "(unshare -n is not available here: self-tests and scans run with the network up; the tool never downloads)"; fi

SAMPLES=$REPO/resources/samples
run_in() {   # name, then the command: self-test and scan from a directory outside the checkout
    local name=$1; shift
    step "$name: self-test"
    (cd "$OUT/elsewhere" && env -u PYTHONPATH TREERING_FORENSICS_CONFIG="$REPO/$OUT/config-$name" "${OFFLINE[@]}" "$@" self-test)
    step "$name: scan resources/samples --method gradient-free"
    (cd "$OUT/elsewhere" && env -u PYTHONPATH TREERING_FORENSICS_CONFIG="$REPO/$OUT/config-$name" "${OFFLINE[@]}" "$@" \
        scan "$SAMPLES" --method gradient-free --quiet --json "$REPO/$OUT/scan-$name.json")
}

step "source tree: scan resources/samples --method gradient-free"
PYTHONPATH=$REPO TREERING_FORENSICS_CONFIG="$REPO/$OUT/config-source" "${OFFLINE[@]}" "$BUILD_PY" -m forensics_app \
    scan "$SAMPLES" --method gradient-free --quiet --json "$OUT/scan-source.json"
run_in wheel "$WHEEL_VENV/bin/treering-forensics"
run_in bundle "$BUNDLE_EXE"

step "compare"
status=0
for name in wheel bundle; do
    "$BUILD_PY" packaging/compare_scans.py "$OUT/scan-source.json" "$OUT/scan-$name.json" || status=1
done
[ -z "$(ls -A "$OUT/elsewhere")" ] || { echo "smoke_test: files were left in the working directory" >&2; status=1; }
step "done: $([ $status = 0 ] && echo PASSED || echo FAILED)"
exit $status
