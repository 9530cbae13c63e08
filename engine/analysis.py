"""One call from suspect images to Tree-Ring verdicts: intake → z0 by each decoder-inversion method →
zT by diffusion inversion → every key's L1 distance and p-value → a verdict at a stated false-positive
level. Batched, with progress and cooperative cancellation; finished images survive a cancel.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np
import torch

from engine.decoder_inversion import METHODS, DecoderInversionConfig, Method, invert_decoder
from engine.denoiser import Conditioning
from engine.device import device_name, measure
from engine.diffusion_inversion import DiffusionInversionConfig
from engine.evidence_paths import NotAnalysed
from engine.intake import EvidenceError, EvidenceImage, hash_file, load_evidence
from engine.limits import require_choice, require_int, require_number
from engine.model_loader import LoadedModel
from engine.provenance import software_versions
from engine.strict_json import finite_or_null
from engine.progress import NULL_PROGRESS, Cancelled, Phase, Progress, ProgressEvent
from engine.treering import DEFAULT_SCORE_TARGET, KeySet, ScoreTarget, fft_latent
from engine.treering_scoring import KeyScore, Verdict
from engine.calibration import NO_CALIBRATION, CalibrationChoice
from engine.latent_evidence import LatentReader
from engine.noise_statistics import evidence_statistics
from engine.verdicts import DECIDING_ORDER, NOT_ANALYSED as NOT_RECORDED, Conclusion, conclude, image_conclusion
from engine.watermarks import scheme_for

if TYPE_CHECKING:
    from engine.restored_record import ImageRestoration
    from engine.search_record import ImageSearch


@dataclass(frozen=True)
class AnalysisConfig:
    methods: tuple[Method, ...] = METHODS
    gradient_free: DecoderInversionConfig = DecoderInversionConfig("gradient-free", iterations=100)
    gradient_based: DecoderInversionConfig = DecoderInversionConfig("gradient-based", iterations=100)
    diffusion: DiffusionInversionConfig = DiffusionInversionConfig()
    conditioning: Conditioning = Conditioning()
    fpr: float = 0.01
    score_target: ScoreTarget = DEFAULT_SCORE_TARGET   # "reference" reproduces the papers' scoring
    batch_size: int = 8

    def __post_init__(self) -> None:
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise ValueError(f"methods must be among {', '.join(METHODS)}")
        require_number(self.fpr, "the false-positive level (--fpr)", 0.0, 1.0, low_open=True)
        if self.fpr >= 1:
            raise ValueError("the false-positive level (--fpr) must be below 1")
        require_choice(self.score_target, "the score target", ("effective", "reference"))
        require_int(self.batch_size, "the batch size", 1, 4096)

    def decoder_config(self, method: Method) -> DecoderInversionConfig:
        if method == "gradient-free":
            return self.gradient_free
        if method == "gradient-based":
            return self.gradient_based
        return DecoderInversionConfig("encoder", iterations=0)

    @classmethod
    def for_model(cls, model: LoadedModel, **overrides) -> "AnalysisConfig":
        """The model's defaults (`engine.options.default_config`) with `overrides` laid over them."""
        from engine.options import default_config

        return replace(default_config(model), **overrides)


@dataclass(frozen=True)
class MethodResult:
    method: Method
    z0_residual: float            # ‖E(D(z0)) − E(x)‖ / ‖E(x)‖: how self-consistent the recovered latent is
    pixel_psnr_db: float          # PSNR of D(z0) against the (preprocessed) evidence
    decoder_seconds: float        # per image (a batch's time divided by its size)
    inversion_seconds: float
    peak_memory_bytes: int | None # of the batch, GPU only
    z_t: np.ndarray               # (C, h, w) float32: the recovered initial noise
    scores: tuple[KeyScore, ...]
    verdict: Verdict              # the papers' classifier (nearest key if its p passes fpr / K): paper tables
    inversion_residual: float     # backward Euler: squared residual of the last solved equation (nan for naive DDIM)
    conclusion: Conclusion | None = None   # detection apart from identification (engine.verdicts)
    noise: dict[str, float] = field(default_factory=dict)   # z_T outside the key (engine.noise_statistics)
    round_trip_psnr_db: float = float("nan")   # PSNR of D(sample(z_T)) against the evidence (deciding method only)

    @property
    def seconds(self) -> float:
        return self.decoder_seconds + self.inversion_seconds

    def fourier_magnitude(self) -> np.ndarray:
        """|fftshift(fft2(zT))| per channel, (C, h, w)."""
        return fft_latent(torch.from_numpy(self.z_t)[None])[0].abs().numpy()


