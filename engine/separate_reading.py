"""What a separate reading shares: a conclusion drawn beside the plain analysis on pixels the tool altered (the
re-alignment search's candidate inverse transforms, `engine.search_verdict`; the restoration's estimate of the
clean image, `engine.restored_verdict`). A calibration is drawn on the model's own, unaltered images, so no
identification test is calibrated on altered pixels: such a reading is at most `inconclusive`: the most likely key,
or the keys that cannot be told apart, are named as candidates and no key holder is named. This is the rule
`engine.verdicts.conclude` applies to an uncalibrated identification, made unconditional. The plain analysis's
conclusion is never changed.
"""

from __future__ import annotations

from dataclasses import replace

from engine.verdicts import OUTSIDE_CALIBRATION, Conclusion

# The state a separate reading's conclusion reports: no calibration applies to altered pixels.
SEPARATE_CALIBRATION = "uncalibrated"


def at_most_inconclusive(c: Conclusion, notes: tuple[str, ...] = (),
                         calibration: str | None = SEPARATE_CALIBRATION) -> Conclusion:
    """`c` with `notes` added, an `identified` outcome turned into `inconclusive` with the key as the one candidate,
    and the calibration stated as `calibration` (None: as `c` states it, for a reading whose detection test did
    use the run's calibration and its coverage check)."""
    if c.outcome == "identified":
        c = replace(c, outcome="inconclusive", key=None, candidates=c.candidates or (c.key,))
    return replace(c, calibration=c.calibration if calibration is None else calibration, notes=c.notes + tuple(notes))


def separate_headline(c: Conclusion, after: str, corrected: str, unnamed: str = "uncalibrated") -> str:
    """A separate reading's conclusion in one line, worded after `Conclusion.headline` with `after` ("after
    re-alignment", "after restoration"), for a negative what its level is corrected for, and for one candidate why
    it is not named (`unnamed`). Pixels outside what the calibration covers are said to be so before anything."""
    outside = c.calibration == OUTSIDE_CALIBRATION
    if c.outcome == "not_detected":
        if outside:
            return (f"No watermark detected {after} at FPR {c.fpr:g}, but the pixels lie outside what the "
                    "calibration covers: a weak negative")
        return f"No watermark detected {after} at FPR {c.fpr:g} ({corrected})"
    if c.outcome == "not_analysed":
        return f"Not analysed {after}"
    if outside:
        return f"Inconclusive {after}: the pixels lie outside what the calibration covers"
    if len(c.candidates) == 1:
        return f"Watermark detected {after}; key {c.candidates[0]} most likely, not identified ({unnamed})"
    if c.candidates:
        return f"Watermark detected {after}; key {' or '.join(c.candidates)} (cannot be told apart)"
    if c.outcome == "identified":      # never drawn for a separate reading; a hand-edited record says so
        return f"Watermark detected {after}; key {c.key} (recorded as identified)"
    return f"Watermark-like signal {after} that no key of the set explains"


def candidates_phrase(c: Conclusion) -> str:
    """Which keys a positive separate reading points to, as the interpretations say it."""
    if len(c.candidates) == 1:
        return f"key {c.candidates[0]} is the most likely"
    if c.candidates:
        return f"keys {', '.join(c.candidates)} cannot be told apart"
    return "no key of the set explains it"
