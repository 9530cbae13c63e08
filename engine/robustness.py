"""The robustness study: reference images (watermarked per key, and clean), each attack of `engine.attacks` at
each strength, each decoder inversion, and each way of reading an altered suspect — as submitted ("plain"),
after the re-alignment search (`engine.realignment`), after restoration (`engine.restoration`). Per row:
detection AUC, TPR at 1 % and 0.1 % empirical FPR on the altered clean images (with the number of negatives
behind them), identification accuracy, attribution at the nominal level, and the null control — the share of
altered *clean* images the nominal decision flags, measured, never assumed. Beside these "analytic" columns,
each row counts the tool's own conclusions on the same images (`engine.robustness_verdicts`): what a scan with
the model's calibration concludes, which is what an examiner sees.

Statistics: plain and restored read a suspect by its smallest p-value over the keys (detected when below
fpr/N, Bonferroni over the N keys, the scan's rule; the key named is the one of the smallest p-value);
realigned by the search's max statistic for AUC and TPR, and its corrected p-value (decoy keys) ≤ fpr for
detection. TPR at a FPR level follows WAVES: the threshold leaves strictly fewer than level·n negatives above
it, so with fewer than 1/level negatives it is the zero-false-positive point, and is labelled so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from engine.attacks import ATTACKS, apply_attacks, combination_parts, combined, describe_parameters
from engine.decoys import p_value_matrix
from engine.generation import GenerationConfig, decode_to_uint8, initial_noise, sample_latents
from engine.limits import require_choice, require_number
from engine.model_loader import LoadedModel
from engine.pixel_levels import from_uint8, to_uint8
from engine.progress import NULL_PROGRESS, Phase, Progress, ProgressEvent
from engine.rates import auc, clopper_pearson, tpr_at_fpr, upper_bound, wilson
from engine.realignment import SearchConfig, realign, search_statistic
from engine.recovery import recover_z_t
from engine.restoration import RestorationConfig, degradation_for_attack, restore
from engine.robustness_verdicts import calibration_label, latent_conclusions, study_calibration, verdict_counts
from engine.treering import KeySet
from engine.verdicts import Conclusion
from engine.watermarks import scheme_for

if TYPE_CHECKING:
    from engine.calibration import CalibrationChoice

VARIANTS = ("plain", "realigned", "restored")


# Regeneration draws its noise with torch from a seed, as `engine.generation.initial_noise` does; seeded with the
# reference's own seed it would re-noise the image with the very z_T it was generated from (measured: identical
# draws), an attack no adversary can make. Its seed comes from its own stream instead.
REGENERATION_STREAM = 0x5245_4745


def regeneration_seed(reference_seed: int) -> int:
    """The seed of the regeneration noise for the reference generated with `reference_seed`: reproducible,
    independent of the generation's draw."""
    return int(np.random.SeedSequence([int(reference_seed), REGENERATION_STREAM]).generate_state(1)[0])


@dataclass(frozen=True, eq=False)
class ReferenceImage:
    pixels: np.ndarray = field(repr=False)   # (T, T, 3) uint8 at the model's size
    key_id: str | None                       # None: not watermarked
    seed: int


def generate_references(model: LoadedModel, keys: KeySet, per_key: int, clean: int, seed: int = 300_000,
                        config: GenerationConfig = GenerationConfig(), batch_size: int = 8,
                        progress: Progress = NULL_PROGRESS) -> list[ReferenceImage]:
    """In memory, as `generate` writes them (8-bit rounding included): `per_key` images per key (seeds
    seed, seed + 1, …, a block per key) and `clean` un-watermarked ones."""
    scheme = scheme_for(keys)
    plan = [(k, seed + 10_000 * (n + 1) + i) for n, k in enumerate(keys.keys) for i in range(per_key)]
    plan += [(None, seed + i) for i in range(clean)]
    out: list[ReferenceImage] = []
    for start in range(0, len(plan), batch_size):
        progress.check_cancelled()
        chunk = plan[start:start + batch_size]
        z_t = initial_noise(model, [s for _, s in chunk])
        for i, (k, _) in enumerate(chunk):
            if k is not None:
                z_t[i:i + 1] = scheme.inject(z_t[i:i + 1], k)
        pixels = decode_to_uint8(model, sample_latents(model, z_t, config))
        out += [ReferenceImage(p, k.id if k is not None else None, s) for p, (k, s) in zip(pixels, chunk)]
        progress.report(ProgressEvent("generating references", len(out), len(plan), phase=Phase.GENERATING))
    return out


