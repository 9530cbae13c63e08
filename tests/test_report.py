"""The PDF examination report and its JSON twin: content read back with poppler (pdftotext / pdftoppm),
hostile strings printed literally, re-verification of evidence hashes, atomic writing, headless CLI use."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
                                reason="poppler-utils (pdftotext, pdftoppm) are needed to read the PDF back")

HOSTILE_NAME = "<b>x</b>&\"'.png"          # "/" cannot be in a file name: a folder "<b>x<" holds "b>&\"'.png"
HOSTILE_FILE = "<img src=x onerror=alert(1)>&\"'.png"
SCRIPT = "<script>alert(1)</script>"
REPO = Path(__file__).resolve().parent.parent


def _png(path: Path, seed: int, size=(40, 48), exif: dict[int, str] | None = None) -> None:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")
    kwargs = {}
    if exif:
        e = Image.Exif()
        for tag, value in exif.items():
            e[tag] = value
        kwargs["exif"] = e
    img.save(path, **kwargs)


def tiny_config(model):
    from engine.analysis import AnalysisConfig
    from engine.decoder_inversion import DecoderInversionConfig
    from engine.diffusion_inversion import DiffusionInversionConfig

    return AnalysisConfig.for_model(model, gradient_free=DecoderInversionConfig("gradient-free", iterations=5),
                                    gradient_based=DecoderInversionConfig("gradient-based", iterations=5),
                                    diffusion=DiffusionInversionConfig(steps=10))


@pytest.fixture(scope="module")
def evidence_run(tmp_path_factory, tiny_ddim_dir):
    """Three images (one with a hostile name and hostile EXIF), one unreadable file, a manifest."""
    from engine.analysis import analyze
    from engine.model_loader import load_model
    from engine.treering import new_random_keys

    model = load_model(str(tiny_ddim_dir), device="cpu")
    keys = new_random_keys(2, latent_shape=model.latent_shape, radius=3, seed=0)
    folder = tmp_path_factory.mktemp("evidence")
    _png(folder / "plain.png", 0)
    _png(folder / "wide.png", 1, size=(64, 32))
    if os.name != "nt":
        (folder / "<b>x<").mkdir()
        hostile = folder / "<b>x<" / "b>&\"'.png"
        assert str(hostile).endswith(HOSTILE_NAME)
        _png(folder / HOSTILE_FILE, 3)
    else:
        hostile = folder / "hostile.png"
    _png(hostile, 2, exif={270: SCRIPT, 305: SCRIPT, 315: SCRIPT})
    (folder / "notes.png").write_text("not an image")
    (folder / "manifest.json").write_text(json.dumps({"images": {"plain.png": {"key": "key1"},
                                                                 "wide.png": {"key": None}}}))
    paths = [folder / "plain.png", hostile, folder / "wide.png", folder / "notes.png"]
    if os.name != "nt":
        paths.insert(2, folder / HOSTILE_FILE)
    run = analyze(model, keys, paths, tiny_config(model))
    assert len(run.failures) == 1 and len(run.images) == len(paths) - 1
    return run, model


def pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout


def pdf_pages(pdf: Path, out: Path) -> list[Path]:
    out.mkdir(exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdf), str(out / "page")], check=True, capture_output=True)
    return sorted(out.glob("page*.png"))


def test_report_holds_the_examination_record(evidence_run, tmp_path):
    from forensics_app.report import ReportInfo, write_report

    run, model = evidence_run
    pdf = write_report(run, tmp_path / "report.pdf", ReportInfo(case_id="CASE-2024-0117", examiner="A. Examiner",
                                                                 notes="first line\nsecond line"), model=model)
    assert pdf == tmp_path / "report.pdf" and pdf.stat().st_size > 1000
    pages = pdf_pages(pdf, tmp_path / "png")
    text = pdf_text(pdf)
    n = len(pages)
    assert n >= 2
    for i in range(1, n + 1):
        assert f"page {i} of {n}" in text
    assert text.count("CASE-2024-0117") >= n            # the header of every page
    assert "A. Examiner" in text and "second line" in text
    for a in run.images:
        assert a.evidence.sha256 in text
        for m, r in a.methods.items():
            assert r.verdict.nearest_key in text
    for key_id in run.keys.ids:
        assert key_id in text
    assert "\ufb01" not in text and "verified" in text         # no "ﬁ" ligature: words copy and search as typed
    assert "Limitations" in text and "not proof of origin" in text and "not proof of absence" in text
    assert "imprinting" in text and "averaging" in text and "Bonferroni" in text
    assert "Detection: p =" in text and "Interpretation:" in text and "Conclusion" in text
    verdict_words = ("no watermark detected", "watermark: key")   # "watermark: <key id>"
    assert any(w in text for w in verdict_words)
    for r in (r for a in run.images for r in a.methods.values()):
        assert r.verdict.finding().split(":")[0] in text     # "nearest key keyN"
    assert "Encoder E(x)" in text and "Gradient-free inversion" in text and "Gradient-based inversion" in text
    assert "n/a (CPU)" in text                               # peak memory is GPU-only
    assert "0.001" in text and "1e-06" in text              # literature operating points beside the one used
    assert "notes.png" in text                               # the failure is listed
    assert "Verdict accuracy" in text                        # manifest → confusion matrix
    # model weights hashed
    from engine.model_loader import weight_hashes

    for h in weight_hashes(model).values():
        assert h in text
    # the twin
    twin = tmp_path / "report.json"
    data = json.loads(twin.read_text())
    assert data["format"] == "treering-forensics/report" and data["report"]["case_id"] == "CASE-2024-0117"
    assert [c["status"] for c in data["reverification"]] == ["verified"] * len(run.images)
    assert data["run"]["images"][0]["sha256"] == run.images[0].evidence.sha256
    assert hashlib.sha256(twin.read_bytes()).hexdigest() in text
    # the Fourier figures and thumbnails are embedded losslessly
    listing = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True).stdout \
        if shutil.which("pdfimages") else ""
    assert "jpeg" not in listing


def test_hostile_names_and_exif_print_literally(evidence_run, tmp_path):
    from forensics_app.report import ReportInfo, write_report

    run, _ = evidence_run
    hostile = next(a.evidence for a in run.images if "x</b>" in a.evidence.path or "hostile" in a.evidence.path)
    assert hostile.exif.get("ImageDescription") == SCRIPT       # intake kept it as text
    case = "<i>CASE</i>&amp;\u202eevil"
    pdf = write_report(run, tmp_path / "r.pdf", ReportInfo(case_id=case, examiner="<b>Eve</b>"))
    text = pdf_text(pdf)
    flat = text.replace("\n", "")                               # a long path may wrap onto two lines
    assert text.count(SCRIPT) >= 3                              # ImageDescription, Software, Artist
    if os.name != "nt":
        assert HOSTILE_NAME in flat                             # the path row
        assert HOSTILE_FILE in text                             # file name in the exhibit heading and tables
    assert "<i>CASE</i>&amp;\\u202eevil" in text               # literal, bidi override made visible
    assert "\u202e" not in text
    assert "<b>Eve</b>" in text


def test_changed_and_missing_evidence_are_reported_loudly(evidence_run, tmp_path):
    from engine.analysis import ImageAnalysis
    from forensics_app.report import ReportInfo, write_report

    run, _ = evidence_run
    images = []
    for n, a in enumerate(run.images[:2]):
        copy = tmp_path / f"copy{n}.png"
        shutil.copyfile(a.evidence.path, copy)
        images.append(ImageAnalysis(replace(a.evidence, path=str(copy)), a.methods))
    run2 = replace(run, images=tuple(images))
    with open(images[0].evidence.path, "ab") as f:          # changed after the analysis
        f.write(b"tampered")
    os.remove(images[1].evidence.path)                       # gone
    new_hash = hashlib.sha256(Path(images[0].evidence.path).read_bytes()).hexdigest()
    pdf = write_report(run2, tmp_path / "r.pdf", ReportInfo(case_id="C1"))
    text = pdf_text(pdf)
    assert "HASH MISMATCH" in text and new_hash in text
    assert "FILE MISSING" in text
    assert "FAILED" in text                                  # stated on the first page too
    statuses = [c["status"] for c in json.loads((tmp_path / "r.json").read_text())["reverification"]]
    assert statuses == ["changed", "missing"]              # the one vocabulary of engine.provenance


def test_failure_while_writing_leaves_no_pdf_and_no_temporary_file(evidence_run, tmp_path, monkeypatch):
    import forensics_app.report as report
    import forensics_app.report.pdf as pdf_writer

    run, _ = evidence_run
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.pdf").write_bytes(b"previous report")
    real = pdf_writer.render_pdf

    def render_then_fail(path, *args, **kwargs):
        real(path, *args, **kwargs)
        assert Path(path).stat().st_size > 0               # a partial file exists at this point
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(pdf_writer, "render_pdf", render_then_fail)
    with pytest.raises(RuntimeError, match="simulated"):
        report.write_report(run, out / "new.pdf", report.ReportInfo(case_id="C"))
    with pytest.raises(RuntimeError, match="simulated"):
        report.write_report(run, out / "old.pdf", report.ReportInfo(case_id="C"))
    assert sorted(p.name for p in out.iterdir()) == ["old.pdf"]   # no new PDF, no JSON twin, no temp file
    assert (out / "old.pdf").read_bytes() == b"previous report"   # the earlier report is untouched


def test_twin_name_must_differ_from_the_pdf(evidence_run, tmp_path):
    from forensics_app.report import ReportInfo, write_report

    with pytest.raises(ValueError, match="JSON twin"):
        write_report(evidence_run[0], tmp_path / "report.json", ReportInfo())
    assert list(tmp_path.iterdir()) == []


def test_empty_and_cancelled_run_still_reports(evidence_run, tmp_path):
    from forensics_app.report import ReportInfo, write_report

    run = replace(evidence_run[0], images=(), cancelled=True)
    text = pdf_text(write_report(run, tmp_path / "r.pdf", ReportInfo(case_id="EMPTY")))
    assert "CANCELLED" in text and "No evidence item was analysed" in text and "page 1 of" in text


def test_settings_say_when_the_gradient_free_optimiser_is_not_the_papers(evidence_run, tmp_path):
    from engine.decoder_inversion import DecoderInversionConfig
    from forensics_app.report import ReportInfo, write_report

    run = replace(evidence_run[0], images=())
    papers = " ".join(pdf_text(write_report(run, tmp_path / "a.pdf", ReportInfo())).split())
    assert "gradient-free adam, 5 it, lr 0.01 scheduled" in papers and "differs from the papers'" not in papers
    own = replace(run, config=replace(run.config, gradient_free=DecoderInversionConfig(
        "gradient-free", iterations=100, optimizer="forward-step", lr=0.05, schedule="fixed")))
    text = " ".join(pdf_text(write_report(own, tmp_path / "b.pdf", ReportInfo())).split())
    assert "gradient-free forward-step, 100 it, lr 0.05 fixed" in text and "differs from the papers'" in text


def test_report_from_a_reopened_case_with_changed_evidence(evidence_run, tmp_path):
    from engine.analysis import ImageAnalysis
    from engine.case_file import load_case, save_case
    from forensics_app.report import ReportInfo, write_report

    run, _ = evidence_run
    a = run.images[0]
    copy = tmp_path / "ev.png"
    shutil.copyfile(a.evidence.path, copy)
    case = save_case(replace(run, images=(ImageAnalysis(replace(a.evidence, path=str(copy)), a.methods),)),
                     tmp_path / "c.trcase", {"case_id": "R"})
    copy.write_bytes(b"replaced")
    loaded = load_case(case)
    assert loaded.warnings
    text = pdf_text(write_report(loaded.run, tmp_path / "r.pdf", ReportInfo(case_id="R", notes="\n".join(loaded.warnings))))
    assert "HASH MISMATCH" in text and "Pixels unavailable" in text


@pytest.mark.slow
def test_cli_writes_the_report_headless(tiny_ddim_dir, tmp_path):
    """The CLI path: no QGuiApplication, no QT_QPA_PLATFORM, no display."""
    from engine.treering import new_random_keys

    keys = new_random_keys(2, latent_shape=(4, 16, 16), radius=3, seed=0)
    keys.save(tmp_path / "keys.json")
    _png(tmp_path / "a.png", 0)
    _png(tmp_path / "b.png", 1)
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    cmd = [sys.executable, "-m", "forensics_app", "scan", str(tmp_path / "a.png"), str(tmp_path / "b.png"),
           "--model", str(tiny_ddim_dir), "--keys", str(tmp_path / "keys.json"), "--device", "cpu",
           "--method", "all", "--iterations", "3", "--steps", "5", "--quiet",
           "--report", str(tmp_path / "out.pdf"), "--case-id", "CLI-7", "--examiner", "Q"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    text = pdf_text(tmp_path / "out.pdf")
    n = int(re.search(r"page 1 of (\d+)", text).group(1))
    assert n >= 2 and "CLI-7" in text
    assert (tmp_path / "out.json").is_file()


def test_weight_hashes_recorded_at_load_and_a_changed_folder_is_flagged(tmp_path, tiny_ddim_dir):
    from engine.analysis import analyze
    from engine.model_loader import load_model
    from engine.treering import new_random_keys
    from engine.provenance import recheck_weight_hashes

    folder = tmp_path / "model"
    shutil.copytree(tiny_ddim_dir, folder)
    model = load_model(str(folder), device="cpu")
    keys = new_random_keys(1, latent_shape=model.latent_shape, radius=3, seed=0)
    _png(tmp_path / "a.png", 3)
    run = analyze(model, keys, [tmp_path / "a.png"], replace(tiny_config(model), methods=("encoder",)))
    assert run.weight_sha256 == model.weight_sha256 and len(run.weight_sha256) == 2
    hashes, note = recheck_weight_hashes(run.model_path, run.weight_sha256)
    assert hashes == run.weight_sha256 and "still holds them" in note
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes() + b" ")                 # the folder changes after the analysis
    hashes, note = recheck_weight_hashes(run.model_path, run.weight_sha256)
    assert hashes == run.weight_sha256                                # what the analysis ran with
    assert "WARNING" in note and "different weight files" in note
