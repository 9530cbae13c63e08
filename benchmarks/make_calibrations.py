"""The calibrations shipped for the bundled models (resources/calibrations/<model>.json).

    .venv/bin/python benchmarks/make_calibrations.py --model demo --from-cache     # from verdict_data.py's calibration range
    .venv/bin/python benchmarks/make_calibrations.py --model demo-flow --count 300 --per-key 100   # generate and analyse

Either way the content is what `treering-forensics calibrate --model M --count N --per-key P --seed 100000` makes
with a default scan's settings (`AnalysisOptions()`): the same seeds, generation and analysis; `--from-cache`
only reuses the latents `benchmarks/verdict_data.py` already recovered from those very images.

Adding the identification null under alteration (engine/altered_calibration.py) to a shipped calibration without
making it again (its 1000 clean images are not needed again): one process per method, then a merge.

    .venv/bin/python benchmarks/make_calibrations.py --model demo --add-alterations encoder --altered-per-key 20
    .venv/bin/python benchmarks/make_calibrations.py --model demo --add-alterations gradient-free --altered-per-key 10
    .venv/bin/python benchmarks/make_calibrations.py --model demo --merge-alterations

Adding clean images to a shipped calibration's detection null (a larger null narrows the spread of the level it
holds; docs/algorithms.md §4.3), without making the rest again: shards over the added seeds, then a merge that
first checks the calibration's own first clean images reproduce its stored statistics.

    .venv/bin/python benchmarks/make_calibrations.py --model demo-flow --extend-clean 1000 --shard 0/2 &
    .venv/bin/python benchmarks/make_calibrations.py --model demo-flow --extend-clean 1000 --shard 1/2
    .venv/bin/python benchmarks/make_calibrations.py --model demo-flow --extend-clean 1000 --merge-clean

Adding the detection null under alteration (the first N clean images under engine.altered_calibration's
DETECTION_ALTERATION_PLAN; docs/algorithms.md §4.4), in parts over the alterations, then a merge:

    .venv/bin/python benchmarks/make_calibrations.py --model demo --add-detection-alterations encoder --altered-clean 200
    .venv/bin/python benchmarks/make_calibrations.py --model demo --add-detection-alterations gradient-free \
        --altered-clean 100 --shard 0/2 &      # and 1/2
    .venv/bin/python benchmarks/make_calibrations.py --model demo --merge-detection-alterations

Nulls drawn on a trial copy (benchmarks/results/detection_null_traces/trials/), once the trial has been read, are
taken over without drawing them again; a trace is then added the usual way:

    .venv/bin/python benchmarks/make_calibrations.py --model demo-flow --take-nulls TRIAL.json --trace-methods encoder
    .venv/bin/python benchmarks/make_calibrations.py --model demo-flow --add-traces mid_band_deficit --trace-methods encoder

A null of the plan that a model's calibration does better without (measured: it costs that model's watermarks more
than the false positives it stops) is left out on purpose, with the reason, and no later part draws it again:

    .venv/bin/python benchmarks/make_calibrations.py --model demo-flow --leave-out LABEL,LABEL --trace-methods encoder \
        --because "what was measured, and where"

A detection part regenerates the first N clean images from their seeds, and refuses to go on unless the first 8,
analysed again, reproduce the file's detection statistics.

Each alterations part regenerates the calibration's watermarked images from their seeds (the file's source line), analyses
them again — their exclusion statistics must reproduce the file's identification null, or the part is refused —
and puts the first N of each key through every alteration (`calibrate --altered-per-key N` does the same).
"""

from __future__ import annotations

from pathlib import Path

import harness
from altered_null_making import add_detection_alterations, add_traces, leave_out, take_nulls
from calibration_parts import PARTS, part_settings, write_merged


