"""packaging/compare_scans.py (the smoke test's comparison of scan JSONs) agrees on equal scans and names
each kind of difference."""

import copy
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("compare_scans", REPO / "packaging" / "compare_scans.py")
compare_scans = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_scans)

SCAN = {"model_weights_sha256": {"unet/w.safetensors": "ab" * 32}, "failures": [], "images": [
    {"path": "/a/key1_00500.png", "sha256": "11" * 32, "methods": {"gradient-free": {
        "predicted_key": "key1", "nearest_key": "key1",
        "scores": {"key1": {"l1": 20.5, "p_value": 3e-30}, "key2": {"l1": 24.0, "p_value": 1e-20}}}}},
    {"path": "/a/clean_00900.png", "sha256": "22" * 32, "methods": {"gradient-free": {
        "predicted_key": None, "nearest_key": "key2",
        "scores": {"key1": {"l1": 45.0, "p_value": 0.4}, "key2": {"l1": 44.0, "p_value": 0.3}}}}}]}


def problems(other):
    return compare_scans.compare(SCAN, other, 1e-5, 1e-3)[0]


def test_equal_scans_from_other_folders_agree():
    other = copy.deepcopy(SCAN)
    for image in other["images"]:
        image["path"] = "/elsewhere/" + Path(image["path"]).name
    other["images"][0]["methods"]["gradient-free"]["scores"]["key1"]["l1"] *= 1 + 1e-7
    found, lines, worst_l1, _ = compare_scans.compare(SCAN, other, 1e-5, 1e-3)
    assert found == [] and len(lines) == 2 and 0 < worst_l1 < 1e-6


def test_each_difference_is_named():
    other = copy.deepcopy(SCAN)
    gf = other["images"][0]["methods"]["gradient-free"]
    gf["predicted_key"] = None
    gf["scores"]["key2"]["l1"] = 24.001
    gf["scores"]["key1"]["p_value"] = 3.01e-30
    other["images"][1]["sha256"] = "33" * 32
    found = problems(other)
    assert any("key1_00500.png gradient-free: predicted_key key1 vs None" in p for p in found)
    assert any("key2: L1 24.0 vs 24.001" in p for p in found)
    assert any("key1: p 3e-30 vs 3.01e-30" in p for p in found)
    assert any("clean_00900.png: sha256" in p for p in found)


def test_missing_image_weights_and_non_finite_statistics_are_differences():
    other = copy.deepcopy(SCAN)
    other["images"].pop()
    other["model_weights_sha256"] = {}
    other["images"][0]["methods"]["gradient-free"]["scores"]["key1"]["l1"] = None
    found = problems(other)
    assert any("different images: ['clean_00900.png']" in p for p in found)
    assert any("weight hashes differ" in p for p in found)
    assert any("not finite" in p for p in found)
