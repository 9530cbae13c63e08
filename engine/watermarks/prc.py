"""PRC watermark (Gunn, Zhao, Song, ICLR 2025): a pseudorandom LDPC-style code in the signs of z_T
(docs/schemes.md §3). KeyGen, Encode and Detect follow the public reference (prc.py), Decode (belief
propagation to recover a message) is not implemented: this tool reports Detect only.

KeyGen: n = latent size; num_test_bits = ⌈log2(1/fpr)⌉; secpar = g = ⌊log2 C(n, t)⌋; noise_rate =
1 − 2^(−secpar/g²); k = message_length + g + num_test_bits; r = n − k − secpar parity checks of weight t = 3,
each the sum of t − 1 random earlier rows of the generator matrix G and one new row; a one-time pad and a
random permutation of the n positions. Encode: codeword = G·payload + pad + Bernoulli(noise_rate) errors,
x = 1 − 2·bits, z_T = x·|z| (bit 0 → positive). Detect: posteriors erf(ẑ/√(2·var·(1 + var))) with var = 1.5,
times (1 − 2·noise_rate)(1 − 2·pad); per check Π_j, lp = log((1 + Π)/2), lm = log((1 − Π)/2), S = Σ lp; under
H0 each term is lp or lm with probability ½, so Hoeffding bounds P(S − E0 ≥ t) ≤ exp(−2t²/Σ(lp − lm)²), E0 =
½Σ(lp + lm). The reference detects when S ≥ E0 + √(½Σ(lp − lm)²·ln(1/fpr)), i.e. when that bound ≤ fpr.

Keys are stored as a secret 128-bit seed from which G, the checks, the pad and the permutation are drawn
(numpy PCG64), never as the reference's pickles. Small latents: n = 4·32·32 = 4096 on the demo models;
message_length scales with n (512 at 16384 → 128 at 4096), giving k = 178 and r = 3885 checks at fpr 1e-5.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from scipy import special

from engine.treering import KEY_ID, MAX_DESCRIPTION_CHARS, MAX_LATENT_CHANNELS, MAX_LATENT_SIDE
from engine.treering_scoring import KeyScore
from engine.watermarks.base import SchemeKeySet, VaultScheme, content_sha256

SCHEME = "prc"
VAR = 1.5
WEAKNESS = ("the code is undetectable without the key, but anyone holding the key (or a detector answering "
            "queries) can forge or remove it; the statistic needs the signs of z_T at the right positions, so "
            "crops, shifts and rotations destroy it.")
_SEED_HEX = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class PRCParameters:
    n: int
    num_test_bits: int
    secpar: int
    g: int
    noise_rate: float
    k: int
    r: int
    max_bp_iter: int


def parameters(n: int, message_length: int = 512, fpr: float = 1e-5, t: int = 3) -> PRCParameters:
    """The reference KeyGen's derived sizes."""
    num_test_bits = math.ceil(math.log2(1 / fpr))
    secpar = int(math.log2(math.comb(n, t)))
    g = secpar
    k = message_length + g + num_test_bits
    r = n - k - secpar
    if r < 1:
        raise ValueError(f"PRC with n = {n}, message length {message_length}, fpr {fpr:g} leaves no parity checks")
    return PRCParameters(n, num_test_bits, secpar, g, 1 - 2 ** (-secpar / g**2), k, r, int(math.log(n) / math.log(t)))


def default_message_length(n: int) -> int:
    return max(0, round(512 * n / 16384))


