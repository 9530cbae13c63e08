"""The per-image record store (engine.scan_records) and the local executor's resume, without Ray: records
round-trip every number exactly, a torn last line is skipped, the settings hash follows the settings that
decide an image's numbers, and a resumed local scan analyses only what is not done."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

from engine.analysis import run_to_json
from engine.executors import LocalExecutor, ScanJob
from engine.options import AnalysisOptions
from engine.scan_records import RecordStore, RunMeta, record_of, result_of_record
from tests.conftest import REPO, RESOURCES

FAST = AnalysisOptions(iterations=5, steps=5, batch_size=4)
# One image per batch: an image's numbers then do not depend on which images shared its batch, so two scans of
# the same images agree bit for bit (with batches of several they agree to float rounding: ~5e-5 in z_T).
SINGLE = replace(FAST, batch_size=1)


def comparable(scan: dict) -> dict:
    """The scan JSON without what legitimately differs between two runs of the same images: times and notes."""
    scan = json.loads(json.dumps(scan))
    for k in ("started_utc", "finished_utc", "notes"):
        scan.pop(k)
    for image in scan["images"]:
        for m in image["methods"].values():
            for k in ("seconds", "decoder_seconds", "inversion_seconds"):
                m.pop(k)
    return scan


def samples(n: int | None = None) -> tuple[str, ...]:
    return tuple(str(p) for p in sorted((RESOURCES / "samples").glob("*.png")))[:n]


def test_a_record_round_trips_every_number(demo_model, demo_keys, tmp_path):
    config = FAST.to_config(demo_model)
    run = LocalExecutor(demo_model).run(ScanJob("demo", demo_keys, FAST, samples(2)))
    meta = RunMeta.of(demo_model, demo_keys, config)
    store = RecordStore(tmp_path / "rec")
    h = store.prepare(meta)
    for a in run.images:
        store.append(record_of(a, h, meta.device))
    back = [result_of_record(r, load_pixels=True) for r in store.records()]
    for a, b in zip(run.images, back):
        assert b.evidence.sha256 == a.evidence.sha256
        assert (b.evidence.pixels == a.evidence.pixels).all()       # decoded again, same bytes
        for m, r in a.methods.items():
            assert (b.methods[m].z_t == r.z_t).all()
            assert b.methods[m].scores == r.scores and b.methods[m].verdict == r.verdict
    # a crash mid-write leaves a torn last line: skipped and counted, the whole records before it kept
    with open(store.path, "ab") as f:
        f.write(b'{"format": "treering-forensics/scan-record", "kind": "anal')
    assert len(list(store.records())) == 2 and store.torn_lines == 1
    assert set(store.done(h)) == {a.evidence.sha256 for a in run.images}
    assert store.done("another-settings-hash") == {}


def test_the_settings_hash_follows_the_settings_that_change_numbers(demo_model, demo_keys):
    def h(options, md5=False, keys=demo_keys, calibration=None):
        return RunMeta.of(demo_model, keys, options.to_config(demo_model), md5, calibration).settings_hash()

    base = h(FAST)
    assert h(FAST) == base
    assert h(replace(FAST, batch_size=1)) == base                # an image's numbers do not depend on its batch
    for changed in (replace(FAST, iterations=6), replace(FAST, steps=6), replace(FAST, fpr=0.05),
                    replace(FAST, methods=("encoder",)), replace(FAST, score_target="reference")):
        assert h(changed) != base, changed
    assert h(FAST, md5=True) != base
    assert h(FAST, keys=replace(demo_keys, keys=demo_keys.keys[:2])) != base
    # records hold conclusions, so a scan under the shipped calibration reuses none made without one
    from engine.calibration import NO_CALIBRATION, choose_calibration
    from engine.options import AnalysisOptions

    default = AnalysisOptions()
    shipped = choose_calibration(demo_model, demo_keys, default.to_config(demo_model))
    assert shipped.identity() is not None
    assert h(default, calibration=shipped) != h(default) == h(default, calibration=NO_CALIBRATION)


def test_a_resumed_local_scan_analyses_only_what_is_not_done(demo_model, demo_keys, tmp_path):
    paths = samples(4)
    folder = str(tmp_path / "records")
    first = LocalExecutor(demo_model).run(ScanJob("demo", demo_keys, SINGLE, paths[:2], records=folder))
    assert len(first.images) == 2 and first.notes == ()
    seen = []
    resumed = LocalExecutor(demo_model).run(ScanJob("demo", demo_keys, SINGLE, paths, records=folder),
                                            on_result=seen.append)
    lines = (tmp_path / "records" / "records.jsonl").read_text().splitlines()
    assert len(lines) == 4                                       # two new records, none repeated
    assert [json.loads(x)["path"] for x in lines] == list(paths)
    assert len(seen) == 4 and "2 image(s) taken from earlier records" in resumed.notes[0]
    whole = LocalExecutor(demo_model).run(ScanJob("demo", demo_keys, SINGLE, paths))
    assert comparable(run_to_json(resumed)) == comparable(run_to_json(whole))
    # the report says how the run was made (here: a resume; a Ray run names its cluster the same way)
    from engine.provenance import reverify
    from forensics_app.report.sections import ReportInfo, ReportSections
    from tests.test_report_sections import NoFigures

    checks = [reverify(a.evidence.path, a.evidence.sha256) for a in resumed.images]
    html, _ = ReportSections(run=resumed, info=ReportInfo(case_id="R"), generated_utc="now", commit="c", weights={},
                             weights_note="", checks=checks, truth={}, json_name="r.json", json_sha256="0",
                             figures=NoFigures()).build()
    assert "Run notes" in html and "2 image(s) taken from earlier records" in html


def test_a_local_scan_never_imports_ray():
    code = ("import sys\nfrom forensics_app.cli import main\n"
            "rc = main(['scan', 'resources/samples/key1_00500.png', '--iterations', '2', '--steps', '2', '--quiet'])\n"
            "assert rc == 0, rc\nassert 'ray' not in sys.modules, 'the local path imported ray'\n"
            "import engine.executors, engine.scan_records\nassert 'ray' not in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
