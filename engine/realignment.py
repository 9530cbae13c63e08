"""Re-alignment search at scan time (docs/algorithms.md §9): candidate inverse transforms of a suspect
(rotations, centre rescales, crops at a grid of positions, flips) applied to its pixels, each run through the
normal decoder and diffusion inversion and scored; the best candidate is reported with a family-wise
corrected p-value — Bonferroni over every (candidate, key) and the decoy-key max-statistic p-value
(`engine.decoys`) — never the uncorrected minimum, never Šidák (nearby candidates are strongly correlated) —
and a conclusion on the verdict scale that never names a key (`engine.search_verdict`).

Transforms work on the model-size pixels the intake produced (an image of another size or aspect was already
resized and centre-cropped there, and the intake says so): a crop candidate places the suspect, shrunk to the
kept side, back at its place in the original frame ("cropped then resized" undone), a rescale does the same at
the centre. Uncovered area is filled per transform (black for rotations, the edge pixels for crops: the fills
that measured best on the demo model, see `SearchConfig`). All candidates of one suspect are bilinear
`grid_sample` calls and go through the inversion in batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from engine.decoys import (bonferroni, decoy_p_value, decoy_statistics, draw_decoy_sets, p_value_matrix,
                           search_statistic)
from engine.limits import require_choice, require_int, require_number
from engine.model_loader import LoadedModel
from engine.progress import NULL_PROGRESS, Progress
from engine.recovery import recover_z_t
from engine.search_verdict import search_conclusion, search_headline
from engine.treering import KeySet
from engine.treering_scoring import covered_key_residuals, exclusion_statistics
from engine.verdicts import Conclusion

FAMILIES = ("rotation", "scale", "crop", "flip")
FILLS = ("black", "grey", "border", "reflection", "inpaint")
# "inpaint": the area a candidate leaves uncovered is filled by the model's autoencoder (`inpaint_uncovered`)

# How the winner's key is chosen (`RealignmentResult.key_rule`). Where the winning candidate leaves part of the
# latent uncovered (a rotation's corners, by other than a multiple of 90°; a crop's or shrink's margin), the fill
# there mixes into every Fourier ring; on a model whose spec asks for it (`ModelSpec.search_fits_covered_latent`)
# the key is then the one whose pattern, at its best gain, fits the latent area the candidate covers
# (`engine.treering_scoring.covered_key_residuals`). Through the robustness rows' searches on `demo` (150 images
# each, encoder; benchmarks/results/search_rules/) it names the right key for 0.77 / 0.68 / 0.61 of rotations by
# 10 / 20 / 30° against the smallest p-value's 0.64 / 0.61 / 0.43, and for 0.52 / 0.58 / 0.79 of crops keeping
# 0.75 / 0.8 / 0.9 of the side against 0.45 / 0.51 / 0.81. On `demo-flow`, whose rings a rotation barely bends,
# it is no better at the undoing rotation (benchmarks/results/rotation_key_rule/), so that model and unmeasured
# ones keep the smallest p-value everywhere.
SMALLEST_P = "smallest p-value"
COVERED_FIT = "pattern fit over the covered latent"
KEY_RULES = (SMALLEST_P, COVERED_FIT)
# a latent pixel counts as covered when the candidate fills all of its image pixels from the suspect
COVERED_SHARE = 0.999


@dataclass(frozen=True)
class Transform:
    """One candidate inverse transform, applied to the suspect: rotate by `angle` degrees counter-clockwise
    (PIL's sense), then place the result shrunk to `side` of the frame with its centre at (`cx`, `cy`)
    (fractions of the frame, 0.5 = centre), then flip. The identity is all defaults."""

    angle: float = 0.0
    side: float = 1.0
    cx: float = 0.5
    cy: float = 0.5
    hflip: bool = False
    vflip: bool = False
    fill: str = "black"            # uncovered area (see `apply_transforms`)

    def __post_init__(self) -> None:
        require_number(self.angle, "a rotation angle", -360.0, 360.0)
        require_number(self.side, "a crop or scale side", 0.05, 4.0)
        require_number(self.cx, "a crop centre", -1.0, 2.0)
        require_number(self.cy, "a crop centre", -1.0, 2.0)
        require_choice(self.fill, "the fill of uncovered area", FILLS)

    @property
    def is_identity(self) -> bool:
        return self == Transform(fill=self.fill)

    def describe(self) -> str:
        parts = []
        if self.angle:
            parts.append(f"rotate {self.angle:g}°")
        if self.side != 1.0 or (self.cx, self.cy) != (0.5, 0.5):
            where = "" if (self.cx, self.cy) == (0.5, 0.5) else f" centred at ({self.cx:.3g}, {self.cy:.3g})"
            parts.append(f"{'shrink' if self.side < 1 else 'enlarge'} to {self.side:g} of the side{where}"
                         if self.side != 1.0 else f"shift to{where}")
        if self.hflip:
            parts.append("flip left-right")
        if self.vflip:
            parts.append("flip top-bottom")
        return ", then ".join(parts) or "as submitted"

    def to_json_dict(self) -> dict:
        return {"angle": self.angle, "side": self.side, "cx": self.cx, "cy": self.cy, "hflip": self.hflip,
                "vflip": self.vflip, "fill": self.fill, "description": self.describe()}

    def affine(self) -> np.ndarray:
        """2×3 matrix mapping output coordinates to input coordinates, normalised to [−1, 1] (x right, y down),
        as `torch.nn.functional.affine_grid` takes it."""
        flip = np.diag([-1.0 if self.hflip else 1.0, -1.0 if self.vflip else 1.0, 1.0])
        # output point p of the original frame ← point (p − c)/side of the rotated suspect
        ox, oy = 2 * self.cx - 1, 2 * self.cy - 1
        place = np.array([[1 / self.side, 0, -ox / self.side], [0, 1 / self.side, -oy / self.side], [0, 0, 1]])
        a = math.radians(self.angle)
        rotate = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
        return (rotate @ place @ flip)[:2]


def apply_transforms(pixels: torch.Tensor, transforms: tuple[Transform, ...]) -> torch.Tensor:
    """(C, T, T) pixels in [−1, 1] (or a latent) → (K, C, T, T), one per transform; uncovered area is each
    transform's fill: black (−1), grey (0), the nearest edge pixel (border) or the mirrored image (reflection);
    "inpaint" leaves it black here, for `inpaint_uncovered` to fill with the model."""
    out = torch.empty((len(transforms), *pixels.shape), dtype=torch.float32)
    for fill in FILLS:
        chosen = [i for i, t in enumerate(transforms) if t.fill == fill]
        if not chosen:
            continue
        theta = torch.tensor(np.stack([transforms[i].affine() for i in chosen]), dtype=torch.float32)
        grid = F.affine_grid(theta, [len(chosen), *pixels.shape], align_corners=False)
        batch = pixels.float().cpu()[None].expand(len(chosen), *pixels.shape)
        shift = 1.0 if fill in ("black", "inpaint") else 0.0    # grid_sample fills 0: shifted so that 0 is black
        mode = fill if fill in ("border", "reflection") else "zeros"
        out[chosen] = F.grid_sample(batch + shift, grid, mode="bilinear", padding_mode=mode,
                                    align_corners=False) - shift
    return out


def covered_masks(transforms: tuple[Transform, ...], size: int) -> np.ndarray:
    """(K, 1, T, T) bool: the pixels each transform fills from the suspect (fully, not blended with the fill)."""
    frame = apply_transforms(torch.ones((1, size, size)), tuple(replace(t, fill="black") for t in transforms))
    return (frame > 0.98).numpy()


def covered_latent(transforms: tuple[Transform, ...], image_size: int, latent_side: int) -> np.ndarray:
    """(K, h, w) bool: the latent pixels whose image pixels each transform fills wholly from the suspect."""
    frame = torch.from_numpy(covered_masks(transforms, image_size).astype(np.float32))
    return (F.adaptive_avg_pool2d(frame, latent_side)[:, 0] >= COVERED_SHARE).numpy()


def inpaint_uncovered(model: LoadedModel, candidates: torch.Tensor, transforms: tuple[Transform, ...]) -> torch.Tensor:
    """The candidates whose fill is "inpaint" with their uncovered area filled by the model's autoencoder
    (the mask data-consistency step of `engine.restoration`, its default settings); the others unchanged."""
    from engine.restoration import Degradation, RestorationConfig, restore

    chosen = [i for i, t in enumerate(transforms) if t.fill == "inpaint"]
    if not chosen:
        return candidates
    masks = covered_masks(tuple(transforms[i] for i in chosen), candidates.shape[-1])
    out = candidates.clone()
    out[chosen] = restore(model, candidates[chosen], Degradation("mask", mask=masks), RestorationConfig())
    return out


@dataclass(frozen=True)
class SearchConfig:
    """Which candidates to try (`families`, any of rotation, scale, crop, flip; the identity always), and
    the decoy keys of the max-statistic p-value (`decoys` = 0: Bonferroni only)."""

    families: tuple[str, ...] = FAMILIES
    rotations: tuple[float, ...] = tuple(float(a) for a in range(-45, 46, 5) if a) + (90.0, 180.0, 270.0)
    scales: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.1, 1.25)
    crop_sides: tuple[float, ...] = (0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    crop_positions: int = 3        # per axis: 3 → corners, edge midpoints and centre
    # Measured on the demo model (a watermarked image, encoder): a rotation undone with black corners kept
    # p ≈ 1e-4 where mid-grey gave 0.8 and mirroring 0.15; a 4-px-per-side crop undone by extending its edges
    # gave 7e-4 where black gave 1e-2 and mirroring 0.5.
    rotation_fill: str = "black"
    crop_fill: str = "border"
    decoys: int = 999
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [f for f in self.families if f not in FAMILIES]
        if bad or not self.families:
            raise ValueError(f"search families must be among {', '.join(FAMILIES)}, not {', '.join(bad) or 'none'}")
        require_int(self.crop_positions, "crop positions per axis", 1, 9)
        require_int(self.decoys, "the number of decoy keys", 0, 100_000)
        for s in self.crop_sides:
            require_number(s, "a crop side", 0.05, 1.0)
        require_choice(self.rotation_fill, "the rotation fill", FILLS)
        require_choice(self.crop_fill, "the crop fill", FILLS)

    def transforms(self) -> tuple[Transform, ...]:
        out = [Transform()]
        if "rotation" in self.families:
            out += [Transform(angle=a, fill=self.rotation_fill) for a in self.rotations]
        if "scale" in self.families:
            out += [Transform(side=s, fill=self.crop_fill) for s in self.scales]
        if "crop" in self.families:
            for s in self.crop_sides:
                centres = np.linspace(s / 2, 1 - s / 2, self.crop_positions) if self.crop_positions > 1 else [0.5]
                out += [Transform(side=s, cx=float(x), cy=float(y), fill=self.crop_fill)
                        for y in centres for x in centres]
        if "flip" in self.families:
            out += [Transform(hflip=True), Transform(vflip=True)]
        unique = list(dict.fromkeys(out))          # a centred crop equals a rescale: counted once
        return tuple(unique)


def parse_families(text: str) -> tuple[str, ...]:
    families = tuple(f.strip() for f in text.split(",") if f.strip())
    bad = [f for f in families if f not in FAMILIES]
    if bad or not families:
        raise ValueError(f"--search takes a comma-separated list of {', '.join(FAMILIES)}, not {text!r}")
    return families


@dataclass(frozen=True)
class RealignmentResult:
    method: str
    transforms: tuple[Transform, ...]
    key_ids: tuple[str, ...]
    p_values: np.ndarray = field(repr=False)   # (K, N): candidate × key, uncorrected
    best_index: int                            # the candidate of the smallest p-value
    best_key: str                              # the key `key_rule` picks on that candidate
    min_p: float                               # uncorrected: NOT a p-value of the search, never report it alone
    bonferroni_p: float                        # min(1, K·N·min p)
    decoy_p: float | None                      # (1 + #{S_j ≥ S}) / (M + 1); None when no decoys were drawn
    decoys: int
    identity_p: float                          # the smallest p-value of the suspect as submitted (no search)
    # the identification test on the winning candidate's z_T (`exclusion_statistics`): (N,), None without one
    exclusion: np.ndarray | None = field(default=None, repr=False)
    exclusion_df: int = 0
    key_rule: str = SMALLEST_P

    def __post_init__(self) -> None:
        require_choice(self.key_rule, "the re-alignment key rule", KEY_RULES)

    @property
    def best(self) -> Transform:
        return self.transforms[self.best_index]

    @property
    def tests(self) -> int:
        return int(self.p_values.size)

    def corrected_p(self) -> float:
        """The p-value to read: the decoy p-value when decoys were drawn, else Bonferroni. Bonferroni is only
        as valid as each candidate's analytic p-value, and on transformed images those are not exact (on
        rotated, edge-filled N(0, I) latents ≈ 7 % fall below 0.05: tests/test_realignment.py); the decoy
        p-value needs no per-candidate calibration."""
        return self.bonferroni_p if self.decoy_p is None else self.decoy_p

    def detected(self, fpr: float) -> bool:
        return self.corrected_p() <= fpr

    def conclusion(self, fpr: float) -> Conclusion:
        """On the verdict scale (`engine.search_verdict`): at most inconclusive, never a named key."""
        return search_conclusion(self, fpr)

    def to_json_dict(self, fpr: float) -> dict:
        """The scan JSON's per-method search object; with the candidates' parameters, the p-value table and the
        winner's exclusion statistics it is complete, so `from_json_dict` rebuilds the result (case files)."""
        return {"method": self.method, "candidates": len(self.transforms), "keys": len(self.key_ids),
                "tests": self.tests, "transforms_tried": [t.describe() for t in self.transforms],
                "best_transform": self.best.to_json_dict(), "best_key": self.best_key,
                "identity_min_p": self.identity_p, "uncorrected_min_p": self.min_p,
                "bonferroni_p": self.bonferroni_p, "decoy_p": self.decoy_p, "decoy_keys": self.decoys,
                "corrected_p": self.corrected_p(), "fpr": fpr, "detected": self.detected(fpr),
                "finding": self.finding(fpr), "conclusion": self.conclusion(fpr).to_json_dict(),
                "key_ids": list(self.key_ids), "transforms": [t.to_json_dict() for t in self.transforms],
                "best_index": self.best_index, "p_values": self.p_values.tolist(),
                "winner_exclusion": None if self.exclusion is None else self.exclusion.tolist(),
                "exclusion_df": self.exclusion_df, "key_rule": self.key_rule}

    @classmethod
    def from_json_dict(cls, d: dict) -> "RealignmentResult":
        """Back from `to_json_dict`; ValueError naming the field when it is not a search result."""
        if not isinstance(d, dict):
            raise ValueError("a re-alignment result is not an object")
        keys = d.get("key_ids")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise ValueError("a re-alignment result has no key ids")
        raw = d.get("transforms")
        if not isinstance(raw, list) or not raw or not all(isinstance(t, dict) for t in raw):
            raise ValueError("a re-alignment result has no transforms")
        try:
            transforms = tuple(Transform(**{k: t[k] for k in ("angle", "side", "cx", "cy", "hflip", "vflip", "fill")})
                               for t in raw)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"a re-alignment transform is incomplete ({exc})") from None
        p = np.asarray(d.get("p_values"), dtype=np.float64)
        if p.shape != (len(transforms), len(keys)) or not np.all((p >= 0) & (p <= 1)):
            raise ValueError(f"the re-alignment p-values are not {len(transforms)} × {len(keys)} numbers in [0, 1]")
        best = d.get("best_index")
        if isinstance(best, bool) or not isinstance(best, int) or not 0 <= best < len(transforms):
            raise ValueError("the re-alignment winner is not one of its candidates")
        excl = d.get("winner_exclusion")
        exclusion = None if excl is None else np.asarray(excl, dtype=np.float64)
        if exclusion is not None and exclusion.shape != (len(keys),):
            raise ValueError("the re-alignment exclusion statistics do not match its keys")

        def number(name, optional=False):
            v = d.get(name)
            if v is None and optional:
                return None
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise ValueError(f"re-alignment field {name} is not a finite number")
            return float(v)

        decoys, df = d.get("decoy_keys"), d.get("exclusion_df", 0)
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in (decoys, df)):
            raise ValueError("re-alignment decoy count or degrees of freedom is not a count")
        if d.get("best_key") not in keys:
            raise ValueError("the re-alignment winner's key is not among its keys")
        rule = d.get("key_rule", SMALLEST_P)    # files written before the rule existed used the smallest p-value
        identity = d.get("identity_min_p")     # NaN (null in the scan JSON) when no identity candidate was tried
        return cls(method=str(d.get("method", "")), transforms=transforms, key_ids=tuple(keys), p_values=p,
                   best_index=best, best_key=d["best_key"], min_p=number("uncorrected_min_p"),
                   bonferroni_p=number("bonferroni_p"), decoy_p=number("decoy_p", optional=True), decoys=decoys,
                   identity_p=float("nan") if identity is None or (isinstance(identity, float) and math.isnan(identity))
                   else number("identity_min_p"),
                   exclusion=exclusion, exclusion_df=df, key_rule=rule)

    @property
    def key_text(self) -> str:
        """The winner's key with the rule that chose it: "key2 (smallest p-value)"."""
        return f"{self.best_key} ({self.key_rule})"

    def finding(self, fpr: float) -> str:
        """One line: the outcome in the verdict scale's words (never a named key), the search and its numbers."""
        decoy = (f", decoy-key max-statistic p = {self.decoy_p:.3g} ({self.decoys} decoy key sets)"
                 if self.decoy_p is not None else "")
        return (f"{search_headline(self.conclusion(fpr))} at family-wise level {fpr:g}: {len(self.transforms)} "
                f"candidate transforms × {len(self.key_ids)} key(s) tried ({self.method}); best: "
                f"{self.best.describe()} with key {self.key_text}; Bonferroni p = {self.bonferroni_p:.3g}{decoy}; "
                f"as submitted min p = {self.identity_p:.3g}")


