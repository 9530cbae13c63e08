"""One exhibit's restored reading as the run keeps it (`ImageAnalysis.restoration`): the degradation the examiner
stated (or the JPEG quality read from the file), the restoration's settings and trace, and per decoder inversion
the scores and the conclusion drawn on the restored pixels with the run's calibration (`engine.restored_verdict`),
beside the conclusion as submitted. The scan JSON's "restoration" object and the case file carry it in one form
(`to_json_dict` / `from_json_dict`); the conclusions are stored as drawn, not redrawn when a case is reopened. The
plain analysis's conclusions are never changed by it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from engine.progress import NULL_PROGRESS, Progress
from engine.restoration import DEFAULT_GRID_STEPS, Degradation, RestorationConfig
from engine.verdicts import NOT_ANALYSED, Conclusion, image_conclusion

# What `scan --restore` and the window accept: the degradations an examiner can state with one number (a mask
# needs its pixels), and a JPEG's quality read from each file's own tables.
STATED_KINDS = ("jpeg", "blur", "downscale")
SYNTAX = ("KIND:VALUE with KIND jpeg (quality 1–100, or auto: read from each JPEG file's quantization table), "
          "blur (radius > 0) or downscale (kept share of the side, 0–1)")


@dataclass(frozen=True)
class JpegFromFile:
    """`jpeg:auto`: each exhibit's JPEG quality read from its own luma quantization table
    (`engine.jpeg_quality`), resolved per exhibit by `resolve_degradation`."""

    kind: str = "jpeg"
    value: None = None

    def describe(self) -> str:
        return "JPEG, quality read from each file's quantization table"


JPEG_FROM_FILE = JpegFromFile()


def resolve_degradation(stated, evidence) -> tuple[Degradation, str] | str:
    """(the degradation to undo for this exhibit, how it was obtained: "" when stated), or one sentence why
    none can be: `jpeg:auto` needs a JPEG file analysed at its stored size (a resize or crop moves the 8×8
    blocks whose quantization the restoration undoes)."""
    if isinstance(stated, Degradation):
        return stated, ""
    from engine.jpeg_quality import estimate_quality

    name = evidence.path.rsplit("/", 1)[-1]
    if evidence.jpeg_luma_table is None:
        return (f"{name} is not a JPEG file ({evidence.format}): there is no quantization table to read the quality "
                "from; state the degradation instead")
    pre = evidence.preprocessing
    if pre.resized_to is not None or pre.crop_box is not None:
        w, h = pre.original_size
        return (f"{name} is stored at {w}×{h} and was resized or cropped to the model's {pre.target_size}×"
                f"{pre.target_size}: its JPEG blocks do not survive that, so a JPEG restoration cannot undo them")
    q = estimate_quality(evidence.jpeg_luma_table)
    return Degradation("jpeg", float(q.quality)), q.describe()


def parse_degradation(text: str) -> Degradation | JpegFromFile:
    """`jpeg:50`, `blur:1.5`, `downscale:0.5` → a `Degradation`, `jpeg:auto` → `JPEG_FROM_FILE`; ValueError (one
    line naming the input) else."""
    kind, sep, value = str(text).strip().partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in STATED_KINDS:
        raise ValueError(f"--restore takes {SYNTAX}, not {text!r}")
    if value.strip().lower() == "auto":
        if kind != "jpeg":
            raise ValueError(f"--restore {text!r}: only a JPEG's quality can be read from the file ({SYNTAX})")
        return JPEG_FROM_FILE
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"--restore {text!r}: {value.strip()!r} is not a number ({SYNTAX})") from None
    if not np.isfinite(number):
        raise ValueError(f"--restore {text!r}: the value must be a finite number ({SYNTAX})")
    if kind == "jpeg" and number != round(number):
        raise ValueError(f"--restore {text!r}: the JPEG quality is a whole number from 1 to 100")
    try:
        return Degradation(kind, number)
    except ValueError as exc:
        raise ValueError(f"--restore {text!r}: {exc}") from None


@dataclass(frozen=True)
class RestoredMethod:
    """One decoder inversion's reading of the restored pixels."""

    method: str
    p_values: dict[str, float]       # per key, the scheme's own analytic p-value
    l1: dict[str, float]             # per key, the scheme's distance
    z0_residual: float
    pixel_psnr_db: float             # D(z0) against the restored pixels
    conclusion: Conclusion

    def to_json_dict(self) -> dict:
        return {"scores": {k: {"l1": self.l1[k], "p_value": self.p_values[k]} for k in self.p_values},
                "z0_residual": self.z0_residual, "pixel_psnr_db": self.pixel_psnr_db,
                "conclusion": self.conclusion.to_json_dict()}

    @classmethod
    def from_json_dict(cls, method: str, d: dict) -> "RestoredMethod":
        if not isinstance(d, dict) or not isinstance(d.get("scores"), dict) or not d["scores"]:
            raise ValueError(f"the restored reading of {method} has no scores")
        p, l1 = {}, {}
        for k, s in d["scores"].items():
            p[k], l1[k] = _finite(s.get("p_value") if isinstance(s, dict) else None, f"{method} {k} p-value"), \
                _finite(s.get("l1") if isinstance(s, dict) else None, f"{method} {k} distance")
        return cls(method, p, l1, _number(d.get("z0_residual")), _number(d.get("pixel_psnr_db")),
                   Conclusion.from_json_dict(d.get("conclusion")))


