"""The calibration's images under simulated alterations: its watermarked images for the identification test, its
clean images for the detection test.

A named key rests on the exclusion test of docs/algorithms.md §4.2, calibrated on the model's own watermarked
images. Evidence is rarely the generator's PNG, and some alterations bend the recovered ring towards another
key's profile: on `demo`, doubling the brightness (WAVES' strongest setting) pushed the statistic of the true key
to 4.9 where the 150 unaltered calibration images reach 2.6, and 3 of 150 brightened images were named after the
wrong key (benchmarks/results/wrong_keys_brightness/). The tool cannot tell how evidence was altered, so a
calibration may also record the statistic on its watermarked images under each alteration below, and a key is
then excluded only when it is excluded against every one of these nulls (`engine.verdicts.conclude`).

Opt-in (`calibrate --alterations`), because measured on `demo` it costs much and protects little: with 20 images
per key and alteration, keys named on unaltered images fell from 39 to 12 of 150 while brightness ×2 still gave
2 wrong keys (3 without), the heavy tail of the bent statistic being rarer than such a sample can show
(benchmarks/results/identification_under_alteration/). What does protect against that case by default is the
clipped-pixel share in the coverage check (`engine.noise_statistics.EXACT_RANGE`).

Which alterations: the photometric and degradation distortions of WAVES (Ding et al., ICML 2024) and a downscale,
and a crop resized back (which leaves no black corners, so often stays inside what the calibration covers), each at
the strengths of the robustness table (`benchmarks/robustness.py`'s issue plan). Rotations are left out: their
black corners put the evidence outside what the calibration covers (§4.4), where no key is named anyway.
Regeneration is left out for its cost (a diffusion run per image).

Detection. A calibration may also record the detection statistic of its clean images under the alterations of
`DETECTION_ALTERATION_PLAN` (`calibrate --detection-alterations`), where they stay inside what it covers; a
watermark is then detected only when the evidence's statistic is beyond the level against the unaltered clean
images *and* against each of these (`engine.verdicts.conclude`). The rotation that a crop and a blur hide is the
case the coverage check misses (see the plan); a watermark that survives leaves a statistic far below any of these
nulls (on `demo`, the median unaltered watermarked image has T ≈ 1e-13, the smallest of 150 clean images under
combo-all at 0.2 T ≈ 3e-4: benchmarks/results/combo_all_causes/), so what detection loses is the weakened
watermarks that clean images under such an alteration imitate. A null whose images all keep some dark (or
pure-black) corner pixels applies only to evidence with as many (`engine.noise_statistics.ALTERATION_TRACES`), so
that the rotations that keep their corners are guarded without vetoing every weakened watermark
(benchmarks/results/detection_null_traces/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch

from engine.attacks import ATTACKS, Attack, apply_attacks, combined
from engine.pixel_levels import from_uint8

# (attack, strengths): relative strengths in [0, 1] as `engine.attacks.Attack` takes them
CALIBRATION_ALTERATION_PLAN: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("resizedcrop", ((1 - 0.9**2) / 0.5, (1 - 0.8**2) / 0.5, (1 - 0.75**2) / 0.5)),   # 90, 80, 75 % of the side
    ("jpeg", ((90 - 70) / 80, (90 - 50) / 80, (90 - 30) / 80)),          # quality 70, 50, 30
    ("blur", (1 / 20, 2 / 20, 4 / 20)),                                   # radius 1, 2, 4
    ("erasing", (0.05 / 0.25, 0.1 / 0.25, 0.2 / 0.25)),                   # 5, 10, 20 % of the area
    ("brightness", (0.2, 0.5, 1.0)),                                      # factor 1.2, 1.5, 2
    ("contrast", (0.2, 0.5, 1.0)),                                        # factor 1.2, 1.5, 2
    ("noise", (0.2, 0.5, 1.0)),                                           # sigma 0.02, 0.05, 0.1
    ("downscale", ((1 - 0.75) / 0.75, (1 - 0.5) / 0.75, (1 - 0.25) / 0.75)),   # to 75, 50, 25 % of the side
)

# The detection null under alteration (`MethodCalibration.detection_null_altered`): the calibration's clean images
# under a rotation whose corners a crop and a blur have hidden, alone and within WAVES' full combination. Measured on
# `demo` with the encoder (benchmarks/results/robustness/): a 9-degree rotation with its corners left in place is
# outside what the calibration covers for every clean image, but after a crop, blur radius 4, noise and JPEG
# (combo-all at 0.2) the clean images lie inside every coverage range while the rotation's trace in z_T's low
# frequencies still looks like a ring key: 20 of 150 were concluded watermarked. Blur, noise, JPEG and the
# photometric changes without the rotation flagged none of 150 by the analytic test, the erasing alone one
# (benchmarks/results/combo_all_causes/).
#
# Without a blur of radius 2 or more the corners keep pure-black pixels, which the coverage check reads, but on
# `demo` not always beyond what its watermarked images have (their corner fill reaches 0.11: the demo watermark
# darkens corners): a 9-degree rotation and a crop with a blur of radius 1, or with noise of sigma 0.02 (black
# clipped at 0 stays black in part), made clean images look watermarked past the six nulls above
# (benchmarks/results/detection_null_traces/, benchmarks/results/robustness/). Such images carry the pure-black
# corners as a trace (`engine.noise_statistics.ALTERATION_TRACES`), so the nulls drawn on them apply only to
# evidence that has as much: the same rotations and crops alone, with a blur of radius 1, and with that noise.
#
# Between those and the radius-4 nulls, a 9-degree rotation and crop blurred with radius 2 to 3 keeps only dark (not
# pure-black) corners, too few for the corner nulls' gate, and a signal the radius-4 null does not reach: on `demo`
# with noise of sigma 0.02 after the blur, 5 (radius 2) and 8 (radius 3) of 150 clean images were flagged
# (benchmarks/results/detection_null_traces/). The rotations pinned at radius 2, and at radius 2.5 with that noise
# after the blur, are drawn for them; each gated by its dark corners only where all its images have some.
DETECTION_ALTERATION_PLAN: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("rotation+resizedcrop+blur", (0.1, 0.2, 0.3)),     # 4.5, 9, 13.5 degrees; 95, 90, 85 % of the area; radius 2, 4, 6
    ("combo-all", (0.1, 0.2, 0.3)),
    ("rotation+resizedcrop", (0.1, 0.2, 0.3)),
    ("rotation+resizedcrop+blur@0.05", (0.1, 0.2, 0.3)),   # blur radius 1
    ("rotation+resizedcrop+noise", (0.1, 0.2, 0.3)),       # sigma 0.01, 0.02, 0.03
    ("rotation+resizedcrop+blur@0.1", (0.2, 0.3)),         # 9, 13.5 degrees, blur radius 2
    ("rotation+resizedcrop+blur@0.125+noise@0.2", (0.2, 0.3)),   # 9, 13.5 degrees, radius 2.5, then sigma 0.02
)

# The key, in a method entry's summary, of {label: why} for the plan's detection nulls a calibration leaves out on
# purpose (benchmarks/make_calibrations.py --leave-out): a null missing without a reason is a calibration not yet
# grown to the plan.
LEFT_OUT_SUMMARY_KEY = "detection_alterations_left_out"

# An altered calibration image adds its statistic only where identification would be asked of it: inside what
# the calibration covers and detected at this level (above any level a scan is expected to use, so that the
# null does not depend on the scan's level).
ALTERED_DETECTION_LEVEL = 0.1


@dataclass(frozen=True)
class Alteration:
    """One simulated alteration of calibration images: an attack or a combination of attacks
    (`engine.attacks.combination_parts`) at one relative strength; image i gets seed first_seed + i."""

    name: str
    strength: float

    def __post_init__(self) -> None:
        combined(self.name, self.strength)          # unknown names and strengths out of range fail here

    def attacks(self, seed: int = 0) -> tuple[Attack, ...]:
        return combined(self.name, self.strength, seed)

    @property
    def value(self) -> str:
        """A single attack's absolute parameter ("2" for brightness ×2), a combination's relative strength."""
        parts = self.attacks()
        return f"{parts[0].parameter:g}" if len(parts) == 1 else f"{self.strength:g}"

    @property
    def label(self) -> str:
        """Its name in a calibration file: "brightness 2", "combo-all 0.2"."""
        return f"{self.name} {self.value}"


def calibration_alterations(plan: Sequence[tuple[str, Sequence[float]]] = CALIBRATION_ALTERATION_PLAN
                            ) -> tuple[Alteration, ...]:
    """The plan's alterations, in its order."""
    return tuple(Alteration(name, s) for name, strengths in plan for s in strengths)


