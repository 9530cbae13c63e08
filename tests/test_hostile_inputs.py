"""Hostile inputs other than images: key files, outputs and arguments. Each is refused with one line naming
the input and the reason, the documented exit code (2), no traceback, and nothing overwritten."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.treering import MAX_KEYS, KeySet, TreeRingKey, import_reference_npy
from forensics_app.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "resources" / "samples"


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def run_cli(argv, capsys) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def good_key(**changes) -> dict:
    d = {"id": "k1", "pattern": "values", "radius": 4, "channel": 0, "latent_shape": [4, 16, 16],
         "ring_values": [10.0, 20.0, 30.0, 40.0]}
    d.update(changes)
    return d


def key_file(tmp_path: Path, keys, name="keys.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps({"format": "treering-forensics/keys", "version": 1, "keys": keys}))
    return p


# -- key files -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, reason", [
    ({"ring_values": [10.0, float("nan"), 30.0, 40.0]}, "finite"),
    ({"ring_values": [10.0, float("inf"), 30.0, 40.0]}, "finite"),
    ({"ring_values": [10.0, 1e300, 30.0, 40.0]}, "finite"),
    ({"ring_values": [10.0, "20", 30.0, 40.0]}, "not a number"),
    ({"id": None}, "not an identifier"),
    ({"id": ""}, "not an identifier"),
    ({"id": "../../../tmp/x"}, "not an identifier"),
    ({"id": "key\nforged line"}, "not an identifier"),
    ({"latent_shape": [4, 1e9, 1e9]}, "three integers"),
    ({"latent_shape": [4, 100000, 100000]}, "outside the supported"),
    ({"latent_shape": [4, 16]}, "three integers"),
    ({"latent_shape": [True, 16, 16]}, "three integers"),
    ({"radius": 2.5}, "not an integer"),
    ({"seed": -1}, "seed"),
    ({"pattern": "exec"}, "unknown pattern"),
    ({"centre": "elsewhere"}, "unknown centre"),
    ({"description": "x" * 100_000}, "description"),
    ({"extra": 1}, "unknown fields"),
])
def test_bad_key_fields_are_refused_before_anything_is_allocated(tmp_path, changes, reason):
    with pytest.raises(ValueError) as err:
        KeySet.load(key_file(tmp_path, [good_key(**changes)]))
    assert reason in str(err.value) and "\n" not in str(err.value)


def test_nan_is_refused_in_a_key_made_in_code_too():
    with pytest.raises(ValueError, match="finite"):
        TreeRingKey(id="k", radius=2, latent_shape=(4, 16, 16), ring_values=(1.0, float("nan")))


@pytest.mark.parametrize("content, reason", [
    ("[" * 100_000 + "]" * 100_000, "not a key file"),
    (json.dumps({"format": "treering-forensics/keys", "version": "1", "keys": []}), "not an integer"),
    (json.dumps({"format": "treering-forensics/keys", "version": 1, "keys": {}}), "no list of keys"),
    (json.dumps({"format": "treering-forensics/keys", "version": 1, "keys": ["k"]}), "not a JSON object"),
    (json.dumps({"format": "treering-forensics/keys", "version": 1,
                 "keys": [good_key(id=f"k{i}") for i in range(MAX_KEYS + 1)]}), f"at most {MAX_KEYS}"),
])
def test_bad_key_files_are_refused(tmp_path, content, reason):
    p = tmp_path / "keys.json"
    p.write_text(content)
    with pytest.raises(ValueError) as err:
        KeySet.load(p)
    assert reason in str(err.value)


def test_key_file_that_is_a_fifo_a_folder_or_not_text_does_not_hang(tmp_path):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        KeySet.load(fifo)                    # a blocking open would hang here
    with pytest.raises(ValueError, match="folder"):
        KeySet.load(tmp_path)
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="UTF-8"):
        KeySet.load(tmp_path / "bin.json")


def test_npy_key_with_an_absurd_header_is_refused_before_loading(tmp_path):
    name = "ab" * 32 + "_0_4_rand.npy"
    huge = tmp_path / name
    header = {"descr": "<c8", "fortran_order": False, "shape": (4, 100000, 100000)}
    with open(huge, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)      # 8e10 complex numbers declared, none present
    with pytest.raises(ValueError, match="header says"):
        import_reference_npy(huge)
    obj = tmp_path / ("cd" * 32 + "_0_4_rand.npy")
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="refused|header says"):
        import_reference_npy(obj)
    nan = tmp_path / ("ef" * 32 + "_0_4_rand.npy")
    arr = np.zeros((4, 16, 16), np.complex64)
    arr[0, 3, 3] = np.nan
    np.save(nan, arr)
    with pytest.raises(ValueError, match="NaN"):
        import_reference_npy(nan)


def test_bad_key_file_through_the_cli_is_one_line_and_exit_2(tmp_path, capsys, tiny_ddim_dir):
    bad = key_file(tmp_path, [good_key(ring_values=[1.0, float("nan"), 3.0, 4.0])])
    code, err = run_cli(["scan", str(SAMPLES / "key1_00500.png"), "--model", str(tiny_ddim_dir), "--keys", str(bad),
                         "--method", "encoder", "--quiet"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "finite" in err


def test_key_id_cannot_steer_generate_outside_its_folder(tmp_path, capsys, tiny_ddim_dir):
    keys = key_file(tmp_path, [good_key(id="../../escape")])
    code, err = run_cli(["generate", "--model", str(tiny_ddim_dir), "--keys", str(keys), "--key", "../../escape",
                         "--count", "1", "--steps", "2", "--out", str(tmp_path / "out"), "--quiet"], capsys)
    assert code == 2 and "not an identifier" in err
    assert not list(tmp_path.parent.glob("escape*"))


@pytest.mark.parametrize("shape", ["a,b,c", "4,32", "4,1e9,1e9", "4,100000,100000"])
def test_keys_new_with_a_bad_latent_shape(tmp_path, capsys, shape):
    code, err = run_cli(["keys", "new", "--count", "2", "--out", str(tmp_path / "k.json"), "--latent-shape", shape],
                        capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "k.json").exists()


# -- outputs: never an input, never a file the tool did not make ----------------------------------------

@pytest.fixture
def evidence(tmp_path) -> Path:
    e = tmp_path / "e.png"
    shutil.copyfile(SAMPLES / "key1_00500.png", e)
    return e


@pytest.mark.parametrize("flag", ["--json", "--report"])
def test_scan_never_writes_over_its_evidence(evidence, tmp_path, capsys, flag, tiny_ddim_dir):
    before = digest(evidence)
    for force in ([], ["--force"]):
        code, err = run_cli(["scan", str(evidence), "--model", str(tiny_ddim_dir), "--method", "encoder",
                             "--keys", str(key_file(tmp_path, [good_key()])), flag, str(evidence), "--quiet",
                             *force], capsys)
        assert code == 2 and "evidence is never overwritten" in err, err
        assert digest(evidence) == before


def test_scan_refuses_a_link_to_its_evidence(evidence, tmp_path, capsys, tiny_ddim_dir):
    link = tmp_path / "out.json"
    link.symlink_to(evidence)
    before = digest(evidence)
    code, err = run_cli(["scan", str(evidence), "--model", str(tiny_ddim_dir), "--method", "encoder", "--keys",
                         str(key_file(tmp_path, [good_key()])), "--json", str(link), "--force", "--quiet"], capsys)
    assert code == 2 and digest(evidence) == before


def test_scan_replaces_only_its_own_earlier_output_and_only_with_force(evidence, tmp_path, capsys, tiny_ddim_dir):
    keys = key_file(tmp_path, [good_key()])
    out = tmp_path / "scan.json"
    argv = ["scan", str(evidence), "--model", str(tiny_ddim_dir), "--method", "encoder", "--steps", "2",
            "--keys", str(keys), "--json", str(out), "--quiet"]
    assert run_cli(argv, capsys)[0] == 0
    code, err = run_cli(argv, capsys)
    assert code == 2 and "already exists" in err             # not silently replaced
    assert run_cli(argv + ["--force"], capsys)[0] == 0        # our own earlier scan: replaced on request
    other = tmp_path / "notes.json"
    other.write_text('{"mine": true}')
    code, err = run_cli(argv[:-3] + ["--json", str(other), "--quiet", "--force"], capsys)
    assert code == 2 and "not an output of this tool" in err and other.read_text() == '{"mine": true}'


def test_generate_never_replaces_evidence_in_its_folder(tmp_path, capsys, tiny_ddim_dir):
    folder = tmp_path / "evidence"
    folder.mkdir()
    victim = folder / "clean_00000.png"
    shutil.copyfile(SAMPLES / "clean_00900.png", victim)
    before = digest(victim)
    for force in ([], ["--force"]):
        code, err = run_cli(["generate", "--model", str(tiny_ddim_dir), "--no-watermark", "--count", "2", "--steps",
                             "2", "--out", str(folder), "--quiet", *force], capsys)
        assert code == 2 and "clean_00000.png" in err
        assert digest(victim) == before and sorted(p.name for p in folder.iterdir()) == ["clean_00000.png"]


def test_generate_refuses_a_foreign_manifest(tmp_path, capsys, tiny_ddim_dir):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "manifest.json").write_text("not json")
    code, err = run_cli(["generate", "--model", str(tiny_ddim_dir), "--no-watermark", "--count", "1", "--steps", "2",
                         "--out", str(folder), "--quiet"], capsys)
    assert code == 2 and "manifest" in err and (folder / "manifest.json").read_text() == "not json"
    assert not list(folder.glob("*.png"))


def test_keys_new_does_not_overwrite(tmp_path, capsys):
    target = tmp_path / "k.json"
    target.write_text("precious")
    code, err = run_cli(["keys", "new", "--count", "1", "--out", str(target)], capsys)
    assert code == 2 and target.read_text() == "precious"


# -- arguments: numbers are checked where they enter -----------------------------------------------------

@pytest.mark.parametrize("extra, reason", [
    (["--lr", "nan"], "finite"), (["--lr", "inf"], "finite"), (["--lr", "-1"], "above 0"),
    (["--steps", "0"], "between 1 and 1000"), (["--steps", "-1"], "between 1 and 1000"),
    (["--iterations", "100000000"], "between 0 and"), (["--fpr", "nan"], "finite"), (["--fpr", "1"], "below 1"),
    (["--guidance", "nan"], "finite"), (["--batch-size", "0"], "between 1"),
    (["--exact-iterations", "0"], "between 1"), (["--device", "banana"], "unknown device"),
])
def test_bad_numbers_and_devices_are_one_line_and_exit_2(tmp_path, capsys, tiny_ddim_dir, extra, reason):
    keys = key_file(tmp_path, [good_key()])
    out = tmp_path / "scan.json"
    code, err = run_cli(["scan", str(SAMPLES / "key1_00500.png"), "--model", str(tiny_ddim_dir), "--keys", str(keys),
                         "--method", "gradient-free", "--json", str(out), "--quiet", *extra], capsys)
    assert code == 2 and reason in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_cuda_requested_without_cuda(tmp_path, capsys, tiny_ddim_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, err = run_cli(["scan", str(SAMPLES / "key1_00500.png"), "--model", str(tiny_ddim_dir), "--keys",
                         str(key_file(tmp_path, [good_key()])), "--device", "cuda", "--quiet"], capsys)
    assert code == 2 and "no CUDA GPU" in err


@pytest.mark.parametrize("extra, reason", [(["--count", "0"], "between 1"), (["--seed", "-5"], "between 0"),
                                           (["--steps", "0"], "between 1")])
def test_generate_bad_numbers(tmp_path, capsys, tiny_ddim_dir, extra, reason):
    code, err = run_cli(["generate", "--model", str(tiny_ddim_dir), "--no-watermark", "--out", str(tmp_path / "o"),
                         "--quiet", *(["--count", "1"] if "--count" not in extra else []), *extra], capsys)
    assert code == 2 and reason in err, err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


# -- model folders ---------------------------------------------------------------------------------------

def tampered_model(tiny_ddim_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny_ddim_dir, folder)
    return folder


def test_weights_of_the_wrong_shape_are_refused_not_randomly_initialised(tiny_ddim_dir, tmp_path):
    from engine.model_loader import ModelLoadError, load_model

    folder = tampered_model(tiny_ddim_dir, tmp_path)
    cfg = json.loads((folder / "unet" / "config.json").read_text())
    cfg["block_out_channels"] = [16, 48]             # the stored tensors are for (16, 32)
    (folder / "unet" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="weights|size|shape"):
        load_model(str(folder), device="cpu")


def test_a_missing_tensor_is_refused(tiny_ddim_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    from engine.model_loader import ModelLoadError, load_model

    folder = tampered_model(tiny_ddim_dir, tmp_path)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(str(weights))
    tensors.pop(sorted(tensors)[0])
    save_file(tensors, str(weights))
    with pytest.raises(ModelLoadError, match="missing"):
        load_model(str(folder), device="cpu")


@pytest.mark.parametrize("config, reason", [("[1, 2]", "not a config"), ('{"beta_schedule": "squiggly"}', "noise schedule"),
                                            ('{"prediction_type": "telepathy"}', "prediction type")])
def test_bad_scheduler_configs(tiny_ddim_dir, tmp_path, config, reason):
    from engine.model_loader import ModelLoadError, load_model

    folder = tampered_model(tiny_ddim_dir, tmp_path)
    (folder / "scheduler" / "scheduler_config.json").write_text(config)
    with pytest.raises(ModelLoadError, match=reason):
        load_model(str(folder), device="cpu")


def test_model_kind_comes_from_the_declared_classes_not_any_text(tiny_ddim_dir, tiny_flow_dir, tmp_path):
    from engine.model_registry import get_spec

    folder = tampered_model(tiny_ddim_dir, tmp_path)
    index = json.loads((folder / "model_index.json").read_text())
    index["_comment"] = "made with FlowMatchEulerDiscreteScheduler in mind; not a RectifiedFlow"
    (folder / "model_index.json").write_text(json.dumps(index))
    assert get_spec(str(folder)).kind == "ddim"
    assert get_spec(str(tiny_flow_dir)).kind == "flow"


def test_a_diverging_inversion_is_a_failure_never_no_watermark(tiny_ddim_dir, tmp_path, monkeypatch):
    import torch

    from engine.analysis import AnalysisConfig, ImageFailure, analyze
    from engine.model_loader import LoadedModel, load_model
    from engine.treering import KeySet

    model = load_model(str(tiny_ddim_dir), device="cpu")
    original = LoadedModel.invert

    def diverging(self, denoiser, z0, config, progress, item=""):
        result = original(self, denoiser, z0, config, progress, item)
        z = result.z_t.clone()
        z[0, 0, 0, 0] = float("nan")
        return type(result)(z, result.iterations, result.final_residual, result.residual_trace, result.config)

    monkeypatch.setattr(LoadedModel, "invert", diverging)
    e = tmp_path / "e.png"
    shutil.copyfile(SAMPLES / "key1_00500.png", e)
    keys = KeySet.load(key_file(tmp_path, [good_key()]))
    run = analyze(model, keys, [e], AnalysisConfig.for_model(model, methods=("encoder",),
                                                              diffusion=AnalysisConfig.for_model(model).diffusion))
    assert not run.images and len(run.failures) == 1
    assert isinstance(run.failures[0], ImageFailure) and "non-finite" in run.failures[0].message
    assert torch.isfinite(torch.tensor(0.0))


@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_weight_file_that_is_a_device_or_a_pipe_does_not_hang(tiny_ddim_dir, tmp_path, kind):
    from engine.model_loader import ModelLoadError, load_model

    folder = tampered_model(tiny_ddim_dir, tmp_path)
    extra = folder / "unet" / "extra.safetensors"
    if kind == "dev-zero":
        extra.symlink_to("/dev/zero")
    else:
        os.mkfifo(extra)
    with pytest.raises(ModelLoadError, match="not a regular file"):
        load_model(str(folder), device="cpu")


def test_non_finite_numbers_do_not_crash_the_report_writer(tiny_ddim_dir, tmp_path):
    """A recorded run with NaN in z_T and the scores (e.g. from an old case file) once killed the process with
    SIGSEGV inside Qt; it must write the report. Run in a subprocess so that a crash fails the test."""
    import subprocess
    import sys

    code = f"""
