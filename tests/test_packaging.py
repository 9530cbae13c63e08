"""A plain (non-editable) install finds its demo models and keys from any directory."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for top in ("engine", "forensics_app")
             for p in (REPO / top).rglob("__init__.py")}
    assert found <= listed, f"package folders missing from pyproject's packages: {sorted(found - listed)}"


@pytest.mark.slow
def test_non_editable_install_runs_from_any_directory(tmp_path):
    # Built from a copy: setuptools writes build/ and *.egg-info/ beside the sources, and tests never write
    # into the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for name in ("engine", "forensics_app", "resources"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "site"
    build = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                            "--disable-pip-version-check", "--target", str(target), str(source)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import engine, json; from engine.model_registry import locate; from engine.model_loader import load_model;"
            "from engine.treering import KeySet; loc = locate('demo'); m = load_model('demo', device='cpu');"
            "keys = KeySet.load(m.spec.default_keys_path);"
            "print(json.dumps({'engine': engine.__file__, 'model': str(loc.path), 'keys': len(keys)}))")
    # The installed copy comes first on the path; the checkout is not the working directory. (The editable
    # install's finder sits after the path finder, so it cannot shadow the installed copy.)
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    import json

    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["engine"].startswith(str(target)) and out["model"].startswith(str(target))
    assert out["keys"] == 3