def detection_alterations() -> tuple[Alteration, ...]:
    """The alterations the detection null under alteration is drawn on (`DETECTION_ALTERATION_PLAN`)."""
    return calibration_alterations(DETECTION_ALTERATION_PLAN)


def grouped_phrase(pairs: Iterable[tuple[str, str]], units: Mapping[str, str] | None = None) -> str:
    """(name, value) pairs → "jpeg 70/50/30, brightness 1.2/1.5/2", in first-seen order; with `units`, each
    name's unit in brackets after its values."""
    by_name: dict[str, list[str]] = {}
    for name, value in pairs:
        by_name.setdefault(name, []).append(value)
    return ", ".join(f"{name} {'/'.join(v)}".strip() + (f" ({units[name]})" if units and name in units else "")
                     for name, v in by_name.items())


def describe_alterations(alterations: Sequence[Alteration]) -> str:
    """One phrase for a calibration's source line, e.g. "jpeg 70/50/30 (quality), brightness 1.2/1.5/2 (factor),
    combo-all 0.1/0.2 (relative strength)"."""
    units = {a.name: ATTACKS[a.name].unit if a.name in ATTACKS else "relative strength" for a in alterations}
    return grouped_phrase(((a.name, a.value) for a in alterations), units)


def altered_pixels(pixels: np.ndarray, alteration: Alteration, first_seed: int = 0) -> np.ndarray:
    """(N, H, W, 3) uint8 → the same images under `alteration`, image i with seed first_seed + i."""
    return np.stack([apply_attacks(p, alteration.attacks(first_seed + i)) for i, p in enumerate(pixels)])


