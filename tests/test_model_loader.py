"""Model loading: offline, safetensors only, clear refusals."""

import shutil

import pytest
import torch

from engine.model_loader import ModelLoadError, load_model, weight_hashes
from engine.model_registry import all_model_specs, get_spec, locate, register_user_model


def test_loads_a_diffusers_folder_and_reads_geometry(tiny_ddim_dir):
    m = load_model(str(tiny_ddim_dir), device="cpu")
    assert m.kind == "ddim" and m.latent_shape == (4, 16, 16) and m.image_size == 32
    assert m.device.type == "cpu" and not m.is_text_conditioned
    assert load_model(str(tiny_ddim_dir), device="cpu") is m          # cached, not reloaded per call
    hashes = weight_hashes(m)
    assert set(hashes) == {"vae/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.safetensors"}
    assert all(len(h) == 64 for h in hashes.values())
    import hashlib

    for rel, h in hashes.items():          # recorded at load time, of the files themselves
        assert h == hashlib.sha256((tiny_ddim_dir / rel).read_bytes()).hexdigest()


def test_flow_kind_is_detected_from_the_scheduler(tiny_flow_dir):
    assert get_spec(str(tiny_flow_dir)).kind == "flow"


def test_pickle_weights_are_refused(tiny_ddim_dir, tmp_path):
    bad = tmp_path / "pickled"
    shutil.copytree(tiny_ddim_dir, bad)
    weights = bad / "unet" / "diffusion_pytorch_model.safetensors"
    weights.rename(bad / "unet" / "diffusion_pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="pickle"):
        load_model(str(bad), device="cpu")
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not loaded")
    with pytest.raises(ModelLoadError, match="pickle"):
        load_model(str(ckpt), device="cpu")


def test_missing_subfolder_and_shape_mismatch_are_reported(tiny_ddim_dir, tmp_path):
    broken = tmp_path / "no-unet"
    shutil.copytree(tiny_ddim_dir, broken)
    shutil.rmtree(broken / "unet")
    with pytest.raises(ModelLoadError, match="unet/ subfolder"):
        load_model(str(broken), device="cpu")
    mismatch = tmp_path / "mismatch"
    shutil.copytree(tiny_ddim_dir, mismatch)
    cfg = (mismatch / "unet" / "config.json").read_text().replace('"in_channels": 4', '"in_channels": 3')
    (mismatch / "unet" / "config.json").write_text(cfg)
    with pytest.raises(ModelLoadError):
        load_model(str(mismatch), device="cpu")


def test_missing_real_model_says_where_it_looked_and_how_to_provide_it(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("TREERING_SD21_PATH", raising=False)
    loc = locate("sd21")
    assert not loc.found
    with pytest.raises(ModelLoadError) as exc:
        load_model("sd21", device="cpu")
    msg = str(exc.value)
    assert "stabilityai/stable-diffusion-2-1-base" in msg and "TREERING_SD21_PATH" in msg and "offline" in msg


def test_env_var_and_registered_folders(tiny_ddim_dir, monkeypatch):
    monkeypatch.setenv("TREERING_SD21_PATH", str(tiny_ddim_dir))
    assert locate("sd21").path == tiny_ddim_dir
    register_user_model("my-model", tiny_ddim_dir)
    assert "my-model" in [s.id for s in all_model_specs()]
    assert load_model("my-model", device="cpu").latent_shape == (4, 16, 16)


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model"):
        get_spec("no-such-model")


def test_a_built_in_id_always_means_the_built_in_model(tmp_path, tiny_ddim_dir, monkeypatch):
    """Neither a user entry under "demo" nor a folder called demo in the working directory replaces the bundled
    model (the self-test once found a registered "demo" winning)."""
    import json

    from engine import model_registry

    monkeypatch.setattr(model_registry, "USER_MODELS_FILE", tmp_path / "models.json")   # this test's own
    with pytest.raises(ValueError, match="built-in"):
        register_user_model("demo", tiny_ddim_dir)
    model_registry.USER_MODELS_FILE.write_text(json.dumps({"demo": str(tiny_ddim_dir)}))     # edited by hand
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "model_index.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    loc = locate("demo")
    assert loc.path is not None and loc.path.resolve() == model_registry.bundled_model_folder("demo").resolve()
