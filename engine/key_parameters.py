"""What `keys new --scheme …` and the window's New keys dialog may set, one table for both: each scheme's
parameters with their defaults and limits, and the one function that makes keys from them.

A default of None is derived from the latent shape by the scheme (said in `derived`); the limits here are the
ones that hold whatever the shape, and the key constructors check the rest (a channel the latent has, rings
that fit it) with one sentence naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass

# the most keys one set holds, as engine.watermarks.base.MAX_SCHEME_KEYS (not imported: this table is read by the
# window and the CLI's parser, which come up without torch; tests/test_gui_scheme_cases.py checks they agree)
MAX_SCHEME_KEYS = 4096

SCHEME_TITLES = {"tree-ring": "Tree-Ring", "gaussian-shading": "Gaussian Shading", "ringid": "RingID", "prc": "PRC"}


@dataclass(frozen=True)
class KeyParameter:
    name: str                       # keyword of the scheme's key maker
    flag: str                       # the CLI option
    label: str                      # the window's label
    kind: type                      # int or float
    default: int | float | None     # None: derived from the latent shape (`derived` says how)
    low: float
    high: float
    help: str
    derived: str = ""
    open_low: bool = False          # low itself is not allowed (a level in (0, 1))

    def check(self, value) -> None:
        if value is None:
            if self.default is None:
                return
            raise ValueError(f"{self.label} ({self.flag}) needs a value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (self.kind is int and value != int(value)):
            raise ValueError(f"{self.label} ({self.flag}) must be {'an integer' if self.kind is int else 'a number'}")
        if not (self.low < value if self.open_low else self.low <= value) or value > self.high:
            bracket = "(" if self.open_low else "["
            raise ValueError(f"{self.label} ({self.flag}) must be in {bracket}{self.low:g}, {self.high:g}] (got {value:g})")


@dataclass(frozen=True)
class SchemeKeyOptions:
    scheme: str
    default_count: int
    max_count: int
    prefix: str                     # key ids are prefix + number
    parameters: tuple[KeyParameter, ...]

    @property
    def title(self) -> str:
        return SCHEME_TITLES[self.scheme]


KEY_OPTIONS: dict[str, SchemeKeyOptions] = {o.scheme: o for o in (
    SchemeKeyOptions("tree-ring", 3, MAX_SCHEME_KEYS, "key", (
        KeyParameter("radius", "--radius", "Ring radius", int, 6, 1, 256, "radius of the key's mask in the Fourier "
                     "plane (in latent pixels)"),
        KeyParameter("channel", "--channel", "Watermark channel", int, 0, 0, 63, "latent channel the rings are "
                     "written to"),
        KeyParameter("scale", "--scale", "Ring value scale", float, None, 1e-3, 1e6, "ring value scale",
                     derived="80 × side/64, dec-inv's strength"),
    )),
    SchemeKeyOptions("gaussian-shading", 1, MAX_SCHEME_KEYS, "gs", (
        KeyParameter("ch", "--gs-ch", "Channels per bit", int, 1, 1, 64, "Gaussian Shading: latent channels that "
                     "repeat one watermark bit (must divide the channel count)"),
        KeyParameter("hw", "--gs-hw", "Pixels per bit (side)", int, None, 1, 512, "Gaussian Shading: side of the "
                     "square of latent pixels that repeats one bit (must divide the side)",
                     derived="side/8: 256 bits"),
    )),
    SchemeKeyOptions("ringid", 64, 2048, "ringid", (
        KeyParameter("value", "--ringid-value", "Ring value", float, None, 1e-3, 1e6, "RingID: magnitude of the "
                     "ring values", derived="the latent side"),
        KeyParameter("r_out", "--ringid-r-out", "Outer ring radius", int, None, 2, 256, "RingID: outer ring radius",
                     derived="14 × side/64"),
        KeyParameter("r_in", "--ringid-r-in", "Inner ring radius", int, None, 0, 255, "RingID: inner ring radius "
                     "(the rings are r_in + 1 … r_out; 2^(r_out − r_in) keys)", derived="3 × side/64"),
    )),
    SchemeKeyOptions("prc", 1, MAX_SCHEME_KEYS, "prc", (
        KeyParameter("fpr", "--prc-fpr", "Code false-positive rate", float, 1e-5, 0.0, 0.5, "PRC: the key's own "
                     "false-positive rate (sets its test bits)", open_low=True),
        KeyParameter("message_length", "--prc-message-length", "Message bits", int, None, 0, 4096,
                     "PRC: message bits the code carries", derived="512 × n/16384"),
    )),
)}


def check_key_options(scheme: str, count: int, values: dict) -> None:
    """ValueError (one sentence naming the parameter) for a value outside the table's limits."""
    options = key_options(scheme)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= options.max_count:
        raise ValueError(f"the number of keys (--count) must be 1 … {options.max_count} for {options.title}")
    known = {p.name: p for p in options.parameters}
    for name, value in values.items():
        if name not in known:
            raise ValueError(f"{options.title} keys have no parameter {name!r}")
        known[name].check(value)