import numpy as np, shutil
from dataclasses import replace
from engine.analysis import AnalysisConfig, analyze, ImageAnalysis
from engine.model_loader import load_model
from engine.treering import new_random_keys
from forensics_app.report import write_report
m = load_model({str(tiny_ddim_dir)!r}, device="cpu")
keys = new_random_keys(2, latent_shape=m.latent_shape, radius=3, seed=1)
shutil.copyfile({str(SAMPLES / "key1_00500.png")!r}, {str(tmp_path / "e.png")!r})
run = analyze(m, keys, [{str(tmp_path / "e.png")!r}], AnalysisConfig.for_model(m, methods=("encoder",)))
a = run.images[0]; r = a.methods["encoder"]
bad = replace(r, z_t=np.full_like(r.z_t, np.nan), z0_residual=float("nan"), pixel_psnr_db=float("inf"),
              scores=tuple(replace(s, l1=float("nan"), p_value=float("nan")) for s in r.scores))
write_report(replace(run, images=(ImageAnalysis(a.evidence, {{"encoder": bad}}),)), {str(tmp_path / "r.pdf")!r})
print("written")
"""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    data = json.loads((tmp_path / "r.json").read_text())          # the twin stays strict JSON
    assert "NaN" not in (tmp_path / "r.json").read_text().replace('"NaN"', "")
    assert data["run"]["images"][0]["methods"]["encoder"]["scores"]


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys, where no file can be created")
def test_an_unwritable_output_is_one_line_naming_it(tmp_path, capsys, tiny_ddim_dir):
    code, err = run_cli(["scan", str(SAMPLES / "key1_00500.png"), "--model", str(tiny_ddim_dir), "--keys",
                         str(key_file(tmp_path, [good_key()])), "--method", "encoder", "--steps", "2",
                         "--json", "/sys/treering-test.json", "--quiet"], capsys)
    assert code == 2 and "/sys/treering-test.json: cannot be written" in err and len(err.strip().splitlines()) == 1


def test_a_case_is_never_saved_over_its_evidence(tiny_ddim_dir, tmp_path):
    from engine.analysis import AnalysisConfig, analyze
    from engine.case_file import save_case
    from engine.model_loader import load_model
    from engine.output_paths import OutputRefused

    e = tmp_path / "e.png"
    shutil.copyfile(SAMPLES / "key1_00500.png", e)
    before = digest(e)
    model = load_model(str(tiny_ddim_dir), device="cpu")
    run = analyze(model, KeySet.load(key_file(tmp_path, [good_key()])), [e],
                  AnalysisConfig.for_model(model, methods=("encoder",)))
    with pytest.raises(OutputRefused, match="evidence"):
        save_case(run, e)
    assert digest(e) == before


def test_scan_json_is_strict(tmp_path, capsys, tiny_ddim_dir):
    out = tmp_path / "scan.json"
    code, _ = run_cli(["scan", str(SAMPLES / "key1_00500.png"), "--model", str(tiny_ddim_dir), "--keys",
                       str(key_file(tmp_path, [good_key()])), "--method", "encoder", "--steps", "2", "--json",
                       str(out), "--quiet"], capsys)
    assert code == 0

    def refuse(token):
        raise AssertionError(f"bare {token} in the scan JSON")

    data = json.loads(out.read_text(), parse_constant=refuse)
    assert data["images"][0]["methods"]["encoder"]["inversion_residual"] is None     # naive DDIM has none


def test_json_writer_refuses_non_finite_numbers(tmp_path):
    from engine.atomic_write import write_json_atomic

    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "x.json", {"v": float("nan")})
    assert not (tmp_path / "x.json").exists()