def score_search(z_t: torch.Tensor, keys: KeySet, transforms: tuple[Transform, ...], method: str,
                 search: SearchConfig, target: str = "effective", covered: np.ndarray | None = None
                 ) -> RealignmentResult:
    """The corrected result from every candidate's recovered z_T (K, C, h, w), in `transforms` order.
    `covered` ((K, h, w) bool, `covered_latent`): where given and the winner leaves part of the latent uncovered
    (a rotation's corners, a crop's or shrink's margin), its key is the covered-area fit's (`COVERED_FIT`), else
    the smallest p-value's."""
    p = p_value_matrix(z_t, keys.keys, target)
    k, n = np.unravel_index(int(np.argmin(p)), p.shape)
    min_p = float(p[k, n])
    rule = SMALLEST_P
    if (covered is not None and covered[k].any() and not covered[k].all()
            and len({key.channel for key in keys.keys}) == 1):
        n, rule = int(np.argmin(covered_key_residuals(z_t[k], keys, covered[k], target))), COVERED_FIT
    decoy = None
    if search.decoys:
        decoy = decoy_p_value(search_statistic(p),
                              decoy_statistics(z_t, draw_decoy_sets(keys, search.decoys, search.seed), target))
    identity = [i for i, t in enumerate(transforms) if t.is_identity]
    excl = exclusion_statistics(z_t[k:k + 1], keys, target)
    return RealignmentResult(method=method, transforms=transforms, key_ids=keys.ids, p_values=p, best_index=int(k),
                             best_key=keys.ids[n], min_p=min_p, bonferroni_p=bonferroni(min_p, p.size),
                             decoy_p=decoy, decoys=search.decoys,
                             identity_p=float(p[identity[0]].min()) if identity else float("nan"),
                             exclusion=None if excl is None else excl[0][0], exclusion_df=0 if excl is None else excl[1],
                             key_rule=rule)


