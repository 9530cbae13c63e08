"""Regenerate the example report in this folder: the bundled `demo` model, its keys, the bundled samples
(resources/samples, with their manifest.json), all three decoder-inversion methods.

    cd <repository root> && QT_QPA_PLATFORM=offscreen python docs/example_report/make_example.py

writes report.pdf, report.json (its machine-readable twin) and page-NN.png (pdftoppm -r 70) here.
--model / --keys / --samples point it elsewhere (e.g. a smoke-trained model).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="demo")
    ap.add_argument("--keys", default=str(REPO / "resources" / "keys" / "demo.json"))
    ap.add_argument("--samples", default=os.path.relpath(REPO / "resources" / "samples"),
                    help="evidence folder (default: the bundled samples, relative to the current folder)")
    ap.add_argument("--iterations", type=int, default=100, help="decoder-inversion iterations (default: the tool's)")
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--case-id", default="EXAMPLE-0001")
    ap.add_argument("--examiner", default="Example Examiner")
    ap.add_argument("--save-case", help="also save the analysis as a case file here")
    ap.add_argument("--from-case", help="re-render from a saved case file instead of analysing again")
    args = ap.parse_args()

    from engine.analysis import AnalysisConfig, analyze
    from engine.options import gradient_free_config
    from engine.decoder_inversion import METHODS, DecoderInversionConfig
    from engine.evidence_paths import scan_evidence_paths
    from engine.model_loader import load_model
    from engine.treering import KeySet
    from forensics_app.report import ReportInfo, write_report

    from engine.case_file import load_case, save_case

    model = load_model(args.model, device="cpu")
    if args.from_case:
        loaded = load_case(args.from_case)
        for w in loaded.warnings:
            print(f"warning: {w}", file=sys.stderr)
        run = loaded.run
    else:
        keys = KeySet.load(args.keys)
        paths = list(scan_evidence_paths([args.samples], recursive=False).files)
        config = replace(AnalysisConfig.for_model(model), methods=METHODS,
                         gradient_free=gradient_free_config(model, iterations=args.iterations),
                         gradient_based=DecoderInversionConfig("gradient-based", iterations=args.iterations))
        t = time.perf_counter()
        run = analyze(model, keys, paths, config)
        print(f"analysed {len(run.images)} image(s) in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    if args.save_case:
        save_case(run, args.save_case, {"case_id": args.case_id, "examiner": args.examiner})
    out = Path(args.out)
    pdf = write_report(run, out / "report.pdf", ReportInfo(
        case_id=args.case_id, examiner=args.examiner,
        notes=f"Example report made by docs/example_report/make_example.py from the bundled samples "
              f"({args.samples}) with the {args.model} model and the tool's default settings for it; CPU, "
              f"{args.iterations} decoder-inversion iterations."),
        model=model)
    for old in out.glob("page-*.png"):
        old.unlink()
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-r", "70", "-png", str(pdf), str(out / "page")], check=True)
    print(pdf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
