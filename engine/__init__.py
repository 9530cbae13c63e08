"""Computation for Tree-Ring watermark provenance forensics.

Everything that touches tensors lives here: model loading, decoder inversion, diffusion inversion,
Tree-Ring keys and scores, evidence intake and the end-to-end analysis. This package never imports Qt
(an import-linter contract in pyproject.toml and tests/test_architecture.py keep it so).
"""

import os

__version__ = "0.1.0"

# GNU OpenMP threads spin while waiting for work. When another process also wants the cores (a second
# analysis, a browser, a training job), torch's CPU kernels then slow down by orders of magnitude:
# measured on the 2-core machine with one other busy process, one image took 256 s with 2 spinning threads,
# 2.2 s with 1 thread, and 2 passive threads matched 1 thread. Must be set before torch is imported;
# an explicit user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
