"""What the report says: the HTML sections built from an AnalysisRun — front page, summary, environment,
model, keys, settings, one exhibit per evidence item, the batch matrix, failures, limitations and the
integrity statement. No Qt: figures and thumbnails come from a `FigureMaker` (the PDF writer passes one that
draws them with `forensics_app.figures`) and enter the HTML as named image resources.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Protocol

import numpy as np

from engine.analysis import AnalysisRun, ImageAnalysis, MethodResult
from engine.attribution_matrix import BatchMatrix, attribution_matrix
from engine.model_kinds import KINDS, model_kind
from engine.provenance import Reverification
from engine.treering import KeySet, TreeRingKey
from forensics_app.report import scheme_sections
from forensics_app.report.page import BODY_WIDTH_MM, CSS_PX_PER_MM
from forensics_app.report.restored_section import restored_section
from forensics_app.report.search_section import search_section
from forensics_app.report.text import byte_size, esc, esc_multiline, number

LITERATURE_LEVELS = ((1e-2, "Tree-Ring (Wen et al. 2023), dec-inv (Hong et al. 2024): TPR at 1% FPR"),
                     (1e-3, "WAVES benchmark: 0.1% FPR"),
                     (1e-6, "Gaussian Shading: 1e-6 FPR"))
METHOD_TITLES = {"encoder": "Encoder E(x)", "gradient-free": "Gradient-free inversion",
                 "gradient-based": "Gradient-based inversion"}


@dataclass(frozen=True)
class ReportInfo:
    """What the examiner files with the report (all free text, printed escaped) and the case's audit trail."""

    case_id: str = ""
    examiner: str = ""
    notes: str = ""
    agency: str = ""                  # agency / laboratory, printed as the report's header
    exhibits: str = ""                # exhibit / item numbers as the agency writes them
    received_from: str = ""
    received_date: str = ""
    technical_reviewer: str = ""
    report_version: str = "1"
    amendments: str = ""              # amendment history, one line per amendment
    audit: tuple = ()                 # engine.audit.AuditEvent, oldest first

    FIELD_TITLES = {"agency": "Agency / laboratory", "case_id": "Case number", "exhibits": "Exhibit numbers",
                    "received_from": "Received from", "received_date": "Date received", "examiner": "Examiner",
                    "technical_reviewer": "Technical reviewer", "report_version": "Report version",
                    "amendments": "Amendment history", "notes": "Notes"}

    def fields_json(self) -> dict:
        return {k: getattr(self, k) for k in self.FIELD_TITLES}

    def missing(self, required) -> list[str]:
        """Titles of the `required` fields (names as in FIELD_TITLES) left blank."""
        return [self.FIELD_TITLES.get(k, k) for k in required if not str(getattr(self, k, "")).strip()]


def suggested_report_name(info: ReportInfo) -> str:
    """A file name examiners can file: case, exhibits, version, e.g. "2024-117_Ex3-5_TreeRing_v1.pdf";
    only letters, digits, '-', '_' and '.' are kept."""
    import re

    def clean(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip()).strip("-.")[:60]

    parts = [clean(info.case_id) or "case", *( [f"Ex{clean(info.exhibits)}"] if clean(info.exhibits) else []),
             "TreeRing", f"v{clean(info.report_version) or '1'}"]
    return "_".join(parts) + ".pdf"


class FigureMaker(Protocol):
    """Draws the report's pictures; what it returns is an image with width() and height() that the PDF
    writer can lay out (a QImage)."""

    def thumbnail(self, pixels: np.ndarray) -> Any: ...

    def fourier(self, results: dict[str, MethodResult], keys: KeySet, score_target: str) -> Any:
        """Raises KeyError or ValueError when the figure cannot be drawn."""


def model_kind_title(kind: str) -> str:
    """"DDIM (multi-step)" etc.; an unknown kind (a case file from another version) as recorded."""
    try:
        return model_kind(kind).title
    except ValueError:
        return kind


def _verdict_cell(r: MethodResult) -> str:
    c = r.conclusion
    if c is None:
        return "conclusion not recorded"
    if c.outcome == "identified":
        return f'<span class="hit">key {esc(c.key)} identified</span>'
    if c.outcome == "inconclusive":
        return f'<span class="alert">{esc(c.headline())}</span>'
    return esc(c.headline())


def _verdict_label(r: MethodResult) -> str | None:
    """The conclusion as a batch-matrix column: the identified key, "inconclusive", or None (not detected)."""
    c = r.conclusion
    if c is None:
        return r.verdict.predicted_key
    return c.label


_TABLE = 'width="100%" border="1" cellspacing="0" cellpadding="3" style="border-collapse: collapse; border-color: #9aa3b0;"'


def _kv_table(rows: Iterable[tuple[str, str]], label_width: int = 24) -> str:
    body = "".join(f'<tr><th width="{label_width}%">{k}</th><td>{v}</td></tr>' for k, v in rows)
    return f"<table {_TABLE}>{body}</table>"


