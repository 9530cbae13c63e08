"""What a recovered z_T gives its conclusion (`engine.verdicts.Evidence`): the scheme's per-key scores and
exclusion statistics, the noise statistics of z_T outside the keys' region joined by the evidence's own pixel
statistics, and which keys were drawn independently. One place, so that a scan (`engine.analysis`), the
robustness study's conclusions (`engine.robustness_verdicts`) and making a calibration
(`engine.calibration_making`) read a latent the same way: a calibration is only valid for the statistics a scan
computes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from engine.noise_statistics import key_region, noise_statistics
from engine.verdicts import Evidence
from engine.watermarks import independent_key_ids, scheme_for

if TYPE_CHECKING:
    from engine.treering import KeySet


class LatentReader:
    """Reads batches of recovered latents against one key set; what depends on the key set alone is computed
    once."""

    def __init__(self, keys: "KeySet", score_target: str):
        self.keys, self.score_target = keys, score_target
        self.scheme = scheme_for(keys)
        self.region = key_region(keys)
        self.independent = independent_key_ids(keys)

    def read(self, z_t: torch.Tensor | np.ndarray, pixel_statistics: Sequence[dict] | None = None
             ) -> tuple[list[Evidence], np.ndarray]:
        """Per image of z_t (B, C, h, w): its `Evidence` (with `pixel_statistics[i]`, the evidence's own statistics,
        merged into the noise statistics), and whether z_T and every score are finite. A non-finite image's
        evidence carries its scores but no noise statistics: it must not be concluded on (a NaN must never read
        as "no watermark")."""
        t = torch.as_tensor(z_t).float()
        z = t.cpu().numpy()
        stats = [{}] * len(z) if pixel_statistics is None else list(pixel_statistics)
        if len(stats) != len(z):
            raise ValueError(f"{len(stats)} evidence statistics for {len(z)} latents")
        scores = self.scheme.score(t, self.keys, self.score_target)
        exclusion = self.scheme.exclusion(t, self.keys, self.score_target) if hasattr(self.scheme, "exclusion") \
            else None
        finite = np.array([bool(np.isfinite(z[i]).all() and all(np.isfinite([s.l1, s.p_value]).all()
                                                                 for s in scores[i])) for i in range(len(z))],
                          dtype=bool)
        evidence = [Evidence(scores[i], None if exclusion is None else exclusion[0][i],
                             0 if exclusion is None else exclusion[1],
                             {**noise_statistics(z[i], self.region).values, **stats[i]} if finite[i] else {},
                             self.independent)
                    for i in range(len(z))]
        return evidence, finite