def load_references(folder: str | Path, model: LoadedModel) -> list[ReferenceImage]:
    """A folder made by `generate` (its manifest.json names each file's key and seed), read through the intake."""
    from engine.intake import load_evidence
    from engine.output_paths import OutputRefused
    from engine.provenance import own_manifest

    folder = Path(folder)
    try:
        manifest = own_manifest(folder)
    except (OutputRefused, OSError, ValueError) as exc:
        raise ValueError(f"{folder}: not a reference set made by `generate` ({exc})") from None
    if manifest is None:
        raise ValueError(f"{folder}: not a reference set made by `generate` (no manifest.json)")
    files = manifest["images"]
    out = []
    for name, entry in sorted(files.items()):
        if not isinstance(entry, dict):
            continue
        e = load_evidence(folder / name, model.image_size)
        pixels = to_uint8(e.pixels)
        out.append(ReferenceImage(pixels, entry.get("key"), int(entry.get("seed", 0))))
    if not out:
        raise ValueError(f"{folder}: the manifest lists no images")
    return out


@dataclass(frozen=True)
class StudyConfig:
    attacks: tuple[str, ...] = ("rotation", "resizedcrop", "jpeg", "blur")
    strengths: tuple[float, ...] = (0.25, 0.5, 0.75)
    variants: tuple[str, ...] = ("plain",)
    search: SearchConfig = SearchConfig()
    # per attack, the families the re-alignment searches (a geometric search means nothing against blur)
    search_families: dict = field(default_factory=lambda: {"rotation": ("rotation",), "resizedcrop": ("crop",)})
    restoration: RestorationConfig = RestorationConfig()

    def families_for(self, attack: str) -> tuple[str, ...]:
        """What the re-alignment searches after this attack: its own families, or for a combination those of
        its parts (a combination of a rotation and a crop searches both)."""
        if attack in ("none", "regeneration"):
            return ()
        found: list[str] = []
        for part in combination_parts(attack):
            found += [f for f in self.search_families.get(part, ()) if f not in found]
        return tuple(found)

    def __post_init__(self) -> None:
        for a in self.attacks:
            if a not in ("none", "regeneration"):
                combination_parts(a)         # ValueError naming what is unknown
        for s in self.strengths:
            require_number(s, "an attack strength", 0.0, 1.0)
        for v in self.variants:
            require_choice(v, "a variant", VARIANTS)


@dataclass(frozen=True)
class Row:
    attack: str
    strength: float
    parameter: str                 # the absolute parameter, with its unit
    method: str
    variant: str
    positives: int
    negatives: int
    auc: float
    tpr_at_1pct: float
    tpr_at_01pct: float
    identification: float          # share of watermarked images whose best key is theirs (no threshold)
    attributed: float              # … and detected at the nominal level
    null_fpr: float                # share of altered clean images flagged at the nominal level
    null_flagged: int
    nominal_fpr: float
    settings: str = ""
    # re-alignment rows: the same two numbers with Bonferroni instead of the decoy p-value (None elsewhere)
    attributed_bonferroni: float | None = None
    null_flagged_bonferroni: int | None = None
    # The tool's own conclusions (engine.robustness_verdicts; None in rows measured before they were counted).
    # A "defended" positive is detected and not outside what the calibration covers.
    verdict_null_flagged: int | None = None     # altered clean images: defended positives (false positives)
    verdict_null_outside: int | None = None     # altered clean images marked outside calibration
    verdict_detected: float | None = None       # share of watermarked images: defended detections
    verdict_identified: float | None = None     # … identified with their own key
    verdict_wrong_key: int | None = None        # watermarked images identified with another key (count)
    calibration: str = ""                       # which calibration the conclusions used, or why none

    def to_json_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_json_dict(cls, d: dict) -> "Row":
        """Back from `to_json_dict`, also for rows written before a field existed (it takes its default);
        ValueError naming what is missing otherwise."""
        from dataclasses import fields

        if not isinstance(d, dict):
            raise ValueError("a robustness row is not an object")
        names = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in d.items() if k in names})
        except TypeError as exc:
            raise ValueError(f"a robustness row is incomplete ({exc})") from None

    @property
    def key(self) -> tuple[str, float, str, str]:
        """What the row measured: (attack, strength, method, variant), for resuming a study."""
        return self.attack, float(self.strength), self.method, self.variant


