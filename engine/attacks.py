"""What evidence goes through before it reaches an examiner: the WAVES distortions (An et al., ICML 2024),
seeded and deterministic, applied in memory to 8-bit RGB pixels (evidence files are never modified).

Each attack maps a relative strength s ∈ [0, 1] to its absolute parameter as WAVES does, lo + s·(hi − lo)
(docs/algorithms.md §6): rotation 0 → 45° (nearest neighbour, same size, black corners), resized crop keeping
a square of area 1 → 0.5 of the image at a random place and resizing it back, erasing 0 → 25 % of the area
(a random black square), brightness and contrast factors 1 → 2, Gaussian blur radius 0 → 20, Gaussian noise
σ 0 → 0.1 on [0, 1] and JPEG quality 90 → 10; plus a downscale to 1 → 0.25 of the side and back (not in
WAVES) and, with the model, regeneration (`engine.regeneration`: noise to a timestep, denoise); and combinations
of these, each part at the same relative strength unless the name pins its strength ("blur@0.05", `combined`).
Randomness (the crop and erasing positions, the noise) comes from the seed only, so an attack on an image is
reproducible. PIL does the image work.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from engine.limits import require_number


@dataclass(frozen=True)
class AttackSpec:
    name: str
    low: float          # the absolute parameter at strength 0
    high: float         # … and at strength 1
    unit: str
    description: str

    def parameter(self, strength: float) -> float:
        require_number(strength, f"the strength of {self.name}", 0.0, 1.0)
        return self.low + strength * (self.high - self.low)


ATTACKS: dict[str, AttackSpec] = {a.name: a for a in (
    AttackSpec("rotation", 0.0, 45.0, "degrees", "rotated about the centre, same size, black corners"),
    AttackSpec("resizedcrop", 1.0, 0.5, "area kept", "a square crop of this share of the area, resized back"),
    AttackSpec("erasing", 0.0, 0.25, "area erased", "a black square of this share of the area"),
    AttackSpec("brightness", 1.0, 2.0, "factor", "brightness multiplied (PIL ImageEnhance)"),
    AttackSpec("contrast", 1.0, 2.0, "factor", "contrast multiplied (PIL ImageEnhance)"),
    AttackSpec("blur", 0.0, 20.0, "radius", "Gaussian blur of this PIL radius"),
    AttackSpec("noise", 0.0, 0.1, "sigma", "Gaussian noise of this standard deviation on [0, 1], clipped"),
    AttackSpec("jpeg", 90.0, 10.0, "quality", "re-encoded as JPEG at this quality"),
    # not a WAVES attack: a thumbnail brought back to size, as screenshots and re-posts do
    AttackSpec("downscale", 1.0, 0.25, "share of the side", "downscaled (bicubic) to this share of the side, "
               "then resized back"),
)}


def _rotation(img: Image.Image, angle: float, rng: np.random.Generator) -> Image.Image:
    return img.rotate(angle, resample=Image.Resampling.NEAREST, expand=False, fillcolor=(0, 0, 0))


def _square(img: Image.Image, area: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    w, h = img.size
    side = max(1, min(w, h, int(round(np.sqrt(area * w * h)))))
    left = int(rng.integers(0, w - side + 1))
    top = int(rng.integers(0, h - side + 1))
    return left, top, left + side, top + side


def _resized_crop(img: Image.Image, area: float, rng: np.random.Generator) -> Image.Image:
    return img.crop(_square(img, area, rng)).resize(img.size, Image.Resampling.BILINEAR)


def _erasing(img: Image.Image, area: float, rng: np.random.Generator) -> Image.Image:
    if area <= 0:
        return img.copy()
    out = img.copy()
    out.paste((0, 0, 0), _square(img, area, rng))
    return out


def _brightness(img: Image.Image, factor: float, rng: np.random.Generator) -> Image.Image:
    return ImageEnhance.Brightness(img).enhance(factor)


def _contrast(img: Image.Image, factor: float, rng: np.random.Generator) -> Image.Image:
    return ImageEnhance.Contrast(img).enhance(factor)


def _blur(img: Image.Image, radius: float, rng: np.random.Generator) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(radius))


def _noise(img: Image.Image, sigma: float, rng: np.random.Generator) -> Image.Image:
    x = np.asarray(img, dtype=np.float64) / 255.0
    x = np.clip(x + rng.standard_normal(x.shape) * sigma, 0.0, 1.0)
    return Image.fromarray(np.round(x * 255.0).astype(np.uint8))


def _jpeg(img: Image.Image, quality: float, rng: np.random.Generator) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(round(quality)))
    buf.seek(0)
    with Image.open(buf) as decoded:
        return decoded.convert("RGB")


def _downscale(img: Image.Image, share: float, rng: np.random.Generator) -> Image.Image:
    w, h = img.size
    small = img.resize((max(1, round(w * share)), max(1, round(h * share))), Image.Resampling.BICUBIC)
    return small.resize((w, h), Image.Resampling.BICUBIC)


_APPLY: dict[str, Callable[[Image.Image, float, np.random.Generator], Image.Image]] = {
    "rotation": _rotation, "resizedcrop": _resized_crop, "erasing": _erasing, "brightness": _brightness,
    "contrast": _contrast, "blur": _blur, "noise": _noise, "jpeg": _jpeg,
    "downscale": _downscale}


@dataclass(frozen=True)
class Attack:
    """One distortion at one relative strength; `parameter` is the absolute value it uses."""

    name: str
    strength: float
    seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in ATTACKS:
            raise ValueError(f"unknown attack {self.name!r} (known: {', '.join(ATTACKS)})")
        ATTACKS[self.name].parameter(self.strength)

    @property
    def parameter(self) -> float:
        return ATTACKS[self.name].parameter(self.strength)

    def describe(self) -> str:
        spec = ATTACKS[self.name]
        return f"{self.name} {self.parameter:g} {spec.unit} (strength {self.strength:g}, seed {self.seed})"

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 → (H, W, 3) uint8; the input is not modified."""
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError("attacks take (H, W, 3) uint8 RGB pixels")
        rng = np.random.default_rng(self.seed)
        out = _APPLY[self.name](Image.fromarray(pixels), self.parameter, rng)
        return np.asarray(out.convert("RGB"), dtype=np.uint8).copy()