@dataclass(frozen=True)
class ImageRestoration:
    degradation: Degradation | JpegFromFile  # as stated or read from the file (JpegFromFile: only when it failed)
    config: RestorationConfig
    as_submitted: Conclusion                 # the exhibit's own conclusion, unchanged, for the side-by-side
    methods: dict[str, RestoredMethod] = field(default_factory=dict)   # empty when the reading failed
    prior_gap: tuple[float, ...] = ()        # per iteration, RMS of x̂ − D(z) in 8-bit levels (`restore_traced`)
    change_psnr_db: float = float("nan")     # restored pixels against the pixels as submitted
    failure: str = ""                        # one sentence when no restored reading could be made
    read_from_file: str = ""                 # how the degradation was read from the file ("" when stated)

    @property
    def settings(self) -> str:
        how = f" — {self.read_from_file}" if self.read_from_file else ""
        return f"{self.degradation.describe()}{how}; {self.config.describe()}"

    @property
    def conclusion(self) -> Conclusion:
        """The restored reading's one conclusion: the deciding method's, others' differences named."""
        if not self.methods:
            return replace(NOT_ANALYSED, fpr=self.as_submitted.fpr)
        return image_conclusion({m: r.conclusion for m, r in self.methods.items()})

    def to_json_dict(self) -> dict:
        return {"degradation": {"kind": self.degradation.kind, "value": self.degradation.value,
                                "described": self.degradation.describe(),
                                "read_from_file": self.read_from_file or None},
                "settings": {"iterations": self.config.iterations, "weight": self.config.weight,
                             "prior": self.config.prior, "grid_steps": self.config.grid_steps,
                             "described": self.config.describe()},
                "prior_gap_levels": list(self.prior_gap), "restored_vs_submitted_psnr_db": self.change_psnr_db,
                "failure": self.failure or None,
                "as_submitted": self.as_submitted.to_json_dict(), "conclusion": self.conclusion.to_json_dict(),
                "methods": {m: r.to_json_dict() for m, r in self.methods.items()}}

    @classmethod
    def from_json_dict(cls, d: dict) -> "ImageRestoration":
        """ValueError with the reason when `d` is not a restored reading."""
        if not isinstance(d, dict) or not isinstance(d.get("degradation"), dict) or not isinstance(
                d.get("settings"), dict):
            raise ValueError("a restored reading needs its degradation and settings")
        deg, st = d["degradation"], d["settings"]
        if deg.get("value") is None and deg.get("kind") == "jpeg" and d.get("failure"):
            degradation = JPEG_FROM_FILE         # `jpeg:auto` on an exhibit whose quality could not be read
        else:
            degradation = Degradation(str(deg.get("kind")), _finite(deg.get("value"), "the degradation's value"))
        read = deg.get("read_from_file") or ""
        if not isinstance(read, str):
            raise ValueError("a restored reading's read_from_file is not text")
        # records written before the diffusion prior existed used the autoencoder's
        config = RestorationConfig(st.get("iterations"), _finite(st.get("weight"), "the restoration weight"),
                                   st.get("prior", "autoencoder"), st.get("grid_steps", DEFAULT_GRID_STEPS))
        methods = d.get("methods") or {}
        if not isinstance(methods, dict):
            raise ValueError("a restored reading's methods are not a mapping")
        gap = d.get("prior_gap_levels") or []
        if not isinstance(gap, list):
            raise ValueError("a restored reading's prior gap is not a list")
        return cls(degradation, config, Conclusion.from_json_dict(d.get("as_submitted")),
                   {m: RestoredMethod.from_json_dict(m, md) for m, md in methods.items()},
                   tuple(_finite(g, "the prior gap") for g in gap), _number(d.get("restored_vs_submitted_psnr_db")),
                   str(d.get("failure") or ""), read)