def main() -> None:
    p = harness.parser(__doc__, "calibrations", keys=True)
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--per-key", type=int, default=100)
    p.add_argument("--from-cache", action="store_true")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--add-alterations", metavar="METHOD",
                   help="add the identification null under alteration for this method to the shipped calibration "
                        "(written as a part under benchmarks/cache/calibration_parts/)")
    p.add_argument("--altered-per-key", type=int, default=20)
    p.add_argument("--merge-alterations", action="store_true",
                   help="write the shipped calibration with every part made by --add-alterations")
    p.add_argument("--add-detection-alterations", metavar="METHOD",
                   help="add the detection null under alteration for this method (a part under "
                        "benchmarks/cache/calibration_parts/; --shard k/n takes every n-th alteration from the k-th)")
    p.add_argument("--altered-clean", type=int, default=200)
    p.add_argument("--redraw", metavar="LABELS",
                   help="with --add-detection-alterations: draw these held alterations again (comma-separated "
                        "labels, or 'traced': those whose null carries a trace), e.g. on more clean images")
    p.add_argument("--add-traces", metavar="NAMES",
                   help="add to the detection nulls under alteration these traces where their images all carry them "
                        "(comma-separated evidence statistics, e.g. engine.noise_statistics.ALTERATION_TRACES or a "
                        "candidate to try with --out on a copy), from their images made again; no inversion")
    p.add_argument("--trace-methods", metavar="METHODS",
                   help="with --add-traces or --take-nulls: only these methods' nulls (comma-separated), e.g. "
                        "those that hold the nulls pinned at radius 2 that a mid-band deficit's gate needs beside it")
    p.add_argument("--replace-traces", action="store_true",
                   help="with --add-traces: first drop the traces those methods' nulls carry, so that each null gets "
                        "the first of NAMES its images carry (one trace per null), e.g. after the order of "
                        "engine.noise_statistics.ALTERATION_TRACES changed")
    p.add_argument("--take-nulls", metavar="FILE",
                   help="take over from FILE (a trial copy of this calibration, read before it ships) the detection "
                        "nulls under alteration of the plan that the shipped file lacks, with their counts and "
                        "traces; refused unless FILE's entry was made on the same clean images with the same "
                        "settings (with --trace-methods: only those methods)")
    p.add_argument("--leave-out", metavar="LABELS",
                   help="drop these detection nulls under alteration of the plan (comma-separated labels) from the "
                        "--trace-methods entries (default: all), recording them with --because as left out on "
                        "purpose, so that no later part draws them again")
    p.add_argument("--because", metavar="TEXT", help="with --leave-out: why, with the measurement that says so")
    p.add_argument("--merge-detection-alterations", action="store_true",
                   help="write the shipped calibration with every part made by --add-detection-alterations")
    p.add_argument("--add-evidence-coverage", action="store_true",
                   help="add the range of evidence statistics the shipped calibration lacks (e.g. clipped_share), "
                        "from its images made again (generation only)")
    p.add_argument("--extend-clean", type=int, metavar="N",
                   help="grow the shipped calibration's clean images to N (parts under benchmarks/cache/calibration_parts/)")
    p.add_argument("--shard", default="0/1", help="with --extend-clean: k/n, this process's share of the batches")
    p.add_argument("--merge-clean", action="store_true", help="with --extend-clean: write the calibration from the parts")
    args = p.parse_args()

    from pathlib import Path

    from engine.calibration_making import calibrate, calibration_from_latents
    from engine.model_loader import load_model
    from engine.options import AnalysisOptions
    from engine.treering import KeySet

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model = load_model(args.model, device=args.device)
    keys = KeySet.load(args.keys)
    config = AnalysisOptions().to_config(model)
    out = Path(args.out) if args.out else harness.REPO / "resources" / "calibrations" / f"{model.spec.id}.json"
    if args.add_evidence_coverage:
        add_evidence_coverage(model, keys, out)
        return
    if args.extend_clean:
        extend_clean(args, model, keys, config, out)
        return
    if args.take_nulls:
        take_nulls(Path(args.take_nulls), out,
                   [m.strip() for m in args.trace_methods.split(",")] if args.trace_methods else None)
        return
    if args.leave_out:
        if not args.because:
            raise SystemExit("--leave-out needs --because: why these nulls are left out, and what measured it")
        leave_out(out, [label.strip() for label in args.leave_out.split(",")], args.because,
                  [m.strip() for m in args.trace_methods.split(",")] if args.trace_methods else None)
        return
    if args.add_traces:
        add_traces(model, keys, config, out, [name.strip() for name in args.add_traces.split(",")],
                   [m.strip() for m in args.trace_methods.split(",")] if args.trace_methods else None,
                   replace_traces=args.replace_traces)
        return
    if args.replace_traces:
        raise SystemExit("--replace-traces goes with --add-traces")
    if args.add_detection_alterations or args.merge_detection_alterations:
        add_detection_alterations(args, model, keys, config, out)
        return
    if args.add_alterations or args.merge_alterations:
        add_alterations(args, model, keys, config, out)
        return
    if args.from_cache:
        from verdict_data import CALIBRATION_SEED, load_group, pixel_statistics

        groups = {"clean": load_group(args.model, "calibration_clean"),
                  **{k: load_group(args.model, f"calibration_{k}") for k in keys.ids}}
        latents = {m: {g: d[f"z_t/{m}"] for g, d in groups.items()} for m in config.methods}
        n = {g: len(d["seed"]) for g, d in groups.items()}
        cal = calibration_from_latents(
            model.spec.id, model.weight_sha256, keys, config, str(model.dtype).replace("torch.", ""), latents,
            source=(f"generated by {model.spec.id}: {n['clean']} clean and "
                    + ", ".join(f"{n[k]} {k}" for k in keys.ids)
                    + f", seeds {CALIBRATION_SEED}… (same seeds in every group), 50 sampling steps; "
                    "benchmarks/make_calibrations.py --from-cache"),
            pixel_statistics={g: pixel_statistics(d) for g, d in groups.items()})
    else:
        cal = calibrate(model, keys, config, clean_count=args.count, per_key_count=args.per_key, seed=100_000)
    out.parent.mkdir(parents=True, exist_ok=True)
    cal.save(out)
    print(f"wrote {out}: {cal.describe()}")
    for m, c in cal.methods.items():
        print(f"  {m}: min supported p {c.min_supported_p:.3g}; in-sample {c.summary.get('in_sample_conclusions')}")


