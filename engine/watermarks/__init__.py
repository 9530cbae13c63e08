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


def keys_independent(keys) -> bool:
    """Whether one key's watermark leaves every other key's test at its null (keys drawn independently, as in
    Gaussian Shading and PRC), so that "only this key's test passes" identifies a key without a pairwise test."""
    schemes = getattr(keys, "schemes", None) or (getattr(keys, "scheme", "tree-ring"),)
    return all(getattr(scheme_named(s), "independent_keys", False) for s in schemes)
