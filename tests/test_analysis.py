"""The end-to-end analysis call: batching, failures, cancel, and real verdicts on the demo model."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.analysis import AnalysisConfig, ImageAnalysis, ImageFailure, analyze, run_to_json
from engine.decoder_inversion import DecoderInversionConfig
from engine.diffusion_inversion import DiffusionInversionConfig
from engine.generation import GenerationConfig, generate_reference_set
from engine.model_loader import load_model
from engine.progress import TaskState
from engine.treering import new_random_keys


def fast_config(model, **kw):
    base = AnalysisConfig.for_model(model)
    return replace(base, gradient_free=DecoderInversionConfig(iterations=3),
                   gradient_based=DecoderInversionConfig("gradient-based", iterations=3),
                   diffusion=replace(base.diffusion, steps=5), **kw)


@pytest.fixture(scope="module")
def tiny_case(tiny_ddim_dir, tmp_path_factory):
    model = load_model(str(tiny_ddim_dir), device="cpu")
    keys = new_random_keys(2, latent_shape=model.latent_shape, radius=4, seed=0)
    folder = tmp_path_factory.mktemp("evidence")
    generate_reference_set(model, keys.keys[0], 3, folder, config=GenerationConfig(steps=5))
    return model, keys, sorted(folder.glob("*.png"))


def test_failures_are_reported_and_the_rest_analysed(tiny_case, tmp_path):
    model, keys, paths = tiny_case
    bad = tmp_path / "bad.png"
    bad.write_text("<html>not an image</html>")
    seen = []
    run = analyze(model, keys, [paths[0], bad, paths[1]], fast_config(model, methods=("encoder",)),
                  on_result=seen.append)
    # as they finish: the first image alone is the first batch, then the unreadable file, then the next batch
    assert [type(r) for r in seen] == [ImageAnalysis, ImageFailure, ImageAnalysis]
    assert len(run.images) == 2 and "bad.png" in run.failures[0].message
    assert not run.cancelled and run.software["torch"]
    data = run_to_json(run)
    json.dumps(data)          # plain JSON types only
    assert data["images"][0]["methods"]["encoder"]["verdict"]["keys_tested"] == 2


def test_cancel_keeps_finished_images(tiny_case):
    model, keys, paths = tiny_case
    state = TaskState()
    done = []

    def on_result(r):
        done.append(r)
        state.cancel()        # stop right after the first image

    run = analyze(model, keys, paths, fast_config(model, batch_size=1), progress=state, on_result=on_result)
    assert run.cancelled and len(run.images) == 1 and run.images[0] is done[0]


def test_every_method_gives_scores_for_every_key(tiny_case):
    model, keys, paths = tiny_case
    run = analyze(model, keys, paths[:2], fast_config(model))
    for a in run.images:
        assert list(a.methods) == ["encoder", "gradient-free", "gradient-based"]
        for r in a.methods.values():
            assert [s.key_id for s in r.scores] == list(keys.ids)
            assert r.z_t.shape == model.latent_shape and r.fourier_magnitude().shape == model.latent_shape


def test_gpu_out_of_memory_is_a_clear_per_image_failure(tiny_case, monkeypatch):
    import torch

    import engine.analysis as analysis

    model, keys, paths = tiny_case

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(analysis, "analyze_batch", out_of_memory)
    run = analyze(model, keys, paths[:2], fast_config(model))
    assert len(run.failures) == 2 and "--precision fp16" in run.failures[0].message


def test_demo_samples_watermark_detected_and_clean_ones_not(demo_model, demo_keys, demo_samples):
    """The bundled samples, scanned like a user would (default settings, gradient-free): every
    clean sample is flagged at FPR 0.01 (Bonferroni over 3 keys) and the watermarked ones are. The demo
    model's weak point is that its pipeline attenuates the rings to ≈ 30–50 % (measured), so one of six is
    missed and attribution among dec-inv's similar keys is poor: pinned at what was measured (5/6 detected,
    3/6 attributed), not at perfect — see the notes in resources/models/demo/README.md."""
    manifest = json.loads((demo_samples / "manifest.json").read_text())["images"]
    paths = [demo_samples / f for f in sorted(manifest)]
    run = analyze(demo_model, demo_keys, paths, AnalysisConfig.for_model(demo_model, methods=("gradient-free",)))
    assert not run.failures
    detected = attributed = 0
    for a in run.images:
        truth = manifest[Path(a.evidence.path).name]["key"]
        verdict = a.methods["gradient-free"].verdict
        if truth is None:
            assert not verdict.detected, (a.evidence.path, verdict.finding())
        else:
            detected += verdict.detected
            attributed += verdict.predicted_key == truth
    assert detected >= 5 and attributed >= 3


def test_defaults_use_the_fastest_precision_of_the_device(tiny_case):
    import torch

    model = tiny_case[0]
    assert AnalysisConfig.for_model(model).gradient_free.precision == "fp32"          # CPU: half is ~60x slower
    on_gpu = replace(model, device=torch.device("cuda"))                                # only the device is read
    assert AnalysisConfig.for_model(on_gpu).gradient_free.precision == "fp16"
    assert AnalysisConfig.for_model(on_gpu).gradient_based.precision == "fp32"         # autograd path stays fp32


def test_gradient_free_defaults_come_from_the_model_spec(tiny_case):
    from engine.options import gradient_free_config
    from engine.model_registry import get_spec

    model = tiny_case[0]                                   # a user folder: the papers' Adam
    gf = AnalysisConfig.for_model(model).gradient_free
    assert (gf.optimizer, gf.effective_lr, gf.schedule) == ("adam", 0.01, "scheduled")
    for measured in ("demo", "demo-flow"):                 # bundled: measured better than Adam on their VAE
        gf = AnalysisConfig.for_model(replace(model, spec=get_spec(measured))).gradient_free
        assert (gf.optimizer, gf.effective_lr, gf.schedule) == ("forward-step", 0.05, "fixed")
    for papers in ("sd21", "instaflow"):                   # the papers' setting where nothing else was measured
        assert AnalysisConfig.for_model(replace(model, spec=get_spec(papers))).gradient_free.optimizer == "adam"
    demo = replace(model, spec=get_spec("demo"))           # only the spec is read
    # A step tuned for the model's optimiser is not carried over to another optimiser ...
    adam = gradient_free_config(demo, optimizer="adam")
    assert (adam.effective_lr, adam.schedule) == (0.01, "scheduled")
    # ... but the user's own step or schedule is, and naming the model's optimiser changes nothing.
    assert gradient_free_config(demo, lr=0.02).optimizer == "forward-step"
    assert gradient_free_config(demo, lr=0.02).schedule == "fixed"
    assert gradient_free_config(demo, optimizer="forward-step") == gf
    assert gradient_free_config(demo, schedule="scheduled", iterations=7).iterations == 7
    assert gradient_free_config(demo, precision="fp16").precision == "fp16"


def test_first_results_arrive_before_a_whole_batch(tiny_case):
    """Batches grow 1, 2, 4 …: with batch size 8, the first image is finished before the second is read, so a
    cancel early in a run keeps it (the window once showed "0 of 8" until the whole batch was done)."""
    from engine.analysis import AnalysisConfig, analyze
    from engine.progress import Phase, TaskState

    model, keys, paths = tiny_case
    paths = (list(paths) * 4)[:7]
    finished_when_read: list[int] = []
    results: list = []
    state = TaskState(lambda e: finished_when_read.append(len(results)) if e.phase is Phase.READING_EVIDENCE else None)
    config = AnalysisConfig.for_model(model, methods=("encoder",), batch_size=8)
    run = analyze(model, keys, paths, config, progress=state, on_result=results.append)
    assert len(run.images) == 7
    assert finished_when_read == [0, 1, 1, 3, 3, 3, 3]          # batches of 1, 2, 4 (then what is left)
