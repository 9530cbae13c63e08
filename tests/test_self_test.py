"""`treering-forensics self-test`: the installation check passes on this checkout, and each check fails when
what it checks is broken."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from forensics_app import self_test

REPO = Path(__file__).resolve().parent.parent
RESOURCES = REPO / "resources"


def _resources_of_this_checkout(tmp_path: Path) -> str:
    """A folder to put first on PYTHONPATH so that `treering_resources` is this checkout's resources/ (an
    editable install of another checkout would otherwise provide it: its finder comes after the path)."""
    link = tmp_path / "path" / "treering_resources"
    link.parent.mkdir()
    link.symlink_to(RESOURCES, target_is_directory=True)
    return str(link.parent)


def _copy_models(tmp_path: Path) -> Path:
    """A resources folder holding a copy of the bundled models, their manifest and the keys (tests never write into the
    checkout)."""
    root = tmp_path / "resources"
    shutil.copytree(RESOURCES / "models", root / "models",
                    ignore=shutil.ignore_patterns("*.png", "README.md", "training_report.json"))
    shutil.copytree(RESOURCES / "keys", root / "keys")
    return root


def test_committed_weight_manifest_matches_the_bundled_weights():
    expected = self_test.read_manifest(self_test.manifest_path(RESOURCES))
    found = self_test.bundled_weight_hashes(RESOURCES)
    assert set(found) == {"demo", "demo-flow"}
    assert self_test.compare_weight_hashes(expected, found) == []


def test_weight_check_names_a_changed_missing_or_unlisted_file(tmp_path, monkeypatch):
    import engine.resources

    root = _copy_models(tmp_path)
    monkeypatch.setattr(engine.resources, "resources_root", lambda: root)
    assert "4 weight files" in self_test.check_weight_hashes()

    weight = root / "models" / "demo" / "vae" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weight.read_bytes())
    data[-1] ^= 1                       # one bit of the last tensor's data
    weight.write_bytes(bytes(data))
    with pytest.raises(self_test.CheckFailed, match=r"demo/vae/diffusion_pytorch_model.safetensors has SHA-256"):
        self_test.check_weight_hashes()

    weight.unlink()
    with pytest.raises(self_test.CheckFailed, match=r"demo/vae/diffusion_pytorch_model.safetensors is missing"):
        self_test.check_weight_hashes()

    shutil.copytree(root / "models" / "demo-flow", root / "models" / "extra")
    with pytest.raises(self_test.CheckFailed, match=r"bundled model 'extra' is not in the manifest"):
        self_test.check_weight_hashes()

    (root / "models" / "weights.sha256.json").write_text("{}")
    with pytest.raises(self_test.CheckFailed, match="is not a weight manifest"):
        self_test.check_weight_hashes()
    (root / "models" / "weights.sha256.json").unlink()
    with pytest.raises(self_test.CheckFailed, match="no weight manifest"):
        self_test.check_weight_hashes()


def test_known_answer_check_passes_and_fails_on_a_changed_answer(monkeypatch):
    assert "3 watermarked noises → their keys" in self_test.check_known_answer()
    changed = {k: dict(v) for k, v in self_test.KNOWN_ANSWER.items()}
    l1, log_p = changed["key2"]["key2"]
    changed["key2"]["key2"] = (l1 * 1.01, log_p)        # 1 % off: far above float noise
    monkeypatch.setattr(self_test, "KNOWN_ANSWER", changed)
    with pytest.raises(self_test.CheckFailed, match="noise watermarked with key2 scored against key2"):
        self_test.check_known_answer()


def test_known_answer_check_fails_when_the_scoring_is_wrong(monkeypatch):
    from engine import treering_scoring

    # A classifier that ignores its input: every noise goes to the first key.
    monkeypatch.setattr(treering_scoring, "decide", lambda scores, fpr=0.01: treering_scoring.Verdict(
        scores[0].key_id, scores[0].key_id, scores[0].l1, 0.0, fpr, len(scores), fpr / len(scores)))
    with pytest.raises(self_test.CheckFailed, match="noise watermarked with key2 was attributed to key1"):
        self_test.check_known_answer()


def test_pdf_check_fails_without_a_round_trip(tmp_path):
    with pytest.raises(self_test.CheckFailed, match="round trip"):
        self_test.check_pdf(tmp_path, {})


def test_a_failing_check_is_a_fail_line_and_the_others_still_run(monkeypatch):
    import engine.resources

    monkeypatch.setattr(engine.resources, "resources_root", lambda: RESOURCES)   # this checkout's manifest

    def broken():
        raise RuntimeError("simulated\nbreakage")

    monkeypatch.setattr(self_test, "check_known_answer", broken)
    monkeypatch.setattr(self_test, "check_round_trip", lambda workdir, keep: "skipped in this test")
    monkeypatch.setattr(self_test, "check_pdf", lambda workdir, keep: "skipped in this test")
    lines = [r.line() for r in self_test.run_checks()]
    assert len(lines) == 4
    assert lines[0].startswith("FAIL  (a) known-answer Tree-Ring scores: error (RuntimeError): simulated breakage")
    assert all(line.startswith("PASS") for line in lines[1:])
    assert all("\n" not in line for line in lines)


@pytest.mark.slow
def test_self_test_command_passes_from_another_directory(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([_resources_of_this_checkout(tmp_path), str(REPO)]),
           "TREERING_FORENSICS_CONFIG": str(tmp_path / "config")}
    env.pop("QT_QPA_PLATFORM", None)        # the PDF check must work headless on its own
    out = subprocess.run([sys.executable, "-m", "forensics_app", "self-test"], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    checks = [line for line in lines if line.startswith(("PASS", "FAIL"))]
    assert [line[:9] for line in checks] == ["PASS  (a)", "PASS  (b)", "PASS  (c)", "PASS  (d)"], out.stdout
    assert lines[-1] == "self-test: 4 of 4 checks passed"
    assert "gradient-free → key1" in checks[1]
    assert list(elsewhere.iterdir()) == []          # everything went to a temporary folder, now removed


def test_self_test_command_exits_4_with_a_fail_line_on_tampered_weights(tmp_path, monkeypatch, capsys):
    import engine.resources
    from forensics_app.cli import main

    root = _copy_models(tmp_path)
    weight = root / "models" / "demo-flow" / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weight.read_bytes())
    data[-1] ^= 1
    weight.write_bytes(bytes(data))
    monkeypatch.setattr(engine.resources, "resources_root", lambda: root)
    # (b) and (d) run in the slow end-to-end test; here only the command's lines and exit status matter
    monkeypatch.setattr(self_test, "check_round_trip", lambda workdir, keep: "skipped in this test")
    monkeypatch.setattr(self_test, "check_pdf", lambda workdir, keep: "skipped in this test")
    assert main(["self-test"]) == 4
    lines = capsys.readouterr().out.strip().splitlines()
    failed = [line for line in lines if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith("FAIL  (c) bundled weight hashes: 1 difference(s)"), lines
    assert "demo-flow/unet/diffusion_pytorch_model.safetensors has SHA-256" in failed[0]
    assert lines[-1] == "self-test: 3 of 4 checks passed"
