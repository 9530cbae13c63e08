"""What a separate reading shares: a conclusion drawn beside the plain analysis on pixels the tool altered (the
re-alignment search's candidate inverse transforms, `engine.search_verdict`; the restoration's estimate of the
clean image, `engine.restored_verdict`). No calibration covers altered pixels (a calibration is drawn on the
model's own, unaltered images), so such a reading is at most `inconclusive`: the most likely key, or the keys that
cannot be told apart, are named as candidates and no key holder is named. This is the rule `engine.verdicts.conclude`
applies to an uncalibrated identification, made unconditional. The plain analysis's conclusion is never changed.
"""

from __future__ import annotations

from dataclasses import replace

from engine.verdicts import Conclusion

# The state a separate reading's conclusion reports: no calibration applies to altered pixels.
SEPARATE_CALIBRATION = "uncalibrated"


def at_most_inconclusive(c: Conclusion, notes: tuple[str, ...] = ()) -> Conclusion:
    """`c` with `notes` added, an `identified` outcome turned into `inconclusive` with the key as the one candidate,
    and the calibration stated as `SEPARATE_CALIBRATION`."""
    if c.outcome == "identified":
        c = replace(c, outcome="inconclusive", key=None, candidates=c.candidates or (c.key,))
    return replace(c, calibration=SEPARATE_CALIBRATION, notes=c.notes + tuple(notes))


def separate_headline(c: Conclusion, after: str, corrected: str) -> str:
    """A separate reading's conclusion in one line, worded after `Conclusion.headline` with `after` ("after
    re-alignment", "after restoration") and, for a negative, what its level is corrected for."""
    if c.outcome == "not_detected":
        return f"No watermark detected {after} at FPR {c.fpr:g} ({corrected})"
    if c.outcome == "not_analysed":
        return f"Not analysed {after}"
    if len(c.candidates) == 1:
        return f"Watermark detected {after}; key {c.candidates[0]} most likely, not identified (uncalibrated)"
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
