"""The files shipped with the tool (demo models, key sets, samples), found as package data.

`resources/` is installed as the package `treering_resources` (pyproject's package-dir), so a wheel, an
editable install and a bundle find it through `importlib.resources` from any working directory. A source
checkout that was never installed (PYTHONPATH=.) falls back to the folder beside `engine/`.
"""

from __future__ import annotations

from importlib import resources as importlib_resources
from pathlib import Path

PACKAGE = "treering_resources"


def resources_root() -> Path:
    try:
        root = importlib_resources.files(PACKAGE)
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "resources"
    # Model loading needs real files (safetensors are memory-mapped): the package is never zipped.
    return Path(str(root))


def resource_path(*parts: str) -> Path:
    return resources_root().joinpath(*parts)


def bundled_model_folder(name: str) -> Path:
    return resource_path("models", name)


def bundled_keys(file_name: str) -> Path:
    return resource_path("keys", file_name)