def _number(v) -> float:
    """A descriptive number that may be absent (null in the scan JSON, NaN in a case file)."""
    if v is None:
        return float("nan")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError("a restored reading's number is not a number")
    return float(v)


def _finite(v, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
        raise ValueError(f"{what} is not a finite number")
    return float(v)


def restore_image(model, keys, image, config, degradation: Degradation | JpegFromFile, restoration: RestorationConfig,
                  progress: Progress = NULL_PROGRESS, calibration=None) -> ImageRestoration:
    """One analysed exhibit (`ImageAnalysis`) restored and analysed again with `config` and `calibration` (the
    run's `CalibrationChoice`; None: none) against `keys`. A non-finite restoration or inversion becomes a record
    with its one-sentence `failure`."""
    import torch

    from engine.analysis import ImageFailure, analyze_batch
    from engine.calibration import NO_CALIBRATION
    from engine.decoder_inversion import psnr_db
    from engine.restoration import restore_traced
    from engine.restored_verdict import restored_conclusion

    name = image.evidence.path.rsplit("/", 1)[-1]
    resolved = resolve_degradation(degradation, image.evidence)
    if isinstance(resolved, str):
        return ImageRestoration(degradation, restoration, image.conclusion, failure=resolved)
    degradation, read_from_file = resolved
    base = ImageRestoration(degradation, restoration, image.conclusion, read_from_file=read_from_file)
    progress.check_cancelled()
    x = torch.from_numpy(np.asarray(image.evidence.pixels, dtype=np.float32))[None]
    restored, gap = restore_traced(model, x, degradation, restoration)
    if not (torch.isfinite(restored).all() and np.isfinite(gap).all()):
        return replace(base, failure=f"{name}: the restoration gave non-finite pixels (NaN or infinity), so no "
                                     "restored reading can be made")
    change = float(psnr_db(restored, x)[0])
    evidence = replace(image.evidence, pixels=restored[0].numpy().astype(np.float32))
    [out] = analyze_batch(model, keys, [evidence], config, progress,
                          NO_CALIBRATION if calibration is None else calibration)
    if isinstance(out, ImageFailure):
        return replace(base, prior_gap=tuple(float(g) for g in gap[0]), change_psnr_db=change,
                       failure=f"restored reading: {out.message}")
    settings = base.settings
    methods = {m: RestoredMethod(m, {s.key_id: float(s.p_value) for s in r.scores},
                                 {s.key_id: float(s.l1) for s in r.scores}, r.z0_residual, r.pixel_psnr_db,
                                 restored_conclusion(r.conclusion, settings))
               for m, r in out.methods.items()}
    return replace(base, methods=methods, prior_gap=tuple(float(g) for g in gap[0]), change_psnr_db=change)


def restore_run(model, keys, run, degradation: Degradation | JpegFromFile,
                restoration: RestorationConfig = RestorationConfig(),
                progress: Progress = NULL_PROGRESS):
    """The `AnalysisRun` with every analysed image's restored reading attached, with the run's settings, keys and
    calibration. Raises `Cancelled` when stopped (the caller keeps the plain run); ValueError (one line) before
    any work when the prior cannot run on this model."""
    if restoration.prior == "diffusion":
        from engine.diffusion_restoration import require_ddim

        require_ddim(model)
    images = tuple(replace(a, restoration=restore_image(model, keys, a, run.config, degradation, restoration, progress,
                                                        run.calibration))
                   for a in run.images)
    return replace(run, images=images)
