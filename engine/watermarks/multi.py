"""Several schemes tested at once (a key vault holding keys of more than one scheme).

Each scheme scores the recovered z_T against its own keys with its own statistic and names its nearest key;
the distances of different schemes are not comparable, so across schemes the candidate is the nearest key with
the smallest p-value, and a
watermark is reported only if that p-value is below fpr / K with K the number of keys of all schemes tested
(Bonferroni over keys × schemes, valid whatever the dependence).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import torch

from engine.treering_scoring import KeyScore
from engine.watermarks.base import SchemeVerdict

SCHEME = "multi"


@dataclass(frozen=True)
class MultiSchemeKeySet:
    parts: tuple              # one key set per scheme
    name: str = ""
    scheme: ClassVar[str] = SCHEME

    def __post_init__(self) -> None:
        ids = [i for p in self.parts for i in p.ids]
        if len(set(ids)) != len(ids):
            raise ValueError("key ids must be unique across the schemes tested")

    @property
    def keys(self) -> tuple:
        return tuple(k for p in self.parts for k in p.keys)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(k.id for k in self.keys)

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(p.scheme for p in self.parts)

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def __getitem__(self, key_id: str):
        for p in self.parts:
            if key_id in p.ids:
                return p[key_id]
        raise KeyError(f"no key {key_id!r} in the key vault")

    def to_json(self) -> str:
        from engine.watermarks.base import public_keys_json

        return public_keys_json(self)

    def scheme_of(self, key_id: str) -> str:
        return next(p.scheme for p in self.parts if key_id in p.ids)


class MultiScheme:
    name: ClassVar[str] = SCHEME
    title: ClassVar[str] = "several schemes (key vault)"
    independent_keys: ClassVar[bool] = False   # per key: `engine.watermarks.independent_key_ids`

    def _scheme(self, part):
        from engine.watermarks import scheme_for

        return scheme_for(part)

    def load_keys(self, path) -> MultiSchemeKeySet:
        from engine.key_vault import load_vault

        return load_vault(path).for_scan()

    def check_fits(self, keys: MultiSchemeKeySet, latent_shape, model_id: str) -> None:
        for part in keys.parts:
            self._scheme(part).check_fits(part, latent_shape, model_id)

    def inject(self, z_t: torch.Tensor, key) -> torch.Tensor:
        from engine.watermarks import scheme_named

        return scheme_named(key.scheme).inject(z_t, key)

    def score(self, z_t: torch.Tensor, keys: MultiSchemeKeySet, target: str) -> list[list[KeyScore]]:
        per_part = [self._scheme(p).score(z_t, p, target) for p in keys.parts]
        return [[s for part in per_part for s in part[b]] for b in range(z_t.shape[0])]

    def decide(self, scores: Sequence[KeyScore], fpr: float) -> SchemeVerdict:
        if not 0 < fpr < 1:
            raise ValueError("the false-positive level must be in (0, 1)")
        # within a scheme its own classifier (nearest by its distance: keys of one scheme can share most of
        # their pattern, so several may have tiny p-values); across schemes the smallest p-value
        nearest: dict[str, int] = {}
        for i, s in enumerate(scores):
            scheme = getattr(s, "scheme", "tree-ring")
            if scheme not in nearest or s.l1 < scores[nearest[scheme]].l1:
                nearest[scheme] = i
        best = min(nearest.values(), key=lambda i: (scores[i].p_value, i))
        k = len(scores)
        s = scores[best]
        return SchemeVerdict(predicted_key=s.key_id if s.p_value < fpr / k else None, nearest_key=s.key_id,
                             nearest_l1=s.l1, nearest_p_value=s.p_value, fpr=fpr, keys_tested=k,
                             corrected_threshold=fpr / k,
                             statistic="the key's own distance (smallest p-value across schemes)",
                             weakness="each scheme's own weaknesses apply (see the limitations).")
