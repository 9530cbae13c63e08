"""GUI start-up time: from process start to the main window shown with its event loop idle.

    .venv/bin/python benchmarks/gui_startup.py --runs 7

Each run launches the real app (`python -m forensics_app`, no subcommand) in a fresh process on the
offscreen platform with a fresh settings folder; the app, told by TREERING_FORENSICS_STARTUP_PROBE, prints
the wall-clock time once the shown window's first events are processed, then waits for start-up's
background work (reading the key set, importing the engine on the worker thread) while watching the event
loop, prints when that is done and the loop's worst stall meanwhile, and closes. Process start is taken
just before the launch, so interpreter start-up and every import count.

Writes `<out>/result.md` and `<out>/result.json` with the command, the machine, the date and the
median / min / max seconds. `--source DIR` runs the app from another checkout (e.g. an older commit
unpacked with `git archive`, with the same probe added to its app.py) for a before/after comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def one_run(source: Path, timeout_s: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="gui-startup-") as cfg:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "TREERING_FORENSICS_STARTUP_PROBE": "1",
               "TREERING_FORENSICS_CONFIG": cfg, "PYTHONPATH": str(source)}
        started = time.time()
        proc = subprocess.run([sys.executable, "-m", "forensics_app"], cwd=source, env=env, capture_output=True,
                              text=True, timeout=timeout_s)
        ended = time.time()
    out = {"exit_code": proc.returncode, "process_s": ended - started}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] == "STARTUP_SHOWN":
            out["shown_s"] = float(parts[1]) - started
        elif parts and parts[0] == "STARTUP_READY":
            out["engine_ready_s"] = float(parts[1]) - started
            out["worst_event_loop_gap_s"] = float(parts[3])
    if "shown_s" not in out:
        raise RuntimeError(f"the app did not report its start-up (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return out


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--source", default=str(REPO), help="checkout to run the app from (default: this one)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gui_startup"))
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per run")
    args = p.parse_args()

    source = Path(args.source).resolve()
    one_run(source, args.timeout)           # not counted: fills the OS file cache, as any second start finds it
    runs = [one_run(source, args.timeout) for _ in range(args.runs)]
    result = {
        "what": "seconds from process start to the main window shown with its event loop idle",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "app_command": "python -m forensics_app (QT_QPA_PLATFORM=offscreen, TREERING_FORENSICS_STARTUP_PROBE=1)",
        "source": str(source),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "runs": runs,
        "shown_s": summary([r["shown_s"] for r in runs]),
    }
    ready = [r["engine_ready_s"] for r in runs if "engine_ready_s" in r]
    gaps = [r["worst_event_loop_gap_s"] for r in runs if "worst_event_loop_gap_s" in r]
    if ready:
        result["engine_ready_s"] = summary(ready)
        result["worst_event_loop_gap_s"] = summary(gaps)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    s = result["shown_s"]
    lines = [
        "# GUI start-up time", "",
        f"`{result['command']}` — {len(runs)} runs (after one uncounted warm-up run), {result['date']}, "
        f"{result['machine']['nproc']} CPU cores, {result['machine']['platform']}, Python {result['machine']['python']}.",
        "", "| measure | median | min | max |", "|---|---|---|---|",
        f"| window shown, event loop idle | {s['median']:.2f} s | {s['min']:.2f} s | {s['max']:.2f} s |",
    ]
    if ready:
        r, g = result["engine_ready_s"], result["worst_event_loop_gap_s"]
        lines += [
            f"| key set read and engine imported (background) | {r['median']:.2f} s | {r['min']:.2f} s | {r['max']:.2f} s |",
            f"| worst event-loop stall until then | {g['median'] * 1000:.0f} ms | {g['min'] * 1000:.0f} ms | "
            f"{g['max'] * 1000:.0f} ms |",
        ]
    lines += ["", "From process start (taken just before the launch) to the wall-clock time the app prints once its "
              "shown window's first events are processed; see the script's docstring."]
    (out / "result.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
