"""Tree-Ring watermarks (Wen et al. 2023) in the Fourier domain of the initial noise z_T.

Follows the public reference code, quirks included, so keys and images made with it stay comparable
(docs/algorithms.md §3): the mask disc is centred one row above DC for even sizes ("reference" centre), ring i
is {(i−1)² < d² ≤ i²}, the ring value is read at spectrum[channel, row 0, column i], and injection
replaces the masked Fourier coefficients, keeping the real part after the inverse FFT.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar, Literal, Sequence

import numpy as np
import torch

Pattern = Literal["ring", "rand", "zeros", "values", "spectrum"]
Centre = Literal["reference", "dc"]
# What a suspect spectrum is compared with. "reference": the key as written (the papers' code).
# "effective" (our default): what injection actually leaves in a *real* latent — the inverse FFT keeps the
# real part, which averages each masked coefficient with the conjugate of its mirror −p. With the
# off-centre reference mask most mirrors are inside the disc, so ring values blend, and scoring against
# the key as written misattributes: on exact watermarked noise, dec-inv's key1 is classified as key2 in
# 100% of cases (tests/test_treering.py). The effective target restores 100% and widens the L1 margin.
ScoreTarget = Literal["effective", "reference"]
DEFAULT_SCORE_TARGET: ScoreTarget = "effective"

KEYSET_FORMAT = "treering-forensics/keys"
KEYSET_VERSION = 1

# Stated limits on key files: they are untrusted input, checked before anything is allocated.
KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")   # an identifier, never a path (ids name output files)
MAX_LATENT_CHANNELS = 64
MAX_LATENT_SIDE = 512                 # SD 2.1 at 768² has 96; 512 leaves room without allowing absurd sizes
MAX_RING_VALUE = 1e6                  # |spectrum| of N(0, 1) noise is ~side; dec-inv's ring values are ≤ 144
MAX_KEYS = 4096
MAX_KEY_FILE_BYTES = 16 << 20
MAX_DESCRIPTION_CHARS = 2000
PATTERNS = ("ring", "rand", "zeros", "values", "spectrum")
CENTRES = ("reference", "dc")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _finite_number(v, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{what} is not a number")
    f = float(v)
    if not np.isfinite(f) or abs(f) > MAX_RING_VALUE:
        raise ValueError(f"{what} is {v!r}: ring values must be finite and at most {MAX_RING_VALUE:g} in magnitude")
    return f


def fft_latent(z: torch.Tensor) -> torch.Tensor:
    """Centred 2-D spectrum over the last two axes (complex64), as the reference computes it."""
    return torch.fft.fftshift(torch.fft.fft2(z.float()), dim=(-1, -2))


def ifft_latent(spectrum: torch.Tensor) -> torch.Tensor:
    return torch.fft.ifft2(torch.fft.ifftshift(spectrum, dim=(-1, -2))).real


def mask_centre(size: int, centre: Centre) -> tuple[int, int]:
    """(row, column) of the disc centre. The reference flips the row axis, so for even sizes its disc sits
    at row size−1−size//2, one above the DC bin."""
    if centre == "reference":
        return size - 1 - size // 2, size // 2
    if centre == "dc":
        return size // 2, size // 2
    raise ValueError(f"unknown mask centre convention {centre!r}")


def squared_distance_map(size: int, centre: Centre) -> np.ndarray:
    r0, c0 = mask_centre(size, centre)
    rows, cols = np.ogrid[:size, :size]
    return (rows - r0) ** 2 + (cols - c0) ** 2


def circle_mask(size: int, radius: int, centre: Centre = "reference") -> np.ndarray:
    return squared_distance_map(size, centre) <= radius**2


