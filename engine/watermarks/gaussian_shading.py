"""Gaussian Shading (Yang et al., CVPR 2024) in the signs of the initial noise z_T (docs/schemes.md §1).

Bit-compatible with the public reference ("official" dialect, ChaCha20 variant): the watermark s of shape
(C/ch, H/hw, W/hw) is tiled (`repeat`, not interleaved) to the latent, packed MSB-first over the C-order flat
index, XORed with the ChaCha20 (RFC 8439, 12-byte nonce, counter 0) keystream, and bit 1 makes z positive.
Detection takes the signs of the recovered z_T, decrypts, and votes per bit over its ch·hw·hw copies
(a tie reads 0, as in the reference). The score is k = bits matching the key's watermark and its exact
tail P(X ≥ k) under the null that every decrypted copy is a fair coin: Bin(L, ½) in the paper, here with the
vote's tie rule taken into account (`vote_null_tail`; it matters on small latents with few copies per bit).

Small latents: the reference is hard-coded to 4×64×64 with ch = 1, hw = 8 (L = 256 bits, 64 copies each).
By default hw = side / 8 keeps L = 256 (so the reference thresholds 166/256 and 183/256 still apply); on the
demo's 4×32×32 latent that is hw = 4 and only 16 copies per bit, so each bit is four times less protected
against inversion error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from scipy import special, stats

from engine.treering import KEY_ID, MAX_DESCRIPTION_CHARS, MAX_LATENT_CHANNELS, MAX_LATENT_SIDE
from engine.treering_scoring import KeyScore
from engine.watermarks.base import SchemeKeySet, VaultScheme, content_sha256

SCHEME = "gaussian-shading"
WEAKNESS = ("with one (key, nonce, watermark) reused for every image, all images share one sign pattern of "
            "z_T, which averaging or imprinting attacks can copy onto images the key holder never made; GS "
            "has no shift, crop or rotation invariance (any misalignment reads as chance).")
_HEX = re.compile(r"[0-9a-f]*")


def chacha20_keystream(key: bytes, nonce: bytes, n_bytes: int) -> bytes:
    """RFC 8439 ChaCha20 keystream (12-byte nonce, block counter from 0), as PyCryptodome makes it."""
    from Crypto.Cipher import ChaCha20

    return ChaCha20.new(key=key, nonce=nonce).encrypt(bytes(n_bytes))


def threshold_bits(length: int, fpr: float, users: int = 1, exact_multi_user: bool = False) -> int:
    """The reference's threshold count i (accuracy i/L): the first i with P(X ≥ i+1)·users ≤ fpr, X ~ Bin(L, ½)
    (GS's union bound), or with 1 − exp(−users·P(X ≥ i+1)) ≤ fpr (Müller et al.'s form). The reference then
    accepts acc ≥ i/L, which also admits X = i: its true false-positive rate is P(X ≥ i), slightly above fpr."""
    for i in range(length):
        one = special.betainc(i + 1, length - i, 0.5)
        total = -np.expm1(-users * one) if exact_multi_user else one * users
        if total <= fpr:
            return i
    return length


def binomial_tail(matched: np.ndarray, length: int) -> np.ndarray:
    """P(X ≥ k), X ~ Bin(L, ½): the chance a key not used for the image matches k or more of its L bits, if
    every decoded bit were a fair coin."""
    return stats.binom.sf(np.asarray(matched) - 1, length, 0.5)


def tie_probability(copies: int) -> float:
    """P(the vote ties) when the copies are fair coins: C(n, n/2)/2^n for even n (0.196 for 16, 0.0993 for 64)."""
    return float(stats.binom.pmf(copies // 2, copies, 0.5)) if copies % 2 == 0 else 0.0


def vote_null_tail(matched: np.ndarray, ones: int, length: int, copies: int) -> np.ndarray:
    """P(X ≥ k) under H0 with the reference's vote taken into account: a tie decodes as 0, so a watermark bit
    0 is matched with probability (1 + t)/2 and a bit 1 with (1 − t)/2 (t = tie probability). X is the sum of
    those two binomials; for a watermark with as many ones as zeros its mean is still L/2, but its spread is
    narrower, and an unbalanced watermark shifts it (on 16 copies, t = 0.196). Exact, by convolution."""
    t = tie_probability(copies)
    pmf = np.convolve(stats.binom.pmf(np.arange(length - ones + 1), length - ones, (1 + t) / 2),
                      stats.binom.pmf(np.arange(ones + 1), ones, (1 - t) / 2))
    tail = np.clip(np.cumsum(pmf[::-1])[::-1], 0.0, 1.0)      # tail[k] = P(X ≥ k)
    return tail[np.clip(np.asarray(matched), 0, length)]


@dataclass(frozen=True)
class GaussianShadingKey:
    """One user's key: ChaCha20 key (32 bytes) and nonce (12 bytes), and the L-bit watermark s (hex of its
    MSB-first packed bits, C-order over (C/ch, H/hw, W/hw)). The key, nonce and watermark are secrets: they
    are written to the key vault only, never to a report (`to_json_dict` names the key by id and hash)."""

    id: str
    key_hex: str
    nonce_hex: str
    watermark_hex: str
    latent_shape: tuple[int, int, int] = (4, 32, 32)
    ch: int = 1
    hw: int = 4
    description: str = ""
    scheme: str = SCHEME
    dialect: ClassVar[str] = "official"
    cipher: ClassVar[str] = "chacha20-rfc8439"

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not KEY_ID.fullmatch(self.id):
            raise ValueError(f"key id {self.id!r} is not an identifier: 1-64 letters, digits, '.', '_' or '-'")
        if self.scheme != SCHEME:
            raise ValueError(f"key {self.id!r}: scheme {self.scheme!r} is not {SCHEME!r}")
        shape = self.latent_shape
        if (not isinstance(shape, tuple) or len(shape) != 3 or not all(isinstance(v, int) and not isinstance(v, bool)
                                                                        for v in shape)):
            raise ValueError(f"key {self.id!r}: latent shape {shape!r} is not three integers")
        c, h, w = shape
        if not (1 <= c <= MAX_LATENT_CHANNELS and 1 <= h <= MAX_LATENT_SIDE and 1 <= w <= MAX_LATENT_SIDE):
            raise ValueError(f"key {self.id!r}: latent shape {shape} out of range")
        for name in ("ch", "hw"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"key {self.id!r}: {name} {v!r} is not a positive integer")
        if c % self.ch or h % self.hw or w % self.hw or (c * h * w) % 8:
            raise ValueError(f"key {self.id!r}: ch {self.ch} / hw {self.hw} do not divide the latent {shape}")
        for name, size in (("key_hex", 64), ("nonce_hex", 24), ("watermark_hex", (self.length + 7) // 8 * 2)):
            v = getattr(self, name)
            if not isinstance(v, str) or len(v) != size or not _HEX.fullmatch(v):
                raise ValueError(f"key {self.id!r}: {name} must be {size} lower-case hex digits")
        if not isinstance(self.description, str) or len(self.description) > MAX_DESCRIPTION_CHARS:
            raise ValueError(f"key {self.id!r}: the description must be text of at most {MAX_DESCRIPTION_CHARS} "
                             "characters")

    # -- layout ----------------------------------------------------------------------------------------------
    @property
    def watermark_shape(self) -> tuple[int, int, int]:
        c, h, w = self.latent_shape
        return c // self.ch, h // self.hw, w // self.hw

    @property
    def length(self) -> int:
        return int(np.prod(self.watermark_shape))

    @property
    def copies(self) -> int:
        return self.ch * self.hw * self.hw

    def watermark_bits(self) -> np.ndarray:
        """s as 0/1 uint8 of `watermark_shape`."""
        bits = np.unpackbits(np.frombuffer(bytes.fromhex(self.watermark_hex), dtype=np.uint8))[: self.length]
        return bits.reshape(self.watermark_shape)

    def keystream_bits(self) -> np.ndarray:
        """The ChaCha20 keystream as bits over the C-order flat latent index (byte j bit 7 = index 8j)."""
        n = int(np.prod(self.latent_shape))
        ks = chacha20_keystream(bytes.fromhex(self.key_hex), bytes.fromhex(self.nonce_hex), n // 8)
        return np.unpackbits(np.frombuffer(ks, dtype=np.uint8)).reshape(self.latent_shape)

    def dispersed(self) -> np.ndarray:
        """sd = s tiled ch × hw × hw times (the reference's `repeat`)."""
        return np.tile(self.watermark_bits(), (self.ch, self.hw, self.hw))

    def sign_bits(self) -> np.ndarray:
        """m = sd XOR keystream: bit 1 → z > 0."""
        return self.dispersed() ^ self.keystream_bits()

    # -- records -----------------------------------------------------------------------------------------------
    def to_vault_dict(self) -> dict:
        return {"scheme": self.scheme, "id": self.id, "dialect": self.dialect, "cipher": self.cipher,
                "latent_shape": list(self.latent_shape), "ch": self.ch, "hw": self.hw, "key_hex": self.key_hex,
                "nonce_hex": self.nonce_hex, "watermark_hex": self.watermark_hex, "bit_order": "packbits-msb",
                "sign_convention": "1->positive", "description": self.description}

    @property
    def sha256(self) -> str:
        return content_sha256(self.to_vault_dict())

    def to_json_dict(self) -> dict:
        """The public record (reports, scan JSON): no key, nonce or watermark bits."""
        return {"scheme": self.scheme, "id": self.id, "sha256": self.sha256, "dialect": self.dialect,
                "cipher": self.cipher, "latent_shape": list(self.latent_shape), "ch": self.ch, "hw": self.hw,
                "bits": self.length, "copies_per_bit": self.copies, "description": self.description}

    @classmethod
    def from_vault_dict(cls, d: dict) -> "GaussianShadingKey":
        if not isinstance(d, dict):
            raise ValueError("a Gaussian Shading key entry is not an object")
        if d.get("dialect", "official") != "official" or d.get("cipher", "chacha20-rfc8439") != "chacha20-rfc8439":
            raise ValueError(f"key {d.get('id')!r}: only the official ChaCha20 dialect is supported (got "
                             f"{d.get('dialect')!r}, {d.get('cipher')!r})")
        shape = d.get("latent_shape")
        return cls(id=d.get("id"), key_hex=d.get("key_hex"), nonce_hex=d.get("nonce_hex"),
                   watermark_hex=d.get("watermark_hex"),
                   latent_shape=tuple(shape) if isinstance(shape, list) else shape, ch=d.get("ch"), hw=d.get("hw"),
                   description=d.get("description", ""))


def default_hw(latent_shape) -> int:
    """hw keeping the reference's 256-bit capacity (8×8 bits per channel): 8 on 64×64, 4 on 32×32."""
    side = int(latent_shape[-1])
    return max(1, side // 8)


def new_key(key_id: str, latent_shape=(4, 32, 32), ch: int = 1, hw: int | None = None,
            rng: np.random.Generator | None = None, description: str = "") -> GaussianShadingKey:
    """A fresh user key: key, nonce and watermark from the OS's CSPRNG (from `rng` only for reproducible tests
    and benchmarks)."""
    hw = default_hw(latent_shape) if hw is None else hw
    c, h, w = latent_shape
    length = (c // ch) * (h // hw) * (w // hw)
    draw = (lambda n: rng.bytes(n)) if rng is not None else os.urandom
    bits = np.frombuffer(draw(length), dtype=np.uint8) & 1
    return GaussianShadingKey(id=key_id, key_hex=draw(32).hex(), nonce_hex=draw(12).hex(),
                              watermark_hex=np.packbits(bits).tobytes().hex(), latent_shape=tuple(latent_shape),
                              ch=ch, hw=hw, description=description)


def new_keys(count: int, latent_shape=(4, 32, 32), seed: int | None = None, prefix: str = "gs",
             ch: int = 1, hw: int | None = None) -> SchemeKeySet:
    rng = np.random.default_rng(seed) if seed is not None else None
    return SchemeKeySet(tuple(new_key(f"{prefix}{n}", latent_shape, ch, hw, rng) for n in range(1, count + 1)),
                        scheme=SCHEME)


# -- injection and decoding ----------------------------------------------------------------------------------

def inject(z: torch.Tensor, key: GaussianShadingKey) -> torch.Tensor:
    """z' = (2m − 1)·|z|: the key's sign pattern on the magnitudes of z (a seeded Gaussian). Same law as the
    reference's truncated-normal draw per position."""
    if tuple(z.shape[1:]) != key.latent_shape:
        raise ValueError(f"latent shape {tuple(z.shape[1:])} does not match key {key.id!r} {key.latent_shape}")
    sign = torch.from_numpy(key.sign_bits().astype(np.float32) * 2 - 1).to(z.device)
    return (z.abs() * sign).to(z.dtype)


@dataclass(frozen=True)
class BitScore(KeyScore):
    """KeyScore with l1 = 1 − bit accuracy and p_value = P(X ≥ matched); `soft` is the secondary correlation
    of the sign-corrected z_T with the watermark (no analytic null)."""
    scheme: ClassVar[str] = SCHEME

    matched: int = 0
    bits: int = 0
    soft: float = 0.0

    @property
    def bit_accuracy(self) -> float:
        return self.matched / self.bits if self.bits else float("nan")


def decode(z: torch.Tensor, key: GaussianShadingKey) -> tuple[np.ndarray, np.ndarray]:
    """(decoded bits (B, L), soft per-bit means (B, L)): signs → decrypt → vote over the copies (tie → 0)."""
    zc = z.detach().float().cpu().numpy().reshape((-1, *key.latent_shape))
    ks = key.keystream_bits()
    sd = (zc > 0).astype(np.int16) ^ ks                     # decrypted dispersed bits per latent
    c, h, w = key.watermark_shape
    tiles = (-1, key.ch, c, key.hw, h, key.hw, w)
    votes = sd.reshape(tiles).sum(axis=(1, 3, 5))
    decoded = (votes > key.copies // 2).astype(np.uint8)     # the reference: bit 1 iff sum > copies // 2
    corrected = zc * (1 - 2 * ks.astype(np.float32))          # sign now follows sd
    soft = corrected.reshape(tiles).mean(axis=(1, 3, 5))
    return decoded.reshape(len(zc), -1), soft.reshape(len(zc), -1)


def score_keys(z: torch.Tensor, keys: SchemeKeySet) -> list[list[BitScore]]:
    out: list[list[BitScore]] = [[] for _ in range(z.shape[0])]
    scale = z.detach().float().flatten(1).std(dim=1).clamp_min(1e-12).cpu().numpy()
    for key in keys.keys:
        bits, soft = decode(z, key)
        s = key.watermark_bits().reshape(-1)
        matched = (bits == s).sum(axis=1)
        p = vote_null_tail(matched, int(s.sum()), key.length, key.copies)
        corr = (soft * (2.0 * s - 1)).mean(axis=1) / scale
        for b in range(z.shape[0]):
            out[b].append(BitScore(key.id, float(1 - matched[b] / key.length), float(p[b]), int(matched[b]),
                                   key.length, float(corr[b])))
    return out


class GaussianShadingScheme(VaultScheme):
    name: ClassVar[str] = SCHEME
    title: ClassVar[str] = "Gaussian Shading (Yang et al. 2024)"
    independent_keys: ClassVar[bool] = True   # random message and stream per key
    weakness: ClassVar[str] = WEAKNESS
    statistic: ClassVar[str] = "1 − bit accuracy"

    def inject(self, z_t: torch.Tensor, key: GaussianShadingKey) -> torch.Tensor:
        return inject(z_t, key)

    def score(self, z_t: torch.Tensor, keys: SchemeKeySet, target: str = "") -> list[list[BitScore]]:
        return score_keys(z_t, keys)

