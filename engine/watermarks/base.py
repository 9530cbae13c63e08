"""The interface every initial-noise watermark scheme implements.

A scheme makes and reads its key files, injects a key into initial noise z_T (generation of reference
sets), and scores recovered z_T against every key of a key set with its own statistic and a p-value, then
decides at a family-wise false-positive level. The analysis, generation, the CLI and the window talk to
schemes only through this interface (`scheme_for(keys)`), so adding a scheme (Gaussian Shading, RingID,
PRC) is adding one module beside `tree_ring.py` and naming it in `engine.watermarks.SCHEMES`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol, Sequence

if TYPE_CHECKING:
    import torch

    from engine.treering_scoring import KeyScore


class KeySetLike(Protocol):
    """What the engine needs of any scheme's key set."""

    scheme: str

    @property
    def ids(self) -> tuple[str, ...]: ...

    def __len__(self) -> int: ...


class WatermarkScheme(Protocol):
    name: ClassVar[str]           # the key file's "scheme" field, e.g. "tree-ring"
    title: ClassVar[str]          # for people, e.g. "Tree-Ring (Wen et al. 2023)"
    independent_keys: ClassVar[bool]  # keys are independent draws: one key's watermark is null for the others

    def load_keys(self, path) -> KeySetLike:
        """Read a key file of this scheme; ValueError (one sentence) for anything unreadable."""

    def check_fits(self, keys: KeySetLike, latent_shape: tuple[int, int, int], model_id: str) -> None:
        """ValueError if a key cannot apply to latents of this shape."""

    def inject(self, z_t: "torch.Tensor", key) -> "torch.Tensor":
        """Initial noise (B, C, h, w) carrying `key`."""

    def score(self, z_t: "torch.Tensor", keys: KeySetLike, target: str) -> list[list["KeyScore"]]:
        """Per latent of the batch, one score per key in key-set order."""

    def exclusion(self, z_t: "torch.Tensor", keys: KeySetLike, target: str):
        """Per latent and key j, a statistic of how strongly the evidence contradicts "watermarked with key j"
        in favour of another key, and its degrees of freedom: ((B, K) array, df), or None when the scheme has
        no pairwise test (the conclusion then falls back on each key's own p-value; `engine.verdicts`)."""

    def decide(self, scores: Sequence["KeyScore"], fpr: float) -> "Verdict":
        """The finding and its reading at family-wise false-positive level `fpr` over the keys tested."""


# -- shared by the schemes after Tree-Ring (added; Tree-Ring keeps engine.treering.KeySet/Verdict) ------------

import hashlib
import json
from dataclasses import dataclass

from engine.treering_scoring import Verdict

MAX_SCHEME_KEYS = 4096        # RingID's full key space (2048) fits; more is refused before allocation
PUBLIC_KEYS_FORMAT = "treering-forensics/public-keys"   # what a case file keeps of non-Tree-Ring keys


def public_keys_json(keys) -> str:
    """The public record of a key set (ids, schemes, parameters, hashes; never a secret) for case files."""
    return json.dumps({"format": PUBLIC_KEYS_FORMAT, "version": 1, "name": keys.name, "scheme": keys.scheme,
                       "keys": [k.to_json_dict() for k in keys.keys]}, indent=2)


def content_sha256(record: dict) -> str:
    """SHA-256 of a record's canonical JSON (sorted keys, no spaces): names a key, secrets included, without
    showing it."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class SchemeKeySet:
    """The keys of one scheme an investigation tests; K = len(keys) enters the multiple-comparison correction.
    Every key has `id`, `scheme`, `latent_shape`, `to_json_dict()` (the public record: never a secret) and
    `to_vault_dict()` (everything, for the key vault only)."""

    keys: tuple
    scheme: str
    name: str = ""

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a key set needs at least one key")
        if len(self.keys) > MAX_SCHEME_KEYS:
            raise ValueError(f"{len(self.keys)} keys in one set: at most {MAX_SCHEME_KEYS} are supported")
        ids = [k.id for k in self.keys]
        if len(set(ids)) != len(ids):
            raise ValueError("key ids must be unique")
        wrong = [k.id for k in self.keys if k.scheme != self.scheme]
        if wrong:
            raise ValueError(f"key {wrong[0]!r} is not a {self.scheme} key")

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, key_id: str):
        for k in self.keys:
            if k.id == key_id:
                return k
        raise KeyError(f"no key {key_id!r} in the key set (have: {', '.join(self.ids[:20])}"
                       f"{' …' if len(self.ids) > 20 else ''})")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(k.id for k in self.keys)

    def to_json(self) -> str:
        return public_keys_json(self)


@dataclass(frozen=True)
class PublicKey:
    """A key as a case file keeps it: its public record only (enough to name it, not to test with it)."""

    record: dict

    @property
    def id(self) -> str:
        return str(self.record.get("id", ""))

    @property
    def scheme(self) -> str:
        return str(self.record.get("scheme", ""))

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return tuple(self.record.get("latent_shape", ()))

    def to_json_dict(self) -> dict:
        return dict(self.record)


@dataclass(frozen=True)
class PublicKeySet:
    """A recorded run's keys of schemes other than Tree-Ring, read back from a case file."""

    keys: tuple
    scheme: str
    name: str = ""

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(k.id for k in self.keys)

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k.scheme for k in self.keys))

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, key_id: str):
        for k in self.keys:
            if k.id == key_id:
                return k
        raise KeyError(f"no key {key_id!r} in the recorded key set")

    def to_json(self) -> str:
        return public_keys_json(self)


