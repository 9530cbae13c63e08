"""The detection null under alteration of a shipped calibration, grown in place (benchmarks/make_calibrations.py
runs these; its --help gives the commands): nulls drawn in parts over the alterations of
engine.altered_calibration's DETECTION_ALTERATION_PLAN and merged, the traces that gate them added from their
images made again, and nulls drawn on a trial copy taken over once the trial has been read."""

from __future__ import annotations

from pathlib import Path

from calibration_parts import PARTS, first_seed, part_settings, write_merged
from engine.altered_calibration import LEFT_OUT_SUMMARY_KEY as LEFT_OUT


def add_traces(model, keys, config, out, names, methods=None, replace_traces: bool = False) -> None:
    """The trace of `names` each detection null under alteration without one carries (of `methods`' calibrations, by
    default all), from its images made again (the calibration's first clean images under its alteration) and the
    same images unaltered; the first 8, recovered again, must reproduce the file's detection statistics.
    `replace_traces`: those methods' nulls lose the traces they carry first, and each gets the first of `names`
    its images carry; the source line names what each null carried before."""
    from dataclasses import replace as replaced

    import torch

    from engine.altered_calibration import altered_pixels, detection_alterations
    from engine.calibration import Calibration
    from engine.calibration_making import clean_images, with_altered_detection_null, with_alteration_traces
    from engine.noise_statistics import STATISTICS, evidence_statistics
    from engine.pixel_levels import from_uint8
    from engine.recovery import recover_z_t

    unknown = sorted(set(names) - set(STATISTICS))
    if unknown:
        raise SystemExit(f"--add-traces: {', '.join(unknown)} is not an evidence statistic (engine.noise_statistics)")
    cal = Calibration.load(out)
    plan = {a.label: a for a in detection_alterations()}
    unknown = sorted(set(methods or ()) - set(cal.methods))
    if unknown:
        raise SystemExit(f"--trace-methods: {out} has no {', '.join(unknown)} calibration")
    counts = {method: m.summary.get("altered_clean", {}) for method, m in cal.methods.items()
              if m.detection_null_altered and (not methods or method in methods)}
    if not counts:
        raise SystemExit(f"{out} has no detection null under alteration" + (f" for {', '.join(methods)}" if methods else ""))
    n = max(max(c.values()) for c in counts.values())
    first, _ = part_settings(cal, next(iter(counts)), config, out)
    pixels = clean_images(model, range(first, first + n))
    unaltered = [evidence_statistics(x) for x in from_uint8(pixels)]
    altered: dict[str, list[dict]] = {}
    methods, notes, dropped = dict(cal.methods), [], []
    for method, by_label in counts.items():
        entry = cal.methods[method]
        replacing = replace_traces and bool(entry.detection_null_altered_traces)
        if replacing:
            before = entry.detection_null_altered_traces
            dropped.append(f"{method}: " + ", ".join(f"{label} {'/'.join(f'{k} ≥ {v:.4g}' for k, v in t.items())}"
                                                     for label, t in before.items()))
            entry = replaced(entry, detection_null_altered_traces={})
        _, method_config = part_settings(cal, method, config, out)
        again = recover_z_t(model, torch.from_numpy(from_uint8(pixels[:8])), method, method_config).numpy()
        with_altered_detection_null(entry, keys, config.score_target, again, {}, {})   # refused unless its images
        for label, count in by_label.items():
            if label not in altered or len(altered[label]) < count:
                altered[label] = [evidence_statistics(x) for x in from_uint8(altered_pixels(pixels[:count], plan[label]))]
        updated = with_alteration_traces(entry, {label: altered[label][:count] for label, count in by_label.items()},
                                         unaltered, names)
        added = {label: sorted(set(v) - set(entry.detection_null_altered_traces.get(label, {})))
                 for label, v in updated.detection_null_altered_traces.items()}
        added = {label: new for label, new in added.items() if new}
        print(f"{method}: " + ("; ".join(f"{label}: " + ", ".join(
            f"{k} ≥ {updated.detection_null_altered_traces[label][k]:.4g}" for k in new) for label, new in added.items())
                               or "no trace added"))
        if added or replacing:
            methods[method] = updated
            notes.append(f"{method} {len(added)}")
    if not notes:
        raise SystemExit(f"no null of {out} lacks a trace its images carry")
    if dropped:
        write_merged(cal, methods, out, f"the traces of the detection nulls under alteration ({'; '.join(dropped)}) "
                     f"replaced by the first of {', '.join(names)} their images made again carry "
                     f"({', '.join(notes)}; benchmarks/make_calibrations.py --add-traces --replace-traces)")
        return
    write_merged(cal, methods, out, f"{', '.join(names)} added as a trace to the detection nulls under alteration from "
                 f"their images made again ({', '.join(notes)}; benchmarks/make_calibrations.py --add-traces)")