@dataclass(frozen=True)
class PRCKey:
    id: str
    seed_hex: str                  # secret: G, checks, pad and permutation are drawn from it
    latent_shape: tuple[int, int, int] = (4, 32, 32)
    message_length: int = 128
    fpr: float = 1e-5
    t: int = 3
    description: str = ""
    scheme: str = SCHEME

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not KEY_ID.fullmatch(self.id):
            raise ValueError(f"key id {self.id!r} is not an identifier: 1-64 letters, digits, '.', '_' or '-'")
        if self.scheme != SCHEME:
            raise ValueError(f"key {self.id!r}: scheme {self.scheme!r} is not {SCHEME!r}")
        if not isinstance(self.seed_hex, str) or not _SEED_HEX.fullmatch(self.seed_hex):
            raise ValueError(f"key {self.id!r}: seed_hex must be 32 lower-case hex digits")
        shape = self.latent_shape
        if (not isinstance(shape, tuple) or len(shape) != 3
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape)):
            raise ValueError(f"key {self.id!r}: latent shape {shape!r} is not three integers")
        if not (1 <= shape[0] <= MAX_LATENT_CHANNELS and 4 <= shape[1] <= MAX_LATENT_SIDE
                and 4 <= shape[2] <= MAX_LATENT_SIDE):
            raise ValueError(f"key {self.id!r}: latent shape {shape} out of range")
        if self.t != 3 or not isinstance(self.message_length, int) or self.message_length < 0:
            raise ValueError(f"key {self.id!r}: only t = 3 and a non-negative message length are supported")
        if isinstance(self.fpr, bool) or not isinstance(self.fpr, (int, float)) or not 0 < self.fpr < 1:
            raise ValueError(f"key {self.id!r}: fpr {self.fpr!r} is not in (0, 1)")
        if not isinstance(self.description, str) or len(self.description) > MAX_DESCRIPTION_CHARS:
            raise ValueError(f"key {self.id!r}: description too long")
        self.params                                     # refuses sizes that leave no checks

    @property
    def n(self) -> int:
        return int(np.prod(self.latent_shape))

    @property
    def params(self) -> PRCParameters:
        return parameters(self.n, self.message_length, self.fpr, self.t)

    def material(self) -> "PRCMaterial":
        return _material(self)

    def to_vault_dict(self) -> dict:
        return {"scheme": self.scheme, "id": self.id, "seed_hex": self.seed_hex, "generator": "numpy-pcg64",
                "latent_shape": list(self.latent_shape), "message_length": self.message_length, "fpr": self.fpr,
                "t": self.t, "var": VAR, "description": self.description}

    @property
    def sha256(self) -> str:
        return content_sha256(self.to_vault_dict())

    def to_json_dict(self) -> dict:
        p = self.params
        return {"scheme": self.scheme, "id": self.id, "sha256": self.sha256, "latent_shape": list(self.latent_shape),
                "n": p.n, "k": p.k, "r": p.r, "t": self.t, "message_length": self.message_length, "fpr": self.fpr,
                "noise_rate": p.noise_rate, "var": VAR, "description": self.description}

    @classmethod
    def from_vault_dict(cls, d: dict) -> "PRCKey":
        if not isinstance(d, dict):
            raise ValueError("a PRC key entry is not an object")
        if d.get("generator", "numpy-pcg64") != "numpy-pcg64" or d.get("var", VAR) != VAR:
            raise ValueError(f"key {d.get('id')!r}: only numpy-pcg64 keys with var 1.5 are supported")
        shape = d.get("latent_shape")
        return cls(id=d.get("id"), seed_hex=d.get("seed_hex"),
                   latent_shape=tuple(shape) if isinstance(shape, list) else shape,
                   message_length=d.get("message_length", 128), fpr=d.get("fpr", 1e-5), t=d.get("t", 3),
                   description=d.get("description", ""))


@dataclass(frozen=True)
class PRCMaterial:
    generator: np.ndarray          # (n, k) uint8, rows permuted
    checks: np.ndarray             # (r, 3) positions (after the permutation)
    pad: np.ndarray                # (n,) uint8
    test_bits: np.ndarray          # (num_test_bits,) uint8


@functools.lru_cache(maxsize=32)     # ≈ 1 MB per key on 4×32×32, 10 MB on 4×64×64
def _material(key: PRCKey) -> PRCMaterial:
    """The reference KeyGen, drawn from the key's seed."""
    p = key.params
    rng = np.random.default_rng(int(key.seed_hex, 16))
    n, k, r = p.n, p.k, p.r
    gen = rng.integers(0, 2, size=(n, k), dtype=np.uint8)
    checks = np.empty((r, 3), dtype=np.int64)
    for row in range(r):
        chosen = rng.choice(n - r + row, key.t - 1, replace=False)
        checks[row] = (*chosen, n - r + row)
        gen[n - r + row] = gen[chosen].sum(axis=0) % 2
    pad = rng.integers(0, 2, size=n, dtype=np.uint8)
    test_bits = rng.integers(0, 2, size=p.num_test_bits, dtype=np.uint8)
    permutation = rng.permutation(n)
    inverse = np.argsort(permutation)             # H[:, perm]: old column c is now at inverse[c]
    return PRCMaterial(gen[permutation], inverse[checks], pad[permutation], test_bits)