@dataclass(frozen=True)
class TreeRingKey:
    """One watermark key. `scheme` leaves room for RingID / Gaussian Shading later.

    pattern: "ring" (reference: per-ring constants read from a seeded Gaussian's spectrum), "rand" (the
    seeded spectrum itself), "zeros", "values" (explicit real per-ring constants, dec-inv's
    classification keys: ring_values[0] is ring 1, the innermost) or "spectrum" (explicit complex values
    of the masked coefficients, e.g. imported from the reference package's .npy files).
    """

    id: str
    pattern: Pattern = "values"
    radius: int = 6
    channel: int = 0
    seed: int = 0
    latent_shape: tuple[int, int, int] = (4, 64, 64)
    ring_values: tuple[float, ...] = ()
    masked_spectrum: tuple[tuple[float, float], ...] = ()   # (re, im) per masked coefficient, row-major
    centre: Centre = "reference"
    scheme: str = "tree-ring"
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not KEY_ID.fullmatch(self.id):
            raise ValueError(f"key id {self.id!r} is not an identifier: 1-64 characters of letters, digits, '.', "
                             f"'_' and '-', starting with a letter or digit")
        if (not isinstance(self.latent_shape, tuple) or len(self.latent_shape) != 3
                or not all(_is_int(v) for v in self.latent_shape)):
            raise ValueError(f"key {self.id!r}: latent shape {self.latent_shape!r} is not three integers")
        c, h, w = self.latent_shape
        if not (1 <= c <= MAX_LATENT_CHANNELS and 4 <= h <= MAX_LATENT_SIDE and 4 <= w <= MAX_LATENT_SIDE):
            raise ValueError(f"key {self.id!r}: latent shape {self.latent_shape} outside the supported 1-"
                             f"{MAX_LATENT_CHANNELS} channels × 4-{MAX_LATENT_SIDE} pixels")
        for name in ("radius", "channel", "seed"):
            if not _is_int(getattr(self, name)):
                raise ValueError(f"key {self.id!r}: {name} {getattr(self, name)!r} is not an integer")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"key {self.id!r}: seed {self.seed} outside 0 … 2^63 − 1")
        if self.pattern not in PATTERNS:
            raise ValueError(f"key {self.id!r}: unknown pattern {self.pattern!r} (known: {', '.join(PATTERNS)})")
        if self.centre not in CENTRES:
            raise ValueError(f"key {self.id!r}: unknown centre {self.centre!r} (known: {', '.join(CENTRES)})")
        if not isinstance(self.description, str) or len(self.description) > MAX_DESCRIPTION_CHARS:
            raise ValueError(f"key {self.id!r}: the description must be text of at most {MAX_DESCRIPTION_CHARS} "
                             "characters")
        for n, v in enumerate(self.ring_values, start=1):
            _finite_number(v, f"key {self.id!r}: ring value {n}")
        for n, pair in enumerate(self.masked_spectrum, start=1):
            for v in pair:
                _finite_number(v, f"key {self.id!r}: spectrum coefficient {n}")
        if h != w:
            raise ValueError(f"key {self.id!r}: Tree-Ring needs square latents, got {h}×{w}")
        if not 0 <= self.channel < c:
            raise ValueError(f"key {self.id!r}: channel {self.channel} outside 0…{c - 1}")
        if not 1 <= self.radius < h // 2:
            raise ValueError(f"key {self.id!r}: radius {self.radius} does not fit a {h}×{w} latent")
        if self.pattern == "values" and len(self.ring_values) != self.radius:
            raise ValueError(f"key {self.id!r}: {len(self.ring_values)} ring values for radius {self.radius}")
        if self.pattern == "spectrum" and len(self.masked_spectrum) != int(self.mask_2d().sum()):
            raise ValueError(f"key {self.id!r}: masked spectrum has the wrong number of coefficients")
        if self.scheme != "tree-ring":
            raise ValueError(f"key {self.id!r}: scheme {self.scheme!r} is not supported yet")

    # -- geometry ---------------------------------------------------------------------------------
    def mask_2d(self) -> np.ndarray:
        return circle_mask(self.latent_shape[1], self.radius, self.centre)

    def mask(self) -> torch.Tensor:
        """Boolean (C, H, W): the disc on the watermark channel only."""
        m = torch.zeros(self.latent_shape, dtype=torch.bool)
        m[self.channel] = torch.from_numpy(self.mask_2d())
        return m

    def ring_index_map(self) -> np.ndarray:
        """Ring number per pixel (1 … radius inside the disc, 0 outside)."""
        d2 = squared_distance_map(self.latent_shape[1], self.centre)
        rings = np.ceil(np.sqrt(d2)).astype(int)
        rings[d2 == 0] = 1          # the centre pixel belongs to ring 1
        rings[d2 > self.radius**2] = 0
        return rings

    # -- the pattern --------------------------------------------------------------------------------
    def seeded_spectrum(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed)
        noise = torch.randn((1, *self.latent_shape), generator=g)
        return fft_latent(noise)[0]

    def pattern_spectrum(self) -> torch.Tensor:
        """Complex (C, H, W) target spectrum; only its masked part is meaningful."""
        c, h, w = self.latent_shape
        if self.pattern == "rand":
            return self.seeded_spectrum()
        if self.pattern == "zeros":
            return torch.zeros(self.latent_shape, dtype=torch.complex64)
        if self.pattern == "spectrum":
            out = torch.zeros(self.latent_shape, dtype=torch.complex64)
            vals = torch.tensor(self.masked_spectrum, dtype=torch.float32)
            out[self.mask()] = torch.complex(vals[:, 0], vals[:, 1])
            return out
        rings = torch.from_numpy(self.ring_index_map())
        out = torch.zeros(self.latent_shape, dtype=torch.complex64)
        if self.pattern == "ring":
            source = self.seeded_spectrum()
            for i in range(self.radius, 0, -1):
                for ch in range(c):
                    out[ch][rings == i] = source[ch, 0, i]
            return out
        if self.pattern == "values":
            for i, value in enumerate(self.ring_values, start=1):
                out[:, rings == i] = complex(value)
            return out
        raise ValueError(f"unknown pattern {self.pattern!r}")

    def masked_target(self, target: ScoreTarget = DEFAULT_SCORE_TARGET) -> torch.Tensor:
        """The masked coefficients a watermarked latent is expected to carry (see ScoreTarget)."""
        return _masked_target(self, target).clone()     # keys are immutable: computed once per key and target

    def _compute_masked_target(self, target: ScoreTarget) -> torch.Tensor:
        spectrum = self.pattern_spectrum()
        mask = self.mask()
        if target == "reference":
            return spectrum[mask]
        if target == "effective":
            written = torch.zeros(self.latent_shape, dtype=torch.complex64)
            written[mask] = spectrum[mask]
            return fft_latent(ifft_latent(written[None]))[0][mask]
        raise ValueError(f"unknown score target {target!r}")

    # -- serialisation --------------------------------------------------------------------------------
    def to_json_dict(self) -> dict:
        d = asdict(self)
        d["latent_shape"] = list(self.latent_shape)
        d["ring_values"] = list(self.ring_values)
        d["masked_spectrum"] = [list(v) for v in self.masked_spectrum]
        if self.pattern != "values":
            d.pop("ring_values")
        if self.pattern != "spectrum":
            d.pop("masked_spectrum")
        return d

    @classmethod
    def from_json_dict(cls, d: dict) -> "TreeRingKey":
        """A key from its JSON form; every field is checked (types, finiteness, limits) before use."""
        if not isinstance(d, dict):
            raise ValueError("a key entry is not a JSON object")
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"key {d.get('id')!r}: unknown fields {sorted(unknown)}")
        d = dict(d)
        shape = d.get("latent_shape", [4, 64, 64])
        if not isinstance(shape, list) or len(shape) != 3 or not all(_is_int(v) for v in shape):
            raise ValueError(f"key {d.get('id')!r}: latent_shape {shape!r} is not a list of three integers")
        d["latent_shape"] = tuple(shape)
        values = d.get("ring_values", [])
        if not isinstance(values, list):
            raise ValueError(f"key {d.get('id')!r}: ring_values is not a list")
        d["ring_values"] = tuple(_finite_number(v, f"key {d.get('id')!r}: a ring value") for v in values)
        spectrum = d.get("masked_spectrum", [])
        if not isinstance(spectrum, list) or not all(isinstance(p, list) and len(p) == 2 for p in spectrum):
            raise ValueError(f"key {d.get('id')!r}: masked_spectrum is not a list of [re, im] pairs")
        d["masked_spectrum"] = tuple((_finite_number(a, f"key {d.get('id')!r}: a spectrum value"),
                                      _finite_number(b, f"key {d.get('id')!r}: a spectrum value")) for a, b in spectrum)
        return cls(**d)


