"""The re-alignment search's outcome on the verdict scale (docs/algorithms.md §4, §6): a `Conclusion` per decoder
inversion, drawn apart from the plain analysis's and never replacing it.

Detection: the search's family-wise corrected p-value (`RealignmentResult.corrected_p`: the decoy-key
max-statistic p-value when decoys were drawn, else Bonferroni over every candidate × key). Identification: the
keys the scheme's exclusion test (`engine.treering_scoring.exclusion_statistics`, analytic Student t) does not exclude
on the winning candidate's z_T, except after a rotation by other than a multiple of 90°, whose corners that test
would read (benchmarks/results/search_rules/): there no key is excluded and the search's named key comes first.
Neither the per-candidate p-values nor the exclusion test is calibrated on re-aligned images (a rotation's black
corners, an undone crop's repeated edges and the resampling change the inverted noise; a calibration is drawn on
the model's own, unaltered images), so a positive search is at most `inconclusive` — the most likely key, or the
keys that cannot be told apart, are named as candidates, and no key holder is named. This is the same rule as
`engine.verdicts.conclude` applies to an uncalibrated identification, made unconditional here: no calibration
covers a re-aligned image (`engine.separate_reading`, shared with the restored reading).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.separate_reading import SEPARATE_CALIBRATION, candidates_phrase, separate_headline
from engine.treering_scoring import exclusion_p_values
from engine.verdicts import Conclusion

if TYPE_CHECKING:
    from engine.realignment import RealignmentResult

# The state a search conclusion reports: no calibration applies to re-aligned images (engine.separate_reading).
SEARCH_CALIBRATION = SEPARATE_CALIBRATION
WHY_NO_KEY = ("the search names no key holder: neither the per-candidate p-values nor the identification test is "
              "calibrated on re-aligned images (the undone transform's fill and resampling change the inverted "
              "noise, and a calibration covers only the model's own unaltered images), so a positive search is at "
              "most inconclusive")


def detection_test(result: "RealignmentResult") -> str:
    """One sentence: which corrected test produced the search's detection p-value, over what, and the winner."""
    over = (f"{len(result.transforms)} candidate transform(s) × {len(result.key_ids)} key(s) = {result.tests} tests "
            f"({result.method})")
    winner = f"winner: {result.best.describe()} with key {result.key_text}"
    if result.decoy_p is not None:
        return (f"decoy-key max-statistic p-value of the re-alignment search over {over}, against "
                f"{result.decoys} decoy key sets drawn like the keys (exact over the key draw, smallest possible "
                f"p = {1 / (result.decoys + 1):.2g}); {winner}")
    return (f"Bonferroni over the {over} of the smallest per-candidate analytic p-value (valid only as far as each "
            f"candidate's p-value is; no decoy keys were drawn); {winner}")


def search_conclusion(result: "RealignmentResult", fpr: float) -> Conclusion:
    """The search's conclusion at the family-wise level `fpr`: `not_detected` or `inconclusive`, never
    `identified` (see the module docstring)."""
    ids = list(result.key_ids)
    k = len(ids)
    p_keys = np.asarray(result.p_values[result.best_index], dtype=np.float64)   # the winner's per-key p-values
    detection_p = float(result.corrected_p())
    detected = detection_p <= fpr
    if k > 1 and result.best.angle % 90 != 0:
        p_excl = np.ones(k)
        id_test = ("the winner rotates by other than a multiple of 90°, and the exclusion test would read its "
                   "corners' fill with the suspect (on `demo` it excluded the true key at the 1 % level for 12 and 31 "
                   "of 150 watermarked images rotated by 10° and 30°): no key is excluded; the key the search names, "
                   f"{result.key_text}, comes first, the others by p-value")
    elif result.exclusion is not None and k > 1:
        p_excl = exclusion_p_values(np.asarray(result.exclusion, dtype=np.float64), result.exclusion_df, k)
        id_test = ("on the winning candidate's z_T, for each key the largest t statistic of the evidence towards "
                   f"another key beyond what that key explains (Student t, {result.exclusion_df} df, Bonferroni over "
                   f"the {k - 1} others; analytic, not calibrated on re-aligned images: it ranks the keys but names "
                   f"none); the key the search names, {result.key_text}, first if not excluded")
    elif k == 1:
        p_excl = np.ones(1)
        id_test = "one key tested: identification is among the keys tested only"
    else:
        p_excl = np.ones(k)            # no pairwise test for these keys: none is excluded
        id_test = ("these keys have no pairwise exclusion test: no key is excluded; the key the search names, "
                   f"{result.key_text}, comes first, the others by p-value")
    # the candidates (not excluded) first, the key the search names first among them, so the conclusion reads as the
    # winner shows; then the least excluded
    order = sorted(range(k), key=lambda i: (p_excl[i] <= fpr, ids[i] != result.best_key, -p_excl[i], p_keys[i]))
    candidates = tuple(ids[i] for i in order if p_excl[i] > fpr)
    runner_up_p = float(max(p_excl[j] for j in order[1:])) if k > 1 else None
    notes = [f"a separate, search-corrected test beside the plain analysis, which it does not change: "
             f"{len(result.transforms)} candidate inverse transforms tried, the winner {result.best.describe()} "
             f"(as submitted, the smallest p-value was {result.identity_p:.3g})", WHY_NO_KEY]
    if not detected:
        return Conclusion("not_detected", None, (), detection_p, None, SEARCH_CALIBRATION, fpr,
                          detection_test(result), id_test, None, tuple(notes), result.method)
    return Conclusion("inconclusive", None, candidates, detection_p, runner_up_p, SEARCH_CALIBRATION, fpr,
                      detection_test(result), id_test, None, tuple(notes), result.method)


def search_headline(c: Conclusion) -> str:
    """The search conclusion in one line, worded after `Conclusion.headline` with "after re-alignment"."""
    if c.outcome == "not_analysed":
        return "Re-alignment search not run"
    return separate_headline(c, "after re-alignment", "search-corrected")


def search_interpretation(c: Conclusion) -> str:
    """What the search conclusion may claim."""
    p = "—" if c.detection_p is None else f"{c.detection_p:.3g}"
    if c.outcome == "not_detected":
        return (f"No candidate re-alignment brings out a watermark at the family-wise level {c.fpr:g} (corrected "
                f"p = {p}). The transforms tried are listed; a transform outside them is not covered, so this is not "
                "proof of absence.")
    if c.outcome in ("inconclusive", "identified"):
        which = candidates_phrase(c)
        return (f"A watermark-like signal appears after re-alignment (corrected p = {p}, the search's own test over "
                f"every candidate and key); {which}. No key holder is named: the tests behind the candidates are not "
                "calibrated on re-aligned images, and the exhibit's own conclusion, from the image as submitted, "
                "stands as drawn.")
    return "The re-alignment search did not run on this image."
