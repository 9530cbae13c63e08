"""Text that enters the report: everything untrusted (file names, paths, EXIF text, prompts, case fields,
key descriptions, manifest labels) goes through `esc` — invisible and control characters made visible as
escapes, then HTML-escaped — and numbers are printed one way (n/a, ∞) everywhere. No Qt."""

from __future__ import annotations

import html
import math
import unicodedata
from typing import Any


def visible(text: Any) -> str:
    """Control, format (bidi overrides), separator and surrogate characters as visible escapes."""
    out = []
    for ch in str(text):
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}" if ord(ch) < 0x10000
                       else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return "".join(out)


def esc(text: Any) -> str:
    return html.escape(visible(text), quote=True)


def esc_multiline(text: str) -> str:
    return "<br>".join(esc(line) for line in str(text).splitlines())


def number(v: float | None, fmt: str = ".4g") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return format(v, fmt)


def byte_size(n: int | None, cpu: bool) -> str:
    if n is None:
        return "n/a (CPU)" if cpu else "n/a"
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"