@dataclass(frozen=True)
class KeySet:
    """The keys an investigation tests against; K = len(keys) enters the multiple-comparison correction."""

    keys: tuple[TreeRingKey, ...]
    name: str = ""
    scheme: ClassVar[str] = "tree-ring"     # engine.watermarks finds the scheme of a key set by this

    def __post_init__(self) -> None:
        if len(self.keys) > MAX_KEYS:
            raise ValueError(f"{len(self.keys)} keys in one set: at most {MAX_KEYS} are supported")
        ids = [k.id for k in self.keys]
        if len(set(ids)) != len(ids):
            raise ValueError("key ids must be unique")
        if not self.keys:
            raise ValueError("a key set needs at least one key")

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, key_id: str) -> TreeRingKey:
        for k in self.keys:
            if k.id == key_id:
                return k
        raise KeyError(f"no key {key_id!r} in the key set (have: {', '.join(self.ids)})")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(k.id for k in self.keys)

    def to_json(self) -> str:
        return json.dumps({"format": KEYSET_FORMAT, "version": KEYSET_VERSION, "name": self.name,
                           "keys": [k.to_json_dict() for k in self.keys]}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "KeySet":
        try:
            data = json.loads(text)
        except RecursionError:
            raise ValueError("not a key file (JSON nested too deeply)") from None
        if not isinstance(data, dict) or data.get("format") != KEYSET_FORMAT:
            raise ValueError(f"not a key file (expected format {KEYSET_FORMAT!r})")
        version = data.get("version", 0)
        if not _is_int(version):
            raise ValueError(f"key file version {version!r} is not an integer")
        if version > KEYSET_VERSION:
            raise ValueError(f"key file version {version} is newer than this tool understands")
        entries = data.get("keys")
        if not isinstance(entries, list):
            raise ValueError("the key file has no list of keys")
        if len(entries) > MAX_KEYS:
            raise ValueError(f"{len(entries)} keys in one file: at most {MAX_KEYS} are supported")
        return cls(tuple(TreeRingKey.from_json_dict(k) for k in entries), name=str(data.get("name", "")))

    @classmethod
    def load(cls, path: str | Path) -> "KeySet":
        from engine.intake import EvidenceError, open_regular_file

        try:
            with open_regular_file(path) as f:     # refuses folders, devices and FIFOs without blocking
                raw = f.read(MAX_KEY_FILE_BYTES + 1)
            if len(raw) > MAX_KEY_FILE_BYTES:
                raise ValueError(f"larger than {MAX_KEY_FILE_BYTES >> 20} MiB, too large for a key file")
            return cls.from_json(raw.decode("utf-8"))
        except EvidenceError as exc:
            raise ValueError(f"cannot read key file: {exc}") from None
        except UnicodeDecodeError:
            raise ValueError(f"cannot read key file {path}: not UTF-8 text") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"cannot read key file {path}: {exc}") from exc

    def save(self, path: str | Path) -> None:
        from engine.atomic_write import write_text_atomic

        write_text_atomic(path, self.to_json())