def apply_attacks(pixels: np.ndarray, attacks: tuple[Attack, ...]) -> np.ndarray:
    """Several attacks in order (a combination: WAVES names Dist-Com-Geo/Photo/Deg/All but does not define
    their composition in code, so a combination here is whatever sequence is given)."""
    for a in attacks:
        pixels = a.apply(pixels)
    return pixels


# WAVES' combination groups by name (the paper's Dist-Com-Geo, -Photo, -Deg, -All); their order here is ours: the
# geometry first, then the photometric changes, then what a platform does last (blur, noise, re-encoding)
COMBINATION_GROUPS: dict[str, tuple[str, ...]] = {
    "geo": ("rotation", "resizedcrop", "erasing"),
    "photo": ("brightness", "contrast"),
    "deg": ("blur", "noise", "jpeg"),
    "all": ("rotation", "resizedcrop", "erasing", "brightness", "contrast", "blur", "noise", "jpeg"),
}


def combination_parts(name: str) -> tuple[str, ...]:
    """The attacks a combination applies, in order: "jpeg+resizedcrop" (any attacks joined by "+", applied left
    to right) or a WAVES group "combo-geo", "combo-photo", "combo-deg", "combo-all". A single attack's name gives
    itself. ValueError naming what is unknown."""
    return tuple(part for part, _ in _pinned_parts(name))


def _pinned_parts(name: str) -> tuple[tuple[str, float | None], ...]:
    """`combination_parts` with each part's pinned strength: "rotation+resizedcrop+blur@0.05" keeps the blur at
    relative strength 0.05 (radius 1) whatever strength the combination is applied at (None: not pinned)."""
    if name.startswith("combo-"):
        group = name[len("combo-"):]
        if group not in COMBINATION_GROUPS:
            raise ValueError(f"unknown combination {name!r} (known: "
                             f"{', '.join('combo-' + g for g in COMBINATION_GROUPS)}, or attacks joined by '+')")
        return tuple((part, None) for part in COMBINATION_GROUPS[group])
    parts: list[tuple[str, float | None]] = []
    for text in (p.strip() for p in name.split("+")):
        part, at, pin = text.partition("@")
        if part not in ATTACKS:
            raise ValueError(f"unknown attack {part!r}{f' in {name!r}' if '+' in name else ''} "
                             f"(known: {', '.join(ATTACKS)})")
        strength = None
        if at:
            try:
                strength = float(pin)
            except ValueError:
                raise ValueError(f"{text!r} in {name!r}: a pinned strength is a number in [0, 1] after '@'") from None
            ATTACKS[part].parameter(strength)          # out of [0, 1] or not finite: ValueError naming it
        parts.append((part, strength))
    names = [p for p, _ in parts]
    if len(set(names)) != len(names):
        raise ValueError(f"{name!r} names an attack twice")
    return tuple(parts)


# the combinations offered by name where a list is shown (the window's what-if panel), with what they stand for
SHOWN_COMBINATIONS: dict[str, str] = {
    "downscale+jpeg": "a thumbnail re-encoded, as a re-post: downscaled, resized back, JPEG",
    "resizedcrop+jpeg": "a crop resized back, then JPEG",
    "combo-deg": "WAVES' degradation group: blur, noise, JPEG",
    "combo-photo": "WAVES' photometric group: brightness, contrast",
    "combo-geo": "WAVES' geometric group: rotation, resized crop, erasing",
    "combo-all": "every WAVES distortion, geometry first",
}


def describe_attack(name: str) -> str:
    """What an attack or a combination does, in a phrase."""
    if name in ATTACKS:
        return ATTACKS[name].description
    return SHOWN_COMBINATIONS.get(name) or " then ".join(ATTACKS[p].description for p in combination_parts(name))


def combined(name: str, strength: float, seed: int = 0) -> tuple[Attack, ...]:
    """The combination's attacks, each at the same relative strength (WAVES' scale: s = 0.5 is every part at half
    its range) unless the name pins its strength ("blur@0.05"), and with its own seed (seed + its place), so that
    random parts do not share their draws."""
    return tuple(Attack(part, strength if pin is None else pin, seed + i)
                 for i, (part, pin) in enumerate(_pinned_parts(name)))


def describe_parameters(attacks: tuple[Attack, ...]) -> str:
    """"10 degrees + 50 quality": each part's absolute parameter with its unit."""
    return " + ".join(f"{a.name} {a.parameter:g} {ATTACKS[a.name].unit}" if len(attacks) > 1 else
                      f"{a.parameter:g} {ATTACKS[a.name].unit}" for a in attacks)
