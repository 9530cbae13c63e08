"""Strict JSON for every document the tool writes: NaN and ±Infinity are not JSON (RFC 8259), and a reader
that accepts them (Python's does) hands its users a number that is not one. Non-finite floats become null;
what they meant is stated beside them (the report, the failure list)."""

from __future__ import annotations

import json
import math
from typing import Any


def finite_or_null(obj: Any) -> Any:
    """A copy of `obj` (dicts, lists, tuples, scalars) with every non-finite float replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(v) for v in obj]
    return obj


def read_json_object(path, max_bytes: int):
    """The JSON object in a small file the tool reads but did not necessarily write (a manifest, a config, an
    earlier output), or None when it is missing, larger than `max_bytes`, not a regular file, not JSON, nested
    too deeply, or not an object. Untrusted input: never raises for its content."""
    from pathlib import Path

    p = Path(path)
    try:
        if not p.is_file() or p.stat().st_size > max_bytes:
            return None
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None