def add_detection_alterations(args, model, keys, config, out) -> None:
    import json
    import time
    from dataclasses import replace

    import torch

    from engine.altered_calibration import describe_alterations, detection_alterations, recover_altered
    from engine.calibration import Calibration
    from engine.calibration_making import clean_images, with_altered_detection_null
    from engine.noise_statistics import evidence_statistics
    from engine.pixel_levels import from_uint8
    from engine.recovery import recover_z_t

    cal = Calibration.load(out)
    if args.merge_detection_alterations:
        methods, notes = dict(cal.methods), []
        for method, entry in cal.methods.items():
            # what the calibration already holds stays; parts add the alterations it lacks
            null = dict(entry.detection_null_altered)
            traces = dict(entry.detection_null_altered_traces)
            counts = dict(entry.summary.get("altered_clean", {}))
            added, merged = 0, {}
            for part in sorted(PARTS.glob(f"{model.spec.id}_{method}_detection_*.json")):
                d = json.loads(part.read_text())
                if d["calibration"] != cal.content_sha256:
                    # made for an earlier state of the file (already merged) or for other images: never merged
                    print(f"skipped {part}: made for another version of {out.name}")
                    continue
                null.update({k: tuple(v) for k, v in d["null"].items()})
                for label in d["null"]:
                    # a redrawn null keeps only the trace its new images all carry
                    traces.pop(label, None)
                traces.update(d.get("traces", {}))
                counts.update(d["altered_clean"])
                merged.update(d["altered_clean"])
                added += 1
            if added:
                plan = [a for a in detection_alterations() if a.label in null]
                unknown = sorted(set(null) - {a.label for a in plan})
                if unknown:
                    raise SystemExit(f"{method}: {', '.join(unknown)} not in the plan (engine.altered_calibration)")
                missing = [a.label for a in detection_alterations() if a.label not in null]
                if missing:
                    print(f"{method}: no part holds {', '.join(missing)} yet; merged without")
                order = [a.label for a in plan]
                methods[method] = replace(entry, detection_null_altered={k: null[k] for k in order},
                                          detection_null_altered_traces={k: traces[k] for k in order if k in traces},
                                          summary={**entry.summary, "altered_clean": {k: counts[k] for k in order}})
                # what these parts drew, by count (the labels they left keep what the file said of them)
                for n in sorted(set(merged.values()), reverse=True):
                    notes.append(f"{method}: the first {n} under "
                                 + describe_alterations([a for a in plan if merged.get(a.label) == n]))
        if not notes:
            raise SystemExit(f"no part under {PARTS} was made for this version of {out}")
        write_merged(cal, methods, out, f"detection also calibrated on clean images under alterations "
                     f"({'; '.join(notes)}; benchmarks/make_calibrations.py --add-detection-alterations)")
        return
    method = args.add_detection_alterations
    first, method_config = part_settings(cal, method, config, out)
    k, n = (int(v) for v in args.shard.split("/"))
    held = cal.methods[method].detection_null_altered
    if args.redraw:
        # drawn again on purpose (e.g. on more images); the merge replaces the held null with the part's
        wanted = (set(cal.methods[method].detection_null_altered_traces) if args.redraw == "traced"
                  else {label.strip() for label in args.redraw.split(",")})
        unknown = sorted(wanted - {a.label for a in detection_alterations()})
        if unknown:
            raise SystemExit(f"--redraw: {', '.join(unknown)} not in the plan (engine.altered_calibration)")
        alterations = [a for a in detection_alterations() if a.label in wanted][k::n]
    else:
        # only what the calibration lacks and did not leave out: a plan that grows is added to, never redrawn
        left_out = cal.methods[method].summary.get(LEFT_OUT, {})
        alterations = [a for a in detection_alterations() if a.label not in held and a.label not in left_out][k::n]
    if not alterations:
        raise SystemExit(f"{out} already holds every alteration of the plan for {method}")
    started = time.time()
    pixels = clean_images(model, range(first, first + args.altered_clean))
    again = recover_z_t(model, torch.from_numpy(from_uint8(pixels[:8])), method, method_config).numpy()
    # refused here, before the long part, if the images are not the calibration's
    with_altered_detection_null(cal.methods[method], keys, config.score_target, again, {}, {})
    latents, stats_ = recover_altered(model, method_config, {"clean": pixels}, alterations)
    updated = with_altered_detection_null(cal.methods[method], keys, config.score_target, again,
                                          {label: g["clean"] for label, g in latents[method].items()},
                                          {label: g["clean"] for label, g in stats_.items()},
                                          [evidence_statistics(x) for x in from_uint8(pixels)])
    PARTS.mkdir(parents=True, exist_ok=True)
    part = PARTS / f"{model.spec.id}_{method}_detection{'_redraw' if args.redraw else ''}_{k}of{n}.json"
    part.write_text(json.dumps({"calibration": cal.content_sha256, "seconds": time.time() - started,
                                "null": {k: list(v) for k, v in updated.detection_null_altered.items()},
                                "traces": updated.detection_null_altered_traces,
                                "altered_clean": updated.summary["altered_clean"]}))
    print(f"wrote {part} in {time.time() - started:.0f} s: "
          + ", ".join(f"{k} {len(v)} of {args.altered_clean} covered" for k, v in updated.detection_null_altered.items()))



