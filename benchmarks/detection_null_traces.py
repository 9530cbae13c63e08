"""The detection null under alteration with and without its traces (docs/algorithms.md §4.4): on the robustness
references (benchmarks/robustness.py's cache: 50 per key, 150 clean, seeds 300000…), what the tool concludes on
clean images under rotations with a crop and a light blur (the plan's radius 1, and held-out ones it does not
simulate; `--rows blur`: the plan's blurs of radius 2 or more and held-out ones, which the luma's mid-band
deficit gates) and on watermarked images under the alterations where the altered nulls cost detection, read
with four versions of the model's shipped calibration on the same recovered latents:

- *before*: the calibration as it was at `--before` (git revision; for `demo`, 081a608: the six nulls, none traced);
- *untraced only*: the shipped one without its traced nulls;
- *ungated*: the shipped one with every null applied to all evidence (its traces dropped);
- *shipped*: the shipped one, a null with a trace applying only to evidence that carries as much of it.

`--calibration PATH` reads another file in the shipped one's place (e.g. a copy with a candidate trace added by
`make_calibrations.py --add-traces NAME --out PATH`); the results then say so.

Also the traces of each group (corner fill, dark corners, mid-band deficit), the analytic detection (Bonferroni
over the keys ≤ 0.01), and per calibration the keys named and how many of them wrongly (a null that only ever
vetoes cannot add a wrong key; a gate that lets evidence skip a null can). Each row's recovered latents and
evidence statistics are kept under benchmarks/cache/altered_latents/ (they do not depend on the calibration), so a
second calibration is read in seconds.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/detection_null_traces.py --before 081a608
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/detection_null_traces.py --model demo-flow --before aad7743 --rows blur
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

import harness

CLEAN = (("none", 0.0), ("rotation+resizedcrop", 0.1),
         ("rotation+resizedcrop+blur@0.05", 0.1), ("rotation+resizedcrop+blur@0.05", 0.2),
         ("rotation+resizedcrop+blur@0.05", 0.3),
         ("rotation+resizedcrop+noise", 0.1), ("rotation+resizedcrop+noise", 0.2), ("rotation+resizedcrop+noise", 0.3))
# not simulated by the calibration: between its rotations, between its blurs or lighter, a blur and noise together,
# a JPEG instead
HELD_OUT = (("rotation+resizedcrop+blur@0.05", 0.15), ("rotation+resizedcrop+blur@0.075", 0.2),
            ("rotation+resizedcrop+blur@0.025", 0.2), ("rotation+resizedcrop+noise", 0.15),
            ("rotation+resizedcrop+blur@0.05+noise", 0.2), ("rotation+resizedcrop+jpeg", 0.2))
MARKED = (("none", 0.0), ("combo-deg", 0.2), ("resizedcrop+jpeg", 0.38), ("combo-all", 0.1), ("combo-all", 0.2),
          ("rotation+resizedcrop+blur@0.05", 0.2))
# the blurs of radius 2 or more (the plan's radius 20 × strength; blur@: a pinned radius), which the mid-band deficit
# would gate, with the rotations pinned at radius 2 that the dark corners would gate (not in the plan: nulls of
# trials/demo-flow_dark_trial_calibration.json), and held-out ones:
# between the plan's strengths, a rotation blurred between radius 2 and the plan's 4 (where neither trace need
# hold), a blur or WAVES' degradations without rotation
BLUR_CLEAN = (("none", 0.0), ("rotation+resizedcrop+blur", 0.1), ("rotation+resizedcrop+blur", 0.2),
              ("rotation+resizedcrop+blur", 0.3), ("combo-all", 0.1), ("combo-all", 0.2), ("combo-all", 0.3),
              ("rotation+resizedcrop+blur@0.1", 0.2), ("rotation+resizedcrop+blur@0.1", 0.3))
BLUR_HELD_OUT = (("rotation+resizedcrop+blur", 0.15), ("rotation+resizedcrop+blur", 0.25),
                 ("rotation+resizedcrop+blur@0.1", 0.25), ("rotation+resizedcrop+blur@0.075", 0.3),
                 ("rotation+resizedcrop+blur@0.1+noise", 0.2), ("rotation+resizedcrop+blur@0.125", 0.2),
                 ("rotation+resizedcrop+blur@0.15", 0.2), ("rotation+resizedcrop+blur@0.15", 0.3),
                 ("rotation+resizedcrop+blur@0.15+noise", 0.2), ("combo-all", 0.15), ("combo-all", 0.25),
                 ("combo-deg", 0.2), ("blur", 0.15))
BLUR_MARKED = (("none", 0.0), ("combo-deg", 0.2), ("combo-all", 0.1), ("combo-all", 0.2),
               ("rotation+resizedcrop+blur", 0.1), ("blur", 0.1))
# the short set that decides whether the dark-corner nulls pinned at radius 2 cover what a deficit gate on the
# radius-4 nulls lets through: the gated nulls' own alterations, and rotations blurred with radius 2-3 (with noise)
DARK_CLEAN = (("none", 0.0), ("rotation+resizedcrop+blur", 0.2), ("rotation+resizedcrop+blur@0.1", 0.2))
DARK_HELD_OUT = (("rotation+resizedcrop+blur@0.1+noise", 0.2), ("rotation+resizedcrop+blur@0.125", 0.2),
                 ("rotation+resizedcrop+blur@0.15", 0.2), ("rotation+resizedcrop+blur@0.15+noise", 0.2))
DARK_MARKED = (("none", 0.0),)
# the short set for the corner nulls gated by their dark corners instead of their pure-black ones: the plan's 9°
# rows, and the held-out ones that lose pure black but keep dark corners (noise after a blur, a JPEG, radius 1.5)
DARK_FIRST_CLEAN = (("none", 0.0), ("rotation+resizedcrop+noise", 0.2), ("rotation+resizedcrop+blur@0.05", 0.2))
DARK_FIRST_HELD_OUT = (("rotation+resizedcrop+blur@0.05+noise", 0.2), ("rotation+resizedcrop+jpeg", 0.2),
                       ("rotation+resizedcrop+blur@0.075", 0.2))
DARK_FIRST_MARKED = (("none", 0.0), ("combo-all", 0.1))
# the plan's rotations pinned at radius 2 and at radius 2.5 with noise after the blur (session 18). A null added to
# the calibration can only veto, so a clean row at 0 before stays at 0: the clean rows are the new nulls' own, and
# those of the blur set that flagged any image on either model before, among them the two it was drawn for (9° with
# radius 2 or 3 and noise σ 0.02, held out), with held-out neighbours at other angles, radii and noise; the
# watermarked rows are both sets' (where a null costs detections)
BLUR_NOISE_CLEAN = (("none", 0.0), ("rotation+resizedcrop+blur", 0.3), ("rotation+resizedcrop+blur@0.1", 0.2),
                    ("rotation+resizedcrop+blur@0.1", 0.3), ("rotation+resizedcrop+blur@0.125+noise@0.2", 0.2),
                    ("rotation+resizedcrop+blur@0.125+noise@0.2", 0.3))
BLUR_NOISE_HELD_OUT = (("rotation+resizedcrop+blur@0.1+noise", 0.2), ("rotation+resizedcrop+blur@0.15+noise", 0.2),
                       ("rotation+resizedcrop+blur", 0.25), ("rotation+resizedcrop+blur@0.1", 0.25),
                       ("rotation+resizedcrop+blur@0.075", 0.3),
                       ("rotation+resizedcrop+blur@0.1+noise@0.2", 0.15),
                       ("rotation+resizedcrop+blur@0.125+noise@0.2", 0.25),
                       ("rotation+resizedcrop+blur@0.15+noise@0.3", 0.2), ("rotation+resizedcrop+blur@0.15+noise", 0.3),
                       ("rotation+resizedcrop+blur@0.125", 0.2), ("rotation+resizedcrop+blur@0.15", 0.2),
                       ("combo-all", 0.25))
BLUR_NOISE_MARKED = BLUR_MARKED + (("resizedcrop+jpeg", 0.38), ("rotation+resizedcrop+blur@0.05", 0.2))
ROW_SETS = {"corners": (CLEAN, HELD_OUT, MARKED), "blur": (BLUR_CLEAN, BLUR_HELD_OUT, BLUR_MARKED),
            "dark": (DARK_CLEAN, DARK_HELD_OUT, DARK_MARKED),
            "dark-first": (DARK_FIRST_CLEAN, DARK_FIRST_HELD_OUT, DARK_FIRST_MARKED),
            "blur-noise": (BLUR_NOISE_CLEAN, BLUR_NOISE_HELD_OUT, BLUR_NOISE_MARKED)}
LATENTS = harness.REPO / "benchmarks" / "cache" / "altered_latents"


def main() -> None:
    p = harness.parser(__doc__, "detection_null_traces", keys=True)
    p.add_argument("--before", required=True, help="git revision of the calibration to compare with")
    p.add_argument("--method", default="encoder")
    p.add_argument("--unaltered-only", action="store_true", help="only the unaltered clean and watermarked rows")
    p.add_argument("--calibration", help="read this calibration file instead of the shipped one (a trial)")
    p.add_argument("--rows", choices=tuple(ROW_SETS), default="corners",
                   help="corners: rotations that keep pure-black corners; blur: blurs of radius 2 or more; dark: "
                        "the short set for the dark-corner nulls beside a blur gate; dark-first: the short set for "
                        "corner nulls gated by dark corners; blur-noise: the blur set with the nulls pinned at "
                        "radius 2 and at radius 2.5 with noise, and their neighbours")
    args = p.parse_args()

    from engine.attacks import apply_attacks, combined, describe_parameters
    from engine.calibration import Calibration, settings_sha256
    from engine.decoys import p_value_matrix
    from engine.model_loader import load_model
    from engine.noise_statistics import evidence_statistics
    from engine.options import AnalysisOptions
    from engine.pixel_levels import from_uint8
    from engine.recovery import recover_z_t
    from engine.robustness_verdicts import conclusions_from_latents, defended
    from engine.treering import KeySet
    from engine.verdicts import OUTSIDE_CALIBRATION
    from robustness import cached_references

    started = time.time()
    model = load_model(args.model, device=args.device)
    keys = KeySet.load(args.keys)
    config = AnalysisOptions(methods=(args.method,)).to_config(model)
    shipped_path = (Path(args.calibration) if args.calibration else
                    harness.REPO / "resources" / "calibrations" / f"{args.model}.json")
    shipped = Calibration.load(shipped_path).methods[args.method]
    old_text = subprocess.run(["git", "show", f"{args.before}:resources/calibrations/{args.model}.json"],
                              cwd=harness.REPO, check=True, capture_output=True, text=True).stdout
    before_path = harness.REPO / "benchmarks" / "cache" / f"calibration_{args.model}_{args.before}.json"
    before_path.parent.mkdir(parents=True, exist_ok=True)
    before_path.write_text(old_text)
    traced = set(shipped.detection_null_altered_traces)
    calibrations = {"before": Calibration.load(before_path).methods[args.method],
                    "untraced only": replace(shipped, detection_null_altered_traces={}, detection_null_altered={
                        k: v for k, v in shipped.detection_null_altered.items() if k not in traced}),
                    "ungated": replace(shipped, detection_null_altered_traces={}), "shipped": shipped}
    refs, refs_path = cached_references(model, keys, 50, 150, 300_000)
    groups = {"clean": [r for r in refs if r.key_id is None], "watermarked": [r for r in refs if r.key_id is not None]}
    k = len(keys)
    # the recovered latents of a row depend only on the images, the alteration and the inversion's settings, never
    # on the calibration read: kept, so that another calibration is read without inverting again
    settings = settings_sha256(config, args.method, str(model.dtype).replace("torch.", ""))[:12]

    def recovered(kind: str, name: str, strength: float) -> tuple[torch.Tensor, list[dict]]:
        path = LATENTS / f"{refs_path.stem}_{kind}_{args.method}_{settings}_{name}_{strength:g}.npz"
        if path.exists():
            with np.load(path) as f:
                names = [str(n) for n in f["statistic_names"]]
                return torch.from_numpy(f["z"]), [dict(zip(names, map(float, v))) for v in f["statistics"]]
        images = groups[kind]
        attacked = np.stack([r.pixels if name == "none" else apply_attacks(r.pixels, combined(name, strength, r.seed))
                             for r in images])
        pixels = from_uint8(attacked)
        z = recover_z_t(model, torch.from_numpy(pixels), args.method, config)
        stats = [evidence_statistics(x) for x in pixels]
        names = sorted(stats[0])
        LATENTS.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npz")     # two readers may fill the same row
        np.savez_compressed(tmp, z=z.numpy(), statistic_names=np.array(names),
                            statistics=np.array([[s[n] for n in names] for s in stats]))
        tmp.replace(path)
        return z, stats

    rows = []
    clean_rows, held_out, marked_rows = ROW_SETS[args.rows]
    plans = ((("clean", CLEAN[:1]), ("watermarked", MARKED[:1])) if args.unaltered_only else
             (("clean", clean_rows + held_out), ("watermarked", marked_rows)))
    for kind, plan in plans:
        for name, strength in plan:
            images = groups[kind]
            truths = [r.key_id for r in images]
            z, stats = recovered(kind, name, strength)
            row = {"group": kind, "alteration": name, "strength": strength,
                   "parameters": "as generated" if name == "none" else describe_parameters(combined(name, strength)),
                   "held_out": kind == "clean" and (name, strength) in held_out, "images": len(images)}
            for label, cal in calibrations.items():
                cs = conclusions_from_latents(keys, z, stats, config.fpr, config.score_target, args.method, cal)
                row[label] = sum(defended(c) for c in cs)
                # which images, so that two calibrations can be compared pair by pair (McNemar)
                row[f"{label}_flagged"] = [i for i, c in enumerate(cs) if defended(c)]
                row[f"{label}_outside"] = sum(c.calibration == OUTSIDE_CALIBRATION for c in cs)
                # a key named, and named wrongly (the worst error; on a clean image every named key is wrong)
                named = [(c.key, t) for c, t in zip(cs, truths) if c.outcome == "identified"]
                row[f"{label}_named"] = len(named)
                row[f"{label}_wrong"] = sum(key != t for key, t in named)
            t = p_value_matrix(z, list(keys.keys)).min(1)
            row["analytic"] = int(np.sum(np.minimum(1, k * t) <= 0.01))
            for trace in ("corner_fill", "dark_corners", "mid_band_deficit"):
                values = np.array([s[trace] for s in stats])
                row[trace] = [float(q) for q in np.percentile(values, [0, 50, 100])]
            rows.append(row)
            print({key: v for key, v in row.items() if not key.endswith("_flagged")}, flush=True)

    traces = shipped.detection_null_altered_traces
    summary = {**harness.provenance(started), "method": args.method, "before": args.before, "row_set": args.rows,
               "shipped_sha256": Calibration.load(shipped_path).content_sha256, "traces": traces, "rows": rows,
               "read_instead_of_shipped": args.calibration}
    lines = [f"# The detection null under alteration with and without its traces (`{args.model}`, {args.method})", "",
             harness.command_line(summary), "",
             "150 clean and 150 watermarked robustness references (seeds 300000…), each image with its own seed; the "
             "same recovered latents read with four versions of the shipped calibration"
             + (f" (here: of the trial file {Path(args.calibration).name}, sha256 "
                f"{summary['shipped_sha256'][:12]}…, read as *shipped*)" if args.calibration else "")
             + ": *before* (at "
             f"`{args.before}`), *untraced only* (its nulls without a trace), *ungated* (every null applied to all "
             "evidence) and "
             "*shipped* (a null whose images all carry a trace applies only to evidence with at least their least "
             "value of it: their pure-black or dark corner pixels, or the luma's mid-band deficit of a blur; "
             "engine.noise_statistics.ALTERATION_TRACES). Counts are defended detections (detected and not outside "
             "calibration); analytic: Bonferroni over the keys of the analytic p ≤ 0.01.", "",
             "Traces of the shipped nulls: " + ("; ".join(f"{label}: " + ", ".join(f"{name.replace('_', ' ')} ≥ {v:.3g}"
                                                                                  for name, v in t.items())
                                                          for label, t in traces.items()) or "none"), "",
             "| images | alteration | parameters | analytic | " + " | ".join(calibrations) + " | outside (shipped) | "
             "keys named (wrong), before → shipped | "
             "corner fill min / median / max | dark corners min / median / max | mid-band deficit min / median / max |",
             "| --- | --- | --- | --- | " + "--- | " * len(calibrations) + "--- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['group']} | {r['alteration']} {r['strength']:g}{' (held out)' if r['held_out'] else ''} "
                     f"| {r['parameters']} | {r['analytic']}/{r['images']} | "
                     + "".join(f"{r[label]}/{r['images']} | " for label in calibrations)
                     + f"{r['shipped_outside']} | "
                     + f"{r['before_named']} ({r['before_wrong']}) → {r['shipped_named']} ({r['shipped_wrong']}) | "
                     + " / ".join(f"{v:.3f}" for v in r["corner_fill"]) + " | "
                     + " / ".join(f"{v:.3f}" for v in r["dark_corners"]) + " | "
                     + " / ".join(f"{v:.2f}" for v in r["mid_band_deficit"]) + " |")
    wrong = {label: sum(r[f"{label}_wrong"] for r in rows) for label in calibrations}
    named = {label: sum(r[f"{label}_named"] for r in rows if r["group"] == "watermarked") for label in calibrations}
    lines += ["", "On clean rows every count is a false positive (nominal 1 %: 1.5 of 150); on watermarked rows it is "
              "the detections kept. A key is named when the conclusion is `identified`; on a clean image any key "
              "named is wrong.", "",
              "Wrong keys over every row: " + ", ".join(f"*{label}* {wrong[label]} (keys named on watermarked "
                                                        f"rows: {named[label]})" for label in calibrations) + ".", "",
              *paired_lines(rows)]
    stem = harness.out_stem(args, None if args.rows == "corners" else f"detection_null_traces_{args.model}_{args.rows}")
    harness.write_results(stem, summary, lines)


def paired_lines(rows: list[dict]) -> list[str]:
    """*before* against *shipped* image by image (the same images, so McNemar's exact test on the images only one
    flags or detects): over the altered clean rows, and per watermarked row."""
    from scipy.stats import binomtest

    def line(what: str, chosen: list[dict]) -> str:
        only_before = sum(len(set(r["before_flagged"]) - set(r["shipped_flagged"])) for r in chosen)
        only_shipped = sum(len(set(r["shipped_flagged"]) - set(r["before_flagged"])) for r in chosen)
        n = only_before + only_shipped
        p = binomtest(only_before, n, 0.5).pvalue if n else 1.0
        return (f"- {what}: {only_before} only *before*, {only_shipped} only *shipped* (exact McNemar p = {p:.2g}, "
                f"{sum(r['images'] for r in chosen)} images)")

    altered = [r for r in rows if r["group"] == "clean" and r["alteration"] != "none"]
    out = ["Paired, *before* against *shipped* (images flagged or detected by one and not the other):", ""]
    if altered:
        out.append(line("clean images under the altered rows, flagged", altered))
    out += [line(f"watermarked, {r['alteration']} {r['strength']:g}, detected", [r]) for r in rows
            if r["group"] == "watermarked"]
    return out


if __name__ == "__main__":
    main()
