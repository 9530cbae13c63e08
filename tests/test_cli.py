"""The CLI contract other tools rely on: generate → manifest, scan → JSON, keys, models, exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from forensics_app.cli import main

FAST = ["--iterations", "3", "--steps", "5", "--quiet"]


@pytest.fixture(scope="module")
def tiny_set(tiny_ddim_dir, tmp_path_factory):
    """Two keys × 2 images and 2 un-watermarked images from the tiny model."""
    out = tmp_path_factory.mktemp("tiny-set")
    keys = out / "keys.json"
    assert main(["keys", "new", "--count", "2", "--out", str(keys), "--latent-shape", "4,16,16", "--radius", "4",
                 "--seed", "1"]) == 0
    for key in ("key1", "key2"):
        assert main(["generate", "--model", str(tiny_ddim_dir), "--keys", str(keys), "--key", key, "--count", "2",
                     "--out", str(out / "images"), "--steps", "5", "--quiet"]) == 0
    assert main(["generate", "--model", str(tiny_ddim_dir), "--no-watermark", "--count", "2", "--seed", "50",
                 "--out", str(out / "images"), "--steps", "5", "--quiet"]) == 0
    return out, keys


def test_generate_writes_pngs_and_a_manifest(tiny_set):
    out, _ = tiny_set
    manifest = json.loads((out / "images" / "manifest.json").read_text())
    assert manifest["images"]["key1_00000.png"] == {"key": "key1", "seed": 0}
    assert manifest["images"]["clean_00051.png"] == {"key": None, "seed": 51}
    assert len(list((out / "images").glob("*.png"))) == 6


def test_scan_json_follows_the_contract(tiny_set, tiny_ddim_dir, tmp_path):
    out, keys = tiny_set
    result = tmp_path / "scan.json"
    code = main(["scan", str(out / "images"), "--model", str(tiny_ddim_dir), "--keys", str(keys),
                 "--method", "all", "--json", str(result), *FAST])
    assert code == 0
    data = json.loads(result.read_text())
    assert data["model"] == str(tiny_ddim_dir)
    assert len(data["images"]) == 6
    assert data["settings"]["gradient_free"]["precision"] == "fp32"      # --precision auto, resolved for the CPU
    assert data["settings"]["gradient_free"]["optimizer"] == "adam"      # a user folder: the papers' default
    import hashlib

    for img in data["images"]:
        assert img["sha256"] == hashlib.sha256(Path(img["path"]).read_bytes()).hexdigest()
        assert set(img["methods"]) == {"encoder", "gradient-free", "gradient-based"}
        for m in img["methods"].values():
            assert m["predicted_key"] in (None, "key1", "key2")
            assert set(m["scores"]) == {"key1", "key2"}
            for s in m["scores"].values():
                assert s["l1"] > 0 and 0 <= s["p_value"] <= 1
            assert m["z0_residual"] >= 0 and m["seconds"] > 0


def test_bad_inputs_exit_3_with_one_line_each_and_the_rest_analysed(tiny_set, tiny_ddim_dir, tmp_path, capsys):
    out, keys = tiny_set
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    before = broken.read_bytes()
    result = tmp_path / "scan.json"
    code = main(["scan", str(broken), str(out / "images" / "key1_00000.png"), str(empty), "--model",
                 str(tiny_ddim_dir), "--keys", str(keys), "--method", "encoder", "--json", str(result), *FAST])
    assert code == 3
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.startswith("error:")]
    assert len(lines) == 2 and "broken.png" in lines[0] and "empty.jpg" in lines[1]
    assert "Traceback" not in err
    data = json.loads(result.read_text())
    assert len(data["images"]) == 1 and len(data["failures"]) == 2
    assert broken.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.png", "empty.jpg", "scan.json"]


@pytest.mark.parametrize("argv, message", [
    (["scan", "pyproject.toml", "--model", "no-such-model"], "unknown model"),
    (["generate", "--count", "1", "--out", "x", "--model", "no-such-model"], "unknown model"),
    (["keys", "new", "--count", "1", "--out", "/tmp/k.json", "--latent-shape", "4,16"], "C,H,W"),
])
def test_usage_errors_exit_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_missing_file_is_a_bad_input_not_a_usage_error(tiny_set, tiny_ddim_dir, capsys):
    out, keys = tiny_set
    code = main(["scan", "/no/such/file.png", str(out / "images" / "key1_00000.png"), "--model", str(tiny_ddim_dir),
                 "--keys", str(keys), "--method", "encoder", *FAST])
    assert code == 3
    assert "/no/such/file.png' does not exist" in capsys.readouterr().err


def test_argparse_errors_exit_2():
    with pytest.raises(SystemExit) as exc:
        main(["scan"])
    assert exc.value.code == 2


def test_key_set_for_another_latent_shape_is_refused(tiny_ddim_dir, tmp_path, capsys):
    keys = tmp_path / "k.json"
    main(["keys", "new", "--count", "1", "--out", str(keys), "--latent-shape", "4,64,64"])
    img = tmp_path / "i.png"
    from PIL import Image

    Image.new("RGB", (32, 32)).save(img)
    assert main(["scan", str(img), "--model", str(tiny_ddim_dir), "--keys", str(keys), *FAST]) == 2
    assert "shape" in capsys.readouterr().err


def test_models_lists_found_and_missing(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "sd21" in out and "instaflow" in out and "demo" in out
    assert "not found" in out


def test_console_script_runs(tmp_path):
    exe = Path(sys.executable).parent / "treering-forensics"
    out = subprocess.run([str(exe), "keys", "new", "--count", "3", "--out", str(tmp_path / "k.json")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert len(json.loads((tmp_path / "k.json").read_text())["keys"]) == 3


def test_scan_records_the_chosen_gradient_free_optimiser(tiny_set, tiny_ddim_dir, tmp_path):
    out, keys = tiny_set
    result = tmp_path / "scan.json"
    assert main(["scan", str(out / "images" / "key1_00000.png"), "--model", str(tiny_ddim_dir), "--keys", str(keys),
                 "--json", str(result), "--optimizer", "forward-step", "--schedule", "fixed", *FAST]) == 0
    gf = json.loads(result.read_text())["settings"]["gradient_free"]
    assert (gf["optimizer"], gf["lr"], gf["effective_lr"], gf["schedule"]) == ("forward-step", None, 0.001, "fixed")
