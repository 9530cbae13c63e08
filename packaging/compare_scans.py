"""Compare two `scan --json` outputs of the same images: same evidence hashes, same verdicts, the same
statistics within a tight tolerance. Used by packaging/smoke_test.sh (source tree against wheel and bundle).

    python packaging/compare_scans.py REFERENCE.json OTHER.json [--l1-rel 1e-5] [--p-rel 1e-3]

Prints one line per image and a closing line with the largest deviations; exit 0 if they agree, 1 if not,
2 if a file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def load(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"compare_scans: error: {path}: {exc}", file=sys.stderr)
        sys.exit(2)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        print(f"compare_scans: error: {path} is not a scan JSON", file=sys.stderr)
        sys.exit(2)
    return data


def rel_dev(a: float, b: float) -> float:
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def compare(ref: dict, other: dict, l1_rel: float, p_rel: float) -> tuple[list[str], list[str], float, float]:
    """(problems, per-image lines, largest relative L1 deviation, largest relative p-value deviation)."""
    problems, lines = [], []
    worst_l1 = worst_p = 0.0
    if ref.get("model_weights_sha256") != other.get("model_weights_sha256"):
        problems.append("the model's weight hashes differ")
    if ref.get("failures") or other.get("failures"):
        problems.append(f"failures: {ref.get('failures')} / {other.get('failures')}")
    by_name = lambda d: {Path(i["path"]).name: i for i in d["images"]}
    a, b = by_name(ref), by_name(other)
    if set(a) != set(b):
        problems.append(f"different images: {sorted(set(a) ^ set(b))}")
    for name in sorted(set(a) & set(b)):
        ia, ib = a[name], b[name]
        if ia["sha256"] != ib["sha256"]:
            problems.append(f"{name}: sha256 {ia['sha256'][:12]}… vs {ib['sha256'][:12]}…")
        if set(ia["methods"]) != set(ib["methods"]):
            problems.append(f"{name}: methods {sorted(ia['methods'])} vs {sorted(ib['methods'])}")
        verdicts = []
        for method in sorted(set(ia["methods"]) & set(ib["methods"])):
            ma, mb = ia["methods"][method], ib["methods"][method]
            for field in ("predicted_key", "nearest_key"):
                if ma[field] != mb[field]:
                    problems.append(f"{name} {method}: {field} {ma[field]} vs {mb[field]}")
            if set(ma["scores"]) != set(mb["scores"]):
                problems.append(f"{name} {method}: different keys scored")
                continue
            for key in ma["scores"]:
                sa, sb = ma["scores"][key], mb["scores"][key]
                if not all(isinstance(s.get(f), (int, float)) and math.isfinite(s[f])
                           for s in (sa, sb) for f in ("l1", "p_value")):
                    problems.append(f"{name} {method} {key}: a statistic is missing or not finite")
                    continue
                d_l1, d_p = rel_dev(sa["l1"], sb["l1"]), rel_dev(sa["p_value"], sb["p_value"])
                worst_l1, worst_p = max(worst_l1, d_l1), max(worst_p, d_p)
                if d_l1 > l1_rel:
                    problems.append(f"{name} {method} {key}: L1 {sa['l1']!r} vs {sb['l1']!r}")
                if d_p > p_rel:
                    problems.append(f"{name} {method} {key}: p {sa['p_value']!r} vs {sb['p_value']!r}")
            verdicts.append(f"{method} → {ma['predicted_key'] or 'none'}")
        lines.append(f"{name}: sha256 {'same' if ia['sha256'] == ib['sha256'] else 'DIFFERENT'}; " + "; ".join(verdicts))
    return problems, lines, worst_l1, worst_p


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reference")
    p.add_argument("other")
    p.add_argument("--l1-rel", type=float, default=1e-5, help="largest relative L1 difference (default 1e-5)")
    p.add_argument("--p-rel", type=float, default=1e-3,
                   help="largest relative p-value difference (default 1e-3: p ~ 1e-30 moves ~1e3× faster than L1)")
    a = p.parse_args()
    ref, other = load(a.reference), load(a.other)
    problems, lines, worst_l1, worst_p = compare(ref, other, a.l1_rel, a.p_rel)
    for line in lines:
        print(f"  {line}")
    for problem in problems:
        print(f"  DIFFERENT: {problem}")
    verdict = "AGREE" if not problems and lines else "DIFFER"
    print(f"{verdict}: {Path(a.other).name} against {Path(a.reference).name}: {len(lines)} images, "
          f"largest relative deviation L1 {worst_l1:.2g}, p-value {worst_p:.2g} "
          f"(tolerances {a.l1_rel:g}, {a.p_rel:g}); {len(problems)} difference(s)")
    return 0 if verdict == "AGREE" else 1


if __name__ == "__main__":
    sys.exit(main())
