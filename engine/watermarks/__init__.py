"""Initial-noise watermark schemes behind one interface (`base.WatermarkScheme`); `SCHEMES` names them."""

from __future__ import annotations

from engine.watermarks.base import WatermarkScheme
from engine.watermarks.gaussian_shading import GaussianShadingScheme
from engine.watermarks.prc import PRCScheme
from engine.watermarks.ringid import RingIDScheme
from engine.watermarks.tree_ring import TreeRingScheme

SCHEMES: dict[str, WatermarkScheme] = {s.name: s for s in (TreeRingScheme(), GaussianShadingScheme(), RingIDScheme(),
                                                          PRCScheme())}


def scheme_named(name: str) -> WatermarkScheme:
    if name == "multi":          # a vault of several schemes: not a scheme of its own, so not in SCHEMES
        from engine.watermarks.multi import MultiScheme

        return MultiScheme()
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown watermark scheme {name!r} (known: {', '.join(SCHEMES)})") from None


def scheme_for(keys) -> WatermarkScheme:
    """The scheme of a key set (its `scheme` attribute)."""
    return scheme_named(getattr(keys, "scheme", "tree-ring"))
