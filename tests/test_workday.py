"""The examiner's workday, headless: nothing silently dropped (recursive intake, every file analysed or listed
with its reason and hashes), case folders with a run history and an audit trail (`scan --case`, `case show`,
`case verify`), CLI progress lines that a crafted file name cannot forge, and the report's new fields."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest

from engine.evidence_paths import NotAnalysed, scan_evidence_paths
from engine.intake import hash_file
from forensics_app.cli import main

FAST = ["--method", "encoder", "--steps", "2", "--device", "cpu"]


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def keys_and_images(tiny_ddim_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("workday")
    keys = out / "keys.json"
    assert main(["keys", "new", "--count", "2", "--out", str(keys), "--latent-shape", "4,16,16", "--radius", "4",
                 "--seed", "3"]) == 0
    assert main(["generate", "--model", str(tiny_ddim_dir), "--keys", str(keys), "--key", "key1", "--count", "2",
                 "--out", str(out / "made"), "--steps", "2", "--quiet", "--device", "cpu"]) == 0
    return keys, sorted((out / "made").glob("*.png"))


def evidence_tree(root: Path, images: list[Path]) -> Path:
    """top.png, notes.txt, .hidden.png, sub/deep.png, sub/deeper/deepest.png, .git/x.png, a FIFO."""
    ev = root / "evidence"
    (ev / "sub" / "deeper").mkdir(parents=True)
    (ev / ".git").mkdir()
    shutil.copy(images[0], ev / "top.png")
    shutil.copy(images[1], ev / "sub" / "deep.png")
    shutil.copy(images[0], ev / "sub" / "deeper" / "deepest.png")
    shutil.copy(images[0], ev / ".git" / "x.png")
    (ev / "notes.txt").write_text("case notes")
    (ev / ".hidden.png").write_bytes(b"hidden")
    if hasattr(os, "mkfifo"):
        os.mkfifo(ev / "pipe")
    return ev


# -- 1. nothing silently dropped ------------------------------------------------------------------------

def test_scan_is_recursive_and_lists_every_file_it_does_not_analyse(keys_and_images, tmp_path):
    _, images = keys_and_images
    ev = evidence_tree(tmp_path, images)
    scan = scan_evidence_paths([ev], md5=True)
    assert [p.relative_to(ev).as_posix() for p in scan.files] == ["top.png", "sub/deep.png", "sub/deeper/deepest.png"]
    skipped = {Path(n.path).relative_to(ev).as_posix(): n for n in scan.not_analysed}
    assert set(skipped) == {".git", ".hidden.png", "notes.txt"} | ({"pipe"} if hasattr(os, "mkfifo") else set())
    assert "not an image file suffix (.txt)" in skipped["notes.txt"].reason
    assert skipped["notes.txt"].sha256 == sha(ev / "notes.txt")
    assert skipped["notes.txt"].md5 == hashlib.md5(b"case notes").hexdigest()
    assert "hidden" in skipped[".hidden.png"].reason and skipped[".hidden.png"].sha256 == sha(ev / ".hidden.png")
    assert "hidden folder" in skipped[".git"].reason and skipped[".git"].sha256 is None
    if hasattr(os, "mkfifo"):                     # listed, never opened for reading (no hang), reason given
        assert "not a regular file" in skipped["pipe"].reason and skipped["pipe"].sha256 is None
        assert "not hashed" in skipped["pipe"].hash_note
    flat = scan_evidence_paths([ev], recursive=False)
    assert [p.name for p in flat.files] == ["top.png"]
    assert any("subfolder: not searched" in n.reason for n in flat.not_analysed)


def test_hash_file_says_why_when_it_cannot(tmp_path):
    h = hash_file(tmp_path / "missing.png", md5=True)
    assert h.sha256 is None and h.md5 is None and "does not exist" in h.note
    h = hash_file(tmp_path)
    assert h.sha256 is None and "folder" in h.note


def test_scan_json_lists_not_analysed_and_hashes_failures(keys_and_images, tiny_ddim_dir, tmp_path, capsys):
    keys, images = keys_and_images
    ev = evidence_tree(tmp_path, images)
    bad = ev / "sub" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "scan.json"
    code = main(["scan", str(ev), "--model", str(tiny_ddim_dir), "--keys", str(keys), "--json", str(out), "--md5",
                 *FAST])
    assert code == 3                                       # the broken PNG
    data = json.loads(out.read_text())
    assert {Path(i["path"]).name for i in data["images"]} == {"top.png", "deep.png", "deepest.png"}
    assert all(i["md5"] == hashlib.md5(Path(i["path"]).read_bytes()).hexdigest() for i in data["images"])
    (failure,) = data["failures"]
    assert failure["sha256"] == sha(bad) and failure["md5"] == hashlib.md5(bad.read_bytes()).hexdigest()
    assert "broken.png" not in failure["reason"] and "corrupt" in failure["reason"]
    listed = {Path(n["path"]).name: n for n in data["not_analysed"]}
    assert {"notes.txt", ".hidden.png", ".git"} <= set(listed)
    assert listed["notes.txt"]["sha256"] == sha(ev / "notes.txt")
    err = capsys.readouterr().err
    assert "not analysed: " in err and "notes.txt" in err


def test_no_recursive_option(keys_and_images, tiny_ddim_dir, tmp_path):
    keys, images = keys_and_images
    ev = evidence_tree(tmp_path, images)
    out = tmp_path / "scan.json"
    assert main(["scan", str(ev), "--no-recursive", "--model", str(tiny_ddim_dir), "--keys", str(keys),
                 "--json", str(out), "--quiet", *FAST]) == 0
    data = json.loads(out.read_text())
    assert [Path(i["path"]).name for i in data["images"]] == ["top.png"]
    assert any(Path(n["path"]).name == "sub" for n in data["not_analysed"])


# -- 4. progress lines -------------------------------------------------------------------------------

def test_progress_lines_on_a_non_terminal_and_quiet(keys_and_images, tiny_ddim_dir, tmp_path, capsys):
    keys, images = keys_and_images
    ev = tmp_path / "ev"
    ev.mkdir()
    forged = "a\nprogress: 99 of 99 image(s) finished, 0 failed\r\n[9] x.png"
    try:
        shutil.copy(images[0], ev / forged)
    except OSError:
        pytest.skip("this file system refuses newlines in names")
    shutil.copy(images[1], ev / "b.png")
    assert main(["scan", str(ev), "--model", str(tiny_ddim_dir), "--keys", str(keys), *FAST]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    per_image = [l for l in lines if l.startswith("[")]
    assert len(per_image) == 2 and per_image[0].startswith("[1/2] ") and per_image[1].startswith("[2/2] ")
    summaries = [l for l in lines if l.startswith("progress:")]
    assert summaries == [summaries[-1]] and summaries[-1].startswith("progress: 2/2 image(s) finished, 0 failed")
    assert "\\n" in per_image[0] or "\\n" in per_image[1]          # the newline is shown escaped
    assert all("\n" not in l for l in captured.out.splitlines())
    assert not any(l.startswith("progress: 99") for l in (captured.out + captured.err).splitlines())
    assert not any(l.startswith("[9]") for l in lines)
    assert main(["scan", str(ev), "--model", str(tiny_ddim_dir), "--keys", str(keys), "--quiet", *FAST]) == 0
    assert capsys.readouterr().err == ""


def test_progress_summary_is_periodic_with_an_eta():
    from forensics_app.cli import _ProgressLines

    stream = io.StringIO()
    lines = _ProgressLines(4, enabled=True, stream=stream)
    clock = iter([10.0, 50.0, 51.0])
    lines.started = 0.0
    lines._last_summary = 0.0
    lines._clock = lambda: next(clock)
    lines.maybe_summary()                      # 10 s: not yet
    lines.done = 2
    lines.maybe_summary()                      # 50 s: due; 2 of 4 in 50 s → ETA 50 s
    lines.maybe_summary()                      # 51 s: not again
    assert stream.getvalue().splitlines() == ["progress: 2/4 image(s) finished, 0 failed, elapsed 50 s, ETA 50 s"]


# -- 2./3. case folders and the audit trail -----------------------------------------------------------

def test_scan_case_appends_runs_show_and_verify(keys_and_images, tiny_ddim_dir, tmp_path, capsys):
    keys, images = keys_and_images
    ev = evidence_tree(tmp_path, images)
    case = tmp_path / "case"
    base = ["--model", str(tiny_ddim_dir), "--keys", str(keys), "--quiet", "--case", str(case), *FAST]
    assert main(["scan", str(ev), *base, "--examiner", "E. Xaminer", "--case-id", "2024-117"]) == 0
    assert main(["scan", str(ev / "sub"), *base, "--fpr", "0.001"]) == 0
    assert (case / "case.trcase").is_file()
    assert sorted(p.name for p in (case / "runs").iterdir()) == ["run-001.trcase", "run-002.trcase"]
    from engine.case_file import load_case
    from engine.case_folder import read_case_folder

    summary = read_case_folder(case)
    assert [h["images"] for h in summary.history] == [3, 2]              # appended, not replaced
    assert summary.history[0]["sha256"] == sha(case / "runs" / "run-001.trcase")
    assert summary.info["case_id"] == "2024-117" and summary.info["examiner"] == "E. Xaminer"
    actions = [e.action for e in summary.audit.events]
    assert actions == ["run", "settings changed", "run"]
    assert "fpr 0.01 → 0.001" in summary.audit.events[1].detail
    assert all(e.examiner == "E. Xaminer" and e.utc.endswith("+00:00") for e in summary.audit.events)
    first = load_case(case / "runs" / "run-001.trcase")
    assert {Path(a.evidence.path).name for a in first.run.images} == {"top.png", "deep.png", "deepest.png"}
    assert {Path(n.path).name for n in first.run.not_analysed} >= {"notes.txt", ".hidden.png"}
    capsys.readouterr()

    assert main(["case", "show", str(case)]) == 0
    shown = capsys.readouterr().out
    assert "runs: 2" in shown and "2024-117" in shown and "settings changed" in shown

    assert main(["case", "verify", str(case)]) == 0
    out = capsys.readouterr().out
    assert "HASH MISMATCH" not in out and "verified" in out
    (ev / "notes.txt").write_text("edited")                  # a not-analysed file is verified too
    (ev / "top.png").unlink()
    assert main(["case", "verify", str(case)]) == 3
    out = capsys.readouterr().out
    assert "HASH MISMATCH" in out and "FILE MISSING" in out
    audit = read_case_folder(case).audit.events
    assert [e.action for e in audit][-2:] == ["evidence re-verification"] * 2
    assert "1 changed" in audit[-1].detail and "1 missing" in audit[-1].detail


def test_case_errors_are_one_line_exit_2(keys_and_images, tiny_ddim_dir, tmp_path, capsys):
    keys, images = keys_and_images
    (tmp_path / "not-a-case").mkdir()
    (tmp_path / "not-a-case" / "x.txt").write_text("x")
    assert main(["case", "show", str(tmp_path / "not-a-case")]) == 2
    assert main(["case", "verify", str(tmp_path / "nope")]) == 2
    assert main(["scan", str(images[0]), "--model", str(tiny_ddim_dir), "--keys", str(keys), "--quiet",
                 "--case", str(tmp_path / "not-a-case"), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "not a case folder" in err


def test_case_file_round_trips_not_analysed_failures_and_audit(keys_and_images, tiny_ddim_dir, tmp_path):
    from engine.analysis import analyze
    from engine.audit import RUN, AuditTrail
    from engine.case_file import load_case, save_case
    from engine.model_loader import load_model
    from engine.treering import KeySet

    keys, images = keys_and_images
    ev = evidence_tree(tmp_path, images)
    (ev / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n bad")
    scan = scan_evidence_paths([ev], md5=True)
    model = load_model(str(tiny_ddim_dir), device="cpu")
    from engine.analysis import AnalysisConfig

    run = analyze(model, KeySet.load(keys), scan.files, AnalysisConfig.for_model(model, methods=("encoder",)),
                  md5=True, not_analysed=scan.not_analysed)
    audit = AuditTrail()
    audit.record(RUN, "a run\nwith a forged line", "Exa\x1bminer")
    path = save_case(run, tmp_path / "c.trcase", {"case_id": "1"}, audit=audit.to_json())
    loaded = load_case(path)
    assert loaded.run.not_analysed == run.not_analysed
    assert loaded.run.failures == run.failures and loaded.run.failures[0].sha256 == sha(ev / "bad.png")
    assert [a.evidence.md5 for a in loaded.run.images] == [a.evidence.md5 for a in run.images]
    assert all(isinstance(n, NotAnalysed) for n in loaded.run.not_analysed)
    (event,) = AuditTrail.from_json(loaded.audit).events
    assert "\n" not in event.detail and "\\x1b" in event.examiner


# -- 6. report fields ----------------------------------------------------------------------------------

def test_report_info_required_fields_and_suggested_name():
    from forensics_app.report import ReportInfo, suggested_report_name

    info = ReportInfo(case_id="2024/117", exhibits="3-5", examiner=" ", report_version="2")
    assert info.missing(["case_id", "examiner", "technical_reviewer"]) == ["Examiner", "Technical reviewer"]
    assert suggested_report_name(info) == "2024-117_Ex3-5_TreeRing_v2.pdf"
    assert suggested_report_name(ReportInfo()) == "case_TreeRing_v1.pdf"


def test_report_sections_print_fields_not_analysed_and_audit(keys_and_images, tiny_ddim_dir, tmp_path):
    from engine.analysis import AnalysisConfig, analyze
    from engine.audit import EXPORT, AuditTrail
    from engine.model_loader import load_model
    from engine.treering import KeySet
    from forensics_app.report import ReportInfo
    from forensics_app.report.sections import ReportSections

    keys, images = keys_and_images
    ev = evidence_tree(tmp_path, images)
    scan = scan_evidence_paths([ev])
    model = load_model(str(tiny_ddim_dir), device="cpu")
    run = analyze(model, KeySet.load(keys), scan.files[:1], AnalysisConfig.for_model(model, methods=("encoder",)),
                  not_analysed=scan.not_analysed)
    audit = AuditTrail()
    audit.record(EXPORT, "report <b>x</b>", "E")

    class NoFigures:
        def thumbnail(self, pixels):
            return object()

        def fourier(self, *a):
            raise ValueError("none")

    info = ReportInfo(case_id="C", agency="State Lab", exhibits="7", received_from="Det. R", received_date="2024-05-01",
                      examiner="E", technical_reviewer="T. R.", report_version="2", amendments="v2: typo",
                      audit=audit.events)
    from engine.provenance import reverify

    rep = ReportSections(run=run, info=info, generated_utc="now", commit="c", weights={}, weights_note="n",
                         checks=[reverify(a.evidence.path, a.evidence.sha256) for a in run.images], truth={},
                         json_name="x.json", json_sha256="0", figures=NoFigures())
    html, _ = rep.build()
    for text in ("State Lab", "Det. R", "T. R.", "v2: typo", "Appendix A. Files found and not analysed", "notes.txt",
                 "Appendix B. Audit trail", "report &lt;b&gt;x&lt;/b&gt;"):
        assert text in html, text


def test_case_compare_puts_two_runs_side_by_side(keys_and_images, tiny_ddim_dir, tiny_flow_dir, tmp_path, capsys):
    """Two runs of one case — here two models on the same evidence — compared verdict by verdict, matched by
    SHA-256; exit 3 when some verdicts differ, 0 when all agree."""
    from engine.case_folder import load_run
    from engine.run_comparison import compare_runs

    from PIL import Image

    keys, images = keys_and_images
    ev = evidence_tree(tmp_path, images)
    Image.open(images[0]).save(ev / "top.png", compress_level=1)    # other bytes than deepest.png's copy
    case = tmp_path / "case"
    common = ["--keys", str(keys), "--quiet", "--case", str(case), *FAST]
    assert main(["scan", str(ev), "--model", str(tiny_ddim_dir), *common]) == 0
    assert main(["scan", str(ev), "--model", str(tiny_ddim_dir), *common]) == 0          # the same again
    assert main(["scan", str(ev / "sub"), "--model", str(tiny_flow_dir), *common]) == 0   # another model, fewer files
    capsys.readouterr()

    assert main(["case", "compare", str(case), "1", "2"]) == 0       # same model, same settings: all agree
    out = capsys.readouterr().out
    assert "0 setting(s) differ" in out and " 0 differ" in out

    c = compare_runs(load_run(case, 1).run, load_run(case, 3).run)
    assert any(d.startswith("model:") for d in c.settings_differences)
    assert {p.name for p in c.pairs} == {"deep.png", "deepest.png"} and c.only_a == ("top.png",)
    code = main(["case", "compare", str(case)])                         # default: the last two runs
    out = capsys.readouterr().out
    assert code == (3 if c.disagreements else 0)
    assert "top.png: analysed in run 2 only" in out and "model:" in out
    assert main(["case", "compare", str(case), "1", "9"]) == 2


def test_compare_runs_reports_a_changed_verdict(keys_and_images, tiny_ddim_dir, tmp_path):
    from dataclasses import replace

    from engine.analysis import AnalysisConfig, ImageAnalysis, analyze
    from engine.model_loader import load_model
    from engine.run_comparison import compare_runs
    from engine.treering import KeySet

    keys, images = keys_and_images
    model = load_model(str(tiny_ddim_dir), device="cpu")
    run = analyze(model, KeySet.load(keys), images[:1], AnalysisConfig.for_model(model, methods=("encoder",)))
    a = run.images[0]
    r = a.methods["encoder"]
    flipped = replace(r, verdict=replace(r.verdict, predicted_key="key2" if r.verdict.predicted_key != "key2" else None))
    other = replace(run, images=(ImageAnalysis(a.evidence, {"encoder": flipped}),))
    c = compare_runs(run, other)
    assert len(c.pairs) == 1 and len(c.disagreements) == 1 and c.settings_differences == ()


def test_scan_case_records_its_exports(keys_and_images, tiny_ddim_dir, tmp_path, capsys):
    from engine.case_folder import read_case_folder

    keys, images = keys_and_images
    case = tmp_path / "case"
    assert main(["scan", str(images[0]), "--model", str(tiny_ddim_dir), "--keys", str(keys), "--quiet", "--case",
                 str(case), "--examiner", "E. X", "--json", str(tmp_path / "s.json"), "--report",
                 str(tmp_path / "r.pdf"), *FAST]) == 0
    events = read_case_folder(case).audit.events
    assert [e.action for e in events] == ["run", "export", "export"]
    assert "s.json" in events[1].detail and "r.pdf" in events[2].detail and events[2].examiner == "E. X"