def _grid(header: list[str], rows: list[list[str]], widths: list[int] | None = None, cls: str = "") -> str:
    ws = widths or [0] * len(header)
    head = "".join((f'<th width="{w}%">' if w else "<th>") + f"{h}</th>" for h, w in zip(header, ws))
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    c = f' class="{cls}"' if cls else ""
    return f"<table {_TABLE}{c}><thead><tr>{head}</tr></thead>{body}</table>"


def _matrix_table(m: BatchMatrix, corner: str) -> str:
    """Rows and columns as `attribution_matrix` gives them; with claims, the agreeing cells in bold."""
    def label(lab: str | None) -> str:
        return "none" if lab is None else esc(lab)

    rows = [[f"<b>{label(r)}</b>"] + [f"<b>{v}</b>" if m.has_truth and r == c else str(v)
                                      for c, v in zip(m.col_labels, row)]
            for r, row in zip(m.row_labels, m.counts)]
    return _grid([corner] + [label(c) for c in m.col_labels], rows)


def _hash_cell(sha256: str | None, md5: str | None, note: str) -> str:
    if sha256 is None:
        return f'<span class="small">{esc(note or "not hashed")}</span>'
    out = f'<span class="mono small">SHA-256 {esc(sha256)}</span>'
    if md5:
        out += f'<br><span class="mono small">MD5 {esc(md5)}</span>'
    return out


def _key_description(k: TreeRingKey) -> str:
    if k.pattern == "values":
        detail = "ring values " + ", ".join(f"{v:g}" for v in k.ring_values)
    elif k.pattern in ("ring", "rand"):
        detail = f"seed {k.seed}"
    elif k.pattern == "spectrum":
        detail = f"{len(k.masked_spectrum)} explicit coefficients"
    else:
        detail = "all zero"
    return detail


