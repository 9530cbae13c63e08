"""The robustness study: reference images (watermarked per key, and clean), each attack of `engine.attacks` at
each strength, each decoder inversion, and each way of reading an altered suspect — as submitted ("plain"),
after the re-alignment search (`engine.realignment`), after restoration (`engine.restoration`). Per row:
detection AUC, TPR at 1 % and 0.1 % empirical FPR on the altered clean images (with the number of negatives
behind them), identification accuracy, attribution at the nominal level, and the null control — the share of
altered *clean* images the nominal decision flags, measured, never assumed.

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

import numpy as np
import torch

from engine.attacks import ATTACKS, Attack
from engine.decoys import p_value_matrix
from engine.generation import GenerationConfig, decode_to_uint8, initial_noise, sample_latents
from engine.limits import require_choice, require_number
from engine.model_loader import LoadedModel
from engine.progress import NULL_PROGRESS, Phase, Progress, ProgressEvent
from engine.rates import auc, tpr_at_fpr, wilson
from engine.realignment import SearchConfig, realign, search_statistic
from engine.recovery import recover_z_t
from engine.restoration import RestorationConfig, degradation_for_attack, restore
from engine.treering import KeySet
from engine.watermarks import scheme_for

VARIANTS = ("plain", "realigned", "restored")


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
        pixels = np.round((e.pixels.transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)
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

    def __post_init__(self) -> None:
        for a in self.attacks:
            if a not in ("none", "regeneration") and a not in ATTACKS:
                raise ValueError(f"unknown attack {a!r} (known: {', '.join(ATTACKS)}, regeneration)")
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

    def to_json_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


@dataclass(frozen=True)
class _Reading:
    statistic: np.ndarray      # larger = more watermark-like
    best_key: list[str]
    detected: np.ndarray
    detected_bonferroni: np.ndarray | None = None   # re-alignment: Bonferroni over candidates × keys instead


def _plain(model, keys, x, config, method, progress) -> _Reading:
    z_t = recover_z_t(model, x, method, config, progress)
    p = p_value_matrix(z_t, keys.keys, config.score_target)
    best = p.argmin(axis=1)
    with np.errstate(divide="ignore"):
        stat = -np.log(p.min(axis=1))
    return _Reading(stat, [keys.ids[i] for i in best], p.min(axis=1) < config.fpr / len(keys))


def _realigned(model, keys, x, config, method, search, progress) -> _Reading:
    results = [realign(model, keys, xi.numpy(), config, method, search, progress) for xi in x]
    return _Reading(np.array([search_statistic(r.p_values) for r in results]), [r.best_key for r in results],
                    np.array([r.detected(config.fpr) for r in results]),
                    np.array([r.bonferroni_p <= config.fpr for r in results]))


def _row(attack, strength, parameter, method, variant, refs, reading: _Reading, fpr, settings) -> Row:
    wm = np.array([r.key_id is not None for r in refs])
    pos, neg = reading.statistic[wm], reading.statistic[~wm]
    correct = np.array([b == r.key_id for b, r in zip(reading.best_key, refs)])[wm]
    flagged = int(reading.detected[~wm].sum())
    bonf = reading.detected_bonferroni
    extra = {} if bonf is None or not correct.size else {
        "attributed_bonferroni": float((correct & bonf[wm]).mean()), "null_flagged_bonferroni": int(bonf[~wm].sum())}
    return Row(attack=attack, strength=strength, parameter=parameter, method=method, variant=variant,
               positives=int(wm.sum()), negatives=int((~wm).sum()), auc=auc(pos, neg),
               tpr_at_1pct=tpr_at_fpr(pos, neg, 0.01), tpr_at_01pct=tpr_at_fpr(pos, neg, 0.001),
               identification=float(correct.mean()) if correct.size else float("nan"),
               attributed=float((correct & reading.detected[wm]).mean()) if correct.size else float("nan"),
               null_fpr=flagged / max(1, int((~wm).sum())), null_flagged=flagged, nominal_fpr=fpr, settings=settings,
               **extra)


def run_study(model: LoadedModel, keys: KeySet, refs: list[ReferenceImage], config, study: StudyConfig,
              progress: Progress = NULL_PROGRESS, on_row=None, include_baseline: bool = True) -> list[Row]:
    """Every (attack, strength) × method × variant; `config` is the scan's `AnalysisConfig`. A baseline row
    (attack "none") comes first unless `include_baseline` is False. `on_row` gets each row as it is finished."""
    rows: list[Row] = []
    plan = [("none", 0.0)] * include_baseline + [(a, s) for a in study.attacks if a != "none" for s in study.strengths]
    for name, strength in plan:
        if name == "none":
            attacked, parameter = [r.pixels for r in refs], "as generated"
        elif name == "regeneration":
            from engine.regeneration import regenerate

            attacked = [regenerate(model, r.pixels[None], strength, seed=r.seed)[0] for r in refs]
            parameter = f"noised to {strength:g} of the grid, denoised"
        else:
            spec = ATTACKS[name]
            attacked = [Attack(name, strength, seed=r.seed).apply(r.pixels) for r in refs]
            parameter = f"{spec.parameter(strength):g} {spec.unit}"
        x = torch.from_numpy(np.stack(attacked).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1)
        for method in config.methods:
            def emit(variant, reading, settings=""):
                row = _row(name, strength, parameter, method, variant, refs, reading, config.fpr, settings)
                rows.append(row)
                if on_row is not None:
                    on_row(row)

            if "plain" in study.variants:
                emit("plain", _plain(model, keys, x, config, method, progress))
            families = study.search_families.get(name)
            if "realigned" in study.variants and families:
                search = replace(study.search, families=families)
                emit("realigned", _realigned(model, keys, x, config, method, search, progress),
                     f"{len(search.transforms())} candidates ({', '.join(families)}), {search.decoys} decoy sets")
            degradation = degradation_for_attack(name, ATTACKS[name].parameter(strength), model.image_size) \
                if name in ATTACKS else None
            if "restored" in study.variants and degradation is not None:
                restored = restore(model, x, degradation, study.restoration)
                emit("restored", _plain(model, keys, restored, config, method, progress),
                     f"{degradation.describe()}; {study.restoration.describe()}")
    return rows


def rows_markdown(rows: list[Row]) -> list[str]:
    lines = ["| attack | parameter | method | variant | AUC | TPR@1%FPR | TPR@0.1%FPR | identification | "
             "attributed | null-control FPR (nominal) | settings |", "|" + " --- |" * 11]
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
    return lines


def plot_rows(rows: list[Row], path: str | Path) -> None:
    """Identification accuracy and AUC against strength, one panel per attack, a line per method × variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    attacks = [a for a in dict.fromkeys(r.attack for r in rows) if a != "none"]
    fig, axes = plt.subplots(2, max(1, len(attacks)), figsize=(3.6 * max(1, len(attacks)), 6), squeeze=False)
    base = {(r.method, r.variant): r for r in rows if r.attack == "none"}
    for j, attack in enumerate(attacks):
        for (method, variant) in dict.fromkeys((r.method, r.variant) for r in rows if r.attack == attack):
            sel = [r for r in rows if r.attack == attack and r.method == method and r.variant == variant]
            b = base.get((method, "plain"))
            xs = ([0.0] if b else []) + [r.strength for r in sel]
            for i, metric in enumerate(("identification", "auc")):
                ys = ([getattr(b, metric)] if b else []) + [getattr(r, metric) for r in sel]
                axes[i][j].plot(xs, ys, marker="o", label=f"{method}, {variant}")
        axes[0][j].set_title(attack)
        axes[1][j].set_xlabel("relative strength (WAVES)")
        axes[0][j].set_ylim(0, 1.02)
        axes[1][j].set_ylim(0.4, 1.02)
    axes[0][0].set_ylabel("identification accuracy")
    axes[1][0].set_ylabel("detection AUC")
    if axes[0][-1].get_legend_handles_labels()[0]:
        axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
