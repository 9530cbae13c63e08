"""The restored reading's outcome on the verdict scale (docs/algorithms.md §6): a `Conclusion` per decoder inversion
drawn from the exhibit after restore-then-invert (`engine.restoration`), apart from the plain analysis's and never
replacing it.

The tests are the plain analysis's own (the scheme's per-key p-values, Bonferroni over the keys; the exclusion test
for identification), run on the restored pixels, uncalibrated: a calibration is drawn on the model's own unaltered
images, and the restoration replaces what the degradation removed with the model's autoencoder's estimate, so no
calibration covers a restored image. A positive restored reading is therefore at most `inconclusive`
(`engine.separate_reading`, the rule the re-alignment search follows too): the candidates are named, no key holder.
How often a restored clean image reads positive is measured, not assumed: benchmarks/robustness.py's "restored"
rows are the null controls.
"""

from __future__ import annotations

from dataclasses import replace

from engine.separate_reading import at_most_inconclusive, candidates_phrase, separate_headline
from engine.verdicts import Conclusion

WHY_NO_KEY = ("the restored reading names no key holder: nothing is calibrated on restored images (the restoration "
              "fills what the degradation removed with the model's autoencoder's estimate, and a calibration covers "
              "only the model's own unaltered images), so a positive restored reading is at most inconclusive")


def restored_conclusion(c: Conclusion, restoration: str) -> Conclusion:
    """The conclusion drawn (uncalibrated) on the restored pixels, as the restored reading states it: its tests say
    they ran on restored pixels and how they were restored, and it is never `identified`."""
    on = f"on the pixels restored from the exhibit ({restoration}): "
    c = replace(c, detection_test=on + c.detection_test, identification_test=on + c.identification_test)
    return at_most_inconclusive(c, (f"a separate reading beside the plain analysis, which it does not change: the "
                                    f"exhibit restored ({restoration}), then analysed with the same methods, "
                                    "settings and keys", WHY_NO_KEY))


def as_submitted_p(scores) -> float:
    """The restored reading's detection test on the exhibit as submitted (Bonferroni over the keys of the smallest
    per-key p-value, uncalibrated): the number to set beside the restored one, whatever calibration the exhibit's
    own conclusion used."""
    return min(1.0, len(scores) * min(s.p_value for s in scores))


def restored_headline(c: Conclusion) -> str:
    """The restored conclusion in one line, worded after `Conclusion.headline` with "after restoration"."""
    return separate_headline(c, "after restoration", "uncalibrated, on restored pixels")


def restored_interpretation(c: Conclusion) -> str:
    """What the restored conclusion may claim."""
    p = "—" if c.detection_p is None else f"{c.detection_p:.3g}"
    if c.outcome == "not_detected":
        return (f"After restoration no watermark is detected at the level {c.fpr:g} (p = {p}). The restoration "
                "undoes only the stated degradation, approximately; this is not proof of absence.")
    if c.outcome in ("inconclusive", "identified"):
        which = candidates_phrase(c)
        return (f"A watermark-like signal appears after restoration (p = {p}, the plain analysis's tests on the "
                f"restored pixels, uncalibrated); {which}. No key holder is named: the restoration adds the model's "
                "own autoencoder's detail and nothing is calibrated on restored images; the exhibit's own "
                "conclusion, from the image as submitted, stands as drawn.")
    return "The restored reading was not made for this image."