@dataclass
class ReportSections:
    run: AnalysisRun
    info: ReportInfo
    generated_utc: str
    commit: str
    weights: dict[str, str]
    weights_note: str
    checks: list[Reverification]
    truth: dict[str, str | None]
    json_name: str
    json_sha256: str
    figures: FigureMaker

    @property
    def score_target(self) -> str:
        return str(getattr(self.run.config, "score_target", "reference"))

    @property
    def cpu(self) -> bool:
        return self.run.device.upper().startswith("CPU")

    @property
    def case_label(self) -> str:
        return self.info.case_id or "(no case id given)"

    def build(self) -> tuple[str, dict[str, Any]]:
        """HTML and its image resources (name → QImage)."""
        self.resources: dict[str, Any] = {}
        self._sec = 7 if len(self.run.images) >= 2 else 6     # failures; limitations and integrity follow
        parts = [self._front(), self._summary(), self._notes(), self._environment(), self._model(), self._keys(), self._settings()]
        for n, a in enumerate(self.run.images, start=1):
            parts.append(self._exhibit(n, a))
        if len(self.run.images) >= 2:
            parts.append(self._batch())
        parts += [self._failures(), self._limitations(), self._signoff(), self._not_analysed(), self._audit()]
        return f"<html><body>{''.join(parts)}</body></html>", self.resources

    # -- sections ---------------------------------------------------------------------------------
    def _front(self) -> str:
        run, info = self.run, self.info
        status = ('<span class="alert">CANCELLED — the results below are partial: only the evidence that '
                  'finished before the cancel is reported</span>' if run.cancelled else "complete")
        mismatches = [c for c in self.checks if not c.ok]
        integrity = (f'<span class="alert">{len(mismatches)} of {len(self.checks)} evidence file(s) FAILED '
                     f're-verification (see the exhibits)</span>' if mismatches
                     else f'<span class="ok">all {len(self.checks)} evidence file(s) re-verified: SHA-256 unchanged</span>'
                     if self.checks else "no evidence was analysed")
        def given(text: str) -> str:
            return esc(text) if text.strip() else '<span class="muted">(not given)</span>'

        rows = ([("Agency / laboratory", f"<b>{esc(info.agency)}</b>")] if info.agency.strip() else []) + [
                ("Case", f"<b>{esc(self.case_label)}</b>"),
                ("Exhibit numbers", given(info.exhibits)),
                ("Received from", given(info.received_from) + (f", {esc(info.received_date)}"
                                                              if info.received_date.strip() else "")),
                ("Examiner", given(info.examiner)),
                ("Technical reviewer", given(info.technical_reviewer)),
                ("Report version", esc(info.report_version or "1")
                 + (f"<br>{esc_multiline(info.amendments)}" if info.amendments.strip() else "")),
                ("Report generated (UTC)", esc(self.generated_utc)),
                ("Analysis started (UTC)", esc(run.started_utc)),
                ("Analysis finished (UTC)", esc(run.finished_utc)),
                ("Analysis status", status),
                ("Evidence", f"{len(run.images)} analysed, {len(run.failures)} could not be analysed"
                 + (f", {len(run.not_analysed)} other file(s) found and not analysed (appendix A)"
                    if run.not_analysed else "")),
                ("Evidence integrity at export", integrity),
                ("Question examined", "Is the initial noise z<sub>T</sub> recovered from each evidence image, under "
                 f"model {esc(run.model_id)}, consistent with one of the {len(run.keys)} {scheme_sections.scheme_label(run.keys)} key(s) tested?"),
                ("Machine-readable twin", f'{esc(self.json_name)}<br><span class="mono">SHA-256 '
                 f'{esc(self.json_sha256)}</span>')]
        out = ("<h1>Tree-Ring watermark examination report</h1>"
               '<p class="muted">Recovery of the initial noise of a latent diffusion model from suspect images '
               "and test for Tree-Ring watermark keys (treering-forensics).</p>" + _kv_table(rows, 27))
        return out

    def _notes(self) -> str:
        if not self.info.notes.strip():
            return ""
        return f"<h3>Examiner's notes</h3><p>{esc_multiline(self.info.notes)}</p>"

    def _summary(self) -> str:
        run = self.run
        methods = list(run.config.methods)
        k = len(run.keys)
        id_levels = sorted({r.conclusion.identification_level for im in run.images for r in im.methods.values()
                            if r.conclusion is not None and r.conclusion.identification_level is not None})
        id_level = " / ".join(f"{v:g}" for v in id_levels) or f"{run.config.fpr:g}"
        out = ["<h2>1. Summary of findings</h2>",
               f"<p>One conclusion per exhibit, from two separate questions over K = {k} key(s): <i>detection</i> "
               f"(is there a watermark of any key?) at a false-positive level of <b>{run.config.fpr:g}</b>, and "
               f"<i>identification</i> (which key? every other key must be excluded, at <b>{id_level}</b>, so that "
               "wrong keys stay rare among the keys named; without a calibration no Tree-Ring key is named). The scale: "
               "<b>identified</b>, <b>inconclusive</b> (detected, but the keys named cannot be told apart, or the "
               "evidence lies outside what the calibration covers), <b>not detected</b>. The default pipeline "
               f"({esc(self._deciding())}) decides; the other decoder inversions corroborate, and a disagreement "
               "is shown. Calibration: " + esc("; ".join(f"{m}: {run.calibration.status(m)}" for m in methods))
               + ". The papers' classifier (nearest key by L1, always defined) is listed per method for comparison "
               "with their tables. A positive is evidence of consistency with a key, not proof of origin; a "
               f"negative is not proof of absence (section {self._sec + 1}).</p>"]
        if not run.images:
            out.append("<p><b>No evidence item was analysed.</b></p>")
            return "".join(out)
        header = ["#", "Evidence file", "Integrity", "Conclusion"] + [
            f'{esc(METHOD_TITLES.get(m, m))}<br><span class="small">conclusion; nearest key</span>' for m in methods]
        rows = []
        for n, (a, chk) in enumerate(zip(run.images, self.checks), start=1):
            integ = '<span class="ok">verified</span>' if chk.ok else f'<span class="alert">{esc(chk.status.label)}</span>'
            c = a.conclusion
            detail = f"detection p = {number(c.detection_p, '.3g')}" if c.detection_p is not None else ""
            if c.outcome != "not_detected" and c.identification_p is not None:
                detail += f"; runner-up p = {number(c.identification_p, '.3g')}"
            if c.disagreements:
                detail += '; <span class="alert">methods disagree</span>'
            cells = [str(n), esc(Path(a.evidence.path).name), integ,
                     f'{_verdict_cell(a.methods[c.method]) if c.method in a.methods else esc(c.headline())}'
                     f'<br><span class="small">{detail}</span>']
            for m in methods:
                r = a.methods.get(m)
                cells.append(f"{esc(r.conclusion.headline() if r.conclusion else '—')}<br><span class=\"small\">"
                             f"{esc(r.verdict.nearest_key)}</span>" if r else "not run")
            rows.append(cells)
        w = [4, 18, 12, 22] + [int(44 / len(methods))] * len(methods)   # "Integrity" fits its column
        out.append(_grid(header, rows, w))
        return "".join(out)

    def _deciding(self) -> str:
        from engine.verdicts import DECIDING_ORDER

        m = next((m for m in DECIDING_ORDER if m in self.run.config.methods), self.run.config.methods[0])
        return METHOD_TITLES.get(m, m)

    def _per_key_test(self) -> str:
        if not scheme_sections.only_tree_ring(self.run.keys):
            return "Each key's p-value is its own scheme's test (below), which assumes an ideal z<sub>T</sub>."
        return (f"Each key's p-value is the {esc(self._p_value_name())}: {esc(self._p_value_detail())} It assumes a "
                "Gaussian ẑ<sub>T</sub>, which real inversions only approximate.")

    def _p_value_name(self) -> str:
        return ("public reference code's non-central χ² test" if self.score_target == "reference" else
                "non-central χ² test on the independent Fourier coefficients (the tool's default)")

    def _p_value_detail(self) -> str:
        if self.score_target == "reference":
            return ("the masked coefficients (real and imaginary parts, n = 2|mask|), scaled by their own standard "
                    "deviation, against a non-central χ² (df = n, non-centrality Σ key²/σ²). It counts each "
                    "mirrored coefficient twice and is anti-conservative (about 3 % below 0.01 on Gaussian noise).")
        return ("of a mirrored pair F(p), F(−p) = conj F(p) only one is kept, so every value is independent; they are "
                "scaled by their own standard deviation and compared with a non-central χ² (non-centrality Σ key²/σ²) "
                "against what injection leaves in a real latent. Measured conservative on Gaussian noise.")

    def _environment(self) -> str:
        sw = self.run.software
        rows = [("Tool", esc(f"treering-forensics {sw.get('treering-forensics', 'unknown')}")),
                ("Python", esc(sw.get("python", "unknown"))), ("PyTorch", esc(sw.get("torch", "unknown"))),
                ("diffusers", esc(sw.get("diffusers", "unknown"))), ("NumPy / SciPy",
                                                                      esc(f"{sw.get('numpy', '?')} / {sw.get('scipy', '?')}")),
                ("CUDA", esc(sw.get("cuda", "unknown"))), ("Device", esc(self.run.device)),
                ("Precision", esc(self.run.dtype))]
        pairs = "".join(f'<tr><th width="14%">{a[0]}</th><td width="36%">{a[1]}</td>'
                        f'<th width="14%">{b[0]}</th><td width="36%">{b[1]}</td></tr>' for a, b in zip(rows[::2], rows[1::2]))
        wide = "".join(f'<tr><th>{k}</th><td colspan="3">{v}</td></tr>' for k, v in (
            ("Git commit", f'<span class="mono">{esc(self.commit)}</span>'),
            ("Platform", esc(sw.get("platform", "unknown"))))
            # where the run happened when it was not simply here (a Ray cluster, a GPU → CPU fall-back, a resume)
            + ((("Run notes", "<br/>".join(esc(n) for n in self.run.notes)),) if self.run.notes else ()))
        return ("<h2>2. Examination environment</h2><p>The software that produced the results (recorded at "
                "analysis time; the git commit is that of the tool producing this report).</p>"
                f"<table {_TABLE}>{pairs}{wide}</table>")

    def _model(self) -> str:
        run = self.run
        rows = [("Model", esc(run.model_id)), ("Kind", esc(model_kind_title(run.model_kind))),
                ("Folder", esc(run.model_path)), ("Image size", f"{run.image_size}×{run.image_size} pixels"),
                ("Latent shape (C, h, w)", esc(", ".join(str(v) for v in run.latent_shape)))]
        out = "<h2>3. Model</h2>" + _kv_table(rows)
        out += f"<p>SHA-256 of the weight files ({esc(self.weights_note)}):</p>"
        if self.weights:
            out += _grid(["Weight file", "SHA-256"],
                         [[f'<span class="small">{esc(p)}</span>', f'<span class="mono">{esc(h)}</span>']
                          for p, h in self.weights.items()], [36, 64])
        else:
            out += '<p class="alert">No weight file hash is available.</p>'
        return out

    def _keys(self) -> str:
        keys = self.run.keys
        if not scheme_sections.only_tree_ring(keys):
            return scheme_sections.keys_section(keys)
        rows = [[esc(k.id), esc(k.scheme), esc(k.pattern), str(k.channel), str(k.radius), esc(k.centre),
                 esc(_key_description(k)) + (f'<br><span class="small muted">{esc(k.description)}</span>'
                                            if k.description else "")] for k in keys.keys]
        name = f" ({esc(keys.name)})" if keys.name else ""
        return (f"<h2>4. Keys tested</h2><p>K = {len(keys)} key(s){name}.</p>"
                + _grid(["Key", "Scheme", "Pattern", "Ch.", "r", "Centre", "Definition"], rows,
                        [11, 11, 9, 5, 5, 11, 48]))

    def _settings(self) -> str:
        cfg = self.run.config
        rows = []
        for m in cfg.methods:
            dc = cfg.decoder_config(m)
            note = ""
            if m == "gradient-free" and (dc.optimizer, dc.effective_lr, dc.schedule) != ("adam", 0.01, "scheduled"):
                # A reader comparing with the papers must see that this is not their setting.
                note = ("; differs from the papers' (Adam, lr 0.01, warm-up + cosine): a model may carry its own "
                        "measured default, see the model card")
            rows.append((esc(METHOD_TITLES.get(m, m)), esc(dc.label() + note)))
        d = cfg.diffusion
        inv = model_kind(self.run.model_kind).describe_inversion(d) if self.run.model_kind in KINDS else d.label()
        if d.method == "backward-euler":
            inv += (f"; fixed point: {d.exact_iterations} it/step (flow: {d.flow_iterations}), lr {d.exact_lr:g}, "
                    f"warm-up {d.exact_warmup}, tolerance {d.exact_tolerance:g}")
        rows.append(("Diffusion inversion", esc(inv)))
        cond = cfg.conditioning
        prompt = f"\u201c{esc(cond.prompt)}\u201d" if cond.prompt else "empty prompt (the prompt is unknown)"
        extra = f", class label {cond.class_label}" if cond.class_label is not None else ""
        rows.append(("Conditioning", f"{prompt}, guidance {cond.guidance:g}{esc(extra)}"))
        rows.append(("False-positive level",
                     f"{cfg.fpr:g} family-wise; per-key threshold {cfg.fpr:g} / {len(self.run.keys)} = "
                     f"{cfg.fpr / len(self.run.keys):.3g}"))
        rows.append(("Scores compared with", esc(self.score_target) + (
            " — what injection leaves in a real latent (the inverse FFT keeps the real part, which blends each "
            "masked coefficient with its mirror); the papers' code compares with the key as written (\u201creference\u201d)"
            if self.score_target == "effective" else
            " — the key as written, as the papers' code does" if self.score_target == "reference" else "")))
        rows.append(("Batch size", str(cfg.batch_size)))
        return ("<h2>5. Method settings</h2><p>Each evidence image is brought to the model's input size (recorded "
                "per exhibit), decoder inversion recovers the clean latent z<sub>0</sub> by each method below, "
                "diffusion inversion takes it to the initial noise z<sub>T</sub>, and the Fourier spectrum of "
                "z<sub>T</sub> is compared with every key (docs/algorithms.md §1–§3: decoder inversion, diffusion inversion, Tree-Ring).</p>" + _kv_table(rows))

    def _exhibit(self, n: int, a: ImageAnalysis) -> str:
        e = a.evidence
        chk = self.checks[n - 1]
        if chk.ok:
            verified = '<span class="ok">verified at report time: unchanged</span>'
        else:
            now = (f'<br>now: <span class="mono">{esc(chk.sha256_now)}</span>' if chk.sha256_now else "")
            verified = f'<span class="alert">{esc(chk.status.label)}</span>: {esc(chk.detail)}{now}'
        rows = [("File name", f"<b>{esc(Path(e.path).name)}</b>"), ("Path", esc(e.path)),
                ("Size", f"{e.size_bytes:,} bytes"),
                ("SHA-256 at intake", f'<span class="mono">{esc(e.sha256)}</span>'),
                ("SHA-256 re-verified", verified),
                ("Format", esc(f"{e.format}, mode {e.mode}, {e.width}×{e.height} pixels as stored"
                               + (f", {e.frame_count} frames" if e.frame_count > 1 else ""))),
                ("Preprocessing", esc(e.preprocessing.describe())),
                ("EXIF orientation", esc(f"{e.exif_orientation} (recorded, not applied)") if e.exif_orientation
                 else "none")]
        truth = self.truth.get(e.path, "∅")
        if truth != "∅":
            rows.append(("Manifest claims", esc(f"{truth}" if truth else "un-watermarked")
                         + ' <span class="small muted">(manifest.json beside the image; not verified)</span>'))
        out = [f'<h2 style="page-break-before: always;">Exhibit {n} of {len(self.run.images)}: {esc(Path(e.path).name)}</h2>',
               _kv_table(rows, 22)]
        # thumbnail and EXIF side by side
        thumb_name = f"thumb:{n}"
        have_pixels = bool(np.any(e.pixels)) or chk.ok
        exif_rows = "".join(f"<tr><th width=\"32%\">{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in e.exif.items())
        exif = (f"<table {_TABLE}>{exif_rows}</table>" if exif_rows else "<p>No EXIF metadata.</p>")
        warn = ("".join(f"<li>{esc(w)}</li>" for w in e.warnings))
        warn_html = f"<p><b>Intake warnings</b></p><ul>{warn}</ul>" if warn else "<p>No intake warnings.</p>"
        side = 42
        if have_pixels:
            self.resources[thumb_name] = self.figures.thumbnail(e.pixels)
            t = int(side * CSS_PX_PER_MM)
            thumb = (f'<img src="{thumb_name}" width="{t}" height="{t}"><br><span class="small">Analysed model input '
                     f"({e.pixels.shape[-1]}×{e.pixels.shape[-2]} px, after preprocessing)</span>")
        else:
            thumb = '<p class="alert">Pixels unavailable (file changed or missing)</p>'
        out.append('<h3>Image and metadata</h3>'
                   f'<table width="100%" cellspacing="0" cellpadding="0" border="0"><tr>'
                   f'<td width="{int((side + 4) * CSS_PX_PER_MM)}" valign="top">{thumb}</td><td valign="top" style="padding-left: 8px;">'
                   f"<p><b>EXIF summary</b> <span class=\"small muted\">(untrusted text, printed as found)</span></p>"
                   f"{exif}{warn_html}</td></tr></table>")
        out.append(self._method_tables(n, a))
        out.append(search_section(a, METHOD_TITLES))       # "" unless a re-alignment search ran
        out.append(restored_section(a, METHOD_TITLES))     # "" unless a restored reading was made
        return "".join(out)

    def _method_tables(self, n: int, a: ImageAnalysis) -> str:
        run = self.run
        methods = [m for m in run.config.methods if m in a.methods]
        out = ["<h3>Decoder inversion methods compared</h3>"]
        rows = []
        for m in methods:
            r = a.methods[m]
            rows.append([esc(METHOD_TITLES.get(m, m)), number(r.z0_residual, ".3f"), number(r.pixel_psnr_db, ".2f"),
                         f"{r.seconds:.2f}<br><span class=\"small\">({r.decoder_seconds:.2f} + {r.inversion_seconds:.2f})</span>",
                         byte_size(r.peak_memory_bytes, self.cpu), esc(r.verdict.nearest_key),
                         number(r.verdict.nearest_l1, ".4g"), number(r.verdict.nearest_p_value, ".3g"), _verdict_cell(r)])
        out.append(_grid(["Method", "Resid.", "PSNR dB", "Time s", "Peak mem.", "Nearest", "L1", "p-value",
                          "Verdict"], rows, [15, 8, 8, 11, 11, 10, 9, 10, 18]))
        out.append('<p class="small muted">Resid. = z<sub>0</sub> residual ‖E(D(z<sub>0</sub>)) − E(x)‖ / ‖E(x)‖; PSNR of '
                   "D(z<sub>0</sub>) against the analysed input. Both say how well the recovered latent explains the "
                   "image: a poor fit (large residual, low PSNR) means a degraded or out-of-model image, on which a "
                   "negative says little. Time per image: total (decoder inversion + diffusion inversion). Peak "
                   "memory is measured on GPUs only. Nearest, L1, p-value: the key with the smallest L1 distance.</p>")
        out.append("<h3>Scores for every key</h3>")
        header = ["Key"] + [f"{esc(METHOD_TITLES.get(m, m))}<br>L1 / p-value" for m in methods]
        rows = []
        for k in run.keys.ids:
            cells = [esc(k)]
            for m in methods:
                r = a.methods[m]
                s = next((s for s in r.scores if s.key_id == k), None)
                txt = f"{number(s.l1, '.4g')} / {number(s.p_value, '.3g')}" if s else "n/a"
                cells.append(f"<b>{txt}</b>" if s and r.verdict.nearest_key == k else txt)
            rows.append(cells)
        out.append(_grid(header, rows))
        if scheme_sections.only_tree_ring(run.keys):
            out.append('<p class="small muted">Bold: the nearest key (smallest L1). Lower L1 = closer to the key; the '
                       f"per-key p-value is the {esc(self._p_value_name())} (small ⇒ closer than chance), analytic; "
                       "the conclusion below says which test, calibrated or not, decides.</p>")
        else:
            out.append('<p class="small muted">Bold: the nearest key. "L1" here is each scheme\'s own distance (lower = '
                       "closer: 1 − bit accuracy, ring distance, or the negative normalised code statistic); the "
                       "p-values are each scheme's own (see the limitations).</p>")
        out.append("<h3>Finding and interpretation</h3>")
        c = a.conclusion
        out.append(f"<p><b>Conclusion ({esc(METHOD_TITLES.get(c.method, c.method))}, the default pipeline): "
                   f"{esc(c.headline())}</b></p>")
        if c.disagreements:
            out.append(f'<p class="alert">The decoder inversions disagree: {esc("; ".join(c.disagreements))}.</p>')
        for m in methods:
            r = a.methods[m]
            if r.conclusion is None:
                continue
            finding = "<br>".join(esc(line) for line in r.conclusion.finding().splitlines())
            out.append(f"<p><b>{esc(METHOD_TITLES.get(m, m))}: {esc(r.conclusion.headline())}</b></p>"
                       f'<p class="small">{finding}<br>Papers\' classifier: {esc(r.verdict.finding())}</p>'
                       f'<p class="interp">Interpretation: {esc(r.conclusion.interpretation())}</p>')
        r = a.methods.get(c.method)
        if r is not None:
            trip = (f"round trip (regenerated from the recovered z<sub>T</sub>) PSNR {number(r.round_trip_psnr_db, '.1f')} dB; "
                    if math.isfinite(r.round_trip_psnr_db) else "")
            noise = ", ".join(f"{esc(k)} {number(v, '.3g')}" for k, v in r.noise.items())
            out.append('<p class="small"><b>Forgery-risk indicators</b> (descriptive, not proof either way): '
                       f"{trip}z<sub>T</sub> outside the key: {noise}. A z<sub>T</sub> unlike the model's own images "
                       "suggests altered or foreign evidence; a low residual is not evidence of authenticity, since "
                       "a forgery made by optimising a latent lies on the autoencoder's manifold too.</p>")
        if not scheme_sections.only_tree_ring(run.keys):       # other schemes: their own evidence, no ring figure
            out.append(scheme_sections.evidence_table({m: a.methods[m] for m in methods}, METHOD_TITLES,
                                                      run.keys))
            return "".join(out)
        fig = f"fig:{n}"
        try:
            self.resources[fig] = self.figures.fourier({m: a.methods[m] for m in methods}, run.keys,
                                                          self.score_target)
        except (KeyError, ValueError) as exc:
            out.append(f'<p class="alert">The Fourier figure could not be drawn: {esc(exc)}</p>')
            return "".join(out)
        img = self.resources[fig]
        w = BODY_WIDTH_MM * CSS_PX_PER_MM
        h = w * img.height() / img.width()
        out.append(f'<h3>Fourier figure</h3><p><img src="{fig}" width="{int(w)}" height="{int(h)}"></p>'
                   f'<p class="small">Figure {n}. Per method: (a) log(1+|F(ẑ<sub>T</sub>)|) of the watermark channel '
                   "(full centred spectrum) with the outline of the nearest key's disc (white); (b) the same around "
                   "the disc, with the key's ring boundaries; (c) the nearest key's target as scored, |key|, on the colour scale of (b) "
                   "(grey: outside the mask); the colour scales leave out the DC coefficient (the latent's mean, shown "
                   "saturated when it is larger); (d) the real part of F(ẑ<sub>T</sub>) per ring (dot: median, bar: "
                   "25th–75th percentile) against the key's (median) value per ring. A watermarked z<sub>T</sub> shows (b) resembling (c) and "
                   "the dots following the key's line.</p>")
        return "".join(out)

    def _batch(self) -> str:
        """The window's batch matrices (`engine.attribution_matrix`, verdict at the FPR), so that the window
        and the report cannot disagree on the same folder."""
        run = self.run
        ids = list(run.keys.ids)
        out = ['<h2 style="page-break-before: always;">6. Batch results</h2>']
        labelled = [a for a in run.images if a.evidence.path in self.truth]
        claims = [self.truth[a.evidence.path] for a in labelled]
        outside = sorted({c for c in claims if c is not None and c not in ids})
        if labelled:
            out.append(f"<p>Ground truth: {len(labelled)} of {len(run.images)} image(s) carry a label in a "
                       "manifest.json beside them (a claim by whoever made the images; not verified by this "
                       "tool). Rows: claimed key; columns: verdict; bold: agreement. \u201cnone\u201d = un-watermarked / "
                       "no watermark detected. These are the matrices of the window's batch tab.</p>")
            if len(run.images) > len(labelled):
                out.append(f"<p>{len(run.images) - len(labelled)} image(s) without a label are not counted in the "
                           "matrices.</p>")
            if outside:
                n = sum(1 for c in claims if c in outside)
                out.append(f"<p>{n} labelled image(s) claim a key outside the key set tested "
                           f"({esc(', '.join(outside))}): no verdict can name such a key, so each has its own row and "
                           "column and counts as a disagreement.</p>")
        else:
            out.append("<p>No ground truth (no manifest.json with labels beside the images): rows are the images' "
                       "folders; columns: the verdict, and the nearest key by L1 (the reference classifier). These "
                       "are the matrices of the window's batch tab.</p>")
        for m in run.config.methods:
            res = [a for a in run.images if m in a.methods]
            if not res:
                continue
            out.append(f"<h3>{esc(METHOD_TITLES.get(m, m))}</h3>")
            verdicts = attribution_matrix([(a.evidence.path, _verdict_label(a.methods[m])) for a in res], ids)
            if verdicts.has_truth:
                out.append(_matrix_table(verdicts, "claimed \\ verdict"))
                correct = sum(verdicts.counts[i][i] for i in range(len(verdicts.row_labels)))
                total = verdicts.total
                watermarked = [(a, self.truth[a.evidence.path]) for a in res
                               if self.truth.get(a.evidence.path) is not None]
                nearest_ok = sum(1 for a, t in watermarked if a.methods[m].verdict.nearest_key == t)
                out.append(f"<p>Verdict accuracy {correct}/{total} = {number(verdicts.accuracy, '.1%')}. Reference "
                           f"classifier (nearest key by L1, no \u201cnone\u201d outcome, as dec-inv Table 2 counts "
                           f"it): {nearest_ok}/{len(watermarked)} watermarked image(s) assigned their claimed key.</p>")
            else:
                nearest = attribution_matrix([(a.evidence.path, a.methods[m].verdict.nearest_key) for a in res], ids)
                out.append(_matrix_table(verdicts, "folder \\ verdict"))
                out.append("<p></p>" + _matrix_table(nearest, "folder \\ nearest key (L1)"))
        return "".join(out)

    def _failures(self) -> str:
        sec = self._sec
        if not self.run.failures:
            return f"<h2>{sec}. Evidence that could not be analysed</h2><p>None.</p>"
        rows = [[esc(f.path), esc(f.shown_reason), _hash_cell(f.sha256, f.md5, f.hash_note)] for f in self.run.failures]
        return (f"<h2>{sec}. Evidence that could not be analysed</h2>"
                + _grid(["File", "Reason", "Hash as submitted"], rows, [30, 40, 30]))

    def _not_analysed(self) -> str:
        items = self.run.not_analysed
        out = ['<h2 style="page-break-before: always;">Appendix A. Files found and not analysed</h2>']
        if not items:
            return "".join(out) + ("<p>None: every file found in the submitted folders was analysed or is listed "
                                   "above as evidence that could not be analysed.</p>")
        out.append(f"<p>{len(items)} file(s) or folder(s) found in the submitted folders were not analysed, each "
                   "for the reason given; files that could be read were hashed.</p>")
        rows = [[esc(n.path), esc(n.reason), _hash_cell(n.sha256, n.md5, n.hash_note)] for n in items]
        return "".join(out) + _grid(["Path", "Reason", "Hash"], rows, [38, 32, 30])

    def _audit(self) -> str:
        out = ["<h2>Appendix B. Audit trail</h2>"]
        events = self.info.audit
        if not events:
            return "".join(out) + ("<p>No audit trail: this run was not kept in a case (the window's File ▸ Save, "
                                   "or <span class=\"mono\">scan --case</span>).</p>")
        out.append("<p>What was done in this case, in order, as recorded by the tool (UTC). The trail is kept in "
                   "the case file; like its checksum it is a record, not a signature.</p>")
        rows = [[esc(e.utc), esc(e.examiner) or '<span class="muted">–</span>', esc(e.action), esc(e.detail)]
                for e in events]
        return "".join(out) + _grid(["UTC", "Examiner", "Action", "Detail"], rows, [17, 13, 14, 56])

    def _limitations(self) -> str:
        run = self.run
        k = len(run.keys)
        fpr = run.config.fpr
        sec = self._sec + 1
        levels = "".join(
            f"<tr><td>{lvl:g}</td><td>{esc(src)}</td><td>{lvl / k:.3g}</td>"
            f"<td>{'<b>this report</b>' if math.isclose(lvl, fpr) else ''}</td></tr>" for lvl, src in LITERATURE_LEVELS)
        if not any(math.isclose(lvl, fpr) for lvl, _ in LITERATURE_LEVELS):
            levels = (f"<tr><td><b>{fpr:g}</b></td><td><b>used in this report</b></td><td>{fpr / k:.3g}</td>"
                      f"<td><b>this report</b></td></tr>") + levels
        return f"""
<h2 style="page-break-before: always;">{sec}. Limitations and interpretation</h2>
<p><b>What a match shows.</b> A positive verdict means that the initial noise recovered from the image under model
{esc(run.model_id)} sits closer to key K's Fourier pattern than chance would explain, at the stated p-value and
false-positive level. It is <b>not proof of origin</b>: published forgery attacks place a Tree-Ring pattern on images
the key holder never made — <i>imprinting</i> (optimising an image, with a proxy model, until its inverted noise carries
the pattern taken from one watermarked image) and <i>averaging</i> (estimating a content-agnostic key from many
watermarked images and adding it to others). A match is also conditional on the model: the same image inverted with
another model gives another z<sub>T</sub>.</p>
<p><b>What a non-match shows.</b> A negative verdict is <b>not proof of absence</b>. JPEG compression, cropping and
resizing, rotation, noise, blur and regeneration (re-encoding through a diffusion model) weaken or remove the ring, and
an image made by another model, another sampler or with a different prompt inverts to a noise that need not match
even if it was watermarked. The z<sub>0</sub> residual and the PSNR of D(z<sub>0</sub>) in each exhibit indicate how
degraded or out-of-model the evidence is: a poor fit weakens any negative. Rotation misaligns the rings entirely.</p>
<p><b>What the tests are.</b> {self._per_key_test()} <i>Detection</i> takes the smallest
per-key p-value over the K = {k} key(s); uncalibrated, its family-wise p-value is Bonferroni's K·min p; calibrated, it
is the share of the model's own un-watermarked calibration images with a statistic as extreme, (r + 1)/(n + 1), whose
smallest possible value is 1/(n + 1). <i>Identification</i> tests each key against the others: with the ring's gain
fitted, how far the evidence leans towards another key beyond what this key explains (a t statistic; empirical
against watermarked calibration images when calibrated), at a tenth of the level so that wrong keys stay rare among the
keys named. A key is named only when every other key is excluded, and
only by the calibrated test: uncalibrated, the t test assumes an ideal inversion and excluded the true key too often
on real ones, so a single remaining key is reported as the most likely one, not identified.
In this report: {esc("; ".join(f"{m}: {self.run.calibration.status(m)}" for m in self.run.config.methods))}.
Evidence whose recovered noise lies outside the range the calibration saw on the model's own images (rotated, cropped,
re-encoded images often do) is marked <i>outside calibration</i>, and a positive on it is not defended. The nearest key
is the papers' classifier (smallest L1) and exists for every image, watermarked or not.</p>
{scheme_sections.limitations(run.keys, fpr) if not scheme_sections.only_tree_ring(run.keys) else ''}
<p><b>Operating point.</b> This report uses a family-wise false-positive level of <b>{fpr:g}</b>. Operating points in
the literature:</p>
<table {_TABLE}><thead><tr><th width="14%">Level</th><th width="56%">Where it is used</th><th width="16%">Per-key threshold
(K = {k})</th><th width="14%"></th></tr></thead>{levels}</table>
<p><b>Preprocessing.</b> Images not at the model's size were resized (bicubic) and centre-cropped as recorded per
exhibit; that changes pixel values and may weaken a watermark. Alpha was dropped without compositing and EXIF
orientation recorded but not applied, because the watermark lives in the stored pixels.</p>
<p><b>Reproducibility.</b> All settings, software versions, the model's weight hashes and the evidence hashes are
listed, so the analysis can be repeated; the JSON twin holds the same numbers in machine-readable form. Timing and
memory figures describe this run on this device and vary between runs.</p>
"""

    def _signoff(self) -> str:
        sec = self._sec + 2
        return (f"<h2>{sec}. Integrity of this report</h2>"
                f"<p>The results in this report are also written, in machine-readable form, to "
                f"<b>{esc(self.json_name)}</b> beside this PDF (PDF file attachments are not supported by the PDF "
                f'writer used). SHA-256 of that file: <span class="mono">{esc(self.json_sha256)}</span>.</p>'
                f"<p>Evidence files were re-hashed when this report was generated ({esc(self.generated_utc)}); "
                "the result is stated per exhibit.</p>"
                "<p><br>Examiner signature: ______________________________ &nbsp;&nbsp; Date: ________________</p>")