# dec-inv's three classification keys (Table 2): value_i = 80·(2k_i − 1), rings 1…6.
DEC_INV_RING_FACTORS = (
    (1.1, 0.8, 1.2, 0.9, 0.6, 1.4),
    (1.1, 0.6, 1.1, 1.2, 0.8, 1.2),
    (0.7, 1.2, 1.3, 0.8, 0.9, 1.1),
)


def dec_inv_ring_values(factors: Sequence[float], scale: float = 80.0) -> tuple[float, ...]:
    return tuple(round(scale * (2 * k - 1), 6) for k in factors)


def default_scale(latent_shape) -> float:
    """dec-inv's 80 was chosen for 64×64 latents, whose Fourier coefficients have rms 64 for unit noise;
    scaling with the side keeps the key's strength relative to the noise the same on other sizes."""
    return 80.0 * latent_shape[-1] / 64


def dec_inv_keys(latent_shape=(4, 64, 64), radius: int = 6, channel: int = 0, scale: float | None = None) -> KeySet:
    """The three keys of dec-inv's classification experiment (rings 1…6 = [96, 48, 112, 64, 16, 144], …)."""
    scale = default_scale(latent_shape) if scale is None else scale
    keys = []
    for n, factors in enumerate(DEC_INV_RING_FACTORS, start=1):
        values = dec_inv_ring_values(factors[:radius], scale)
        keys.append(TreeRingKey(id=f"key{n}", pattern="values", radius=radius, channel=channel,
                                latent_shape=tuple(latent_shape), ring_values=values,
                                description="dec-inv Table 2 classification key"))
    return KeySet(tuple(keys), name="dec-inv classification keys")


