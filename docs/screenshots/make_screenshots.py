"""Regenerate the screenshots in this folder (main-window.png, comparison.png, batch.png).

    cd <repository root> && python docs/screenshots/make_screenshots.py

The committed ones are of the real window under an X server (Debian: xvfb and libxcb-cursor0):

    xvfb-run -a -s "-screen 0 1920x1200x24" env QT_QPA_PLATFORM=xcb python docs/screenshots/make_screenshots.py

They are the views `tests/test_gui.py::test_screenshots` grabs — the bundled demo model on one sample per
key and one without a watermark, all three decoder-inversion methods, 100 iterations, on the CPU (the tiny
test model while the demo model is absent) — so this runs that test with its output pointed here instead of
at a temporary folder. Takes a few minutes on a CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def main() -> int:
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
           "TREERING_FORENSICS_SCREENSHOTS_DIR": str(HERE)}
    return subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "tests/test_gui.py::test_screenshots"], cwd=REPO, env=env)


if __name__ == "__main__":
    sys.exit(main())