@dataclass(frozen=True)
class ImageAnalysis:
    evidence: EvidenceImage
    methods: dict[str, MethodResult]
    realignment: "ImageSearch | None" = None   # a re-alignment search, a separate test (engine.search_record)
    restoration: "ImageRestoration | None" = None   # restore-then-invert, a separate reading (engine.restored_record)

    @property
    def conclusion(self) -> Conclusion:
        """The exhibit's one conclusion: the default pipeline's, disagreements of the others named."""
        return image_conclusion({m: r.conclusion for m, r in self.methods.items() if r.conclusion is not None})


@dataclass(frozen=True)
class ImageFailure:
    path: str
    message: str                  # one sentence naming the file
    reason: str = ""              # the same without the file's name (for a list that already shows it)
    sha256: str | None = None     # of the file as submitted, when it could be read
    md5: str | None = None        # when asked for
    hash_note: str = ""           # why there is no hash, else ""

    @property
    def shown_reason(self) -> str:
        return self.reason or self.message


@dataclass(frozen=True)
class AnalysisRun:
    model_id: str
    model_path: str
    model_kind: str
    image_size: int
    latent_shape: tuple[int, int, int]
    device: str
    dtype: str
    keys: KeySet
    config: AnalysisConfig
    images: tuple[ImageAnalysis, ...]
    failures: tuple[ImageFailure, ...]
    started_utc: str
    finished_utc: str
    cancelled: bool
    software: dict[str, str]
    notes: tuple[str, ...] = ()   # events the reader must know, e.g. a fall-back from the GPU to the CPU
    weight_sha256: dict[str, str] = field(default_factory=dict)   # of the weights loaded for this run
    not_analysed: tuple[NotAnalysed, ...] = ()   # files found in the submitted folders but not analysed, and why
    calibration: CalibrationChoice = NO_CALIBRATION   # which calibration each method's conclusion used


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def check_keys_fit(model: LoadedModel, keys: KeySet) -> None:
    scheme_for(keys).check_fits(keys, model.latent_shape, model.spec.id)


def analyze_batch(model: LoadedModel, keys: KeySet, evidence: Sequence[EvidenceImage], config: AnalysisConfig,
                  progress: Progress = NULL_PROGRESS, calibration: CalibrationChoice = NO_CALIBRATION
                  ) -> list[ImageAnalysis | ImageFailure]:
    """Run every method on a batch of already loaded evidence images (all at the model's size). An image for
    which a method's recovered z_T or scores are not finite (a diverging inversion or model) becomes an
    `ImageFailure` naming the method: a NaN must never read as "no watermark"."""
    x = torch.from_numpy(np.stack([e.pixels for e in evidence])).to(model.device)
    names = ", ".join(e.path.rsplit("/", 1)[-1] for e in evidence)
    denoiser = model.denoiser(config.conditioning)
    scheme = scheme_for(keys)
    reader = LatentReader(keys, config.score_target)    # what depends on the key set alone: once, not per image
    pixel_statistics = [evidence_statistics(e.pixels) for e in evidence]
    per_image: list[dict[str, MethodResult]] = [{} for _ in evidence]
    broken: dict[int, tuple[str, str]] = {}
    b = len(evidence)
    for method in config.methods:
        dec = invert_decoder(model.codec, x, config.decoder_config(method), progress=progress, item=names)
        with measure(model.device) as m:
            inv = model.invert(denoiser, dec.z0, config.diffusion, progress, names)
        read, finite = reader.read(inv.z_t, pixel_statistics)
        z_t = inv.z_t.float().cpu().numpy()
        peaks = [p for p in (dec.trace.peak_memory_bytes, m.peak_memory_bytes) if p is not None]
        for i in range(b):
            if i not in broken and not finite[i]:
                problem = EvidenceError(evidence[i].path, f"could not be analysed: the {method} inversion gave "
                                        "non-finite values (NaN or infinity), so no finding can be made — "
                                        "the model or the settings diverge on this image")
                broken[i] = (str(problem), problem.problem)
            scores = read[i].scores
            per_image[i][method] = MethodResult(
                method=method, z0_residual=float(dec.latent_residual[i]), pixel_psnr_db=float(dec.pixel_psnr_db[i]),
                decoder_seconds=dec.trace.seconds / b, inversion_seconds=m.seconds / b,
                peak_memory_bytes=max(peaks) if peaks else None, z_t=z_t[i], scores=tuple(scores),
                verdict=scheme.decide(scores, config.fpr), inversion_residual=float(inv.final_residual[i]),
                conclusion=None if i in broken else conclude(read[i], config.fpr,
                                                             calibration.for_method(method), method),
                noise=read[i].noise if i not in broken else {})
    deciding = next((m for m in DECIDING_ORDER if m in config.methods), config.methods[0])
    round_trip = round_trip_psnr(model, denoiser, torch.from_numpy(
        np.stack([per_image[i][deciding].z_t for i in range(b)])), x, config)
    for i in range(b):
        per_image[i][deciding] = replace(per_image[i][deciding], round_trip_psnr_db=float(round_trip[i]))
    return [ImageFailure(e.path, broken[i][0], broken[i][1], e.sha256, e.md5) if i in broken else ImageAnalysis(e, r)
            for i, (e, r) in enumerate(zip(evidence, per_image))]