def recover_altered(model, config, pixels_by_key: Mapping[str, np.ndarray], alterations: Sequence[Alteration],
                    progress=None) -> tuple[dict[str, dict[str, dict[str, np.ndarray]]],
                                            dict[str, dict[str, list[dict]]]]:
    """For every alteration and key, the recovered z_T of each method of `config` and the evidence statistics
    (`engine.noise_statistics.evidence_statistics`) of the altered pixels: (latents[method][label][key_id],
    statistics[label][key_id]). `pixels_by_key[group]`: (N, T, T, 3) uint8 at the model's size, per key id (the
    identification null) or "clean" (the detection null)."""
    from engine.noise_statistics import evidence_statistics
    from engine.progress import NULL_PROGRESS
    from engine.recovery import recover_z_t

    progress = progress or NULL_PROGRESS
    latents: dict[str, dict[str, dict[str, np.ndarray]]] = {m: {} for m in config.methods}
    statistics: dict[str, dict[str, list[dict]]] = {}
    for alteration in alterations:
        label = alteration.label
        for key_id, pixels in pixels_by_key.items():
            progress.check_cancelled()
            px = altered_pixels(pixels, alteration)
            x = torch.from_numpy(from_uint8(px))
            for m in config.methods:
                latents[m].setdefault(label, {})[key_id] = recover_z_t(model, x, m, config, progress,
                                                                       item=f"{key_id}, {label}").numpy()
            statistics.setdefault(label, {})[key_id] = [evidence_statistics(xi) for xi in x.numpy()]
    return latents, statistics
