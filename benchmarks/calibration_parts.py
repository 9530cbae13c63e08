"""What the scripts that grow a shipped calibration in parts share (benchmarks/make_calibrations.py and
benchmarks/altered_null_making.py): where the parts are kept, the settings a part is made with, and how the
merged file says what was added."""

from __future__ import annotations

import harness

PARTS = harness.REPO / "benchmarks" / "cache" / "calibration_parts"


def write_merged(cal, methods, out, addition: str) -> None:
    """Write `cal` with these method entries, its source line saying what was added."""
    from dataclasses import replace

    merged = replace(cal, methods=methods, source=f"{cal.source}; {addition}")
    merged.save(out)
    print(f"wrote {out}: {merged.describe()}; {merged.source}")


def first_seed(cal) -> int:
    """The seed of the calibration's first images, from its source line."""
    import re

    return int(re.search(r"seeds (\d+)", cal.source).group(1))


def part_settings(cal, method: str, config, out) -> tuple[int, object]:
    """(the calibration's first seed; the scan settings of `method` alone) for a part."""
    from dataclasses import replace

    if method not in cal.methods:
        raise SystemExit(f"{out} has no {method} entry")
    return first_seed(cal), replace(config, methods=(method,))
