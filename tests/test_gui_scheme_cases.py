"""New keys of every scheme from the window (one parameter table with `keys new --scheme`), and a saved case of
a Gaussian Shading / RingID / PRC scan reopened with its conclusions and evidence views — on the bundled demo
model with the fast settings of tests/test_gui.py. No key secret may appear in any text the window shows."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from tests.test_gui import FAST, demo_available, gui_config, window  # noqa: E402,F401

SCHEMES = ("gaussian-shading", "ringid", "prc")


def secrets_of(keys) -> list[str]:
    """Every secret string of the keys (Gaussian Shading's key, nonce and watermark; PRC's seed)."""
    out = []
    for k in keys:
        out += [getattr(k, n) for n in ("key_hex", "nonce_hex", "watermark_hex", "seed_hex") if hasattr(k, n)]
    return out


def window_texts(*widgets) -> str:
    """All text the widgets show or offer: labels, fields, combo items, tool tips, titles, the log, tables."""
    from PySide6.QtWidgets import (QAbstractButton, QComboBox, QGroupBox, QLabel, QLineEdit, QPlainTextEdit,
                                   QTableWidget, QTextEdit, QWidget)

    parts = []
    for top in widgets:
        for w in [top, *top.findChildren(QWidget)]:
            parts += [w.toolTip(), w.windowTitle()]
            if isinstance(w, (QLabel, QLineEdit, QAbstractButton)):
                parts.append(w.text())
            if isinstance(w, QLineEdit):
                parts.append(w.placeholderText())
            if isinstance(w, (QPlainTextEdit, QTextEdit)):
                parts.append(w.toPlainText())
            if isinstance(w, QGroupBox):
                parts.append(w.title())
            if isinstance(w, QComboBox):
                for i in range(w.count()):
                    parts += [w.itemText(i), str(w.itemData(i)), str(w.itemData(i, 3))]   # 3: tool tip role
            if isinstance(w, QTableWidget):
                parts += [w.item(r, c).text() for r in range(w.rowCount()) for c in range(w.columnCount())
                          if w.item(r, c) is not None]
    return "\n".join(parts)


# -- New keys… ------------------------------------------------------------------------------------------------

def test_new_keys_dialog_offers_the_cli_parameters_with_their_limits(qtbot, capsys):
    from engine.key_parameters import KEY_OPTIONS
    from forensics_app.cli import main
    from forensics_app.gui.new_keys_dialog import NewKeysDialog

    d = NewKeysDialog((4, 32, 32))
    qtbot.addWidget(d)
    with pytest.raises(SystemExit):
        main(["keys", "new", "--help"])
    flags = set(capsys.readouterr().out.replace(",", " ").split())
    for scheme, options in KEY_OPTIONS.items():
        d.select_scheme(scheme)
        assert d.count.maximum() == options.max_count and d.count.value() == options.default_count
        for p in options.parameters:
            assert p.flag in flags                               # the CLI has every option the dialog has
            w = d.field(p.name)
            if p.kind is int:
                assert w.maximum() == p.high
                assert w.minimum() == p.low - (1 if p.default is None else 0)     # one below: "auto"
                assert d.values()[p.name] == p.default           # untouched: the CLI's default
            else:
                assert d.values()[p.name] is None                # empty: the CLI's default (or derived)


def test_key_parameter_table_limits_agree_with_the_engine():
    from engine import key_parameters
    from engine.watermarks.base import MAX_SCHEME_KEYS

    assert key_parameters.MAX_SCHEME_KEYS == MAX_SCHEME_KEYS


@pytest.mark.parametrize("scheme", SCHEMES)
def test_new_keys_dialog_writes_the_same_vault_as_the_cli(qtbot, window, tmp_path, scheme):  # noqa: F811
    from engine.key_vault import load_vault
    from forensics_app.cli import main
    from forensics_app.gui.new_keys_dialog import NewKeysDialog

    cli_out = tmp_path / "cli.json"
    assert main(["keys", "new", "--scheme", scheme, "--count", "3", "--seed", "11", "--out", str(cli_out)]) == 0
    d = NewKeysDialog((4, 32, 32), window)
    d.select_scheme(scheme)
    d.count.setValue(3)
    d.seed.setText("11")
    d.provenance.setText("made for the GUI test")
    path = tmp_path / "gui.json"
    assert window.key_files.make_new(d, str(path))
    vault, cli = load_vault(path), load_vault(cli_out)
    assert vault.schemes == (scheme,) and vault.provenance == "made for the GUI test"
    assert vault.content_sha256() == cli.content_sha256()      # same table, same defaults: the same keys
    chooser = window.key_chooser
    assert chooser.current_path() == str(path) and chooser.current_keys().ids == vault.for_scan().ids
    log = window.log_dock.view.toPlainText()
    assert all(k.id in log for k in vault.keys) and vault.content_sha256()[:16] in log
    shown = window_texts(window, d)
    assert all(secret not in shown for secret in secrets_of(vault.keys))


def test_new_keys_dialog_parameters_reach_the_keys_and_errors_read_as_the_cli(qtbot, window, tmp_path,  # noqa: F811
                                                                            capsys):
    from engine.key_vault import load_vault
    from forensics_app.cli import main
    from forensics_app.gui.new_keys_dialog import NewKeysDialog

    d = NewKeysDialog((4, 32, 32), window)
    d.select_scheme("ringid")
    d.count.setValue(4)
    d.field("r_out").setValue(6)
    d.field("r_in").setValue(2)
    d.field("value").setText("20")
    assert window.key_files.make_new(d, str(tmp_path / "ringid.json"))
    keys = load_vault(tmp_path / "ringid.json").keys
    assert {(k.r_out, k.r_in, k.value) for k in keys} == {(6, 2, 20.0)} and len(keys) == 4
    d.select_scheme("gaussian-shading")
    d.field("hw").setValue(3)                                 # does not divide 32
    assert not window.key_files.make_new(d, str(tmp_path / "gs.json"))
    assert not (tmp_path / "gs.json").exists()
    assert main(["keys", "new", "--scheme", "gaussian-shading", "--count", "1", "--gs-hw", "3",
                 "--out", str(tmp_path / "gs-cli.json")]) == 2
    cli_error = capsys.readouterr().err.strip().split("error: ", 1)[1]
    assert cli_error in window.log_dock.view.toPlainText()     # the same sentence in both
    d.select_scheme("prc")
    d.field("fpr").setText("0")
    assert not window.key_files.make_new(d, str(tmp_path / "prc.json"))
    assert "Code false-positive rate (--prc-fpr) must be in (0, 0.5]" in window.log_dock.view.toPlainText()


def test_unsaved_new_vault_is_discarded_unsaved_tree_ring_keys_are_kept(qtbot, window):  # noqa: F811
    from forensics_app.gui.new_keys_dialog import NewKeysDialog

    entries = window.key_chooser.combo.count()
    d = NewKeysDialog((4, 32, 32), window)
    d.select_scheme("prc")
    window.key_files.make_new(d, "")
    assert window.key_chooser.combo.count() == entries
    assert "not saved, so they were discarded" in window.log_dock.view.toPlainText()
    d.select_scheme("tree-ring")
    assert window.key_files.make_new(d, "")
    assert window.key_chooser.combo.count() == entries + 1 and len(window.key_chooser.current_keys()) == 3


# -- a saved case reopened --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scheme_case(qapp, tmp_path_factory):
    """A vault of 2 Gaussian Shading, 3 RingID and 2 PRC keys; one demo image per scheme (generated by the CLI);
    one run in the window on the demo model with the fast settings, saved as a case."""
    if not demo_available():
        pytest.skip("the bundled demo model is not present")
    from PySide6.QtCore import QEventLoop, QTimer

    from engine.key_vault import KeyVault, new_vault_keys
    from engine.options import AnalysisOptions
    from forensics_app.cli import main
    from forensics_app.gui.main_window import MainWindow

    tmp = tmp_path_factory.mktemp("scheme-case")
    keys = tuple(k for s, n in zip(SCHEMES, (2, 3, 2)) for k in new_vault_keys(s, n, (4, 32, 32), seed=5))
    vault = tmp / "vault.json"
    KeyVault(keys, provenance="reopen test").save(vault)
    samples = tmp / "samples"
    for n, key in enumerate((keys[0].id, keys[2].id, keys[5].id)):
        assert main(["generate", "--model", "demo", "--keys", str(vault), "--key", key, "--count", "1", "--seed",
                     str(10 * n), "--out", str(samples), "--quiet", "--device", "cpu"]) == 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TREERING_FORENSICS_CONFIG", str(tmp / "config"))
        (tmp / "config").mkdir()
        fresh = MainWindow()
        fresh.resize(1500, 950)
        fresh.show()
        fresh.model_chooser.select("demo")
        fresh.key_files.import_files([str(vault)])
        fresh.set_analysis_settings(AnalysisOptions(**{**FAST, "device": "cpu"}))
        fresh.add_paths(sorted(samples.glob("*.png")))
        loop = QEventLoop()
        fresh.session.finished.connect(loop.quit)
        QTimer.singleShot(600_000, loop.quit)
        assert fresh.run_analysis()
        loop.exec()
        assert fresh.last_run is not None and len(fresh.last_run.images) == 3
        assert fresh.cases.save_to(tmp / "case", new=True)
        reopened = MainWindow()
        reopened.resize(1500, 950)
        reopened.show()
        assert reopened.cases.open(tmp / "case")
        yield fresh, reopened, keys, vault
        for w in (fresh, reopened):
            w.close()
            w.deleteLater()


def shown(window, item, method):
    window.select_item(item.path)
    window.tabs.setCurrentWidget(window.result_view)
    rv = window.result_view
    rv.method_combo.setCurrentText(method)
    return (rv.headline.text(), rv.finding_label.text(), rv.interpretation_label.text(),
            [rv.score_table.item(r, c).text() for r in range(rv.score_table.rowCount()) for c in range(4)],
            window.evidence.data(window.evidence.index(window.evidence.items.index(item), 2)))


def test_reopened_case_shows_each_schemes_conclusions(scheme_case):
    fresh, reopened, keys, _ = scheme_case
    by_name = {i.name: i for i in reopened.evidence.items}
    schemes_seen = set()
    for item in fresh.evidence.items:
        again = by_name[item.name]
        a = item.analysis
        schemes_seen.add(keys[[k.id for k in keys].index(a.conclusion.candidates[0])].scheme
                         if a.conclusion.candidates else None)
        for method, r in a.methods.items():
            r2 = again.analysis.methods[method]
            assert r2.conclusion == r.conclusion and r2.verdict == r.verdict and type(r2.verdict) is type(r.verdict)
            assert r2.scores == r.scores and [type(s) for s in r2.scores] == [type(s) for s in r.scores]
            assert r2.verdict.finding() == r.verdict.finding()        # the scheme's own wording, not Tree-Ring's
            texts = shown(reopened, again, method)
            assert texts == shown(fresh, item, method)
            assert texts[0].startswith(r.conclusion.headline()) and texts[1] == r.conclusion.finding()
        assert again.analysis.conclusion == a.conclusion
    assert schemes_seen == set(SCHEMES)                 # each scheme's image was detected as that scheme's
    assert all(s not in window_texts(fresh, reopened) for s in secrets_of(keys))


def test_reopened_case_evidence_views(scheme_case):
    """RingID's ring view is rebuilt from the case's public key record; Gaussian Shading's bit map and PRC's
    parity checks need the key's secret, so they say which vault to import, and appear once it is."""
    fresh, reopened, keys, vault = scheme_case

    def captions(window):
        out = {}
        rv = window.result_view
        for item in window.evidence.items:
            window.select_item(item.path)
            window.tabs.setCurrentWidget(rv)
            rv.method_combo.setCurrentText("gradient-free")
            out[item.name] = (rv.current_key().scheme, rv.diff_panel.caption.text(), rv.diff_panel.view.image())
        return out

    before, expected = captions(reopened), captions(fresh)
    for name, (scheme, caption, image) in before.items():
        if scheme == "ringid":
            assert caption == expected[name][1] and "ring bins" in caption and image is not None
        else:
            assert "keeps only the public record" in caption and "Import the key vault" in caption
    for window in (fresh, reopened):                 # the comparison view shows RingID's ring channel in both
        window.select_item(next(i for i in window.evidence.items if i.name.startswith("ringid")).path)
        window.tabs.setCurrentWidget(window.comparison_view)
    assert [p.title.text() for p in reopened.comparison_view.panels.values()] == \
        [p.title.text() for p in fresh.comparison_view.panels.values()]
    assert "channel 3" in reopened.comparison_view.panels["gradient-free"].title.text()
    reopened.key_files.import_files([str(vault)])
    after = captions(reopened)
    assert {n: c[:2] for n, c in after.items()} == {n: c[:2] for n, c in expected.items()}
    assert all(image is not None for _, _, image in after.values())
    assert all(s not in window_texts(reopened) for s in secrets_of(keys))


def test_case_file_keeps_each_schemes_score_detail_without_secrets(scheme_case):
    import json

    from engine.case_folder import case_file_in

    _, reopened, keys, _ = scheme_case
    text = case_file_in(reopened.cases.folder).read_text()
    assert all(s not in text for s in secrets_of(keys))
    scores = [s for image in json.loads(text)["run"]["images"] for m in image["methods"] for s in m["scores"]]
    details = {s["detail"]["scheme"]: set(s["detail"]) for s in scores}
    assert details == {"gaussian-shading": {"scheme", "matched", "bits", "soft"},
                       "ringid": {"scheme", "heter_distance", "ring_distance", "heter_p", "ring_p"},
                       "prc": {"scheme", "statistic", "threshold", "null_mean", "detected_at_key_fpr"}}
    from forensics_app.report.scheme_sections import evidence_table

    run = reopened.last_run               # the report of a reopened case states each scheme's own statistic
    tables = " ".join(evidence_table(a.methods, {}, run.keys) for a in run.images)
    assert "bits match" in tables and "ring distance" in tables and "code statistic" in tables
    assert "older case file" not in tables
