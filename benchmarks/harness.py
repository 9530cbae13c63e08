"""What the benchmark scripts share: their common command-line options and how they write results.

Every script writes a markdown table for people and a JSON twin for programs into its own experiment
folder, `benchmarks/results/<experiment>/`, with the command line, date, device and software versions
that made them. Importing this module puts the repository root on `sys.path`, so a script run as
`python benchmarks/<script>.py` can import `engine` (this module itself never imports torch).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def parser(doc: str | None, experiment: str, *, model: bool = True, count: int | None = None,
           count_help: str | None = None, keys: bool = False, threads: bool = False,
           out_help: str | None = None) -> argparse.ArgumentParser:
    """An argument parser with the options the scripts share; each script adds its own after this.

    Always --device and --out; --model (default `demo`) unless `model` is False; --count when a default
    count is given; --keys (default the demo keys) and --threads when asked. --out is a path *stem*: the
    results go to STEM.md and STEM.json. Left out, it is results/<experiment>/<experiment>_<model>
    (see `out_stem`)."""
    p = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    p.set_defaults(_experiment=experiment)
    if model:
        p.add_argument("--model", default="demo")
    if count is not None:
        p.add_argument("--count", type=int, default=count, help=count_help)
    if keys:
        p.add_argument("--keys", default="resources/keys/demo.json")
    p.add_argument("--device", default="auto")
    if threads:
        p.add_argument("--threads", type=int, default=0, help="torch threads per method process (0: torch's default)")
    p.add_argument("--out", default=None, help=out_help or (
        f"path stem of the results (STEM.md and STEM.json); default "
        f"benchmarks/results/{experiment}/{experiment}_<model>"))
    return p


def out_stem(args: argparse.Namespace, default_name: str | None = None) -> Path:
    """Where the results go: --out if given (a trailing .md / .json is dropped), else the experiment's folder
    under benchmarks/results with `default_name`, or `<experiment>_<model>` when that is not given."""
    if args.out:
        out = Path(args.out)
        return out.with_suffix("") if out.suffix in (".md", ".json") else out
    if default_name is None:
        default_name = f"{args._experiment}_{Path(str(args.model)).name}"
    return RESULTS / args._experiment / default_name


def provenance(started: float) -> dict:
    """The record every result carries: date, command line, software versions, wall time since `started`."""
    from engine.analysis import software_versions

    return {"date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv), "software": software_versions(),
            "wall_seconds": time.time() - started}


def command_line(summary: dict) -> str:
    """The markdown line naming the command and its wall time."""
    return f"Command: `{summary['command']}` (wall time {summary['wall_seconds'] / 60:.1f} min)."


def rate_cell(k: int, n: int, extra: str = "") -> str:
    """A table cell: the rate k/n with its 95 % Wilson interval, and `extra` inside the brackets."""
    from engine.rates import wilson

    lo, hi = wilson(k, n)
    return f"{k / n:.2f} ({lo:.2f}–{hi:.2f}{extra})"


def write_results(stem: Path, summary: dict, lines: list[str], echo: bool = True) -> None:
    """Write STEM.json (the summary) and STEM.md (the lines) and, by default, print the markdown."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    (stem.parent / (stem.name + ".json")).write_text(json.dumps(summary, indent=1))
    (stem.parent / (stem.name + ".md")).write_text("\n".join(lines) + "\n")
    if echo:
        print("\n".join(lines))