def leave_out(out, labels, reason: str, methods=None) -> None:
    """Drop the detection nulls under alteration `labels` (of the plan) from `methods`' entries of the calibration
    at `out` (by default every entry holding one), each recorded in the entry's summary under LEFT_OUT with
    `reason`; its count and trace go with it. The source line says so."""
    from dataclasses import replace

    from engine.altered_calibration import detection_alterations
    from engine.calibration import Calibration

    cal = Calibration.load(out)
    unknown = sorted(set(labels) - {a.label for a in detection_alterations()})
    if unknown:
        raise SystemExit(f"--leave-out: {', '.join(unknown)} not in the plan (engine.altered_calibration)")
    methods = methods or [m for m, e in cal.methods.items() if set(labels) & set(e.detection_null_altered)]
    if not methods:
        raise SystemExit(f"--leave-out: no entry of {out} holds {', '.join(labels)}")
    changed, notes = dict(cal.methods), []
    for method in methods:
        entry = cal.methods.get(method)
        if entry is None:
            raise SystemExit(f"--trace-methods: {out} has no {method} entry")
        missing = [label for label in labels if label not in entry.detection_null_altered]
        if missing:
            raise SystemExit(f"{method}: {out} holds no null {', '.join(missing)} to leave out")
        counts = {k: v for k, v in entry.summary.get("altered_clean", {}).items() if k not in labels}
        changed[method] = replace(
            entry,
            detection_null_altered={k: v for k, v in entry.detection_null_altered.items() if k not in labels},
            detection_null_altered_traces={k: v for k, v in entry.detection_null_altered_traces.items()
                                           if k not in labels},
            summary={**entry.summary, "altered_clean": counts,
                     LEFT_OUT: {**entry.summary.get(LEFT_OUT, {}), **{label: reason for label in labels}}})
        notes.append(method)
    write_merged(cal, changed, out, f"the detection nulls under {', '.join(labels)} left out of the "
                 f"{', '.join(notes)} entr{'ies' if len(notes) > 1 else 'y'}: {reason} "
                 "(benchmarks/make_calibrations.py --leave-out)")