def new_keys(count: int, latent_shape=(4, 32, 32), seed: int | None = None, prefix: str = "prc",
             fpr: float = 1e-5, message_length: int | None = None) -> SchemeKeySet:
    rng = np.random.default_rng(seed) if seed is not None else None
    n = int(np.prod(latent_shape))
    ml = default_message_length(n) if message_length is None else message_length
    draw = (lambda: rng.bytes(16).hex()) if rng is not None else (lambda: os.urandom(16).hex())
    return SchemeKeySet(tuple(PRCKey(id=f"{prefix}{i}", seed_hex=draw(), latent_shape=tuple(latent_shape),
                                     message_length=ml, fpr=fpr) for i in range(1, count + 1)), scheme=SCHEME)


def codeword_signs(key: PRCKey, rng: np.random.Generator) -> np.ndarray:
    """x = 1 − 2·(G·payload + pad + errors) in {±1}, payload = [test bits, random]."""
    m, p = key.material(), key.params
    payload = np.concatenate([m.test_bits, rng.integers(0, 2, size=p.k - p.num_test_bits, dtype=np.uint8)])
    bits = (m.generator.astype(np.int64) @ payload.astype(np.int64) + m.pad + rng.binomial(1, p.noise_rate, p.n)) % 2
    return 1.0 - 2.0 * bits


def inject(z: torch.Tensor, key: PRCKey) -> torch.Tensor:
    """z' = x·|z| per latent; the payload and errors are drawn from an RNG seeded with the SHA-256 of that
    latent, so a seeded generation is reproducible."""
    if tuple(z.shape[1:]) != key.latent_shape:
        raise ValueError(f"latent shape {tuple(z.shape[1:])} does not match key {key.id!r} {key.latent_shape}")
    out = []
    for one in z.detach().float().cpu().numpy():
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(one.tobytes()).digest()[:16], "big"))
        out.append(codeword_signs(key, rng).reshape(key.latent_shape))
    signs = torch.from_numpy(np.stack(out)).to(device=z.device, dtype=z.dtype)
    return z.abs() * signs


@dataclass(frozen=True)
class CodeScore(KeyScore):
    """l1 = −(S − E0)/√Σ(lp − lm)² (lower = more like the code); p_value = Hoeffding's bound."""

    statistic: float = 0.0          # S = Σ log((1 + Π)/2)
    threshold: float = 0.0          # the reference's detection threshold at the key's fpr
    null_mean: float = 0.0          # E0
    detected_at_key_fpr: bool = False
    scheme: ClassVar[str] = SCHEME


def detect_statistics(z: torch.Tensor, key: PRCKey) -> list[CodeScore]:
    m, p = key.material(), key.params
    zf = z.detach().double().cpu().numpy().reshape(z.shape[0], -1)
    post = special.erf(zf / np.sqrt(2 * VAR * (1 + VAR))) * (1 - 2 * p.noise_rate) * (1 - 2 * m.pad.astype(np.float64))
    prod = post[:, m.checks].prod(axis=-1)                       # (B, r)
    lp, lm = np.log1p(prod) - np.log(2), np.log1p(-prod) - np.log(2)
    s = lp.sum(axis=1)
    e0 = 0.5 * (lp + lm).sum(axis=1)
    spread = ((lp - lm) ** 2).sum(axis=1)
    threshold = np.sqrt(0.5 * spread * np.log(1 / key.fpr)) + e0
    excess = np.maximum(s - e0, 0.0)
    bound = np.exp(-2 * excess**2 / spread)
    norm = -(s - e0) / np.sqrt(spread)
    return [CodeScore(key.id, float(norm[b]), float(bound[b]), float(s[b]), float(threshold[b]), float(e0[b]),
                      bool(s[b] >= threshold[b])) for b in range(len(zf))]


def score_keys(z: torch.Tensor, keys: SchemeKeySet) -> list[list[CodeScore]]:
    per_key = [detect_statistics(z, k) for k in keys.keys]
    return [[scores[b] for scores in per_key] for b in range(z.shape[0])]


class PRCScheme(VaultScheme):
    name: ClassVar[str] = SCHEME
    title: ClassVar[str] = "PRC watermark (Gunn, Zhao, Song 2025)"
    independent_keys: ClassVar[bool] = True   # a random code per key
    weakness: ClassVar[str] = WEAKNESS
    statistic: ClassVar[str] = "code statistic −(S − E0)/√Σ(lp − lm)²"

    def inject(self, z_t: torch.Tensor, key: PRCKey) -> torch.Tensor:
        return inject(z_t, key)

    def score(self, z_t: torch.Tensor, keys: SchemeKeySet, target: str = "") -> list[list[CodeScore]]:
        return score_keys(z_t, keys)