def realign(model: LoadedModel, keys: KeySet, pixels: np.ndarray | torch.Tensor, config, method: str,
            search: SearchConfig = SearchConfig(), progress: Progress = NULL_PROGRESS,
            item: str = "") -> RealignmentResult:
    """Search one suspect's (3, T, T) model-size pixels in [−1, 1] (`EvidenceImage.pixels`) with one
    decoder-inversion method of `config` (an `AnalysisConfig`)."""
    transforms = search.transforms()
    x = apply_transforms(torch.as_tensor(np.asarray(pixels, dtype=np.float32)), transforms)
    x = inpaint_uncovered(model, x, transforms)
    z_t = recover_z_t(model, x, method, config, progress, item)
    covered = (covered_latent(transforms, model.image_size, z_t.shape[-1])
               if model.spec.search_fits_covered_latent else None)
    return score_search(z_t, keys, transforms, method, search, config.score_target, covered)


def check_search_keys(keys) -> None:
    """The search scores Tree-Ring keys (its decoys are drawn like them): ValueError, one sentence, otherwise."""
    if getattr(keys, "scheme", "tree-ring") != "tree-ring":
        raise ValueError(f"the re-alignment search scores Tree-Ring keys only; this key set is "
                         f"{getattr(keys, 'scheme', 'another scheme')}: run without the search")


def realign_run(model: LoadedModel, keys: KeySet, run, search: SearchConfig,
                progress: Progress = NULL_PROGRESS) -> dict[str, dict[str, RealignmentResult]]:
    """The search for every analysed image of an `AnalysisRun` and every method it ran: path → method → result."""
    check_search_keys(keys)
    out: dict[str, dict[str, RealignmentResult]] = {}
    for image in run.images:
        name = image.evidence.path.rsplit("/", 1)[-1]
        out[image.evidence.path] = {m: realign(model, keys, image.evidence.pixels, run.config, m, search, progress,
                                               f"{name} (re-alignment)") for m in image.methods}
    return out


def intake_note(image) -> str:
    """How the suspect reached the model's size before the search (the intake's resize and centre crop)."""
    p = image.evidence.preprocessing
    if p.resized_to is None and p.crop_box is None:
        return f"analysed as submitted ({p.original_size[0]}×{p.original_size[1]}, the model's size)"
    return (f"{p.original_size[0]}×{p.original_size[1]} brought to the model's {p.target_size}×{p.target_size} "
            f"by the intake ({p.describe()}); the search works on that")
