"""Tree-Ring (Wen et al. 2023) behind the scheme interface; the algorithm itself is `engine.treering` (keys,
injection) and `engine.treering_scoring` (scores, verdict, exclusion) (docs/algorithms.md §3)."""

from __future__ import annotations

from typing import ClassVar, Sequence

import torch

from engine import treering, treering_scoring


class TreeRingScheme:
    name: ClassVar[str] = "tree-ring"
    title: ClassVar[str] = "Tree-Ring (Wen et al. 2023)"
    independent_keys: ClassVar[bool] = False  # keys share the ring geometry

    def load_keys(self, path) -> treering.KeySet:
        return treering.KeySet.load(path)

    def check_fits(self, keys: treering.KeySet, latent_shape: tuple[int, int, int], model_id: str) -> None:
        for k in keys.keys:
            if tuple(k.latent_shape) != tuple(latent_shape):
                raise ValueError(f"key {k.id!r} is for latents of shape {k.latent_shape} but model {model_id!r} "
                                 f"has {tuple(latent_shape)}: choose a key set made for this model")

    def inject(self, z_t: torch.Tensor, key: treering.TreeRingKey) -> torch.Tensor:
        return treering.inject(z_t, key)

    def score(self, z_t: torch.Tensor, keys: treering.KeySet, target: str) -> list[list[treering_scoring.KeyScore]]:
        return treering_scoring.score_keys(z_t, keys, target)

    def exclusion(self, z_t: torch.Tensor, keys: treering.KeySet, target: str):
        return treering_scoring.exclusion_statistics(z_t, keys, target)

    def decide(self, scores: Sequence[treering_scoring.KeyScore], fpr: float) -> treering_scoring.Verdict:
        return treering_scoring.decide(scores, fpr)
