"""The window through an examiner's workday (pytest-qt, offscreen): folder drops recurse and list every file not
analysed with its reason; Save / Open case round-trips results and hashes; unsaved results are asked about on
quit and before a new run; the wheel never changes an unfocused setting; the Advanced panel scrolls into view;
results name their model; the batch tab marks manifest claims as unverified and lists a cell's images; the
report dialog refuses blank required fields; the audit trail records what was done."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QWheelEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox  # noqa: E402

from tests.test_gui import drop, gui_config, run_and_wait, tiny_keys_file, tiny_samples, use_tiny, window  # noqa: F401,E402

B = QMessageBox.StandardButton


@pytest.fixture
def answers(monkeypatch):
    """Answers to the unsaved-results question, in order (Discard once they run out); the questions asked."""
    given: list = []
    asked: list[str] = []

    def question(parent, title, text, *args, **kwargs):
        asked.append(text)
        return given.pop(0) if given else B.Discard

    monkeypatch.setattr(QMessageBox, "question", question)
    return given, asked


def nested_evidence(tmp_path: Path, samples: Path) -> Path:
    ev = tmp_path / "evidence"
    (ev / "sub" / "deeper").mkdir(parents=True)
    pngs = sorted(samples.glob("*.png"))
    shutil.copy(pngs[0], ev / "a.png")
    shutil.copy(pngs[1], ev / "sub" / "b.png")
    shutil.copy(pngs[2], ev / "sub" / "deeper" / "c.png")
    (ev / "readme.txt").write_text("not an image")
    (ev / ".DS_Store").write_bytes(b"\0\0")
    return ev


def status_text(window, item) -> str:
    return window.evidence.data(window.evidence.index(window.evidence.items.index(item), 2))


def test_folder_drop_recurses_and_lists_skipped_files(qtbot, window, tiny_ddim_dir, tiny_keys_file, tiny_samples,
                                                      tmp_path, answers):
    from forensics_app.gui.evidence_list import Status

    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder",))
    ev = nested_evidence(tmp_path, tiny_samples)
    drop(window, [ev])
    names = {i.name: i for i in window.evidence.items}
    assert {"a.png", "b.png", "c.png", "readme.txt", ".DS_Store"} == set(names)
    readme = names["readme.txt"]
    assert readme.status == Status.NOT_ANALYSED and not readme.runnable
    assert status_text(window, readme) == "not analysed: not an image file suffix (.txt)"   # the reason, no path
    assert readme.sha256 is not None and "hidden" in status_text(window, names[".DS_Store"])
    run_and_wait(qtbot, window)
    assert all(names[n].status == Status.DONE for n in ("a.png", "b.png", "c.png"))
    assert readme.status == Status.NOT_ANALYSED
    assert {Path(n.path).name for n in window.last_run.not_analysed} == {"readme.txt", ".DS_Store"}


def test_save_reopen_identical_results_and_hashes(qtbot, window, tiny_ddim_dir, tiny_keys_file, tiny_samples,
                                                  tmp_path, answers, gui_config):
    import numpy as np

    from forensics_app.gui.main_window import MainWindow

    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder", "gradient-free"))
    ev = nested_evidence(tmp_path, tiny_samples)
    bad = ev / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n bad")
    window.add_paths([ev])
    run_and_wait(qtbot, window)
    assert window.cases.has_unsaved_results()
    case = tmp_path / "case"
    assert window.cases.save_to(case)
    assert not window.cases.has_unsaved_results() and (case / "case.trcase").is_file()
    assert "case" in window.windowTitle()
    saved = window.last_run

    other = MainWindow()
    qtbot.addWidget(other)
    other.show()
    assert other.cases.open(case)
    run = other.last_run
    assert [a.evidence.sha256 for a in run.images] == [a.evidence.sha256 for a in saved.images]
    for a, b in zip(run.images, saved.images):
        assert a.evidence.path == b.evidence.path
        for m in b.methods:
            assert np.array_equal(a.methods[m].z_t, b.methods[m].z_t)
            assert a.methods[m].verdict == b.methods[m].verdict and a.methods[m].scores == b.methods[m].scores
    assert run.failures == saved.failures and run.not_analysed == saved.not_analysed
    rows = {i.name: i for i in other.evidence.items}
    saved_a = next(a for a in saved.images if a.evidence.path.endswith("a.png"))
    assert rows["a.png"].analysis is not None and rows["a.png"].sha256 == saved_a.evidence.sha256
    assert "corrupt" in status_text(other, rows["bad.png"]) and "bad.png" not in status_text(other, rows["bad.png"])
    assert status_text(other, rows["readme.txt"]).startswith("not analysed: ")
    other.select_item(run.images[0].evidence.path)
    assert other.result_view.stack.currentIndex() == 1
    actions = [e.action for e in other.audit.events]
    assert actions[:3] == ["keys imported", "run", "case saved"] and actions[-2:] == ["case opened", "evidence re-verification"]
    assert "verified" in other.audit.events[-1].detail
    # a second run in the reopened case is appended to its history, not written over the first
    use_tiny(other, tiny_ddim_dir, tiny_keys_file, methods=("encoder",))
    run_and_wait(qtbot, other)
    assert other.cases.save()
    from engine.case_folder import read_case_folder

    assert len(read_case_folder(case).history) == 2
    # the two runs side by side: the second ran the encoder only, so its encoder verdicts are compared
    dialog = other.cases.compare_dialog(show=False)
    qtbot.addWidget(dialog)
    c = dialog.comparison
    assert c is not None and dialog.table.rowCount() == len(c.pairs) > 0
    assert {p.method for p in c.pairs} == {"encoder"} and all(p.agree for p in c.pairs)   # same model, same bytes
    assert any("methods" in d for d in c.settings_differences)


def test_unsaved_results_prompt_on_quit_and_before_a_new_run(qtbot, window, tiny_ddim_dir, tiny_keys_file,
                                                              tiny_samples, tmp_path, answers, monkeypatch):
    given, asked = answers
    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder",))
    window.add_paths(sorted(tiny_samples.glob("*.png"))[:2])
    window.quit_action.trigger()                      # nothing to lose yet: no question
    assert not asked
    window.show()
    run_and_wait(qtbot, window)
    first = window.last_run
    given.append(B.Cancel)
    assert not window.run_analysis()                  # cancelled: the results stay
    assert window.last_run is first and len(asked) == 1 and "new run" in asked[0]
    given.append(B.Cancel)
    window.quit_action.trigger()
    assert window.isVisible() and "quitting" in asked[-1]
    # Save: asks for a case folder, saves, then quits
    case = tmp_path / "saved-case"
    monkeypatch.setattr("forensics_app.gui.cases.QFileDialog.getSaveFileName", lambda *a, **k: (str(case), ""))
    given.append(B.Save)
    window.quit_action.trigger()
    assert (case / "case.trcase").is_file() and not window.isVisible()


def test_discard_lets_a_new_run_replace_the_results(qtbot, window, tiny_ddim_dir, tiny_keys_file, tiny_samples,
                                                    answers):
    given, asked = answers
    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder",))
    window.add_paths(sorted(tiny_samples.glob("*.png"))[:1])
    run_and_wait(qtbot, window)
    first = window.last_run
    given.append(B.Discard)
    run_and_wait(qtbot, window)
    assert window.last_run is not first and len(asked) == 1


def test_wheel_does_not_change_an_unfocused_spin_box(qtbot, window):
    window.advanced_section.set_expanded(True)
    spin = window.advanced.iterations
    spin.setValue(100)
    window.setFocus()
    qtbot.waitUntil(lambda: spin.isVisible())
    assert not spin.hasFocus()
    centre = QPointF(spin.width() / 2, spin.height() / 2)
    event = QWheelEvent(centre, spin.mapToGlobal(centre), QPoint(0, 0), QPoint(0, 120), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(spin, event)
    assert spin.value() == 100
    assert spin.focusPolicy() == Qt.FocusPolicy.StrongFocus
    from PySide6.QtWidgets import QComboBox

    assert all(c.focusPolicy() == Qt.FocusPolicy.StrongFocus for c in window.advanced.findChildren(QComboBox))
    spin.setFocus()                                   # once the examiner clicks into it, the wheel works
    qtbot.waitUntil(spin.hasFocus)
    QApplication.sendEvent(spin, QWheelEvent(centre, spin.mapToGlobal(centre), QPoint(0, 0), QPoint(0, 120),
                                             Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                                             Qt.ScrollPhase.NoScrollPhase, False))
    assert spin.value() != 100


def test_opening_advanced_scrolls_it_into_view(qtbot, window):
    window.resize(1200, 500)
    window.left_splitter.setSizes([200, 300])
    bar = window.choices_scroll.verticalScrollBar()
    bar.setValue(0)
    window.advanced_section.toggle.setChecked(True)
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() > 0, timeout=3000)


def test_results_name_their_model_and_a_model_switch_is_flagged(qtbot, window, tiny_ddim_dir, tiny_keys_file,
                                                                 tiny_samples, answers):
    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder",))
    window.add_paths(sorted(tiny_samples.glob("*.png"))[:1])
    run_and_wait(qtbot, window)
    run_model = window.last_run.model_id
    text = window.results_context.text()
    assert text.startswith("Results shown: model ") and run_model in text and "key1" in text and "FPR" in text
    window.model_chooser.select("demo")
    text = window.results_context.text()
    assert f"The shown results are from model {run_model}, not the selected model demo" in text


def test_batch_claims_are_unverified_and_a_cell_lists_its_images(qtbot, window, tiny_ddim_dir, tiny_keys_file,
                                                                  tiny_samples, answers):
    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder",))
    window.add_paths([tiny_samples])
    run_and_wait(qtbot, window)
    window.tabs.setCurrentWidget(window.batch_view)
    bv = window.batch_view
    qtbot.waitUntil(lambda: bv.matrix() is not None, timeout=5000)
    headers = [bv.table.verticalHeaderItem(i).text() for i in range(bv.table.rowCount())]
    assert all(h.startswith("claimed (unverified) ") for h in headers)
    m = bv.matrix()
    i, j = next((i, j) for i in range(len(m.row_labels)) for j in range(len(m.col_labels)) if m.counts[i][j])
    bv.table.cellClicked.emit(i, j)
    listed = bv.cell_images.text().splitlines()
    assert listed[0].endswith(f"{m.counts[i][j]} image(s)") and len(listed) == 1 + m.counts[i][j]
    assert all(Path(p).exists() for p in listed[1:])


def test_report_dialog_refuses_blank_required_fields(qtbot, window):
    from forensics_app.gui.exports import ReportDialog, required_fields

    assert required_fields(window.settings) == ("case_id", "examiner")
    d = ReportDialog(window, values={"case_id": "2024-117"}, required=("case_id", "examiner", "technical_reviewer"))
    qtbot.addWidget(d)
    d.accept()
    assert d.result() != d.DialogCode.Accepted
    assert "Examiner" in d.message.text() and "Technical reviewer" in d.message.text()
    d.editors["examiner"].setText("E. X.")
    d.editors["technical_reviewer"].setText("T. R.")
    d.accept()
    assert d.result() == d.DialogCode.Accepted
    assert d.values()["case_id"] == "2024-117" and d.values()["report_version"] == "1"


def test_report_from_the_window_carries_fields_and_audit(qtbot, window, tiny_ddim_dir, tiny_keys_file, tiny_samples,
                                                         tmp_path, answers):
    import json

    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder",))
    window.add_paths(sorted(tiny_samples.glob("*.png"))[:1])
    run_and_wait(qtbot, window)
    pdf = tmp_path / "r.pdf"
    assert window.exports.write_report_to(str(pdf), fields={"case_id": "C-9", "examiner": "E", "agency": "Lab",
                                                            "technical_reviewer": "R"})
    twin = json.loads(pdf.with_suffix(".json").read_text())
    assert twin["report"]["fields"]["agency"] == "Lab" and twin["report"]["fields"]["technical_reviewer"] == "R"
    actions = [e["action"] for e in twin["report"]["audit"]]
    assert "keys imported" in actions and "run" in actions and actions[-1] == "export"
