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

    from engine.treering import KeyScore, Verdict


class KeySetLike(Protocol):
    """What the engine needs of any scheme's key set."""

    scheme: str

    @property
    def ids(self) -> tuple[str, ...]: ...

    def __len__(self) -> int: ...


class WatermarkScheme(Protocol):
    name: ClassVar[str]           # the key file's "scheme" field, e.g. "tree-ring"
    title: ClassVar[str]          # for people, e.g. "Tree-Ring (Wen et al. 2023)"

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
