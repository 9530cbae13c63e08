"""RingID (Ci et al., ECCV 2024): many identifiable keys in the Fourier rings of the initial noise z_T
(docs/schemes.md §2).

Follows the public reference code: the spectrum is centred on the DC bin (unlike Tree-Ring's reference mask),
ring slot k (k = r_out … r_in + 1, i.e. 14 … 4) is the set of bins whose rounded distance from DC is k − 1,
556 bins in all; each slot carries one of two values ±v, so 11 slots give 2^11 = 2048 keys, the outermost
slot the most significant bit. The reference then applies "fix_gt" (keep the real part of the pattern's
inverse FFT) and "time_shift" (an fftshift in the spatial domain) to the ring channel, so the stored key is
the real ±v·(−1)^(row+col) on the ring bins; a second channel carries a per-key Gaussian-noise pattern on the
same bins ("heterogeneous" channel). Injection replaces those bins of both channels. The distance is
min(mean |F̂ − P| over the bins of the noise channel, the same on the ring channel); lower = closer.

Small latents: the reference works on 64×64 latents with v = 64 (the rms of a unit-noise Fourier coefficient
there). On other sides the rings and v scale with the side (`default_rings`): on the demo's 32×32 latent,
rounded distances 1…6 (6 slots, 2^6 = 64 keys, 136 bins) and v = ±32. The reference rings (3…13, 556 bins,
2048 keys) still fit 32×32 and can be asked for, but there they are 54 % of each watermarked channel's
spectrum and reach 84 % of the Nyquist frequency.

p-value (ours; the reference has none): for a suspect not made with the key, the 278 independent bins of a
channel (the mask is point-symmetric, so each bin is counted twice) are modelled as complex Gaussian noise whose
per-part variance σ² is estimated from the suspect's own ring bins; |F̂ − P| is then Rician(|P|, σ), and the
channel's mean distance is compared with the normal approximation of a mean of 278 independent Ricians. The two
channels are independent under that null, so P(min ≤ d) = 1 − (1 − p_noise)(1 − p_ring). It is approximate in
the far tail and assumes white noise: measure it on clean images before quoting it.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np
import torch
from scipy import special

from engine.treering import KEY_ID, MAX_DESCRIPTION_CHARS, MAX_LATENT_CHANNELS, MAX_LATENT_SIDE
from engine.treering_scoring import KeyScore
from engine.watermarks.base import SchemeKeySet, VaultScheme, content_sha256

SCHEME = "ringid"
R_OUT, R_IN = 14, 3
WEAKNESS = ("the ring pattern is fixed per key and can be copied onto other images (forgery), and crops or "
            "rescaling move the rings (the authors name crop/scale as RingID's weak point).")


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@functools.lru_cache(maxsize=16)
def slot_map(side: int, r_out: int = R_OUT, r_in: int = R_IN) -> np.ndarray:
    """Slot number per bin of the centred spectrum: k for round(distance from DC) = k − 1, k = r_out … r_in + 1;
    0 elsewhere (DC included)."""
    c = side // 2
    rows, cols = np.ogrid[:side, :side]
    d = np.rint(np.sqrt((rows - c) ** 2 + (cols - c) ** 2)).astype(int) + 1
    return np.where((d >= r_in + 1) & (d <= r_out), d, 0)


def ring_mask(side: int, r_out: int = R_OUT, r_in: int = R_IN) -> np.ndarray:
    return slot_map(side, r_out, r_in) > 0


def key_bits(index: int, slots: int = R_OUT - R_IN) -> tuple[int, ...]:
    """Slot values as bits, outermost slot first (the reference's itertools.product order): 1 = +v."""
    return tuple((index >> (slots - 1 - j)) & 1 for j in range(slots))


def reference_key_order(slots: int = R_OUT - R_IN, levels=(-1, 1)) -> list[tuple[int, ...]]:
    """The reference's list of keys, `itertools.product` over the slots (outermost first)."""
    return list(itertools.product(levels, repeat=slots))


@dataclass(frozen=True)
class RingIDKey:
    id: str
    index: int
    heter_seed: int
    latent_shape: tuple[int, int, int] = (4, 32, 32)
    value: float = 32.0
    r_out: int = R_OUT
    r_in: int = R_IN
    ring_channel: int = 3
    heter_channel: int = 0
    description: str = ""
    scheme: str = SCHEME

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not KEY_ID.fullmatch(self.id):
            raise ValueError(f"key id {self.id!r} is not an identifier: 1-64 letters, digits, '.', '_' or '-'")
        if self.scheme != SCHEME:
            raise ValueError(f"key {self.id!r}: scheme {self.scheme!r} is not {SCHEME!r}")
        shape = self.latent_shape
        if not isinstance(shape, tuple) or len(shape) != 3 or not all(_int(v) for v in shape):
            raise ValueError(f"key {self.id!r}: latent shape {shape!r} is not three integers")
        c, h, w = shape
        if not (1 <= c <= MAX_LATENT_CHANNELS and 4 <= h <= MAX_LATENT_SIDE and h == w):
            raise ValueError(f"key {self.id!r}: RingID needs square latents of 4-{MAX_LATENT_SIDE} pixels, got {shape}")
        for name in ("index", "heter_seed", "r_out", "r_in", "ring_channel", "heter_channel"):
            if not _int(getattr(self, name)):
                raise ValueError(f"key {self.id!r}: {name} {getattr(self, name)!r} is not an integer")
        if not 0 <= self.r_in < self.r_out or self.r_out - 0.5 >= h // 2:
            raise ValueError(f"key {self.id!r}: rings {self.r_in + 1}…{self.r_out} do not fit a {h}×{w} latent")
        if not 0 <= self.index < 2 ** self.slots:
            raise ValueError(f"key {self.id!r}: index {self.index} outside 0…{2 ** self.slots - 1}")
        if not 0 <= self.heter_seed < 2**63:
            raise ValueError(f"key {self.id!r}: heter_seed outside 0 … 2^63 − 1")
        if not (0 <= self.ring_channel < c and 0 <= self.heter_channel < c) or self.ring_channel == self.heter_channel:
            raise ValueError(f"key {self.id!r}: channels {self.heter_channel}/{self.ring_channel} do not fit {c}")
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)) or not 0 < self.value <= 1e6:
            raise ValueError(f"key {self.id!r}: value {self.value!r} is not a positive number")
        if not isinstance(self.description, str) or len(self.description) > MAX_DESCRIPTION_CHARS:
            raise ValueError(f"key {self.id!r}: description too long")

    @property
    def slots(self) -> int:
        return self.r_out - self.r_in

    @property
    def bits(self) -> tuple[int, ...]:
        return key_bits(self.index, self.slots)

    def mask_2d(self) -> np.ndarray:
        return ring_mask(self.latent_shape[1], self.r_out, self.r_in)

    def pattern(self) -> np.ndarray:
        """Complex (2, H, W) target spectra (centred) for (heter channel, ring channel), as the reference
        builds them: zeros; ring channel v·(1 + i) per slot; heter channel the spectrum of seeded noise on the
        mask; fix_gt on both; time_shift on the ring channel."""
        return _pattern(self)

    # -- records --------------------------------------------------------------------------------------------
    def to_vault_dict(self) -> dict:
        return {"scheme": self.scheme, "id": self.id, "index": self.index, "bits": "".join(map(str, self.bits)),
                "heter_seed": self.heter_seed, "latent_shape": list(self.latent_shape), "value": self.value,
                "r_out": self.r_out, "r_in": self.r_in, "ring_channel": self.ring_channel,
                "heter_channel": self.heter_channel, "levels": 2, "center": "dc", "fix_gt": True,
                "time_shift": True, "description": self.description}

    @property
    def sha256(self) -> str:
        return content_sha256(self.to_vault_dict())

    def to_json_dict(self) -> dict:
        return {**self.to_vault_dict(), "sha256": self.sha256}

    @classmethod
    def from_vault_dict(cls, d: dict) -> "RingIDKey":
        if not isinstance(d, dict):
            raise ValueError("a RingID key entry is not an object")
        for flag, want in (("levels", 2), ("center", "dc"), ("fix_gt", True), ("time_shift", True)):
            if d.get(flag, want) != want:
                raise ValueError(f"key {d.get('id')!r}: {flag} {d.get(flag)!r} is not supported (only {want!r})")
        shape = d.get("latent_shape")
        key = cls(id=d.get("id"), index=d.get("index"), heter_seed=d.get("heter_seed"),
                  latent_shape=tuple(shape) if isinstance(shape, list) else shape, value=d.get("value", 32.0),
                  r_out=d.get("r_out", R_OUT), r_in=d.get("r_in", R_IN), ring_channel=d.get("ring_channel", 3),
                  heter_channel=d.get("heter_channel", 0), description=d.get("description", ""))
        if "bits" in d and d["bits"] != "".join(map(str, key.bits)):
            raise ValueError(f"key {key.id!r}: its bits {d['bits']!r} do not match its index {key.index}")
        return key


