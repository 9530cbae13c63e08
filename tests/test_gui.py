"""The desktop window (pytest-qt, offscreen): drop → run → verdicts, cancel, bad files, the comparison
and batch views, event-loop latency during a run, settings, and screenshots for docs/screenshots/.

Most tests use a random tiny model (32×32 images, seconds per run; its verdicts are meaningless) so the
pipeline is exercised without the bundled weights; the verdict test on generated samples uses the demo
model and is skipped while it is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPoint, QPointF, QSize, Qt, QTimer, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO / "docs" / "screenshots"
FAST = dict(iterations=10, steps=10, batch_size=8)


# -- fixtures ---------------------------------------------------------------------------------------

@pytest.fixture
def gui_config(tmp_path, monkeypatch) -> Path:
    """A fresh settings folder per test (the engine's models.json stays where conftest put it)."""
    cfg = tmp_path / "gui-config"
    cfg.mkdir()
    monkeypatch.setenv("TREERING_FORENSICS_CONFIG", str(cfg))
    return cfg


@pytest.fixture
def window(qtbot, gui_config):
    from forensics_app.gui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    yield w
    if w.controller.running:
        w.controller.shutdown()


@pytest.fixture(scope="session")
def tiny_keys_file(tmp_path_factory) -> Path:
    from engine.treering import new_random_keys

    path = tmp_path_factory.mktemp("keys") / "tiny-keys.json"
    new_random_keys(3, latent_shape=(4, 16, 16), radius=4, seed=7).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_samples(tiny_ddim_dir, tiny_keys_file, tmp_path_factory) -> Path:
    """Two images per key, made by the CLI's `generate` (so a manifest.json is written beside them)."""
    from forensics_app.cli import main

    out = tmp_path_factory.mktemp("tiny-samples")
    for n, key in enumerate(("key1", "key2", "key3")):
        assert main(["generate", "--model", str(tiny_ddim_dir), "--keys", str(tiny_keys_file), "--key", key,
                     "--count", "2", "--seed", str(100 * n), "--steps", "10", "--out", str(out), "--quiet",
                     "--device", "cpu"]) == 0
    return out


def use_tiny(window, tiny_ddim_dir, tiny_keys_file, **settings):
    from forensics_app.gui.settings import AnalysisSettings

    assert window.add_model_folder(str(tiny_ddim_dir)) is not None
    window.import_key_files([str(tiny_keys_file)])
    window.set_analysis_settings(AnalysisSettings(**{**FAST, "device": "cpu", **settings}))


def drop(window, paths) -> None:
    """Real drag-enter and drop events with file URLs, handed to the window's handlers (Qt delivers drop
    events only inside a platform drag, which the offscreen platform cannot start)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert event.isAccepted()


def run_and_wait(qtbot, window, timeout_s: float = 180) -> None:
    with qtbot.waitSignal(window.controller.finished, timeout=int(timeout_s * 1000)):
        assert window.run_analysis()


def demo_available() -> bool:
    from engine.model_registry import locate

    return locate("demo").found


def demo_samples_folder(tmp_path_factory) -> Path:
    """The bundled samples if they are there, else one image per demo key plus one without a watermark,
    generated with the CLI (which writes the manifest.json beside them)."""
    bundled = REPO / "resources" / "samples"
    if (bundled / "manifest.json").is_file():
        return bundled
    from forensics_app.cli import main

    out = tmp_path_factory.mktemp("demo-samples")
    for n, key in enumerate(("key1", "key2", "key3", None)):
        which = ["--key", key] if key else ["--no-watermark"]
        assert main(["generate", "--model", "demo", *which, "--count", "1", "--seed", str(1000 + n),
                     "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    return out


def manifest_keys(folder: Path) -> dict:
    data = json.loads((folder / "manifest.json").read_text())
    return {name: entry["key"] for name, entry in data["images"].items()}


# -- drop → run → results ---------------------------------------------------------------------------

def test_drop_run_completes_on_tiny_model(qtbot, window, tiny_ddim_dir, tiny_keys_file, tiny_samples):
    from forensics_app.gui.evidence_list import Status

    use_tiny(window, tiny_ddim_dir, tiny_keys_file)
    drop(window, [tiny_samples])
    assert len(window.evidence.items) == 6
    qtbot.waitUntil(lambda: all(i.sha256 for i in window.evidence.items), timeout=20000)   # previews hashed
    run_and_wait(qtbot, window)
    assert all(i.status == Status.DONE for i in window.evidence.items)
    for item in window.evidence.items:
        assert set(item.analysis.methods) == {"encoder", "gradient-free"}
        assert item.sha256 == item.analysis.evidence.sha256
        assert window.evidence.data(window.evidence.index(window.evidence.items.index(item), 1)) == item.sha256[:12]
    window.select_item(window.evidence.items[0].path)
    rv = window.result_view
    r = rv.current_result()
    assert rv.stack.currentIndex() == 1
    assert rv.headline.text() in (f"Consistent with key {r.verdict.predicted_key}",
                                  f"No watermark detected at FPR {r.verdict.fpr:g}")
    assert rv.finding_label.text() == r.verdict.finding()
    assert rv.interpretation_label.text() == r.verdict.interpretation()
    assert rv.score_table.rowCount() == 3
    assert rv.spectrum_panel.view.image() is not None and rv.diff_panel.view.image() is not None
    assert all(p.view.image() is not None for p in rv.key_panels)
    # the difference map's caption states its mean, which must equal the engine's L1 for that key
    key = rv.current_key()
    l1 = next(s.l1 for s in r.scores if s.key_id == key.id)
    assert f"{l1:.3f}" in rv.diff_panel.caption.text()
    # switching channel and method redraws without errors
    rv.channel_combo.setCurrentIndex(1)
    rv.method_combo.setCurrentText("encoder")
    assert "Done" in window.stage_label.text()
    assert window.last_run is not None and not window.last_run.cancelled


@pytest.fixture(scope="module")
def demo_window(qapp, tmp_path_factory):
    """One run on the bundled demo model, shared by the verdict and screenshot tests (the demo UNet is
    the slow part of this file): one generated sample per key (and one without a watermark, if the
    manifest has one), all three decoder-inversion methods, the default 100 iterations (what a user runs,
    and what the screenshots show)."""
    if not demo_available():
        pytest.skip("the bundled demo model is not present yet")
    from PySide6.QtCore import QEventLoop

    from forensics_app.gui.main_window import MainWindow
    from forensics_app.gui.settings import AnalysisSettings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TREERING_FORENSICS_CONFIG", str(tmp_path_factory.mktemp("demo-gui-config")))
        w = MainWindow()
    samples = demo_samples_folder(tmp_path_factory)
    truth = manifest_keys(samples)
    files = []
    for key in sorted({k for k in truth.values() if k is not None}) + [None]:
        names = sorted(n for n, k in truth.items() if k == key)
        files += [samples / names[0]] if names else []
    w.resize(1600, 1000)
    w.show()
    w.model_chooser.select("demo")
    w.set_analysis_settings(AnalysisSettings(methods=("encoder", "gradient-free", "gradient-based"),
                                             device="cpu"))
    w.add_paths(files)
    loop = QEventLoop()
    w.controller.finished.connect(loop.quit)
    QTimer.singleShot(900_000, loop.quit)
    assert w.run_analysis()
    loop.exec()
    assert w.last_run is not None and not w.controller.running
    yield w, truth
    w.close()
    w.deleteLater()


def test_demo_run_shows_the_engine_verdicts(demo_window):
    """Drop → run → each image's verdict panel shows the engine's verdict for it, with the verdict's key
    preselected; the batch matrix tallies the same verdicts against the manifest."""
    from engine.attribution_matrix import ConfusionMatrix

    window, truth = demo_window
    assert all(set(i.analysis.methods) == {"encoder", "gradient-free", "gradient-based"}
               for i in window.evidence.items)
    pairs = []
    for item in window.evidence.items:
        r = item.analysis.methods["gradient-free"]
        window.select_item(item.path)
        window.tabs.setCurrentWidget(window.result_view)
        rv = window.result_view
        rv.method_combo.setCurrentText("gradient-free")
        expected = (f"Consistent with key {r.verdict.predicted_key}" if r.verdict.predicted_key
                    else f"No watermark detected at FPR {r.verdict.fpr:g}")
        assert rv.headline.text() == expected
        assert rv.finding_label.text() == r.verdict.finding()
        assert rv.key_combo.currentText() == (r.verdict.predicted_key or r.verdict.nearest_key)
        pairs.append((truth[item.name], r.verdict.predicted_key))
    window.tabs.setCurrentWidget(window.batch_view)
    window.batch_view.method_combo.setCurrentText("gradient-free")
    window.batch_view.mode_combo.setCurrentIndex(0)
    m = window.batch_view.matrix()
    cm = ConfusionMatrix.from_pairs(pairs, window.last_run.keys.ids)
    assert m.has_truth and m.counts == cm.counts


def test_demo_samples_are_attributed_to_their_keys(demo_window):
    window, truth = demo_window
    for item in window.evidence.items:
        if truth[item.name] is not None:
            window.select_item(item.path)
            window.tabs.setCurrentWidget(window.result_view)
            window.result_view.method_combo.setCurrentText("gradient-free")
            assert window.result_view.headline.text() == f"Consistent with key {truth[item.name]}"


# -- cancel -------------------------------------------------------------------------------------------

def test_cancel_keeps_finished_images(qtbot, window, tiny_ddim_dir, tiny_keys_file, tiny_samples):
    from engine.analysis import ImageAnalysis
    from forensics_app.gui.evidence_list import Status

    use_tiny(window, tiny_ddim_dir, tiny_keys_file, batch_size=1, steps=50, iterations=30)
    window.add_paths([tiny_samples])
    cancelled_at, finished_at = [], []

    def on_result(r):                      # cancel (with the Esc shortcut) as soon as one image is done
        if isinstance(r, ImageAnalysis) and not cancelled_at:
            cancelled_at.append(time.monotonic())
            qtbot.keyClick(window, Qt.Key.Key_Escape)

    window.controller.result.connect(on_result)
    window.controller.finished.connect(lambda run: finished_at.append(time.monotonic()))
    assert window.run_analysis()
    qtbot.waitUntil(lambda: bool(finished_at), timeout=180000)
    assert cancelled_at and finished_at[0] - cancelled_at[0] < 5.0, "cancel must take effect within an iteration"
    done = [i for i in window.evidence.items if i.status == Status.DONE]
    cancelled = [i for i in window.evidence.items if i.status == Status.CANCELLED]
    assert done and cancelled and len(done) + len(cancelled) == 6
    assert all(i.analysis is not None for i in done)
    assert window.last_run.cancelled and len(window.last_run.images) == len(done)
    assert "Cancelled" in window.stage_label.text()
    window.select_item(done[0].path)
    assert window.result_view.stack.currentIndex() == 1          # its result is still shown
    window.select_item(cancelled[0].path)
    assert "cancelled" in window.result_view.placeholder.text()
    assert window.run_action.isEnabled() and not window.cancel_action.isEnabled()


# -- bad files ------------------------------------------------------------------------------------------

def test_corrupt_file_reported_and_others_run(qtbot, window, tiny_ddim_dir, tiny_keys_file, tiny_samples, tmp_path):
    from forensics_app.gui.evidence_list import Status

    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder",))
    bad = tmp_path / "corrupt.png"
    good = sorted(tiny_samples.glob("*.png"))[:2]
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    window.add_paths([*good, bad])
    bad_item = window.evidence.item_for(str(bad))
    qtbot.waitUntil(lambda: bad_item.status == Status.FAILED, timeout=20000)   # already at intake preview
    run_and_wait(qtbot, window)
    assert bad_item.status == Status.FAILED
    assert "corrupt.png" in bad_item.failure and "\n" not in bad_item.failure
    row = window.evidence.items.index(bad_item)
    assert "corrupt.png" in window.evidence.data(window.evidence.index(row, 2))
    assert bad_item.failure in window.log_view.toPlainText()
    assert all(window.evidence.item_for(str(g)).status == Status.DONE for g in good)
    window.select_item(str(bad))
    assert window.result_view.stack.currentIndex() == 0
    assert "could not be analysed" in window.result_view.placeholder.text()
    assert window.banner.isVisible()
    assert len(window.last_run.failures) == 1


def test_missing_path_and_missing_model_are_messages(qtbot, window, tmp_path):
    window.add_paths([tmp_path / "nope.png"])
    assert "does not exist" in window.log_view.toPlainText()
    assert not window.evidence.items
    window.model_chooser.select("sd21")
    loc = window.model_chooser.current_location()
    assert loc.spec.id == "sd21"
    if not loc.found:
        assert "not found" in window.model_chooser.combo.currentText()
        assert window.model_chooser.hint.text() == loc.explain_missing()
        assert not window.run_action.isEnabled()


def test_keys_that_do_not_fit_the_model_are_a_message(qtbot, window, tiny_ddim_dir, tiny_samples):
    from forensics_app.gui.evidence_list import Status
    from forensics_app.gui.settings import AnalysisSettings

    window.add_model_folder(str(tiny_ddim_dir))                 # 4×16×16 latents; demo keys are 4×32×32
    window.set_analysis_settings(AnalysisSettings(**FAST, device="cpu"))
    window.add_paths(sorted(tiny_samples.glob("*.png"))[:1])
    with qtbot.waitSignal(window.controller.finished, timeout=60000) as finished:
        assert window.run_analysis()
    assert finished.args == [None]
    assert window.banner.isVisible() and "choose a key set made for this model" in window.banner.label.text()
    assert window.evidence.items[0].status == Status.QUEUED
    assert "Traceback" not in window.log_view.toPlainText()
    assert window.run_action.isEnabled()


# -- comparison ---------------------------------------------------------------------------------------

def test_comparison_view_has_all_three_methods(qtbot, window, tiny_ddim_dir, tiny_keys_file, tiny_samples):
    from forensics_app.gui.comparison_view import NOT_RUN

    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder", "gradient-free", "gradient-based"))
    img = sorted(tiny_samples.glob("*.png"))[0]
    window.add_paths([img])
    run_and_wait(qtbot, window)
    window.select_item(str(img))
    window.tabs.setCurrentWidget(window.comparison_view)      # views are filled when shown
    cv = window.comparison_view
    a = window.evidence.items[0].analysis
    for m in ("encoder", "gradient-free", "gradient-based"):
        r = a.methods[m]
        assert cv.cell("PSNR of D(z0) vs evidence", m) == f"{r.pixel_psnr_db:.2f} dB"
        assert cv.cell("z0 residual ‖E(D(z0)) − E(x)‖ / ‖E(x)‖", m) == f"{r.z0_residual:.4f}"
        assert cv.cell("Runtime: total", m) == f"{r.seconds:.2f} s"
        assert cv.cell("Peak memory", m) == "n/a on CPU"
        for s in r.scores:
            assert cv.cell(f"L1 distance to {s.key_id}", m) == f"{s.l1:.4f}"
        assert cv.cell("Verdict", m) != NOT_RUN
        assert cv.panels[m].view.image() is not None
    assert "10 it" in cv.cell("Settings", "gradient-based")


# -- batch ----------------------------------------------------------------------------------------------

def test_batch_matrix_equals_cli_json(qtbot, window, tiny_ddim_dir, tiny_keys_file, tiny_samples, tmp_path):
    from engine.attribution_matrix import ConfusionMatrix

    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("gradient-free",))
    window.add_paths([tiny_samples])
    run_and_wait(qtbot, window)
    window.tabs.setCurrentWidget(window.batch_view)
    gui = window.batch_view.matrix()
    assert gui.has_truth and gui.total == 6

    out = tmp_path / "scan.json"
    env = {**os.environ, "TREERING_FORENSICS_CONFIG": str(tmp_path / "cli-config")}
    proc = subprocess.run(
        [sys.executable, "-m", "forensics_app", "scan", str(tiny_samples), "--model", str(tiny_ddim_dir),
         "--keys", str(tiny_keys_file), "--method", "gradient-free", "--iterations", "10", "--steps", "10",
         "--device", "cpu", "--json", str(out), "--quiet"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    truth = manifest_keys(tiny_samples)
    pairs = [(truth[Path(img["path"]).name], img["methods"]["gradient-free"]["predicted_key"])
             for img in data["images"]]
    cli = ConfusionMatrix.from_pairs(pairs, [k["id"] for k in data["keys"]])
    assert gui.row_labels == cli.labels and gui.counts == cli.counts
    assert gui.accuracy == pytest.approx(cli.accuracy) or (np.isnan(cli.accuracy) and gui.accuracy is None)

    # the nearest-key mode is the reference classifier (no "none" column)
    window.batch_view.mode_combo.setCurrentIndex(1)
    nearest = ConfusionMatrix.from_pairs(
        [(truth[Path(i["path"]).name], i["methods"]["gradient-free"]["nearest_key"]) for i in data["images"]],
        [k["id"] for k in data["keys"]])
    assert window.batch_view.matrix().counts == nearest.counts

    csv_path, png_path = tmp_path / "m.csv", tmp_path / "m.png"
    window.batch_view.export_csv(str(csv_path))
    window.batch_view.export_png(str(png_path))
    rows = csv_path.read_text().splitlines()
    assert rows[0].startswith("true \\ predicted,key1,key2,key3")
    assert png_path.stat().st_size > 1000


def test_batch_without_manifest_groups_by_folder(tmp_path):
    from engine.provenance import read_manifest
    from forensics_app.gui.batch_view import build_matrix

    class R:
        def __init__(self, pred, nearest):
            from types import SimpleNamespace

            self.verdict = SimpleNamespace(predicted_key=pred, nearest_key=nearest)

    class A:
        def __init__(self, pred, nearest="k1"):
            self.methods = {"gradient-free": R(pred, nearest)}

    class Item:
        def __init__(self, path, pred):
            self.path, self.analysis = str(path), A(pred)

    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    items = [Item(tmp_path / "x" / "a.png", "k1"), Item(tmp_path / "x" / "b.png", None),
             Item(tmp_path / "y" / "c.png", "k2")]
    m = build_matrix(items, ("k1", "k2"), "gradient-free")
    assert not m.has_truth and m.row_labels == ("x", "y") and m.col_labels == ("k1", "k2", None)
    assert m.counts == ((1, 0, 1), (0, 1, 0))
    # hostile manifests are ignored, not trusted
    (tmp_path / "x" / "manifest.json").write_text("[1, 2, 3]")
    assert read_manifest(str(tmp_path / "x")) is None
    (tmp_path / "y" / "manifest.json").write_text(json.dumps({"images": {"c.png": {"key": 5}, "d.png": {"key": "k2"}}}))
    assert read_manifest(str(tmp_path / "y")) == {"d.png": "k2"}


# -- responsiveness -----------------------------------------------------------------------------------

def test_event_loop_stays_responsive_during_a_run(qtbot, window, tiny_ddim_dir, tiny_keys_file, tiny_samples):
    use_tiny(window, tiny_ddim_dir, tiny_keys_file, batch_size=2, steps=50, iterations=20,
             methods=("encoder", "gradient-free", "gradient-based"))
    window.add_paths([tiny_samples])
    qtbot.waitUntil(lambda: all(i.sha256 or i.preview_error for i in window.evidence.items), timeout=20000)
    def idle_worst_gap(seconds: float) -> float:
        """The loop's worst tick gap with nothing running: what the OS scheduler alone costs right now."""
        ticks = []
        t = QTimer()
        t.setTimerType(Qt.TimerType.PreciseTimer)
        t.timeout.connect(lambda: ticks.append(time.perf_counter()))
        t.start(10)
        qtbot.wait(int(seconds * 1000))
        t.stop()
        return float(np.max(np.diff(ticks))) if len(ticks) > 2 else 0.0

    baseline = idle_worst_gap(1.0)
    gaps, last = [], [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(tick)
    timer.start(10)
    late = sorted(tiny_samples.glob("*.png"))[0].parent / "manifest.json"     # any file: added mid-run

    try:
        with qtbot.waitSignal(window.controller.finished, timeout=180000):
            assert window.run_analysis()
            qtbot.wait(200)
            window.add_paths([late])           # while running: listed, not part of this run
    finally:
        timer.stop()
    assert len(gaps) > 50, "the run was too short to measure"
    worst = max(gaps[1:])
    # (a full garbage collection over torch's objects in the worker once blocked it for ~250 ms: the
    # worker freezes long-lived objects after loading the model, see worker.freeze_long_lived_objects)
    # On a quiet machine the limit is 100 ms; when other processes already starve the idle loop (shared
    # CI cores), their share is added so that the test measures this window's own blocking.
    limit = 0.100 + (baseline if baseline > 0.030 else 0.0)
    assert worst < limit, (f"the event loop was blocked for {worst * 1000:.0f} ms "
                           f"(idle baseline {baseline * 1000:.0f} ms)")
    from forensics_app.gui.evidence_list import Status

    late_item = window.evidence.item_for(str(late))
    assert late_item.status in (Status.QUEUED, Status.FAILED) and late_item.analysis is None
    # its preview waited for the run (intake is not used from two threads at once), then ran
    qtbot.waitUntil(lambda: late_item.sha256 is not None or late_item.preview_error is not None, timeout=20000)
    assert len(window.last_run.images) == 6


# -- settings, keys, exports --------------------------------------------------------------------------

def test_settings_and_geometry_are_restored(qtbot, gui_config, tiny_ddim_dir, tiny_keys_file):
    from forensics_app.gui.main_window import MainWindow
    from forensics_app.gui.settings import AnalysisSettings

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    model_id = w.add_model_folder(str(tiny_ddim_dir))
    w.import_key_files([str(tiny_keys_file)])
    w.set_analysis_settings(AnalysisSettings(methods=("gradient-based",), iterations=42, fpr=0.001, steps=17))
    # the offscreen screen is 800×600 and restoreGeometry() fits windows to the screen: change the height
    target = QSize(max(w.width(), w.minimumSizeHint().width()), w.minimumSizeHint().height() + 37)
    w.resize(target)
    w.log_dock.hide()
    w.advanced_section.set_expanded(True)
    w.add_paths([tiny_keys_file.parent])      # a folder without images: remembered, nothing added
    w.close()
    assert (gui_config / "gui.ini").is_file()

    w2 = MainWindow()
    qtbot.addWidget(w2)
    w2.show()
    assert w2.height() == target.height()
    assert not w2.log_dock.isVisible()                 # window state (docks) restored too
    assert w2.model_chooser.current_id() == model_id
    assert w2.key_chooser.current_path() == str(tiny_keys_file)
    s = w2.advanced.settings()
    assert s.methods == ("gradient-based",) and s.iterations == 42 and s.fpr == 0.001 and s.steps == 17
    assert w2.advanced_section.toggle.isChecked()
    w2._fill_recent_menu()
    assert str(tiny_keys_file.parent) in [a.text() for a in w2.recent_menu.actions()]
    w2.close()


def test_per_model_defaults(qtbot, window, tiny_flow_dir, tiny_ddim_dir):
    flow_id = window.add_model_folder(str(tiny_flow_dir))
    assert window.advanced.inversion.currentData() == "backward-euler"
    ddim_id = window.add_model_folder(str(tiny_ddim_dir))
    assert window.advanced.inversion.currentData() == "naive"
    window.advanced.steps.setValue(13)
    window.model_chooser.select(flow_id)
    window.model_chooser.select(ddim_id)
    assert window.advanced.steps.value() == 13          # remembered per model
    window.reset_model_defaults()
    assert window.advanced.steps.value() == 50


def test_settings_saved_before_per_model_optimisers_take_the_models_default():
    from forensics_app.gui.settings import AnalysisSettings

    old_build = {"methods": ["gradient-free"], "iterations": 100, "lr": None, "optimizer": "adam"}
    assert AnalysisSettings.from_json(old_build).optimizer is None            # Adam was the fixed default then
    assert AnalysisSettings.from_json({**old_build, "lr": 0.02}).optimizer == "adam"        # tuned: a choice
    assert AnalysisSettings.from_json({**old_build, "schedule": None}).optimizer == "adam"  # this build: a choice
    assert AnalysisSettings.from_json(AnalysisSettings(optimizer="adam").to_json()).optimizer == "adam"


def test_gradient_free_optimiser_defaults_to_the_models(qtbot, window, tiny_ddim_dir):
    from dataclasses import replace

    from engine.model_loader import load_model
    from engine.model_registry import get_spec
    from forensics_app.gui.settings import AnalysisSettings

    demo_spec = get_spec("demo")
    window.advanced.set_settings(AnalysisSettings(), demo_spec)
    assert window.advanced.optimizer.currentText() == "model default (forward-step)"
    s = window.advanced.settings()
    assert s.optimizer is None and s.schedule is None and s.lr is None
    demo_like = replace(load_model(str(tiny_ddim_dir), device="cpu"), spec=demo_spec)   # only the spec is read
    gf = s.to_config(demo_like).gradient_free
    assert (gf.optimizer, gf.effective_lr, gf.schedule) == ("forward-step", 0.05, "fixed")
    window.advanced.optimizer.setCurrentIndex(window.advanced.optimizer.findData("adam"))
    gf = window.advanced.settings().to_config(demo_like).gradient_free
    assert (gf.optimizer, gf.effective_lr, gf.schedule) == ("adam", 0.01, "scheduled")


def test_keys_import_export_new(qtbot, window, tmp_path, tiny_keys_file):
    from engine.treering import KeySet

    window.import_key_files([str(tiny_keys_file)])
    assert window.key_chooser.current_keys().ids == ("key1", "key2", "key3")
    out = tmp_path / "exported.json"
    assert window.save_keys(window.key_chooser.current_keys(), str(out))
    assert KeySet.load(out).ids == ("key1", "key2", "key3")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    window.import_key_files([str(bad)])
    assert "cannot read key file" in window.log_view.toPlainText()
    from forensics_app.gui.controls import NewKeysDialog

    d = NewKeysDialog((4, 16, 16))
    d.count.setValue(5)
    d.radius.setValue(3)
    d.seed.setText("1")
    keys = d.make_keys()
    assert len(keys) == 5 and keys.keys[0].latent_shape == (4, 16, 16)


def test_exports_after_a_run(qtbot, window, tiny_ddim_dir, tiny_keys_file, tiny_samples, tmp_path, monkeypatch):
    import importlib.util

    window.export_report()                     # no run yet: a message, no dialog
    assert "run an analysis first" in window.log_view.toPlainText()
    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder",))
    window.add_paths(sorted(tiny_samples.glob("*.png"))[:1])
    run_and_wait(qtbot, window)
    assert window.report_action.isEnabled() and window.json_action.isEnabled()
    out = tmp_path / "results.json"
    window.write_json_to(str(out))
    qtbot.waitUntil(out.is_file, timeout=20000)
    from engine.analysis import run_to_json

    assert json.loads(out.read_text())["images"][0]["sha256"] == run_to_json(window.last_run)["images"][0]["sha256"]
    if importlib.util.find_spec("forensics_app.report") is not None:
        pdf = tmp_path / "case.pdf"
        assert window.write_report_to(str(pdf), "CASE-1", "tester")
        assert pdf.read_bytes().startswith(b"%PDF")
    # without the report module (a stripped installation) the action explains itself
    monkeypatch.setitem(sys.modules, "forensics_app.report", None)
    window.export_report()
    assert "not available" in window.log_view.toPlainText()


def test_spectrum_image_helpers():
    from forensics_app.figure_arrays import (VIRIDIS, key_difference, log_magnitude, pixels_to_rgb8,
                                             spectrum_log_magnitude)
    from forensics_app.figures import scalar_qimage
    from engine.treering import KeySet, new_random_keys, l1_distance
    import torch

    a = np.array([[0.0, 1.0], [np.nan, 0.5]])
    img = scalar_qimage(a, 0.0, 1.0, VIRIDIS)
    assert img.width() == 2 and img.pixelColor(0, 1).alpha() == 0 and img.pixelColor(1, 0).alpha() == 255
    assert tuple(img.pixelColor(1, 0).getRgb()[:3]) == tuple(VIRIDIS[255])
    rgb = pixels_to_rgb8(np.array([[[-1.0, 1.0]]] * 3, dtype=np.float32))
    assert rgb.shape == (1, 2, 3) and rgb[0, 0, 0] == 0 and rgb[0, 1, 0] == 255
    key = new_random_keys(1, (4, 16, 16), radius=4, seed=0).keys[0]
    z = np.random.default_rng(0).standard_normal((4, 16, 16)).astype(np.float32)
    d = key_difference(z, key)
    assert np.nanmean(d) == pytest.approx(float(l1_distance(torch.from_numpy(z)[None], key)[0]), rel=1e-5)
    assert np.isnan(d[~key.mask_2d()]).all()
    assert spectrum_log_magnitude(z).shape == (4, 16, 16)
    from engine.treering import fft_latent
    from forensics_app.figure_arrays import centred_spectrum

    np.testing.assert_allclose(centred_spectrum(z), fft_latent(torch.from_numpy(z)[None])[0].numpy(),
                               rtol=1e-4, atol=1e-3)      # the display FFT is the engine's transform
    assert log_magnitude(np.array([0.0]))[0] == 0.0


def test_run_tracker_eta():
    from engine.progress import ProgressEvent
    from forensics_app.gui.worker import RunTracker, format_duration

    t = RunTracker(total_images=4, methods=2, batch_size=2)
    t.on_event(ProgressEvent("decoder inversion (gradient-free)", 5, 10))
    assert t.fraction() == pytest.approx(2 * 0.25 / 2 / 4)
    t.on_event(ProgressEvent("DDIM inversion", 10, 10))
    assert t.fraction() == pytest.approx(2 * 0.5 / 4)
    t.on_results(2)
    assert t.fraction() == pytest.approx(0.5)
    assert format_duration(75) == "1 min 15 s" and format_duration(None) == "–"


def test_run_gui_entry_point(qtbot, gui_config, monkeypatch):
    from PySide6.QtWidgets import QApplication

    from forensics_app.gui import app as gui_app

    seen = {}

    def fake_exec():
        w = [x for x in QApplication.topLevelWidgets() if x.objectName() == "MainWindow" and x.isVisible()][-1]
        seen["title"] = w.windowTitle()
        w.close()
        return 0

    monkeypatch.setattr(QApplication.instance(), "exec", fake_exec)
    assert gui_app.run_gui([]) == 0
    assert seen.pop("title") == "Tree-Ring Forensics"
    from forensics_app.cli import main

    assert main([]) == 0                   # `treering-forensics` with no subcommand opens the window
    assert seen["title"] == "Tree-Ring Forensics"


# -- screenshots -----------------------------------------------------------------------------------

def test_screenshots(qtbot, request):
    """Main window with results, comparison and batch views, saved for the docs (and looked at): on the
    demo model when it is there, else on the tiny one."""
    if demo_available():
        window, _ = request.getfixturevalue("demo_window")
    else:
        window = request.getfixturevalue("window")
        use_tiny(window, request.getfixturevalue("tiny_ddim_dir"), request.getfixturevalue("tiny_keys_file"),
                 methods=("encoder", "gradient-free", "gradient-based"))
        window.add_paths([request.getfixturevalue("tiny_samples")])
        window.resize(1600, 1000)
        run_and_wait(qtbot, window)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    window.select_item(window.evidence.items[0].path)
    for name, view in (("main-window.png", window.result_view), ("comparison.png", window.comparison_view),
                       ("batch.png", window.batch_view)):
        window.tabs.setCurrentWidget(view)
        qtbot.wait(50)
        assert window.grab().save(str(SCREENSHOTS / name))
        assert (SCREENSHOTS / name).stat().st_size > 10_000


def test_hostile_corpus_through_the_window(qtbot, window, tiny_ddim_dir, tiny_keys_file, tmp_path):
    """The ≥100-file hostile corpus dropped onto the window: every refused file shows its one-sentence
    reason, every readable one is analysed, and the evidence bytes are unchanged."""
    import hashlib

    from forensics_app.gui.evidence_list import Status
    from tests.hostile_corpus import make_hostile_corpus

    evidence = tmp_path / "evidence"
    evidence.mkdir()
    cases = [c for c in make_hostile_corpus(evidence) if (evidence / c.filename).is_file()]
    assert len(cases) >= 100
    before = {c.filename: hashlib.sha256((evidence / c.filename).read_bytes()).hexdigest() for c in cases}
    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder",), steps=2, batch_size=32)
    window.add_paths([evidence / c.filename for c in cases])
    run_and_wait(qtbot, window, timeout_s=300)
    for c in cases:
        item = window.evidence.item_for(str(evidence / c.filename))
        if c.loads:
            assert item.status == Status.DONE, (c, item.status, item.failure)
        else:
            assert item.status == Status.FAILED, (c, item.status)
            assert "\n" not in item.failure and (c.error_substring or "") in item.failure, (c, item.failure)
    after = {c.filename: hashlib.sha256((evidence / c.filename).read_bytes()).hexdigest() for c in cases}
    assert after == before