@dataclass(frozen=True)
class _Reading:
    statistic: np.ndarray      # larger = more watermark-like
    best_key: list[str]
    detected: np.ndarray
    detected_bonferroni: np.ndarray | None = None   # re-alignment: Bonferroni over candidates × keys instead
    conclusions: list[Conclusion] | None = None      # the tool's conclusion per image


def _plain(model, keys, x, config, method, calibration, progress) -> _Reading:
    """The analytic reading and the scan's conclusion (with `calibration`, a `MethodCalibration` or None)."""
    z_t = recover_z_t(model, x, method, config, progress)
    p = p_value_matrix(z_t, keys.keys, config.score_target)
    best = p.argmin(axis=1)
    with np.errstate(divide="ignore"):
        stat = -np.log(p.min(axis=1))
    return _Reading(stat, [keys.ids[i] for i in best], p.min(axis=1) < config.fpr / len(keys),
                    conclusions=latent_conclusions(keys, z_t, x, config, method, calibration))


def _realigned(model, keys, x, config, method, search, progress) -> _Reading:
    results = [realign(model, keys, xi.numpy(), config, method, search, progress) for xi in x]
    return _Reading(np.array([search_statistic(r.p_values) for r in results]), [r.best_key for r in results],
                    np.array([r.detected(config.fpr) for r in results]),
                    np.array([r.bonferroni_p <= config.fpr for r in results]),
                    [r.conclusion(config.fpr) for r in results])


def _row(attack, strength, parameter, method, variant, refs, reading: _Reading, fpr, settings,
         calibration: str = "") -> Row:
    wm = np.array([r.key_id is not None for r in refs])
    pos, neg = reading.statistic[wm], reading.statistic[~wm]
    correct = np.array([b == r.key_id for b, r in zip(reading.best_key, refs)])[wm]
    flagged = int(reading.detected[~wm].sum())
    bonf = reading.detected_bonferroni
    extra = {} if bonf is None or not correct.size else {
        "attributed_bonferroni": float((correct & bonf[wm]).mean()), "null_flagged_bonferroni": int(bonf[~wm].sum())}
    if reading.conclusions is not None:
        extra.update(verdict_counts(reading.conclusions, [r.key_id for r in refs]), calibration=calibration)
    return Row(attack=attack, strength=strength, parameter=parameter, method=method, variant=variant,
               positives=int(wm.sum()), negatives=int((~wm).sum()), auc=auc(pos, neg),
               tpr_at_1pct=tpr_at_fpr(pos, neg, 0.01), tpr_at_01pct=tpr_at_fpr(pos, neg, 0.001),
               identification=float(correct.mean()) if correct.size else float("nan"),
               attributed=float((correct & reading.detected[wm]).mean()) if correct.size else float("nan"),
               null_fpr=flagged / max(1, int((~wm).sum())), null_flagged=flagged, nominal_fpr=fpr, settings=settings,
               **extra)


