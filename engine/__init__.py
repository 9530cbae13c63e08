"""Computation for Tree-Ring watermark provenance forensics.

Everything that touches tensors lives here: model loading, decoder inversion, diffusion inversion,
Tree-Ring keys and scores, evidence intake and the end-to-end analysis. This package never imports Qt
(an import-linter contract in pyproject.toml and tests/test_architecture.py keep it so).
"""

__version__ = "0.1.0"
