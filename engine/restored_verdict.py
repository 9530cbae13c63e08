"""The restored reading's outcome on the verdict scale (docs/algorithms.md §6): a `Conclusion` per decoder inversion
drawn from the exhibit after restore-then-invert (`engine.restoration`), apart from the plain analysis's and never
replacing it.

The tests are the plain analysis's own, with the run's calibration where one applies: the detection test's
empirical p-value, and the calibration's coverage check on the restored pixels and their recovered noise. That is
the test the robustness benchmark's "restored" rows measure on restored clean images (their null controls,
benchmarks/robustness.py), and the coverage check is what catches a degradation stated wrongly: a rotated or
cropped exhibit "restored" as a JPEG keeps its black corners and its structured noise, so it lies outside what the
calibration covers and its restored reading says so instead of reading positive. Without a calibration (a model
none is drawn for) the tests are the analytic ones and nothing checks coverage; the reading says that too.

A positive restored reading is at most `inconclusive` (`engine.separate_reading`, the rule the re-alignment search
follows too): the candidates are named, no key holder, because the identification test is calibrated on the
model's own unaltered images and the restoration fills what the degradation removed with the model's own
estimate (its autoencoder's or its denoiser's).
"""

from __future__ import annotations

from dataclasses import replace

from engine.separate_reading import at_most_inconclusive, candidates_phrase, separate_headline
from engine.verdicts import OUTSIDE_CALIBRATION, Conclusion

WHY_NO_KEY = ("the restored reading names no key holder: the identification test is calibrated on the model's own "
              "unaltered images, and the restoration fills what the degradation removed with the model's "
              "own estimate, so a positive restored reading is at most inconclusive")
NO_COVERAGE_CHECK = ("no calibration applies to this run, so nothing checks that the restored pixels look like the "
                     "model's own images: a degradation stated wrongly (a rotated or cropped image restored as a "
                     "JPEG) is not caught, and the analytic test flags such images well above its level")


def restored_conclusion(c: Conclusion, restoration: str) -> Conclusion:
    """The conclusion drawn on the restored pixels (with the run's calibration, if any), as the restored reading
    states it: its tests say they ran on restored pixels and how they were restored, its calibration state stays
    as drawn ("outside calibration" when the restored pixels fail the coverage check), and it is never
    `identified`."""
    on = f"on the pixels restored from the exhibit ({restoration}): "
    c = replace(c, detection_test=on + c.detection_test, identification_test=on + c.identification_test)
    notes = (f"a separate reading beside the plain analysis, which it does not change: the exhibit restored "
             f"({restoration}), then analysed with the same methods, settings, keys and calibration", WHY_NO_KEY)
    if c.calibration == "uncalibrated":
        notes += (NO_COVERAGE_CHECK,)
    return at_most_inconclusive(c, notes, calibration=None)


def restored_headline(c: Conclusion) -> str:
    """The restored conclusion in one line, worded after `Conclusion.headline` with "after restoration"."""
    return separate_headline(c, "after restoration", f"{c.calibration}, on restored pixels", "restored pixels")


def restored_interpretation(c: Conclusion) -> str:
    """What the restored conclusion may claim."""
    p = "—" if c.detection_p is None else f"{c.detection_p:.3g}"
    outside = c.calibration == OUTSIDE_CALIBRATION
    if outside and c.outcome in ("inconclusive", "identified", "not_detected"):
        return ("The restored pixels do not look like the model's own images (see the notes), so the restored "
                "reading cannot be weighed either way. The stated degradation may not be what happened to this "
                "exhibit: restoration does not undo a rotation, a crop or padding. The exhibit's own conclusion, "
                "from the image as submitted, stands as drawn.")
    if c.outcome == "not_detected":
        return (f"After restoration no watermark is detected at the level {c.fpr:g} (p = {p}, {c.calibration}). The "
                "restoration undoes only the stated degradation, approximately; this is not proof of absence.")
    if c.outcome in ("inconclusive", "identified"):
        which = candidates_phrase(c)
        return (f"A watermark-like signal appears after restoration (p = {p}, the plain analysis's detection test "
                f"on the restored pixels, {c.calibration}); {which}. No key holder is named: the restoration adds "
                "the model's own autoencoder's detail and the identification test is calibrated on unaltered images "
                "only; the exhibit's own conclusion, from the image as submitted, stands as drawn.")
    return "The restored reading was not made for this image."
