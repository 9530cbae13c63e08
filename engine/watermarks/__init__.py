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


def independent_key_ids(keys) -> frozenset[str]:
    """The keys of `keys` whose scheme draws keys independently (Gaussian Shading, PRC): a watermark of any other
    key, of this scheme or another, leaves such a key's own test at its null, so "only this key's test passes"
    identifies it without a pairwise test. Empty for Tree-Ring and RingID, whose keys share structure."""
    parts = getattr(keys, "parts", None) or (keys,)
    return frozenset(k.id for part in parts for k in part.keys
                     if getattr(scheme_named(getattr(part, "scheme", "tree-ring")), "independent_keys", False))