def key_options(scheme: str) -> SchemeKeyOptions:
    try:
        return KEY_OPTIONS[scheme]
    except KeyError:
        raise ValueError(f"unknown scheme {scheme!r} (known: {', '.join(KEY_OPTIONS)})") from None


def make_keys(scheme: str, count: int, latent_shape, values: dict | None = None, seed: int | None = None,
              prefix: str | None = None, separable: bool = False, attempts: int | None = None):
    """Fresh keys of one scheme: a Tree-Ring `KeySet`, or the other schemes' `SchemeKeySet` (for a key vault).
    `values`: the table's parameters (None or missing: the default). `separable`: Tree-Ring keys drawn so every
    key can be told apart after inversion (`engine.key_separability`; ValueError when `attempts` draws, default
    the CLI's 20000, cannot make them)."""
    import os

    options = key_options(scheme)
    values = {k: v for k, v in (values or {}).items() if v is not None}
    check_key_options(scheme, count, values)
    values = {**{p.name: p.default for p in options.parameters if p.default is not None}, **values}
    prefix = prefix or options.prefix
    shape = tuple(int(v) for v in latent_shape)
    if scheme == "tree-ring":
        from engine.key_separability import new_separable_keys
        from engine.treering import new_random_keys

        if separable:
            return new_separable_keys(count, latent_shape=shape, seed=seed, prefix=prefix,
                                      **({"attempts": attempts} if attempts else {}), **values)
        return new_random_keys(count, latent_shape=shape, seed=seed, prefix=prefix, **values)
    if scheme == "gaussian-shading":
        from engine.watermarks import gaussian_shading

        return gaussian_shading.new_keys(count, latent_shape=shape, seed=seed, prefix=prefix, **values)
    if scheme == "ringid":
        from engine.watermarks import ringid

        r_out, r_in = ringid.default_rings(shape[-1])
        rings = (values.pop("r_out", r_out), values.pop("r_in", r_in))
        if rings[0] <= rings[1]:
            raise ValueError(f"the outer ring radius (--ringid-r-out) {rings[0]} must exceed the inner one "
                             f"(--ringid-r-in) {rings[1]}")
        if 2 ** (rings[0] - rings[1]) > options.max_count:
            raise ValueError(f"rings {rings[1] + 1} … {rings[0]} make 2^{rings[0] - rings[1]} keys: at most "
                             f"{options.max_count} are supported (narrow the rings)")
        base = int.from_bytes(os.urandom(6), "big") if seed is None else seed   # heter-noise seeds: base + index
        return ringid.new_keys(count, latent_shape=shape, seed=base, prefix=prefix, rings=rings, **values)
    from engine.watermarks import prc

    return prc.new_keys(count, latent_shape=shape, seed=seed, prefix=prefix, **values)


def default_provenance(scheme: str, count: int, latent_shape, seed: int | None, made_by: str) -> str:
    """The key vault's provenance line when the examiner gives none."""
    return (f"{count} {scheme} keys made by {made_by} for latents {'x'.join(map(str, latent_shape))}"
            + (f", seed {seed}" if seed is not None else ""))
