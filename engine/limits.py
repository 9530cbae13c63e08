"""Checks for the numbers a user or a file hands the engine: finite, in range, of the right type.

Each config validates itself on construction with these, so a NaN step size or a zero step count is refused
with one sentence where it enters, never discovered as an all-NaN result or a silently skipped inversion.
"""

from __future__ import annotations

import math


def require_int(value, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{what} must be between {low} and {high}, not {value}")
    return value


def require_number(value, what: str, low: float, high: float, *, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, not {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{what} must be a finite number, not {value!r}")
    if (v <= low if low_open else v < low) or v > high:
        bound = f"above {low:g}" if low_open else f"at least {low:g}"
        raise ValueError(f"{what} must be {bound} and at most {high:g}, not {value!r}")
    return v


def require_choice(value, what: str, choices) -> str:
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(map(str, choices))}, not {value!r}")
    return value