def add_evidence_coverage(model, keys, out) -> None:
    """Regenerate every calibration image from its seed (the file's source line: clean and per key from the same
    first seed), compute the evidence statistics, and add the ranges the file lacks."""
    import re
    import time
    from dataclasses import replace

    from engine.calibration import Calibration
    from engine.calibration_making import with_evidence_coverage
    from engine.generation import decode_to_uint8, initial_noise, sample_latents
    from engine.noise_statistics import evidence_statistics
    from engine.pixel_levels import from_uint8
    from engine.watermarks import scheme_for

    started = time.time()
    cal = Calibration.load(out)
    seed = int(re.search(r"seeds (\d+)", cal.source).group(1))
    scheme = scheme_for(keys)
    statistics = []
    for group, key in [("clean", None)] + [(k.id, k) for k in keys.keys]:
        for start in range(0, cal.counts[group], 8):      # generate_reference_set's batches
            seeds = list(range(seed + start, seed + min(start + 8, cal.counts[group])))
            z_t = initial_noise(model, seeds)
            if key is not None:
                z_t = scheme.inject(z_t, key)
            pixels = decode_to_uint8(model, sample_latents(model, z_t))
            statistics += [evidence_statistics(xi) for xi in from_uint8(pixels)]
        print(f"{group}: {cal.counts[group]} images made again ({time.time() - started:.0f} s)", flush=True)
    updated = with_evidence_coverage(cal, statistics)
    added = sorted(set(updated.methods[next(iter(updated.methods))].coverage) - set(cal.methods[next(iter(cal.methods))].coverage))
    updated = replace(updated, source=f"{cal.source}; coverage of {', '.join(added)} added from the same images made "
                                      "again (benchmarks/make_calibrations.py --add-evidence-coverage)")
    updated.save(out)
    print(f"wrote {out}: coverage now {updated.methods[next(iter(updated.methods))].coverage}")


AGAIN = 8    # the calibration's own first clean images, recovered again as a check