def new_random_keys(count: int, latent_shape=(4, 64, 64), radius: int = 6, channel: int = 0,
                    scale: float | None = None, seed: int | None = None, prefix: str = "key") -> KeySet:
    """Keys in the dec-inv style: per-ring constants scale·(2k − 1), k uniform in [0.5, 1.5]."""
    scale = default_scale(latent_shape) if scale is None else scale
    rng = np.random.default_rng(seed)
    keys = []
    for n in range(1, count + 1):
        factors = rng.uniform(0.5, 1.5, size=radius)
        keys.append(TreeRingKey(id=f"{prefix}{n}", pattern="values", radius=radius, channel=channel,
                                latent_shape=tuple(latent_shape),
                                ring_values=dec_inv_ring_values(factors, scale)))
    return KeySet(tuple(keys))


_REFERENCE_NPY_NAME = re.compile(r"^(?P<hash>[0-9a-fA-F]+)_(?P<channel>-?\d+)_(?P<radius>\d+)_(?P<pattern>\w+)\.npy$")


def import_reference_npy(path: str | Path, key_id: str | None = None) -> TreeRingKey:
    """A key saved by the tree-ring pip package (`{sha256}_{channel}_{radius}_{pattern}.npy`): the full
    complex pattern spectrum. Loaded with allow_pickle=False: a key file must never run code."""
    path = Path(path)
    m = _REFERENCE_NPY_NAME.match(path.name)
    if not m:
        raise ValueError(f"{path.name}: expected a name like <sha256>_<channel>_<radius>_<pattern>.npy")
    channel, radius = int(m["channel"]), int(m["radius"])
    from engine.intake import EvidenceError, open_regular_file

    try:
        with open_regular_file(path) as f:
            # The header first: its shape and type are checked before the array is allocated.
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, _, dtype = read_header(f)
            if dtype.hasobject or dtype.kind not in "fc" or len(shape) not in (3, 4) or any(
                    not 0 < s <= MAX_LATENT_SIDE for s in shape):
                raise ValueError(f"expected a float or complex (C, H, W) spectrum of at most {MAX_LATENT_SIDE} "
                                 f"per side, the header says {dtype} {shape}")
            f.seek(0)
            arr = np.load(f, allow_pickle=False)
    except EvidenceError as exc:
        raise ValueError(str(exc)) from None
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path.name}: refused (pickled, damaged or not a plain array): "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    arr = np.asarray(arr)
    if not np.isfinite(arr).all():
        raise ValueError(f"{path.name}: the spectrum holds NaN or infinite values")
    if arr.ndim == 4:
        arr = arr[0]
    if arr.ndim != 3:
        raise ValueError(f"{path.name}: expected a (C, H, W) spectrum, got shape {arr.shape}")
    if channel < 0:
        raise ValueError(f"{path.name}: keys on all channels (channel −1) are not supported yet")
    shape = tuple(int(s) for s in arr.shape)
    probe = TreeRingKey(id="probe", pattern="zeros", radius=radius, channel=channel, latent_shape=shape)
    vals = torch.from_numpy(arr.astype(np.complex64))[probe.mask()]
    return TreeRingKey(id=key_id or m["hash"][:12], pattern="spectrum", radius=radius, channel=channel,
                       latent_shape=shape, masked_spectrum=tuple((float(v.real), float(v.imag)) for v in vals),
                       description=f"imported from {path.name} (reference pattern {m['pattern']})")


# -- injection ---------------------------------------------------------------------------------------------

def inject(z: torch.Tensor, key: TreeRingKey) -> torch.Tensor:
    """Write the key into the masked Fourier coefficients of z (B, C, H, W) and return the real part."""
    if tuple(z.shape[1:]) != key.latent_shape:
        raise ValueError(f"latent shape {tuple(z.shape[1:])} does not match key {key.id!r} {key.latent_shape}")
    spectrum = fft_latent(z)
    mask = key.mask().to(z.device)
    target = key.pattern_spectrum().to(z.device)
    spectrum[:, mask] = target[mask]
    return ifft_latent(spectrum).to(z.dtype)


@functools.lru_cache(maxsize=4096)
def _masked_target(key: TreeRingKey, target: ScoreTarget) -> torch.Tensor:
    return key._compute_masked_target(target)