@torch.no_grad()
def round_trip_psnr(model: LoadedModel, denoiser, z_t: torch.Tensor, x: torch.Tensor, config: AnalysisConfig
                    ) -> np.ndarray:
    """Regenerate from the recovered z_T with the model's own sampler (the scan's steps, grid and prompt) and
    measure the PSNR of the decoded image against the evidence: how close the evidence is to a fixed point of
    this model's generate∘invert. Descriptive (docs/algorithms.md §4): a forgery made by optimising a latent
    can be as close, so a high value is not evidence of authenticity."""
    from engine.decoder_inversion import psnr_db

    z0 = model.sample(denoiser, z_t.to(model.device, model.dtype), config.diffusion.steps, config.diffusion.grid)
    regenerated = model.codec.decode(z0).float().clamp(-1, 1)
    return psnr_db(regenerated, x.float()).cpu().numpy()


def analyze(model: LoadedModel, keys: KeySet, paths: Iterable, config: AnalysisConfig | None = None,
            progress: Progress = NULL_PROGRESS,
            on_result: Callable[[ImageAnalysis | ImageFailure], None] | None = None, *, md5: bool = False,
            not_analysed: Iterable[NotAnalysed] = (), calibration: CalibrationChoice | None = None) -> AnalysisRun:
    """Analyse evidence files. A file that cannot be read becomes an `ImageFailure` with one clear
    sentence and its hashes (when its bytes can be read at all), and the others still run; a cancel returns
    what finished, with `cancelled=True`. `md5`: record MD5 beside SHA-256. `not_analysed` (from
    `engine.evidence_paths.scan_evidence_paths`) is carried into the run's record unchanged. `calibration`: which
    calibration the conclusions use (`engine.calibration.choose_calibration`); None → the one shipped for a
    bundled model where it applies, else uncalibrated (`NO_CALIBRATION` forces uncalibrated)."""
    config = config or AnalysisConfig.for_model(model)
    check_keys_fit(model, keys)
    if calibration is None:
        from engine.calibration import choose_calibration

        calibration = choose_calibration(model, keys, config)
    started = utc_now()
    paths = [str(p) for p in paths]
    images: list[ImageAnalysis] = []
    failures: list[ImageFailure] = []
    cancelled = False

    def emit(r):
        (images if isinstance(r, ImageAnalysis) else failures).append(r)
        if on_result is not None:
            on_result(r)

    pending: list[EvidenceImage] = []
    notes: list[str] = []
    current = model
    # Batches grow 1, 2, 4 … up to the batch size: the first image is finished (and kept by a cancel, and
    # timed for the ETA) after one image's work rather than a whole batch's, while later batches keep the
    # speed of batching. An image's numbers do not depend on the batch it ran in.
    batch_limit = 1

    def flush() -> None:
        nonlocal current, batch_limit
        if not pending:
            return
        batch_limit = min(2 * batch_limit, config.batch_size)
        try:
            results = analyze_batch(current, keys, pending, config, progress, calibration)
        except torch.cuda.OutOfMemoryError:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            results = None
            if current.spec.bundled and current.device.type != "cpu":
                # the demo models are small enough for the CPU: finish there rather than fail
                from engine.model_loader import load_model

                current = load_model(current.spec, dtype="fp32", device="cpu")
                notes.append("the GPU ran out of memory; the bundled model fell back to the CPU")
                results = analyze_batch(current, keys, pending, config, progress, calibration)
            else:
                for e in pending:
                    reason = (f"the GPU ran out of memory at batch size {len(pending)}: use "
                              f"--precision fp16, a smaller --batch-size, or --device cpu")
                    emit(ImageFailure(e.path, reason, reason, e.sha256, e.md5))
        for r in results or ():
            emit(r)
        pending.clear()

    try:
        for n, path in enumerate(paths):
            progress.check_cancelled()
            progress.report(ProgressEvent("reading evidence", n + 1, len(paths), path,
                                          phase=Phase.READING_EVIDENCE))
            try:
                pending.append(load_evidence(path, model.image_size, md5=md5))
            except EvidenceError as exc:
                h = hash_file(path, md5)
                emit(ImageFailure(path, str(exc), exc.problem, h.sha256, h.md5, h.note))
            if len(pending) >= batch_limit:
                flush()
        flush()
    except Cancelled:
        cancelled = True
    return AnalysisRun(
        model_id=model.spec.id, model_path=str(model.path), model_kind=model.kind, image_size=model.image_size,
        latent_shape=model.latent_shape, device=device_name(model.device), dtype=str(model.dtype).replace("torch.", ""),
        keys=keys, config=config, images=tuple(images), failures=tuple(failures), started_utc=started,
        finished_utc=utc_now(), cancelled=cancelled, software=software_versions(), notes=tuple(notes),
        weight_sha256=dict(model.weight_sha256), not_analysed=tuple(not_analysed), calibration=calibration)