def run_study(model: LoadedModel, keys: KeySet, refs: list[ReferenceImage], config, study: StudyConfig,
              progress: Progress = NULL_PROGRESS, on_row=None, include_baseline: bool = True,
              calibration: "CalibrationChoice | None" = None, skip=()) -> list[Row]:
    """Every (attack, strength) × method × variant; `config` is the scan's `AnalysisConfig`. A baseline row
    (attack "none") comes first unless `include_baseline` is False. `on_row` gets each row as it is finished.
    `calibration`: what the conclusions use (default: what a scan with `config` would, `study_calibration`).
    `skip`: `Row.key`s already measured (a resumed study), not run again."""
    calibration = study_calibration(model, keys, config) if calibration is None else calibration
    skip = set(skip)
    rows: list[Row] = []
    plan = [("none", 0.0)] * include_baseline + [(a, s) for a in study.attacks if a != "none" for s in study.strengths]
    for name, strength in plan:
        wanted = [(m, v) for m in config.methods for v in study.variants if (name, float(strength), m, v) not in skip]
        if not wanted:
            continue
        if name == "none":
            attacked, parameter = [r.pixels for r in refs], "as generated"
        elif name == "regeneration":
            from engine.regeneration import regenerate

            attacked = [regenerate(model, r.pixels[None], strength, seed=regeneration_seed(r.seed))[0] for r in refs]
            parameter = f"noised to {strength:g} of the grid, denoised"
        else:
            attacked = [apply_attacks(r.pixels, combined(name, strength, r.seed)) for r in refs]
            parameter = describe_parameters(combined(name, strength))
        x = torch.from_numpy(from_uint8(np.stack(attacked)))
        for method in config.methods:
            def emit(variant, reading, settings=""):
                row = _row(name, strength, parameter, method, variant, refs, reading, config.fpr, settings,
                           calibration_label(calibration, method) if variant != "realigned" else
                           "none: the search's own corrected test (no calibration covers re-aligned images)")
                rows.append(row)
                if on_row is not None:
                    on_row(row)

            method_calibration = calibration.for_method(method)
            if (method, "plain") in wanted:
                emit("plain", _plain(model, keys, x, config, method, method_calibration, progress))
            families = study.families_for(name)
            if (method, "realigned") in wanted and families:
                search = replace(study.search, families=families)
                emit("realigned", _realigned(model, keys, x, config, method, search, progress),
                     f"{len(search.transforms())} candidates ({', '.join(families)}), {search.decoys} decoy sets")
            degradation = degradation_for_attack(name, ATTACKS[name].parameter(strength), model.image_size) \
                if name in ATTACKS else None
            if (method, "restored") in wanted and degradation is not None:
                restored = restore(model, x, degradation, study.restoration)
                emit("restored", _plain(model, keys, restored, config, method, method_calibration, progress),
                     f"{degradation.describe()}; {study.restoration.describe()}")
    return rows


def rows_markdown(rows: list[Row]) -> list[str]:
    """Two tables: the analytic reading (smallest p-value over the keys, Bonferroni; the search's corrected
    p-value) and the tool's conclusion on the same images (rows measured before it was counted show —)."""
    lines = ["Analytic reading (smallest per-key analytic p-value, Bonferroni over the keys; re-aligned: the "
             "search's corrected p-value):", "",
             "| attack | parameter | method | variant | AUC | TPR@1%FPR | TPR@0.1%FPR | identification (analytic) | "
             "attributed (analytic) | null-control FPR (analytic, nominal) | settings |", "|" + " --- |" * 11]
    for r in rows:
        lo, hi = wilson(round(r.identification * r.positives), r.positives)
        flo, fhi = wilson(r.null_flagged, r.negatives)
        zero = " (0-FP point)" if r.negatives < 1000 else ""
        bonf = ("" if r.null_flagged_bonferroni is None else
                f"; Bonferroni instead of decoys: attributed {r.attributed_bonferroni:.2f}, null "
                f"{r.null_flagged_bonferroni}/{r.negatives}")
        lines.append(f"| {r.attack} | {r.parameter} | {r.method} | {r.variant} | {r.auc:.3f} | "
                     f"{r.tpr_at_1pct:.2f} | {r.tpr_at_01pct:.2f}{zero} | {r.identification:.2f} "
                     f"[{lo:.2f}, {hi:.2f}] of {r.positives} | {r.attributed:.2f} | {r.null_flagged}/{r.negatives} = "
                     f"{r.null_fpr:.3f} [{flo:.3f}, {fhi:.3f}] ({r.nominal_fpr:g}) | {r.settings}{bonf} |")
    n = rows[0].negatives if rows else 0
    lines.append("")
    lines.append(f"TPR at a FPR level uses the {n} altered clean images of the same row as negatives: at 1 % that "
                 f"allows {max(0, math.ceil(0.01 * n) - 1)} false positives, at 0.1 % "
                 f"{max(0, math.ceil(0.001 * n) - 1)} (with fewer than 1000 negatives the 0.1 % column is the "
                 "zero-false-positive point). Brackets: 95 % Wilson intervals.")
    lines += ["", "The tool's conclusion (what a scan concludes on the same images; re-aligned: the search's "
              "conclusion, which never names a key):", "",
              "| attack | parameter | method | variant | detected (defended) | key identified (true key) | "
              "wrong key named | clean flagged (defended false positives) | clean outside calibration | "
              "calibration |", "|" + " --- |" * 10]
    for r in rows:
        lines.append(f"| {r.attack} | {r.parameter} | {r.method} | {r.variant} | " + " | ".join(_verdict_cells(r))
                     + " |")
    lines += ["", "Defended: detected, and not outside what the calibration covers (evidence outside it is "
              "concluded inconclusive, a stated refusal, never a positive). Shares of the watermarked images "
              "with 95 % Wilson intervals; counts with 95 % Clopper–Pearson intervals, the wrong keys with the "
              "one-sided 95 % upper bound of their rate among the watermarked images."]
    return lines


