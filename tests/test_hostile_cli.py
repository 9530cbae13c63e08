"""The hostile corpus through the CLI: one clear line per refused file, exit code 3, every other file
analysed, evidence bytes and folder untouched, no traceback."""

import hashlib
import json
import os
from pathlib import Path

from forensics_app.cli import main
from tests.hostile_corpus import make_hostile_corpus


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            p = Path(root) / f
            if p.is_file() and not p.is_symlink():
                out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


def test_hostile_corpus_through_the_cli(tiny_ddim_dir, tmp_path, capsys):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    cases = make_hostile_corpus(evidence)
    assert len(cases) >= 100
    before = snapshot(evidence)
    keys = tmp_path / "keys.json"
    assert main(["keys", "new", "--count", "2", "--out", str(keys), "--latent-shape", "4,16,16", "--radius", "4"]) == 0
    result = tmp_path / "scan.json"
    paths = [str(evidence / c.filename) for c in cases]
    code = main(["scan", *paths, "--model", str(tiny_ddim_dir), "--keys", str(keys), "--method", "encoder",
                 "--steps", "2", "--batch-size", "32", "--json", str(result), "--quiet"])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "Traceback" not in err
    data = json.loads(result.read_text())
    analysed = {Path(i["path"]).name for i in data["images"]}
    failed = {Path(f["path"]).name: f["message"] for f in data["failures"]}
    for c in cases:
        name = Path(c.filename).name
        if (evidence / c.filename).is_dir():
            assert name not in failed      # the CLI expands a folder to its images (here: none)
            continue
        if c.loads:
            assert name in analysed, c
        else:
            assert name in failed and "\n" not in failed[name], c
            if c.error_substring:
                assert c.error_substring in failed[name], (c, failed[name])
    assert len([l for l in err.splitlines() if l.startswith("error:")]) == len(failed)
    assert snapshot(evidence) == before          # nothing changed, nothing written next to the evidence