def run_to_json(run: AnalysisRun, include_latents: bool = False) -> dict:
    """The CLI's scan JSON (its documented contract, plus settings, failures and provenance); strict JSON:
    a non-finite number (e.g. naive DDIM's inversion residual, which does not exist) is null."""
    def method_json(r: MethodResult) -> dict:
        d = {"predicted_key": r.verdict.predicted_key, "nearest_key": r.verdict.nearest_key,
             "scores": {s.key_id: {"l1": s.l1, "p_value": s.p_value} for s in r.scores},
             "z0_residual": r.z0_residual, "pixel_psnr_db": r.pixel_psnr_db, "seconds": r.seconds,
             "decoder_seconds": r.decoder_seconds, "inversion_seconds": r.inversion_seconds,
             "peak_memory_bytes": r.peak_memory_bytes, "inversion_residual": r.inversion_residual,
             "verdict": {"finding": r.verdict.finding(), "interpretation": r.verdict.interpretation(),
                         "fpr": r.verdict.fpr, "keys_tested": r.verdict.keys_tested,
                         "corrected_threshold": r.verdict.corrected_threshold},
             "conclusion": (r.conclusion or NOT_RECORDED).to_json_dict(), "noise_statistics": dict(r.noise),
             "round_trip_psnr_db": r.round_trip_psnr_db}
        if include_latents:
            d["z_t"] = r.z_t.tolist()
        return d

    def image_json(a: ImageAnalysis) -> dict:
        e = a.evidence
        d = {"path": e.path, "sha256": e.sha256, "size_bytes": e.size_bytes, "format": e.format,
                "width": e.width, "height": e.height, "mode": e.mode, "warnings": list(e.warnings),
                "preprocessing": e.preprocessing.describe(), "exif": dict(e.exif),
                "methods": {m: method_json(r) for m, r in a.methods.items()},
                "conclusion": a.conclusion.to_json_dict()}
        if a.realignment is not None:
            d["realignment"] = a.realignment.to_json_dict()
        if a.restoration is not None:
            d["restoration"] = a.restoration.to_json_dict()
        if e.md5 is not None:
            d["md5"] = e.md5
        return d

    def failure_json(f: ImageFailure) -> dict:
        d = {"path": f.path, "message": f.message, "reason": f.shown_reason, "sha256": f.sha256}
        if f.md5 is not None:
            d["md5"] = f.md5
        if f.hash_note:
            d["hash_note"] = f.hash_note
        return d

    return finite_or_null({"model": run.model_id, "model_path": run.model_path, "model_kind": run.model_kind,
            "image_size": run.image_size, "device": run.device, "dtype": run.dtype,
            "keys": [k.to_json_dict() for k in run.keys.keys], "fpr": run.config.fpr,
            "settings": _config_json(run.config), "started_utc": run.started_utc,
            "finished_utc": run.finished_utc, "cancelled": run.cancelled, "software": run.software,
            "notes": list(run.notes), "model_weights_sha256": dict(run.weight_sha256),
            "calibration": {**run.calibration.to_json_dict(),
                            "methods": {m: run.calibration.status(m) for m in run.config.methods}},
            "images": [image_json(a) for a in run.images],
            "failures": [failure_json(f) for f in run.failures],
            "not_analysed": [n.to_json_dict() for n in run.not_analysed]})


def _config_json(config: AnalysisConfig) -> dict:
    from dataclasses import asdict

    d = asdict(config)
    for method in ("gradient_free", "gradient_based"):     # the step actually used, not only "None = default"
        d[method]["effective_lr"] = getattr(config, method).effective_lr
    return d