def _verdict_cells(r: Row) -> list[str]:
    if r.verdict_null_flagged is None:
        return ["—"] * 5 + ["not measured"]
    p, n = r.positives, r.negatives

    def share(v):
        k = round(v * p)
        lo, hi = wilson(k, p)
        return f"{v:.2f} [{lo:.2f}, {hi:.2f}] of {p}"

    def count(k):
        lo, hi = clopper_pearson(k, n)
        return f"{k}/{n} = {k / n if n else float('nan'):.3f} [{lo:.3f}, {hi:.3f}]"

    identified = ("— (never names a key)" if r.variant == "realigned" else share(r.verdict_identified))
    wrong = ("—" if r.variant == "realigned" else
             f"{r.verdict_wrong_key}/{p} (≤ {upper_bound(r.verdict_wrong_key, p):.3f})")
    return [share(r.verdict_detected), identified, wrong, count(r.verdict_null_flagged),
            count(r.verdict_null_outside), r.calibration]


PLOTTED = (("identification", "identification (analytic)", 0.0),
           ("auc", "detection AUC", 0.4),
           ("verdict_detected", "conclusion: detected (defended)", 0.0),
           ("verdict_identified", "conclusion: true key identified", 0.0))


def plot_rows(rows: list[Row], path: str | Path) -> None:
    """Per attack (a column of panels), against strength, a line per method × variant: analytic identification
    accuracy and AUC, and the tool's conclusion (defended detections, true key identified) where measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    attacks = [a for a in dict.fromkeys(r.attack for r in rows) if a != "none"]
    fig, axes = plt.subplots(len(PLOTTED), max(1, len(attacks)), figsize=(3.6 * max(1, len(attacks)), 11),
                             squeeze=False)
    base = {(r.method, r.variant): r for r in rows if r.attack == "none"}
    for j, attack in enumerate(attacks):
        for (method, variant) in dict.fromkeys((r.method, r.variant) for r in rows if r.attack == attack):
            sel = sorted((r for r in rows if r.attack == attack and r.method == method and r.variant == variant),
                         key=lambda r: r.strength)
            b = base.get((method, "plain"))
            for i, (metric, _, _) in enumerate(PLOTTED):
                points = ([(0.0, getattr(b, metric))] if b else []) + [(r.strength, getattr(r, metric)) for r in sel]
                points = [(x, y) for x, y in points if y is not None]
                if points:
                    axes[i][j].plot(*zip(*points), marker="o", label=f"{method}, {variant}")
        axes[0][j].set_title(attack)
        axes[-1][j].set_xlabel("relative strength (WAVES)")
        for i, (_, _, low) in enumerate(PLOTTED):
            axes[i][j].set_ylim(low, 1.02)
    for i, (_, label, _) in enumerate(PLOTTED):
        axes[i][0].set_ylabel(label, fontsize=8)
    for ax in axes[0]:                # the variants differ by attack (re-aligned or restored): a legend each
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