def extend_clean(args, model, keys, config, out) -> None:
    """Shards: recover the added clean images (seeds after the calibration's) with every method of the
    calibration; shard 0 also its first AGAIN clean images. --merge-clean: the calibration with them added."""
    import json
    import re
    import time

    import numpy as np

    from engine.calibration import Calibration, settings_sha256
    from engine.calibration_making import recover_clean, with_more_clean

    cal = Calibration.load(out)
    first = int(re.search(r"seeds (\d+)", cal.source).group(1))
    have = cal.counts["clean"]
    if args.extend_clean <= have:
        raise SystemExit(f"{out} already has {have} clean images")
    methods = list(cal.methods)
    dtype = str(model.dtype).replace("torch.", "")
    settings = {m: settings_sha256(config, m, dtype) for m in methods}
    stem = f"{model.spec.id}_clean_{cal.content_sha256[:12]}"

    def recovered(seeds):
        return recover_clean(model, config, seeds, methods)

    seeds = list(range(first + have, first + args.extend_clean))
    batches = [seeds[i:i + 8] for i in range(0, len(seeds), 8)]
    if args.merge_clean:
        parts = [PARTS / f"{stem}_{b[0]}.npz" for b in batches]
        missing = [p.name for p in parts if not p.exists()]
        if missing or not (PARTS / f"{stem}_again.npz").exists():
            raise SystemExit(f"parts missing ({len(missing)} batches, or the check): run the shards")
        z = {m: [] for m in methods}
        stats = []
        for part in parts:
            with np.load(part) as f:
                for m in methods:
                    z[m].append(f[m])
                stats += json.loads(str(f["pixel_statistics"]))
        with np.load(PARTS / f"{stem}_again.npz") as f:
            again = {m: f[m] for m in methods}
        updated = with_more_clean(cal, keys, config.score_target, settings, {m: np.concatenate(v) for m, v in z.items()},
                                  stats, again, f"seeds {seeds[0]}…{seeds[-1]}, benchmarks/make_calibrations.py "
                                                "--extend-clean")
        updated.save(out)
        print(f"wrote {out}: {updated.describe()}")
        return
    k, n = (int(v) for v in args.shard.split("/"))
    PARTS.mkdir(parents=True, exist_ok=True)
    started = time.time()
    if k == 0 and not (PARTS / f"{stem}_again.npz").exists():
        z, _ = recovered(list(range(first, first + AGAIN)))
        np.savez(PARTS / f"{stem}_again.npz", **z)
    mine = batches[k::n]
    for done, batch in enumerate(mine, 1):
        part = PARTS / f"{stem}_{batch[0]}.npz"
        if part.exists():
            continue
        z, stats = recovered(batch)
        tmp = part.with_name(part.stem + ".tmp.npz")
        np.savez(tmp, **z, pixel_statistics=np.array(json.dumps(stats)))
        tmp.replace(part)
        print(f"shard {k}/{n}: {done}/{len(mine)} batches ({time.time() - started:.0f} s)", flush=True)


def add_alterations(args, model, keys, config, out) -> None:
    import json
    import tempfile
    import time

    import numpy as np

    from engine.altered_calibration import calibration_alterations, describe_alterations, recover_altered
    from engine.analysis import analyze
    from engine.calibration import Calibration, MethodCalibration
    from engine.calibration_making import with_altered_null
    from engine.generation import generate_reference_set
    from engine.noise_statistics import evidence_statistics
    from engine.pixel_levels import to_uint8

    cal = Calibration.load(out)
    part = lambda method: PARTS / f"{model.spec.id}_{method}.json"
    if args.merge_alterations:
        methods = dict(cal.methods)
        notes = []
        for method in cal.methods:
            if part(method).exists():
                d = json.loads(part(method).read_text())
                if d["calibration"] != cal.content_sha256:
                    raise SystemExit(f"{part(method)} was made for another calibration")
                methods[method] = MethodCalibration.from_json_dict(d["method"])
                notes.append(f"{method}: {d['per_key']} per key")
        write_merged(cal, methods, out, f"identification also calibrated under "
                     f"{describe_alterations(calibration_alterations())} ({', '.join(notes)}; "
                     f"benchmarks/make_calibrations.py --add-alterations)")
        return
    method = args.add_alterations
    seed, method_config = part_settings(cal, method, config, out)
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="calibration_alterations_"))
    keyed_z, keyed_stats, marked = {}, {}, {}
    for key in keys.keys:
        made = generate_reference_set(model, key, cal.counts[key.id], work / key.id, seed=seed)
        run = analyze(model, keys, [str(work / key.id / m.file) for m in made], method_config)
        if run.failures:
            raise SystemExit(f"{len(run.failures)} images failed: {run.failures[0].message}")
        keyed_z[key.id] = np.stack([im.methods[method].z_t for im in run.images])
        keyed_stats[key.id] = [evidence_statistics(im.evidence.pixels) for im in run.images]
        marked[key.id] = np.stack([to_uint8(im.evidence.pixels) for im in run.images[:args.altered_per_key]])
        print(f"{key.id}: {len(made)} calibration images again ({time.time() - started:.0f} s)", flush=True)
    # refused here, before the long part, if the images are not the calibration's
    with_altered_null(cal.methods[method], keys, config.score_target, keyed_z, keyed_stats, {}, {})
    latents, stats_ = recover_altered(model, method_config, marked, calibration_alterations())
    updated = with_altered_null(cal.methods[method], keys, config.score_target, keyed_z, keyed_stats,
                                latents[method], stats_)
    PARTS.mkdir(parents=True, exist_ok=True)
    part(method).write_text(json.dumps({"calibration": cal.content_sha256, "per_key": args.altered_per_key,
                                        "seconds": time.time() - started, "method": updated.to_json_dict()}))
    print(f"wrote {part(method)} in {time.time() - started:.0f} s: "
          + ", ".join(f"{k} {len(v)}" for k, v in updated.identification_null_altered.items()))



if __name__ == "__main__":
    main()
