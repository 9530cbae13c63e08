"""Shared fixtures: headless Qt, an isolated user config, small random models, the bundled demo model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import engine  # noqa: E402,F401  (before torch: sets the OpenMP wait policy, see engine/__init__.py)

REPO = Path(__file__).resolve().parent.parent
RESOURCES = REPO / "resources"


@pytest.fixture(autouse=True)
def _isolated_user_config(tmp_path_factory, monkeypatch):
    """Registered model folders and GUI settings go to a temporary place, never the developer's home."""
    import engine.model_registry as registry

    cfg = tmp_path_factory.getbasetemp() / "user-config"
    cfg.mkdir(exist_ok=True)
    monkeypatch.setattr(registry, "USER_MODELS_FILE", cfg / "models.json")
    monkeypatch.setenv("TREERING_FORENSICS_CONFIG", str(cfg))


@pytest.fixture(scope="session")
def tiny_ddim_dir(tmp_path_factory) -> Path:
    from tests.tiny_models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-ddim", kind="ddim")


@pytest.fixture(scope="session")
def tiny_flow_dir(tmp_path_factory) -> Path:
    from tests.tiny_models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-flow", kind="flow")


@pytest.fixture(scope="session")
def demo_model():
    from engine.model_loader import load_model

    return load_model("demo", device="cpu")


@pytest.fixture(scope="session")
def demo_flow_model():
    from engine.model_loader import load_model

    return load_model("demo-flow", device="cpu")


@pytest.fixture(scope="session")
def demo_keys():
    from engine.treering import KeySet

    return KeySet.load(RESOURCES / "keys" / "demo.json")


@pytest.fixture(scope="session")
def demo_samples() -> Path:
    return RESOURCES / "samples"