def _centred_fft(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1))


def _centred_ifft(f: torch.Tensor) -> torch.Tensor:
    return torch.fft.ifft2(torch.fft.ifftshift(f, dim=(-2, -1)))


@functools.lru_cache(maxsize=4096)
def _pattern(key: RingIDKey) -> np.ndarray:
    side = key.latent_shape[1]
    slots = slot_map(side, key.r_out, key.r_in)
    mask = slots > 0
    shift = lambda a: np.fft.fftshift(a, axes=(-2, -1))
    fft = lambda a: shift(np.fft.fft2(a))
    ifft = lambda a: np.fft.ifft2(np.fft.ifftshift(a, axes=(-2, -1)))
    p = np.zeros((2, side, side), dtype=np.complex128)
    per_slot = np.zeros(key.r_out + 1)
    for j, bit in enumerate(key.bits):
        per_slot[key.r_out - j] = key.value if bit else -key.value
    p[1][mask] = per_slot[slots[mask]] * (1 + 1j)
    noise = torch.randn((side, side), generator=torch.Generator().manual_seed(key.heter_seed), dtype=torch.float64)
    p[0][mask] = fft(noise.numpy())[mask]
    p = fft(ifft(p).real)                      # fix_gt
    p[1] = fft(shift(ifft(p[1])))              # time_shift (a spatial fftshift)
    p.setflags(write=False)
    return p


