"""What if the exhibit had been altered? An analysed suspect's pixels put through an attack of
`engine.attacks` (or a combination of them) at chosen strengths, recovered and scored again: the statistic's response, for the window's
what-if panel, and the conclusion the tool would draw on the altered pixels (`engine.verdicts.conclude` with the
run's calibration and its coverage check, as a scan draws it). The two differ on altered evidence: the analytic
test flags a third of clean `demo` images rotated by 10°, which the calibration's coverage check refuses
(docs/algorithms.md, robustness study). The exhibit's file is never modified; everything happens in memory."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.attacks import apply_attacks, combined, describe_parameters
from engine.decoys import p_value_matrix
from engine.model_loader import LoadedModel
from engine.pixel_levels import from_uint8, to_uint8
from engine.progress import NULL_PROGRESS, Progress
from engine.recovery import recover_z_t
from engine.treering import KeySet
from engine.verdicts import Conclusion


@dataclass(frozen=True)
class ResponsePoint:
    attack: str
    strength: float
    parameter: str                 # the absolute parameter with its unit
    method: str
    min_p: float                   # the smallest p-value over the keys
    best_key: str                  # the key of that p-value
    detected: bool                 # min p below fpr / N: the analytic reading (Bonferroni over keys, uncalibrated)
    conclusion: Conclusion         # what the tool concludes on the altered pixels (calibrated where one applies)

    def describe(self) -> str:
        side = "below" if self.detected else "not below"
        return (f"{self.attack} {self.parameter}: min p = {self.min_p:.3g} (nearest key {self.best_key}), {side} the "
                f"analytic Bonferroni threshold; the tool would conclude: {self.conclusion.headline()} "
                f"({self.conclusion.calibration})")


def attack_response(model: LoadedModel, keys: KeySet, pixels: np.ndarray, config, method: str, attack: str,
                    strengths: tuple[float, ...], seed: int = 0, progress: Progress = NULL_PROGRESS,
                    calibration=None) -> tuple[ResponsePoint, ...]:
    """The exhibit's (3, T, T) pixels under `attack` at each strength, recovered with `method` of `config` (an
    `AnalysisConfig`), scored against `keys` and concluded with `calibration` (the run's `CalibrationChoice`;
    None: uncalibrated); one batch."""
    from engine.robustness_verdicts import latent_conclusions

    combined(attack, 0.0)                # ValueError naming an unknown attack
    base = to_uint8(pixels)
    attacked = [apply_attacks(base, combined(attack, s, seed)) for s in strengths]
    x = torch.from_numpy(from_uint8(np.stack(attacked)))
    z_t = recover_z_t(model, x, method, config, progress)
    p = p_value_matrix(z_t, keys.keys, config.score_target)
    conclusions = latent_conclusions(keys, z_t, x, config, method,
                                     None if calibration is None else calibration.for_method(method))
    return tuple(ResponsePoint(attack, s, describe_parameters(combined(attack, s)), method, float(row.min()),
                               keys.ids[int(row.argmin())], bool(row.min() < config.fpr / len(keys)), c)
                 for s, row, c in zip(strengths, p, conclusions))
