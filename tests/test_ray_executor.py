"""Scans on Ray (engine.ray_executor) against a real local Ray cluster started for this module (2 CPUs):
the same results as a local scan, a killed worker's batch retried and then reported, a cancel that keeps what
finished, and a resumed scan that repeats no work. Settings are tiny (5 iterations, 5 steps) to keep the
module near a minute; each Ray scan starts its own actors, which import torch and load the demo model."""

from __future__ import annotations

import json
import os
import shutil
import signal

import numpy as np
import pytest
import torch
from PIL import Image

from engine.analysis import run_to_json
from engine.executors import LocalExecutor, ScanJob
from engine.progress import TaskState
from engine.ray_executor import RayExecutor, ScanWorker
from tests.test_scan_records import SINGLE, comparable, samples
from tests.conftest import RESOURCES

pytestmark = pytest.mark.slow      # a Ray cluster and several actor start-ups: about 2.5 min on the shared 2-core machine
MANIFEST = json.loads((RESOURCES / "samples" / "manifest.json").read_text())


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, logging_level="ERROR")
    yield ray
    ray.shutdown()


def local_one_thread(model, keys, paths, options=SINGLE):
    """A local scan with Ray's numerics: an actor given one CPU runs torch on one thread (thread count changes
    float rounding, and so would the bits of z_T)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return LocalExecutor(model).run(ScanJob("demo", keys, options, tuple(paths)))
    finally:
        torch.set_num_threads(threads)


def expected_key(path: str) -> str | None:
    return MANIFEST["images"][os.path.basename(path)]["key"]


def test_a_ray_scan_gives_the_same_results_as_a_local_scan(ray_cluster, demo_model, demo_keys, tmp_path):
    made = tmp_path / "made"
    made.mkdir()
    sample = Image.open(RESOURCES / "samples" / "key2_00600.png")
    sample.resize((96, 80)).save(made / "resized.jpg", quality=90)          # resized and centre-cropped at intake
    sample.convert("L").save(made / "grey.png")                             # greyscale → RGB at intake
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(made / "noise.png")
    (made / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a PNG")  # a failure, with its hash
    paths = samples() + tuple(str(made / n) for n in ("resized.jpg", "grey.png", "noise.png", "broken.png"))
    executor = RayExecutor(workers=2)
    on_ray = executor.run(ScanJob("demo", demo_keys, SINGLE, paths, records=str(tmp_path / "records")))
    local = local_one_thread(demo_model, demo_keys, paths)
    assert comparable(run_to_json(on_ray)) == comparable(run_to_json(local))   # every number, bit for bit
    assert len(on_ray.images) == 11 and [f.path for f in on_ray.failures] == [str(made / "broken.png")]
    assert on_ray.failures[0].sha256 == local.failures[0].sha256 is not None
    assert "2 worker(s)" in on_ray.notes[0] and executor.retried_batches == 0
    for a in on_ray.images[:8]:         # the bundled samples' known keys (and no key for the clean ones)
        assert a.methods["gradient-free"].verdict.predicted_key == expected_key(a.evidence.path), a.evidence.path
    assert len((tmp_path / "records" / "records.jsonl").read_text().splitlines()) == 12


def test_a_killed_worker_loses_its_batch_which_is_retried_elsewhere_then_reported(ray_cluster, demo_keys, tmp_path):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for name, source in (("a.png", "key1_00500.png"), ("once.png", "key3_00700.png"), ("poison.png", "clean_00900.png"),
                         ("b.png", "key2_00601.png")):
        shutil.copy(RESOURCES / "samples" / source, evidence / name)
    marker = str(tmp_path / "killed-once")

    class KilledWorker(ScanWorker):
        """Killed (SIGKILL, as the kernel's OOM killer does) on the first batch holding once.png and on every
        batch holding poison.png."""

        def analyze(self, paths):
            first_time = False
            if any(p.endswith("once.png") for p in paths):
                try:
                    os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
                    first_time = True
                except FileExistsError:
                    pass
            if first_time or any(p.endswith("poison.png") for p in paths):
                os.kill(os.getpid(), signal.SIGKILL)
            return super().analyze(paths)

    paths = tuple(str(evidence / n) for n in ("a.png", "once.png", "poison.png", "b.png"))
    executor = RayExecutor(workers=2, max_attempts=2, worker_class=KilledWorker)
    run = executor.run(ScanJob("demo", demo_keys, SINGLE, paths))
    predicted = {os.path.basename(a.evidence.path): a.methods["gradient-free"].verdict.predicted_key for a in run.images}
    assert predicted == {"a.png": "key1", "once.png": "key3", "b.png": "key2"}    # once.png: retried, analysed
    [failure] = run.failures                                                       # poison.png: never dropped
    assert failure.path.endswith("poison.png") and "stopped or failed 2 time(s)" in failure.message
    from engine.intake import sha256_file

    assert failure.sha256 == sha256_file(RESOURCES / "samples" / "clean_00900.png")
    assert executor.retried_batches == 2 and executor.workers_started == 2 + 3     # a replacement per death
    assert "2 batch(es) sent again" in run.notes[0]


def test_a_cancelled_ray_scan_keeps_what_finished_and_a_rerun_repeats_no_work(ray_cluster, demo_model, demo_keys,
                                                                             tmp_path):
    paths = samples(4)
    folder = str(tmp_path / "records")
    state = TaskState()
    first = RayExecutor(workers=1).run(ScanJob("demo", demo_keys, SINGLE, paths, records=folder), progress=state,
                                       on_result=lambda r: state.cancel())
    assert first.cancelled and 1 <= len(first.images) < 4
    records = tmp_path / "records" / "records.jsonl"
    assert len(records.read_text().splitlines()) == len(first.images)
    resumed = RayExecutor(workers=1).run(ScanJob("demo", demo_keys, SINGLE, paths, records=folder))
    done_paths = [json.loads(x)["path"] for x in records.read_text().splitlines()]
    assert sorted(done_paths) == sorted(paths)                                     # each image analysed once
    assert f"{len(first.images)} image(s) taken from earlier records" in resumed.notes[1]
    assert comparable(run_to_json(resumed)) == comparable(run_to_json(local_one_thread(demo_model, demo_keys, paths)))


def test_the_window_submits_to_a_ray_cluster_and_the_case_records_where_it_ran(ray_cluster, qtbot, tmp_path,
                                                                             monkeypatch):
    from engine.case_file import load_case, save_case
    from engine.options import AnalysisOptions
    from forensics_app.gui.evidence_list import Status
    from forensics_app.gui.executor_setting import ray_address, set_ray_address
    from forensics_app.gui.main_window import MainWindow

    monkeypatch.setenv("TREERING_FORENSICS_CONFIG", str(tmp_path / "gui-config"))
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    set_ray_address(w, " auto ")          # this process is already connected: the run uses the module's cluster
    assert ray_address(w.settings) == "auto"
    w.model_chooser.select("demo")
    w.set_analysis_settings(AnalysisOptions(methods=("gradient-free",), iterations=5, steps=5, batch_size=1,
                                            device="cpu"))
    paths = samples()[2:4]                # key1_00500, key1_00501
    w.add_paths(paths)
    events = []
    w.session.progress.connect(events.append)
    with qtbot.waitSignal(w.session.finished, timeout=240_000):
        assert w.run_analysis()
    run = w.last_run
    assert run is not None and not run.cancelled and "Ray (the Ray cluster at auto), 2 worker(s)" in run.notes[0]
    assert [i.status for i in w.evidence.items] == [Status.DONE, Status.DONE]
    assert all(i.analysis.methods["gradient-free"].verdict.predicted_key == "key1" for i in w.evidence.items)
    assert all(abs(i.analysis.evidence.pixels).sum() > 0 for i in w.evidence.items)   # shown as analysed
    assert any(e.stage.startswith("analysis on 2 Ray worker(s)") for e in events)     # progress followed
    case = save_case(run, tmp_path / "case.trcase")
    assert load_case(case).run.notes == run.notes                                     # where it ran, kept
    w.close()


def test_the_cli_scans_on_ray_and_a_local_rerun_resumes_from_its_records(ray_cluster, tmp_path, capsys):
    from forensics_app.cli import main

    paths = list(samples()[:2])
    fast = ["--iterations", "5", "--steps", "5", "--batch-size", "1", "--records", str(tmp_path / "rec")]
    assert main(["scan", *paths, "--workers", "1", *fast]) == 2            # Ray options need --executor ray
    assert "--workers only apply with --executor ray" in capsys.readouterr().err
    assert main(["scan", *paths, "--executor", "ray", "--workers", "1", "--json", str(tmp_path / "ray.json"),
                 "--quiet", *fast]) == 0
    assert main(["scan", *paths, "--json", str(tmp_path / "local.json"), "--quiet", *fast]) == 0
    on_ray, local = (json.loads((tmp_path / n).read_text()) for n in ("ray.json", "local.json"))
    assert on_ray["notes"][0].startswith("executor: Ray") and "1 worker(s)" in on_ray["notes"][0]
    assert local["notes"] == [f"2 image(s) taken from earlier records in {tmp_path / 'rec'} (same SHA-256 and "
                              "settings hash), not re-analysed"]                   # the records were shared
    assert comparable(on_ray) == comparable(local)
    assert len((tmp_path / "rec" / "records.jsonl").read_text().splitlines()) == 2