def keys_from_record(text: str):
    """A case file's key record: Tree-Ring key sets as before, other schemes as their public records."""
    from engine.treering import KEYSET_FORMAT, KeySet

    data = json.loads(text)
    if isinstance(data, dict) and data.get("format") == PUBLIC_KEYS_FORMAT:
        entries = data.get("keys")
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            raise ValueError("the recorded key list is empty or not a list of objects")
        if len(entries) > 3 * MAX_SCHEME_KEYS:
            raise ValueError("too many recorded keys")
        return PublicKeySet(tuple(PublicKey(e) for e in entries), scheme=str(data.get("scheme", "")),
                            name=str(data.get("name", "")))
    if isinstance(data, dict) and data.get("format") == KEYSET_FORMAT:
        return KeySet.from_json(text)
    raise ValueError("not a recorded key set")


def check_shapes(keys, latent_shape, model_id: str) -> None:
    for k in keys.keys:
        if tuple(k.latent_shape) != tuple(latent_shape):
            raise ValueError(f"key {k.id!r} is for latents of shape {tuple(k.latent_shape)} but model {model_id!r} "
                             f"has {tuple(latent_shape)}: choose a key set made for this model")


def decide_nearest(scores, fpr: float, statistic: str, weakness: str) -> "SchemeVerdict":
    """The nearest key by the scheme's own distance `l1` (ties → lowest index: each reference's classifier);
    a watermark is reported only if that key's p-value is below fpr / K (Bonferroni over the K keys tested,
    valid whatever the dependence between keys)."""
    if not 0 < fpr < 1:
        raise ValueError("the false-positive level must be in (0, 1)")
    best = min(range(len(scores)), key=lambda i: (scores[i].l1, i))
    k = len(scores)
    s = scores[best]
    return SchemeVerdict(predicted_key=s.key_id if s.p_value < fpr / k else None, nearest_key=s.key_id,
                         nearest_l1=s.l1, nearest_p_value=s.p_value, fpr=fpr, keys_tested=k,
                         corrected_threshold=fpr / k, statistic=statistic, weakness=weakness)


@dataclass(frozen=True)
class SchemeVerdict(Verdict):
    """A Verdict (same fields) whose sentences name the scheme's own statistic and known weakness."""

    statistic: str = "distance"
    weakness: str = ""

    def finding(self) -> str:
        return (f"nearest key {self.nearest_key}: {self.statistic} {self.nearest_l1:.4g}, p = "
                f"{self.nearest_p_value:.3g} ({self.keys_tested} key(s) tested; threshold "
                f"{self.corrected_threshold:.3g} = {self.fpr:g} / {self.keys_tested})")

    def interpretation(self) -> str:
        if self.detected:
            return (f"The recovered initial noise is consistent with key {self.predicted_key} at a family-wise "
                    f"false-positive level of {self.fpr:g}. This is evidence, not proof of origin: {self.weakness}")
        return (f"No watermark detected at a family-wise false-positive level of {self.fpr:g}. This is not proof "
                f"of absence: compression, cropping, rotation or regeneration weaken the watermark.")


class VaultScheme:
    """What Gaussian Shading, RingID and PRC share behind the scheme interface: keys come from a key vault,
    shapes are checked alike, and the decision is the nearest key with its scheme's statistic. A subclass names
    itself (`name`, `title`, `statistic`, `weakness`) and supplies `inject` and `score`."""

    name: ClassVar[str]
    title: ClassVar[str]
    statistic: ClassVar[str]
    weakness: ClassVar[str]
    independent_keys: ClassVar[bool] = False

    def load_keys(self, path) -> "SchemeKeySet":
        from engine.key_vault import load_vault

        return load_vault(path).keyset(self.name)

    def check_fits(self, keys: "SchemeKeySet", latent_shape, model_id: str) -> None:
        check_shapes(keys, latent_shape, model_id)

    def decide(self, scores, fpr: float) -> "SchemeVerdict":
        return decide_nearest(scores, fpr, self.statistic, self.weakness)