def default_rings(side: int) -> tuple[int, int]:
    """(r_out, r_in): the reference's 14 and 3 on 64×64; on other sides scaled with the side, so the rings
    keep their place in the spectrum (on 32×32: 7 and 1, rounded distances 1…6, 6 slots, 64 keys). The
    reference rings (distances 3…13) also fit 32×32 but reach 84 % of the Nyquist frequency there, where the
    demo models do not carry them through generation and inversion (measured: benchmarks/results/schemes)."""
    return max(2, round(R_OUT * side / 64)), max(0, int(R_IN * side / 64))


def new_keys(count: int | None = None, latent_shape=(4, 32, 32), seed: int = 0, prefix: str = "ringid",
             indices: Sequence[int] | None = None, value: float | None = None,
             rings: tuple[int, int] | None = None) -> SchemeKeySet:
    """RingID keys: `indices` (default: `count` of the 2^slots keys spread evenly, all when count is None) with
    heter-noise seeds seed + index. value defaults to the side of the latent (64 on 64×64, the reference's);
    rings (r_out, r_in) to `default_rings`."""
    r_out, r_in = rings or default_rings(latent_shape[-1])
    slots = r_out - r_in
    if indices is None:
        count = 2**slots if count is None else count
        if not 1 <= count <= 2**slots:
            raise ValueError(f"a RingID key set has 1 … {2**slots} keys (got {count})")
        indices = sorted({int(round(i * (2**slots - 1) / max(1, count - 1))) for i in range(count)}) if count < 2**slots \
            else list(range(2**slots))
    value = float(latent_shape[-1]) if value is None else float(value)
    width = len(str(2**slots - 1))
    return SchemeKeySet(tuple(RingIDKey(id=f"{prefix}{i:0{width}d}", index=int(i), heter_seed=seed + int(i),
                                        latent_shape=tuple(latent_shape), value=value, r_out=r_out, r_in=r_in)
                              for i in indices),
                        scheme=SCHEME)


def inject(z: torch.Tensor, key: RingIDKey) -> torch.Tensor:
    if tuple(z.shape[1:]) != key.latent_shape:
        raise ValueError(f"latent shape {tuple(z.shape[1:])} does not match key {key.id!r} {key.latent_shape}")
    f = _centred_fft(z.double())
    mask = torch.from_numpy(key.mask_2d()).to(z.device)
    pattern = torch.from_numpy(key.pattern().copy()).to(z.device)
    for row, channel in enumerate((key.heter_channel, key.ring_channel)):
        f[:, channel][:, mask] = pattern[row][mask]
    return _centred_ifft(f).real.to(z.dtype)


@dataclass(frozen=True)
class RingScore(KeyScore):
    """KeyScore with l1 = min of the two channel distances; both kept, with their own p-values."""
    scheme: ClassVar[str] = SCHEME

    heter_distance: float = 0.0
    ring_distance: float = 0.0
    heter_p: float = 1.0
    ring_p: float = 1.0


