"""Making a calibration and amending one: generate or take the model's own clean and watermarked images,
analyse them with exactly a scan's settings, and keep what `engine.calibration.MethodCalibration` records —
the clean detection statistics, the identification null (optionally under simulated alterations,
`engine.altered_calibration`) and the coverage ranges. The file format and how a scan chooses a calibration
are in `engine.calibration`; why each statistic is kept: docs/algorithms.md §4.2–§4.4.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from engine.calibration import (NO_CALIBRATION, Calibration, MethodCalibration, canonical_sha256, keyset_sha256,
                                method_settings)
from engine.noise_statistics import TRACE_ONLY

if TYPE_CHECKING:
    from engine.analysis import AnalysisConfig
    from engine.altered_calibration import Alteration
    from engine.model_loader import LoadedModel
    from engine.treering import KeySet


class _Analyser:
    """Recovered latents read as a scan reads them (`engine.latent_evidence.LatentReader`), and the conclusions a
    calibration draws on them: what making a calibration and adding to one share."""

    def __init__(self, keys: "KeySet", score_target: str, method: str):
        from engine.latent_evidence import LatentReader

        self.keys, self.method = keys, method
        self.reader = LatentReader(keys, score_target)

    def analyse(self, z: np.ndarray, extra: Sequence[dict] | None = None) -> list:
        """Per image, its `engine.verdicts.Evidence`, with `extra` — per image, statistics of the evidence itself —
        merged into its noise statistics."""
        return self.reader.read(np.asarray(z, dtype=np.float32), extra)[0]

    def conclusions(self, analysed, fpr: float, calibration: MethodCalibration) -> list:
        from engine.verdicts import conclude

        return [conclude(e, fpr, calibration, self.method) for e in analysed]

    def tally(self, analysed, fpr: float, calibration: MethodCalibration) -> dict[str, int]:
        """How the calibrated conclusion reads these images: label (key named, or outcome) → count."""
        row: dict[str, int] = {}
        for c in self.conclusions(analysed, fpr, calibration):
            label = c.key if c.outcome == "identified" else c.outcome
            row[label] = row.get(label, 0) + 1
        return row

    def altered_null(self, calibration: MethodCalibration, altered_z_t: Mapping[str, Mapping[str, np.ndarray]],
                     altered_pixel_statistics: Mapping[str, Mapping[str, Sequence[dict]]]
                     ) -> dict[str, tuple[float, ...]]:
        """Per alteration, the exclusion statistic at the true key of the altered watermarked images that a scan
        would ask identification of: inside `calibration`'s coverage and detected at `ALTERED_DETECTION_LEVEL`
        (docs/algorithms.md §4.2)."""
        from engine.altered_calibration import ALTERED_DETECTION_LEVEL
        from engine.verdicts import OUTSIDE_CALIBRATION

        out: dict[str, tuple[float, ...]] = {}
        for label, groups in altered_z_t.items():
            values: list[float] = []
            for key_id, z in groups.items():
                if key_id not in self.keys.ids:
                    raise ValueError(f"altered calibration images for {key_id!r}, which is not in the key set")
                analysed = self.analyse(z, altered_pixel_statistics.get(label, {}).get(key_id))
                if not analysed or analysed[0].exclusion is None:
                    continue
                j = self.keys.ids.index(key_id)
                for e, c in zip(analysed, self.conclusions(analysed, ALTERED_DETECTION_LEVEL, calibration)):
                    if c.detected and c.calibration != OUTSIDE_CALIBRATION:
                        values.append(float(e.exclusion[j]))
            out[label] = tuple(values)
        return out

    def altered_detection_null(self, calibration: MethodCalibration, altered_clean_z_t: Mapping[str, np.ndarray],
                               altered_clean_statistics: Mapping[str, Sequence[dict]],
                               unaltered_statistics: Sequence[dict] | None = None
                               ) -> tuple[dict[str, tuple[float, ...]], dict[str, dict[str, float]]]:
        """Per alteration, the detection statistic of the altered clean images that a scan would conclude on:
        those inside `calibration`'s coverage (outside it, a scan concludes inconclusive whatever the statistic;
        docs/algorithms.md §4.4); and the traces they all carry (`alteration_traces`; `unaltered_statistics`: the
        evidence statistics of the same images before any alteration)."""
        from engine.verdicts import OUTSIDE_CALIBRATION

        out: dict[str, tuple[float, ...]] = {}
        traces: dict[str, dict[str, float]] = {}
        for label, z in altered_clean_z_t.items():
            analysed = self.analyse(z, altered_clean_statistics.get(label))
            # the conclusions at level 1: only whether the evidence is covered matters here
            concluded = self.conclusions(analysed, 1.0, calibration)
            kept = [e for e, c in zip(analysed, concluded) if c.calibration != OUTSIDE_CALIBRATION]
            out[label] = tuple(e.detection_statistic for e in kept)
            least = alteration_traces([e.noise for e in kept], unaltered_statistics)
            if least:
                traces[label] = least
        return out, traces


def alteration_traces(statistics: Sequence[Mapping[str, float]], unaltered_statistics: Sequence[Mapping[str, float]]
                      | None = None, names: Sequence[str] | None = None) -> dict[str, float]:
    """The alteration trace that every one of a null's images (`statistics`, their evidence statistics) carries,
    with its least value: the first of `names` (by default `engine.noise_statistics.ALTERATION_TRACES`) whose least
    value lies above the median of the same images unaltered (`unaltered_statistics`), or above the trace's own
    baseline (`TRACE_BASELINES`) where those are not given; {} when none. One trace only, the first carried in
    that order: a second would narrow the evidence the null applies to, to evidence with both. An image without
    the value could lack the trace: then the null does not carry it."""
    from engine.noise_statistics import ALTERATION_TRACES, TRACE_BASELINES

    for name in names or ALTERATION_TRACES:
        values = np.array([s.get(name, np.nan) for s in statistics], dtype=np.float64)
        if unaltered_statistics:
            before = np.array([s.get(name, np.nan) for s in unaltered_statistics], dtype=np.float64)
            baseline = float(np.median(before)) if np.isfinite(before).all() else None
        else:
            baseline = TRACE_BASELINES.get(name)
        if baseline is not None and len(values) and np.isfinite(values).all() and values.min() > baseline:
            return {name: float(values.min())}
    return {}


def method_calibration(method: str, settings: dict, keys: "KeySet", clean_z_t: np.ndarray,
                       keyed_z_t: Mapping[str, np.ndarray], score_target: str, fpr: float = 0.01,
                       pixel_statistics: Mapping[str, Sequence[dict]] | None = None,
                       altered_z_t: Mapping[str, Mapping[str, np.ndarray]] | None = None,
                       altered_pixel_statistics: Mapping[str, Mapping[str, Sequence[dict]]] | None = None,
                       altered_clean_z_t: Mapping[str, np.ndarray] | None = None,
                       altered_clean_statistics: Mapping[str, Sequence[dict]] | None = None
                       ) -> MethodCalibration:
    """One method's calibration from recovered latents: `clean_z_t` (N, C, h, w) of un-watermarked images and
    `keyed_z_t[key_id]` of images watermarked with that key; `pixel_statistics[group]`: per image, statistics
    of the evidence itself (e.g. `corner_fill`), in the same order. `altered_z_t[label][key_id]`: watermarked
    images under an alteration (`engine.altered_calibration`), with `altered_pixel_statistics[label][key_id]`;
    they add to the identification null only (never to the coverage or the detection null).
    `altered_clean_z_t[label]`: clean images under an alteration, with `altered_clean_statistics[label]`; they make
    the detection null under alteration (`MethodCalibration.detection_null_altered`)."""
    analyser = _Analyser(keys, score_target, method)
    pixel_statistics = pixel_statistics or {}
    clean = analyser.analyse(clean_z_t, pixel_statistics.get("clean"))
    clean_t = tuple(e.detection_statistic for e in clean)
    ident: list[float] = []
    all_noise = [e.noise for e in clean]
    keyed = {}
    for key_id, z in keyed_z_t.items():
        if key_id not in keys.ids:
            raise ValueError(f"calibration images for {key_id!r}, which is not in the key set")
        keyed[key_id] = analysed = analyser.analyse(z, pixel_statistics.get(key_id))
        all_noise += [e.noise for e in analysed]
        ident += [float(e.exclusion[keys.ids.index(key_id)]) for e in analysed if e.exclusion is not None]
    coverage = {name: (float(min(n[name] for n in all_noise)), float(max(n[name] for n in all_noise)))
                for name in all_noise[0] if name not in TRACE_ONLY} if all_noise else {}
    provisional = MethodCalibration(method, canonical_sha256(settings), settings, clean_t, tuple(ident), coverage)
    provisional = replace(provisional, identification_null_altered=analyser.altered_null(
        provisional, altered_z_t or {}, altered_pixel_statistics or {}))
    first_clean = pixel_statistics.get("clean")
    n_altered = max((len(z) for z in (altered_clean_z_t or {}).values()), default=0)
    nulls, traces = analyser.altered_detection_null(provisional, altered_clean_z_t or {},
                                                    altered_clean_statistics or {},
                                                    first_clean[:n_altered] if first_clean else None)
    provisional = replace(provisional, detection_null_altered=nulls, detection_null_altered_traces=traces)
    # How the calibrated conclusion reads the calibration's own images (in-sample: an optimistic description,
    # the benchmark evaluates on disjoint seeds).
    confusion = {"clean": analyser.tally(clean, fpr, provisional),
                 **{key_id: analyser.tally(analysed, fpr, provisional) for key_id, analysed in keyed.items()}}
    summary = {"clean": len(clean_t), "watermarked": {k: int(len(v)) for k, v in keyed_z_t.items()},
               "in_sample_conclusions_at_fpr": fpr, "in_sample_conclusions": confusion}
    if altered_z_t:
        summary["altered_watermarked"] = {label: sum(len(z) for z in groups.values())
                                          for label, groups in altered_z_t.items()}
    if altered_clean_z_t:
        summary["altered_clean"] = {label: int(len(z)) for label, z in altered_clean_z_t.items()}
    return replace(provisional, summary=summary)


def with_altered_detection_null(calibration: MethodCalibration, keys: "KeySet", score_target: str,
                                again_clean_z_t: np.ndarray, altered_clean_z_t: Mapping[str, np.ndarray],
                                altered_clean_statistics: Mapping[str, Sequence[dict]],
                                unaltered_statistics: Sequence[dict] | None = None) -> MethodCalibration:
    """An existing calibration with the detection null under alteration added (`altered_clean_z_t[label]`: its
    first clean images under each alteration, with their evidence statistics; `unaltered_statistics`: those of
    the same images unaltered, for the traces), everything else unchanged.
    `again_clean_z_t`: its first clean images recovered again, which must reproduce its stored detection
    statistics (ValueError otherwise: not its images, or not with its settings)."""
    analyser = _Analyser(keys, score_target, calibration.method)
    _require_reproduced(analyser, calibration, again_clean_z_t)
    nulls, traces = analyser.altered_detection_null(calibration, altered_clean_z_t, altered_clean_statistics,
                                                    unaltered_statistics)
    out = replace(calibration, detection_null_altered=nulls, detection_null_altered_traces=traces)
    return replace(out, summary={**calibration.summary,
                                 "altered_clean": {label: int(len(z)) for label, z in altered_clean_z_t.items()}})


def with_alteration_traces(calibration: MethodCalibration, altered_statistics: Mapping[str, Sequence[dict]],
                           unaltered_statistics: Sequence[dict], names: Sequence[str] | None = None
                           ) -> MethodCalibration:
    """An existing calibration's detection nulls under alteration, those without a trace given the one their images
    carry (`alteration_traces` of `names`: a candidate, `engine.noise_statistics.CANDIDATE_TRACES`, is tried this
    way on a copy of a calibration), everything else unchanged: `altered_statistics[label]`, the evidence statistics of all
    the images its null was drawn on (the first clean images under that alteration), and `unaltered_statistics`,
    theirs unaltered. The least value is taken over all of them, the ones outside the coverage that the null left
    out included: no larger than over those it kept, so the null applies to at least the evidence it would have
    with the kept images alone. A null with a trace keeps it, alone."""
    traces = {label: dict(v) for label, v in calibration.detection_null_altered_traces.items()}
    for label, statistics in altered_statistics.items():
        if label not in calibration.detection_null_altered:
            raise ValueError(f"no detection null under {label!r} to add a trace to")
        count = calibration.summary.get("altered_clean", {}).get(label)
        if count is not None and len(statistics) != count:
            raise ValueError(f"{len(statistics)} images under {label!r} for a null drawn on {count}")
        if not calibration.detection_null_altered[label] or traces.get(label):
            continue        # every image outside the coverage (the null applies to no evidence anyway), or traced
        added = alteration_traces(statistics, unaltered_statistics[:len(statistics)], names)
        if added:
            traces[label] = added
    order = [label for label in calibration.detection_null_altered if label in traces]
    return replace(calibration, detection_null_altered_traces={label: traces[label] for label in order})


def _require_reproduced(analyser: _Analyser, calibration: MethodCalibration, again_z_t: np.ndarray) -> None:
    """ValueError unless `again_z_t`, the calibration's first clean images recovered again, reproduce its stored
    detection statistics."""
    again = analyser.analyse(again_z_t)
    t_again = np.array([e.detection_statistic for e in again])
    stored = np.asarray(calibration.clean_detection[:len(t_again)])
    # the same images recovered on another machine differ in the last digits; other images by orders of magnitude
    if not len(t_again) or len(stored) != len(t_again) or not np.allclose(np.log(t_again), np.log(stored), atol=0.05,
                                                                           rtol=0):
        raise ValueError(f"the calibration's first clean images recovered again do not reproduce its "
                         f"{calibration.method} detection statistics: they are not its images, or not with its settings")


def with_altered_null(calibration: MethodCalibration, keys: "KeySet", score_target: str,
                      keyed_z_t: Mapping[str, np.ndarray], keyed_pixel_statistics: Mapping[str, Sequence[dict]],
                      altered_z_t: Mapping[str, Mapping[str, np.ndarray]],
                      altered_pixel_statistics: Mapping[str, Mapping[str, Sequence[dict]]]) -> MethodCalibration:
    """An existing calibration with the identification null under alteration added, its detection null and
    coverage unchanged. `keyed_z_t`: the calibration's own watermarked images recovered again (their exclusion
    statistics must reproduce its identification null: ValueError otherwise), for the in-sample rows of the
    watermarked groups; the clean row is kept as it was (the clean latents are not needed again)."""
    analyser = _Analyser(keys, score_target, calibration.method)
    keyed = {k: analyser.analyse(z, keyed_pixel_statistics.get(k)) for k, z in keyed_z_t.items()}
    again = [float(e.exclusion[keys.ids.index(k)]) for k, a in keyed.items() for e in a]
    # recovered again on another machine or thread count, the statistics differ by ~1e-3 (float sums in another
    # order); images that are not the calibration's differ by ~1
    if len(again) != len(calibration.identification_null) or not np.allclose(
            again, calibration.identification_null, atol=0.02, rtol=0):
        raise ValueError(f"the watermarked images recovered again do not reproduce the {calibration.method} "
                         "calibration's identification null: they are not its images, or not with its settings")
    out = replace(calibration, identification_null_altered=analyser.altered_null(
        calibration, altered_z_t, altered_pixel_statistics))
    fpr = float(calibration.summary.get("in_sample_conclusions_at_fpr", 0.01))
    confusion = dict(calibration.summary.get("in_sample_conclusions", {}))
    confusion.update({k: analyser.tally(a, fpr, out) for k, a in keyed.items()})
    summary = {**calibration.summary, "in_sample_conclusions": confusion,
               "altered_watermarked": {label: sum(len(z) for z in groups.values())
                                       for label, groups in altered_z_t.items()}}
    return replace(out, summary=summary)


def calibration_from_latents(model_id: str, weight_sha256: Mapping[str, str], keys: "KeySet",
                             config: "AnalysisConfig", dtype: str, latents: Mapping[str, Mapping[str, np.ndarray]],
                             source: str, pixel_statistics: Mapping[str, Sequence[dict]] | None = None,
                             altered_latents: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]] | None = None,
                             altered_pixel_statistics: Mapping[str, Mapping[str, Sequence[dict]]] | None = None,
                             altered_clean_latents: Mapping[str, Mapping[str, np.ndarray]] | None = None,
                             altered_clean_statistics: Mapping[str, Sequence[dict]] | None = None) -> Calibration:
    """A calibration from recovered latents: latents[method]["clean"] and latents[method][key_id];
    `pixel_statistics[group]` as for `method_calibration`; altered_latents[method][label][key_id] and
    `altered_pixel_statistics[label][key_id]`: the watermarked images under alterations
    (`engine.altered_calibration.recover_altered`); altered_clean_latents[method][label] and
    `altered_clean_statistics[label]`: the clean images under the detection alterations."""
    from engine.analysis import utc_now
    from engine.provenance import software_versions

    methods = {}
    for method, groups in latents.items():
        settings = method_settings(config, method, dtype)
        keyed = {k: v for k, v in groups.items() if k != "clean"}
        methods[method] = method_calibration(method, settings, keys, groups["clean"], keyed, config.score_target,
                                             config.fpr, pixel_statistics, (altered_latents or {}).get(method),
                                             altered_pixel_statistics, (altered_clean_latents or {}).get(method),
                                             altered_clean_statistics)
    first = next(iter(latents.values()))
    counts = {name: int(len(z)) for name, z in first.items()}
    return Calibration(model_id=model_id, model_weights_sha256=dict(weight_sha256), keyset_sha256=keyset_sha256(keys),
                       key_ids=keys.ids, methods=methods, counts=counts, source=source, created_utc=utc_now(),
                       software=software_versions())


def with_evidence_coverage(calibration: Calibration, statistics: Sequence[dict]) -> Calibration:
    """The calibration with the range of evidence statistics it lacks added to every method's coverage:
    `statistics` per calibration image (`engine.noise_statistics.evidence_statistics` of all of its images, made
    again from their seeds). Those it already has must come out as they are (ValueError otherwise: the images
    are not the calibration's)."""
    if len(statistics) != sum(calibration.counts.values()):
        raise ValueError(f"{len(statistics)} images for a calibration of {sum(calibration.counts.values())}")
    names = set().union(*(s.keys() for s in statistics)) - TRACE_ONLY
    ranges = {n: (float(min(s[n] for s in statistics)), float(max(s[n] for s in statistics))) for n in names}
    methods = {}
    for method, m in calibration.methods.items():
        for n in names & set(m.coverage):
            if not np.allclose(m.coverage[n], ranges[n]):
                raise ValueError(f"the images made again give {n} in {ranges[n]}, the calibration "
                                 f"{m.coverage[n]}: they are not its images")
        methods[method] = replace(m, coverage={**m.coverage, **{n: ranges[n] for n in names - set(m.coverage)}})
    return replace(calibration, methods=methods)


MIN_CLEAN = 10


def calibrate(model: "LoadedModel", keys: "KeySet", config: "AnalysisConfig", *, clean_count: int = 300,
              per_key_count: int = 100, work_dir=None, seed: int = 100_000, reference_dir=None,
              progress=None, alterations: Sequence["Alteration"] = (),
              altered_per_key: int | None = None, detection_alterations: Sequence["Alteration"] = (),
              altered_clean: int | None = None) -> Calibration:
    """Make a calibration with exactly `config`'s settings: generate `clean_count` un-watermarked and
    `per_key_count` images per key with the model (8-bit PNGs into `work_dir`, with a manifest), or take the
    images of `reference_dir` labelled by its manifest; analyse them; keep the statistics. Every image must be
    analysed (a failure is an error: a calibration with silent gaps would misstate its counts).
    `alterations` (e.g. `engine.altered_calibration.calibration_alterations()`; opt-in, see there): the first
    `altered_per_key` (None: all) watermarked images of each key are also analysed under each, in memory, for the
    identification null under alteration. `detection_alterations` (e.g.
    `engine.altered_calibration.detection_alterations()`; opt-in): the first `altered_clean` (None: all) clean
    images are also analysed under each, for the detection null under alteration."""
    import tempfile

    from engine.analysis import analyze
    from engine.generation import GenerationConfig, generate_reference_set
    from engine.limits import require_int
    from engine.progress import NULL_PROGRESS

    progress = progress or NULL_PROGRESS
    # refused before any image is made
    if altered_per_key is not None:
        require_int(altered_per_key, "the number of altered calibration images per key (--altered-per-key)", 0,
                    1_000_000)
    if altered_clean is not None:
        require_int(altered_clean, "the number of altered clean calibration images (--altered-clean)", 1, 1_000_000)
    groups: dict[str, list[str]] = {}
    if reference_dir is not None:
        from engine.evidence_paths import scan_evidence_paths
        from engine.provenance import manifest_labels

        found = scan_evidence_paths([reference_dir], recursive=False)
        labels = manifest_labels([str(p) for p in found.files])
        unlabelled = [str(p) for p in found.files if str(p) not in labels]
        if unlabelled:
            raise ValueError(f"{len(unlabelled)} image(s) in {reference_dir} have no entry in its manifest.json "
                             f"(e.g. {Path(unlabelled[0]).name}): a calibration must know which images are clean "
                             "and which key each carries")
        for path, label in labels.items():
            if label is not None and label not in keys.ids:
                raise ValueError(f"{Path(path).name} is labelled with key {label!r}, which is not in the key set")
            groups.setdefault("clean" if label is None else label, []).append(path)
        source = f"reference images in {reference_dir} labelled by its manifest"
    else:
        require_int(clean_count, "the number of clean calibration images (--count)", MIN_CLEAN, 1_000_000)
        require_int(per_key_count, "the number of calibration images per key (--per-key)", 0, 1_000_000)
        work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="calibration_"))
        gen = GenerationConfig(conditioning=config.conditioning)   # `generate`'s defaults
        for label, key, count in [("clean", None, clean_count)] + [(k.id, k, per_key_count) for k in keys.keys]:
            if count:
                made = generate_reference_set(model, key, count, work / label, seed=seed, config=gen,
                                              progress=progress)
                groups[label] = [str(work / label / m.file) for m in made]
        source = (f"generated by {model.spec.id}: {clean_count} clean and {per_key_count} per key, seeds {seed}…"
                  f"{seed + max(clean_count, per_key_count) - 1} (same seeds in every group), {gen.steps} sampling "
                  f"steps, into {work}")
    if len(groups.get("clean", ())) < MIN_CLEAN:
        raise ValueError(f"a calibration needs at least {MIN_CLEAN} clean images (has {len(groups.get('clean', ()))})")
    from engine.altered_calibration import describe_alterations, recover_altered
    from engine.noise_statistics import evidence_statistics
    from engine.pixel_levels import to_uint8

    alterations = tuple(alterations)
    detection_alterations = tuple(detection_alterations)
    latents: dict[str, dict[str, np.ndarray]] = {m: {} for m in config.methods}
    pixels: dict[str, list[dict]] = {}
    marked_pixels: dict[str, np.ndarray] = {}
    for label, paths in groups.items():
        run = analyze(model, keys, paths, config, progress=progress, calibration=NO_CALIBRATION)
        if run.cancelled:
            from engine.progress import Cancelled

            raise Cancelled()
        if run.failures:
            raise ValueError(f"{len(run.failures)} calibration image(s) could not be analysed, e.g. "
                             f"{run.failures[0].message}")
        for m in config.methods:
            latents[m][label] = np.stack([im.methods[m].z_t for im in run.images])
        pixels[label] = [evidence_statistics(im.evidence.pixels) for im in run.images]
        if alterations and label != "clean":
            chosen = run.images if altered_per_key is None else run.images[:altered_per_key]
            if chosen:   # as analysed, back to 8 bits exactly
                marked_pixels[label] = np.stack([to_uint8(im.evidence.pixels) for im in chosen])
        if detection_alterations and label == "clean":
            chosen = run.images if altered_clean is None else run.images[:altered_clean]
            clean_pixels = np.stack([to_uint8(im.evidence.pixels) for im in chosen])
    altered_latents = altered_stats = None
    if alterations and marked_pixels:
        altered_latents, altered_stats = recover_altered(model, config, marked_pixels, alterations, progress)
        per_key = ", ".join(f"{len(v)} {k}" for k, v in marked_pixels.items())
        source += f"; identification also calibrated on {per_key} of them under {describe_alterations(alterations)}"
    altered_clean_latents = altered_clean_stats = None
    if detection_alterations:
        recovered, recovered_stats = recover_altered(model, config, {"clean": clean_pixels}, detection_alterations,
                                                     progress)
        altered_clean_latents = {m: {label: g["clean"] for label, g in by_label.items()}
                                 for m, by_label in recovered.items()}
        altered_clean_stats = {label: g["clean"] for label, g in recovered_stats.items()}
        source += (f"; detection also calibrated on {len(clean_pixels)} of the clean images under "
                   f"{describe_alterations(detection_alterations)}")
    return calibration_from_latents(model.spec.id, model.weight_sha256, keys, config,
                                    str(model.dtype).replace("torch.", ""), latents, source, pixels,
                                    altered_latents, altered_stats, altered_clean_latents, altered_clean_stats)


