"""Compare robustness rows measured in different files on the same references (benchmarks/robustness.py): for each
attack and parameter, every labelled reading side by side — defended detections, keys identified, wrong keys,
clean images flagged and outside calibration, as counts — with Fisher's exact test (two-sided) of each reading's
detections and flagged clean images against the first reading's. The rows hold counts, not per-image outcomes,
so the test is unpaired: conservative for readings of the same images.

    .venv/bin/python benchmarks/robustness_compare.py --method encoder \
        plain=benchmarks/results/robustness/robustness_demo_issue_autoencoder_prior_encoder.json:plain \
        autoencoder=benchmarks/results/robustness/robustness_demo_issue_autoencoder_prior_encoder.json:restored \
        diffusion=benchmarks/results/robustness/robustness_demo_issue_diffusion_prior_encoder.json:restored \
        --out benchmarks/results/robustness/restoration_priors_demo_encoder
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import harness


def _rows(spec: str, method: str) -> tuple[str, dict]:
    """LABEL=FILE.json[,FILE.json…]:VARIANT → (label, {(attack, parameter): row}) over the files' rows."""
    label, _, rest = spec.partition("=")
    paths, _, variant = rest.rpartition(":")
    if not label or not paths or not variant:
        raise SystemExit(f"{spec!r}: give LABEL=FILE.json[,FILE.json…]:VARIANT")
    rows = [r for path in paths.split(",") for r in json.loads(Path(path).read_text())["rows"]]
    return label, {(r["attack"], r["parameter"]): r for r in rows
                   if r["variant"] == variant and r["method"] == method and r.get("verdict_detected") is not None}


def _count(share: float, n: int) -> int:
    return int(round(share * n))


def main() -> None:
    p = harness.parser(__doc__, "restoration_priors", model=False)
    p.add_argument("--method", default="encoder")
    p.add_argument("readings", nargs="+", help="LABEL=FILE.json:VARIANT, the first the reference")
    args = p.parse_args()
    started = time.time()
    from scipy.stats import fisher_exact

    readings = [_rows(s, args.method) for s in args.readings]
    cells = [c for c in readings[0][1] if all(c in r for _, r in readings)]
    lines = [f"# Robustness readings compared ({args.method})", "", harness.command_line(
        {**harness.provenance(started), "readings": args.readings}), "",
        "Counts out of each row's watermarked (detected, identified, wrong) and clean (flagged, outside) images. "
        "Fisher p: two-sided exact test against the first reading, unpaired (conservative for the same images).", "",
        "| attack | parameter | reading | defended detection | Fisher p | key identified (right) | wrong key | "
        "clean flagged | Fisher p | clean outside calibration |", "|" + " --- |" * 10]
    summary = []
    for cell in cells:
        first = readings[0][1][cell]
        n_pos, n_neg = first["positives"], first["negatives"]
        base_det, base_null = _count(first["verdict_detected"], n_pos), first["verdict_null_flagged"]
        for label, rows in readings:
            r = rows[cell]
            det, null = _count(r["verdict_detected"], r["positives"]), r["verdict_null_flagged"]
            p_det = fisher_exact([[det, r["positives"] - det], [base_det, n_pos - base_det]])[1]
            p_null = fisher_exact([[null, r["negatives"] - null], [base_null, n_neg - base_null]])[1]
            same = label == readings[0][0]
            lines.append(f"| {cell[0]} | {cell[1]} | {label} | {det}/{r['positives']} | "
                         f"{'—' if same else f'{p_det:.2g}'} | {_count(r['verdict_identified'], r['positives'])} | "
                         f"{r['verdict_wrong_key']} | {null}/{r['negatives']} | {'—' if same else f'{p_null:.2g}'} | "
                         f"{r['verdict_null_outside']}/{r['negatives']} |")
            summary.append({"attack": cell[0], "parameter": cell[1], "reading": label, "detected": det,
                            "positives": r["positives"], "fisher_p_detected": None if same else p_det,
                            "identified": _count(r["verdict_identified"], r["positives"]),
                            "wrong_key": r["verdict_wrong_key"], "clean_flagged": null, "negatives": r["negatives"],
                            "fisher_p_flagged": None if same else p_null, "clean_outside": r["verdict_null_outside"],
                            "settings": r["settings"], "calibration": r["calibration"]})
    harness.write_results(harness.out_stem(args, "restoration_priors"), {**harness.provenance(started), "method": args.method,
                                                   "readings": args.readings, "rows": summary}, lines)


if __name__ == "__main__":
    main()