def _rician_mean_var_exact(nu: np.ndarray, sigma) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of |X − P|, X complex Gaussian with per-part std σ, |P| = ν (Rician)."""
    x = -(nu**2) / (2 * sigma**2)
    laguerre = (1 - x) * special.i0e(-x / 2) - x * special.i1e(-x / 2)      # e^{x/2}·L_{1/2}(x), stably
    mean = sigma * np.sqrt(np.pi / 2) * laguerre
    return mean, np.maximum(2 * sigma**2 + nu**2 - mean**2, 0.0)


_RATIO_GRID = np.linspace(0.0, 40.0, 40001)
_UNIT_MEAN, _UNIT_VAR = _rician_mean_var_exact(_RATIO_GRID, 1.0)


def _rician_mean_var(nu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """As `_rician_mean_var_exact`, through its 1-D normalised form (mean/σ and var/σ² depend on ν/σ only),
    tabulated at steps of 0.001 (interpolation error < 1e-6 relative); beyond the table, exact."""
    r = nu / sigma
    pos = np.clip(r, 0.0, _RATIO_GRID[-1]) * ((len(_RATIO_GRID) - 1) / _RATIO_GRID[-1])   # uniform grid: no search
    i = np.minimum(pos.astype(np.int64), len(_RATIO_GRID) - 2)
    frac = pos - i
    mean = (_UNIT_MEAN[i] * (1 - frac) + _UNIT_MEAN[i + 1] * frac) * sigma
    var = (_UNIT_VAR[i] * (1 - frac) + _UNIT_VAR[i + 1] * frac) * sigma**2
    far = r > _RATIO_GRID[-1]
    if far.any():
        m, v = _rician_mean_var_exact(nu, sigma)
        mean, var = np.where(far, m, mean), np.where(far, v, var)
    return mean, var


def _masked(key: RingIDKey) -> tuple[np.ndarray, np.ndarray]:
    mask = key.mask_2d()
    return mask, key.pattern()[:, mask]


# Latents scored at once are chunked so that the (latents × keys × ring bins) arrays stay near this many
# elements (~0.5 GB in float64 with the temporaries): 2048 keys against a thousand latents would need ~12 GB.
SCORE_CHUNK_ELEMENTS = 2**22


def score_keys(z: torch.Tensor, keys: SchemeKeySet) -> list[list[RingScore]]:
    bins = max(int(ring_mask(k.latent_shape[1], k.r_out, k.r_in).sum()) for k in keys.keys[:1])
    step = max(1, SCORE_CHUNK_ELEMENTS // (2 * len(keys) * max(1, bins)))
    if z.shape[0] > step:
        return [row for start in range(0, z.shape[0], step) for row in _score_chunk(z[start:start + step], keys)]
    return _score_chunk(z, keys)


def _score_chunk(z: torch.Tensor, keys: SchemeKeySet) -> list[list[RingScore]]:
    f = _centred_fft(z.detach().double().cpu()).numpy()
    groups: dict = {}
    for n, k in enumerate(keys.keys):     # keys sharing a geometry are scored together
        groups.setdefault((k.latent_shape, k.r_out, k.r_in, k.heter_channel, k.ring_channel), []).append(n)
    out: list[list[RingScore | None]] = [[None] * len(keys) for _ in range(z.shape[0])]
    for (shape, r_out, r_in, hch, rch), members in groups.items():
        mask = ring_mask(shape[1], r_out, r_in)
        suspect = np.stack([f[:, hch][:, mask], f[:, rch][:, mask]], axis=1)                # (B, 2, M)
        patterns = np.stack([keys.keys[n].pattern()[:, mask] for n in members])             # (K, 2, M)
        dist = np.stack([np.abs(x[None] - patterns.astype(np.complex64)).mean(axis=-1, dtype=np.float64)
                         for x in suspect.astype(np.complex64)])                            # (B, K, 2)
        sigma = np.sqrt((np.abs(suspect) ** 2).mean(axis=-1) / 2)                           # (B, 2) per-part std
        mean, var = _rician_mean_var(np.abs(patterns)[None], sigma[:, None, :, None])       # (B, K, 2, M)
        m = mask.sum()
        mu, sd = mean.mean(axis=-1), np.sqrt(2 * var.sum(axis=-1)) / m     # each bin pairs with its mirror
        p = special.ndtr((dist - mu) / sd)                                  # per channel, at its own distance
        d_min = dist.min(axis=-1, keepdims=True)
        at_min = special.ndtr((d_min - mu) / sd)                            # both channels at the min
        p_min = 1 - (1 - at_min[..., 0]) * (1 - at_min[..., 1])
        for b in range(z.shape[0]):
            for j, n in enumerate(members):
                d0, d1 = dist[b, j]
                out[b][n] = RingScore(keys.keys[n].id, float(min(d0, d1)), float(p_min[b, j]), float(d0), float(d1),
                                      float(p[b, j, 0]), float(p[b, j, 1]))
    return out


class RingIDScheme(VaultScheme):
    name: ClassVar[str] = SCHEME
    title: ClassVar[str] = "RingID (Ci et al. 2024)"
    independent_keys: ClassVar[bool] = False  # keys differ in a few ring signs
    weakness: ClassVar[str] = WEAKNESS
    statistic: ClassVar[str] = "ring distance (min of the two channels)"

    def inject(self, z_t: torch.Tensor, key: RingIDKey) -> torch.Tensor:
        return inject(z_t, key)

    def score(self, z_t: torch.Tensor, keys: SchemeKeySet, target: str = "") -> list[list[RingScore]]:
        return score_keys(z_t, keys)