def clean_images(model: "LoadedModel", seeds: Sequence[int]) -> np.ndarray:
    """The un-watermarked images of `seeds` as `generate` makes them: (N, H, W, 3) uint8."""
    from engine.generation import decode_to_uint8, initial_noise, sample_latents

    return decode_to_uint8(model, sample_latents(model, initial_noise(model, list(seeds))))


def recover_clean(model: "LoadedModel", config: "AnalysisConfig", seeds: Sequence[int], methods: Sequence[str]
                  ) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Un-watermarked images of `seeds` made as `generate` makes them (8-bit levels), recovered with each of
    `methods` under `config`: ({method: z_T (N, C, h, w)}, evidence statistics per image) — what growing a
    calibration and measuring one on fresh images both need, without writing the images."""
    import torch

    from engine.noise_statistics import evidence_statistics
    from engine.pixel_levels import from_uint8
    from engine.recovery import recover_z_t

    pixels = from_uint8(clean_images(model, seeds))
    x = torch.from_numpy(pixels)
    return ({m: recover_z_t(model, x, m, config).numpy() for m in methods},
            [evidence_statistics(p) for p in pixels])


def with_more_clean(calibration: Calibration, keys: "KeySet", score_target: str, settings: Mapping[str, str],
                    clean_z_t: Mapping[str, np.ndarray], pixel_statistics: Sequence[dict],
                    again_z_t: Mapping[str, np.ndarray], seeds: str) -> Calibration:
    """The calibration with more un-watermarked images of the model in every method's detection null and
    coverage (a larger null narrows the spread of the level a calibration actually holds, docs/algorithms.md
    §4.3). `settings[method]`: the settings hash the latents were recovered with (must be the calibration's);
    `clean_z_t[method]`: the added images' z_T, `pixel_statistics` their evidence statistics, in one order;
    `again_z_t[method]`: the calibration's own first clean images recovered again, which must reproduce its
    stored detection statistics (ValueError otherwise: not its images or not its pipeline). `seeds` names the
    added images in the source line. The in-sample clean row then describes the added images only (the
    earlier ones are not analysed again). A detection null under alteration is kept as drawn: its images were
    kept where the coverage of the time covered them, and the coverage only widens, so it may lack a few that
    the wider one would keep (draw it again with `with_altered_detection_null` to include them)."""
    methods = {}
    added = {len(z) for z in clean_z_t.values()} | {len(pixel_statistics)}
    if len(added) != 1 or set(clean_z_t) != set(calibration.methods):
        raise ValueError("the added clean images must be given for every method of the calibration, in one order")
    for method, entry in calibration.methods.items():
        if settings.get(method) != entry.settings_sha256:
            raise ValueError(f"the added {method} latents were recovered with other settings than the calibration's")
        analyser = _Analyser(keys, score_target, method)
        _require_reproduced(analyser, entry, again_z_t[method])
        analysed = analyser.analyse(clean_z_t[method], pixel_statistics)
        new_t = tuple(e.detection_statistic for e in analysed)
        coverage = dict(entry.coverage)
        for name, (low, high) in entry.coverage.items():
            values = [e.noise[name] for e in analysed if name in e.noise]
            if values:
                coverage[name] = (float(min(low, min(values))), float(max(high, max(values))))
        extended = replace(entry, clean_detection=entry.clean_detection + new_t, coverage=coverage)
        fpr = float(entry.summary.get("in_sample_conclusions_at_fpr", 0.01))
        confusion = {**entry.summary.get("in_sample_conclusions", {}),
                     "clean": analyser.tally(analysed, fpr, extended)}
        summary = {**entry.summary, "clean": len(extended.clean_detection), "in_sample_conclusions": confusion,
                   "in_sample_clean_row": f"the {len(new_t)} added clean images ({seeds})"}
        methods[method] = replace(extended, summary=summary)
    n_added = added.pop()
    counts = {**calibration.counts, "clean": calibration.counts["clean"] + n_added}
    return replace(calibration, methods=methods, counts=counts,
                   source=f"{calibration.source}; {n_added} more clean images added ({seeds})")