def take_nulls(source_path, out, methods=None) -> None:
    """Take over from `source_path` (a trial copy of the calibration at `out`) the detection nulls under alteration
    of the plan that `out`'s entries lack (of `methods`, by default every entry both hold), each with its count and
    trace. Refused unless the two entries were made on the same clean images with the same settings: the same
    model, keys, first seed, settings and clean detection statistics. No image is made again."""
    from dataclasses import replace

    import harness
    from engine.altered_calibration import detection_alterations
    from engine.calibration import Calibration

    cal, trial = Calibration.load(out), Calibration.load(source_path)
    if ((trial.model_id, trial.model_weights_sha256, trial.keyset_sha256, first_seed(trial))
            != (cal.model_id, cal.model_weights_sha256, cal.keyset_sha256, first_seed(cal))):
        raise SystemExit(f"{source_path}: not made for {out.name}'s model, keys and seeds")
    plan = [a.label for a in detection_alterations()]
    methods = methods or [m for m in cal.methods if m in trial.methods]
    taken, notes = dict(cal.methods), []
    for method in methods:
        if method not in cal.methods or method not in trial.methods:
            raise SystemExit(f"--trace-methods: {method} is not calibrated in both {out.name} and {source_path}")
        entry, other = cal.methods[method], trial.methods[method]
        if (other.settings_sha256, other.clean_detection) != (entry.settings_sha256, entry.clean_detection):
            raise SystemExit(f"{source_path}: its {method} entry was not made on {out.name}'s clean images "
                             "with its settings")
        labels = [label for label in other.detection_null_altered if label not in entry.detection_null_altered]
        outside = [label for label in labels if label not in plan]
        if outside:
            raise SystemExit(f"{source_path}: {', '.join(outside)} not in the plan (engine.altered_calibration)")
        if not labels:
            continue
        null = {**entry.detection_null_altered, **{label: other.detection_null_altered[label] for label in labels}}
        traces = {**entry.detection_null_altered_traces,
                  **{label: other.detection_null_altered_traces[label] for label in labels
                     if label in other.detection_null_altered_traces}}
        counts = {**entry.summary.get("altered_clean", {}),
                  **{label: other.summary["altered_clean"][label] for label in labels}}
        order = [label for label in plan if label in null]
        # a null taken back is no longer left out
        left = {k: v for k, v in entry.summary.get(LEFT_OUT, {}).items() if k not in labels}
        summary = {k: v for k, v in entry.summary.items() if k != LEFT_OUT}
        taken[method] = replace(entry, detection_null_altered={k: null[k] for k in order},
                                detection_null_altered_traces={k: traces[k] for k in order if k in traces},
                                summary={**summary, "altered_clean": {k: counts[k] for k in order},
                                         **({LEFT_OUT: left} if left else {})})
        notes.append(f"{method}: " + ", ".join(
            f"{label} on {counts[label]}" + "".join(f" ({k} ≥ {v:.4g})" for k, v in traces.get(label, {}).items())
            for label in labels))
    if not notes:
        raise SystemExit(f"{source_path} holds no null of the plan that {out} lacks")
    try:
        shown = Path(source_path).resolve().relative_to(harness.REPO)
    except ValueError:
        shown = Path(source_path).name
    write_merged(cal, taken, out, f"detection nulls under alteration taken over from the trial {shown} (content "
                 f"hash {trial.content_sha256[:12]}, drawn on the same clean images with the same settings; "
                 f"{'; '.join(notes)}; benchmarks/make_calibrations.py --take-nulls)")
