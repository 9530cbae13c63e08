"""What a shipped calibration's detection null under alteration holds (engine.altered_calibration): per method and
alteration, how many of the altered clean images the calibration covers (those a scan would conclude on), how many
of them reach below the unaltered null's threshold, and the threshold on T a watermark must pass against each null.
A calibration keeps no T of its watermarked images, so what the stricter threshold costs is measured in the
robustness rows (benchmarks/results/robustness/).

    .venv/bin/python benchmarks/detection_null_altered.py --model demo
"""

from __future__ import annotations

import time

import numpy as np

import harness


def threshold(null: np.ndarray, fpr: float) -> float:
    """The largest T that the empirical p-value (r + 1)/(n + 1) passes at `fpr`, r = #{null ≤ T}; for a null too
    small to reach `fpr`, the smallest value (below which it is silent)."""
    null = np.sort(null)
    r = int(np.floor(fpr * (len(null) + 1))) - 1     # at most r values may be ≤ T
    return float(null[r] if r >= 0 else null[0]) if len(null) else float("nan")


def main() -> None:
    p = harness.parser(__doc__, "detection_null_altered")
    p.add_argument("--fpr", type=float, default=0.01)
    args = p.parse_args()

    from engine.calibration import Calibration

    started = time.time()
    path = harness.REPO / "resources" / "calibrations" / f"{args.model}.json"
    cal = Calibration.load(path)
    lines = [f"# The detection null under alteration of `{args.model}`'s shipped calibration", "",
             "", f"Calibration: `{path.relative_to(harness.REPO)}`, content sha256 {cal.content_sha256[:12]}; "
             f"level {args.fpr:g}.", "",
             "Per method and alteration: the clean images it was drawn on and how many of them the calibration covers "
             "(what a scan concludes on); how many of those reach below the unaltered null's threshold at the level "
             "(they would have been flagged as watermarked without this null); the smallest T; and the threshold T must "
             "pass against this null (T strictly below it: for a null under 1/level − 1 images, below its smallest value).",
             "", "| method | alteration | clean images | covered | below the unaltered threshold | smallest T | threshold "
             "| applies to evidence with |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    rows = []
    for method, m in cal.methods.items():
        base = np.asarray(m.clean_detection)
        t_base = threshold(base, args.fpr)
        lines.append(f"| {method} | none (the unaltered null) | {len(base)} | {len(base)} | – | {base.min():.3g} | "
                     f"{t_base:.3g} | all |")
        traces = m.detection_null_altered_traces
        for label, values in m.detection_null_altered.items():
            v = np.asarray(values)
            drawn = m.summary.get("altered_clean", {}).get(label)
            below = int(np.count_nonzero(v < t_base))
            trace = ", ".join(f"{name} ≥ {least:.3g}" for name, least in traces.get(label, {}).items()) or "–"
            row = {"method": method, "alteration": label, "drawn": drawn, "covered": len(v), "below_unaltered": below,
                   "smallest": float(v.min()) if len(v) else None, "threshold": threshold(v, args.fpr),
                   "applies_to": traces.get(label, {})}
            rows.append(row)
            lines.append(f"| {method} | {label} | {drawn} | {len(v)} | {below} | "
                         f"{row['smallest']:.3g} | {row['threshold']:.3g} | {trace} |" if len(v) else
                         f"| {method} | {label} | {drawn} | 0 | – | – | – | – |")
        untraced = [threshold(np.asarray(v), args.fpr) for label, v in m.detection_null_altered.items()
                    if len(v) and label not in traces]
        every = [threshold(np.asarray(v), args.fpr) for v in m.detection_null_altered.values() if len(v)]
        if untraced:
            lines.append(f"| {method} | every untraced null (evidence without the traces) | | | | | "
                         f"{min([t_base] + untraced):.3g} | |")
        if len(every) > len(untraced):
            lines.append(f"| {method} | every null (evidence with every trace) | | | | | {min([t_base] + every):.3g} | |")
    if not rows:
        lines.append("| – | no detection null under alteration | | | | | |")
    summary = {**harness.provenance(started), "calibration": cal.content_sha256, "fpr": args.fpr, "rows": rows}
    lines[2] = harness.command_line(summary)
    harness.write_results(harness.out_stem(args), summary, lines)


if __name__ == "__main__":
    main()
