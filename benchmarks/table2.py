"""Table 2 analogue (dec-inv): 3 keys × N watermarked 8-bit PNGs per key, plus N un-watermarked, made by a
bundled model, then classified after encoder / gradient-based / gradient-free decoder inversion.

    .venv/bin/python benchmarks/table2.py --model demo --count 100      # → benchmarks/results/table2/table2_demo.{md,json}

Reports accuracy x/(3N) and the confusion matrix per method (argmin L1 over keys, the reference's
classifier), for both score targets (the papers' "reference" and our "effective" default), runtime and
peak memory per method, and the detection view: AUC and TPR at 1 % FPR of −min L1 over keys for the
watermarked images against the un-watermarked ones.
"""

from __future__ import annotations

import multiprocessing
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import harness  # also puts the repository root on sys.path
from engine import rates


def run_method(args: tuple) -> dict:
    """One method over all images, in a fresh process so that its CPU peak-RSS growth is its own."""
    model_id, device, keys_path, paths, config, threads = args
    import torch

    from engine.analysis import analyze
    from engine.model_loader import load_model
    from engine.treering import KeySet

    if threads:
        torch.set_num_threads(threads)
    model = load_model(model_id, device=device)
    keys = KeySet.load(keys_path)
    (method,) = config.methods
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.time()
    run = analyze(model, keys, paths, config)
    elapsed = time.time() - t
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peaks = [r.peak_memory_bytes for im in run.images for r in im.methods.values() if r.peak_memory_bytes]
    return {"z_t": np.stack([im.methods[method].z_t for im in run.images]),
            "names": [Path(im.evidence.path).name for im in run.images],
            "elapsed": elapsed, "device": run.device,
            "peak_gib": max(peaks) / 2**30 if peaks else None,
            "cpu_peak_rss_growth_gib": None if peaks else (rss_after - rss_before) / 2**20}


def main() -> None:
    p = harness.parser(__doc__, "table2", count=100, count_help="images per key (and un-watermarked)", keys=True,
                       threads=True)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--methods", default=",".join(("encoder", "gradient-free", "gradient-based")),
                   help="comma-separated subset of encoder, gradient-free, gradient-based")
    p.add_argument("--optimizer", default="adam", choices=("adam", "forward-step", "inertial-km"),
                   help="gradient-free optimiser (ablation; the paper's is Adam)")
    p.add_argument("--gf-lr", type=float, default=None,
                   help="gradient-free step (default: 0.01 for Adam, scheduled; 0.05 fixed for the forward step / KM)")
    p.add_argument("--gb-lr", type=float, default=0.1, help="gradient-based Adam step (paper: 0.1 scheduled)")
    p.add_argument("--gb-schedule", default="scheduled", choices=("scheduled", "fixed"))
    a = p.parse_args()

    from engine.analysis import AnalysisConfig
    from engine.decoder_inversion import METHODS, DecoderInversionConfig
    from engine.generation import generate_reference_set
    from engine.model_loader import load_model
    from engine.attribution_matrix import ConfusionMatrix
    from engine.treering import KeySet
    from engine.treering_scoring import score_keys

    import torch

    t0 = time.time()
    model = load_model(a.model, device=a.device)
    keys = KeySet.load(a.keys)
    work = Path(tempfile.mkdtemp(prefix="table2-"))
    truth: dict[str, str | None] = {}
    for n, key in enumerate(keys.keys):
        for g in generate_reference_set(model, key, a.count, work, seed=20_000 + 1000 * n, batch_size=a.batch):
            truth[g.file] = g.key_id
    for g in generate_reference_set(model, None, a.count, work, seed=90_000, batch_size=a.batch):
        truth[g.file] = None
    print(f"generated {len(truth)} images in {time.time() - t0:.0f} s", flush=True)

    config = AnalysisConfig.for_model(
        model, batch_size=a.batch,
        gradient_free=(DecoderInversionConfig("gradient-free", iterations=a.iterations, lr=a.gf_lr or 0.01)
                       if a.optimizer == "adam" else
                       DecoderInversionConfig("gradient-free", iterations=a.iterations, optimizer=a.optimizer,
                                              lr=a.gf_lr or 0.05, schedule="fixed")),
        gradient_based=DecoderInversionConfig("gradient-based", iterations=a.iterations, lr=a.gb_lr,
                                              schedule=a.gb_schedule))
    paths = sorted(work / f for f in truth)
    results = {}
    ctx = multiprocessing.get_context("spawn")
    for method in [m for m in METHODS if m in a.methods.split(",")]:
        with ctx.Pool(1) as pool:
            out = pool.apply(run_method, ((a.model, a.device, a.keys, paths, replace(config, methods=(method,)),
                                           a.threads),))
        elapsed = out["elapsed"]
        rows = {}
        for target in ("reference", "effective"):
            z = torch.from_numpy(out["z_t"])
            scores = score_keys(z, keys, target)
            names = out["names"]
            nearest = [min(s, key=lambda k: k.l1).key_id for s in scores]
            wm = [i for i, nm in enumerate(names) if truth[nm] is not None]
            cm = ConfusionMatrix.from_pairs([(truth[names[i]], nearest[i]) for i in wm], keys.ids)
            min_l1 = np.array([min(k.l1 for k in s) for s in scores])
            pos = -min_l1[wm]
            neg = -min_l1[[i for i, nm in enumerate(names) if truth[nm] is None]]
            auc, tpr = rates.auc(pos, neg), rates.tpr_at_fpr(pos, neg, 0.01)
            rows[target] = {"correct": cm.correct, "total": cm.total, "confusion": [list(r) for r in cm.counts],
                            "labels": list(cm.labels), "auc": auc, "tpr_at_1pct_fpr": tpr}
        device_label = out["device"]
        results[method] = {"seconds_per_image": elapsed / len(paths), "wall_seconds": elapsed,
                           "peak_gib": out["peak_gib"], "cpu_peak_rss_growth_gib": out["cpu_peak_rss_growth_gib"],
                           **rows}
        e = rows["effective"]
        print(f"{method:15s} effective {e['correct']}/{e['total']} AUC {e['auc']:.3f} | reference "
              f"{rows['reference']['correct']}/{rows['reference']['total']} | {elapsed / len(paths):.2f} s/image",
              flush=True)

    summary = {"model": a.model, "kind": model.kind, "count_per_key": a.count, "keys": a.keys,
               "diffusion_inversion": config.diffusion.label(), "decoder_iterations": a.iterations,
               "gradient_free": (f"{config.gradient_free.optimizer} lr {config.gradient_free.effective_lr:g} "
                                 f"{config.gradient_free.schedule}"),
               "gradient_based": f"adam lr {config.gradient_based.effective_lr:g} {config.gradient_based.schedule}",
               "device": device_label, **harness.provenance(t0), "results": results}
    lines = [f"# Table 2 analogue on `{a.model}` ({model.kind})", "",
             f"{len(keys)} keys × {a.count} watermarked 8-bit PNGs + {a.count} un-watermarked; diffusion inversion: "
             f"{summary['diffusion_inversion']}; decoder inversion {a.iterations} iterations (gradient-free "
             f"{summary['gradient_free']}, gradient-based Adam lr {a.gb_lr:g} {a.gb_schedule}), fp32. Device: {summary['device']}. "
             f"Date {summary['date']}.",
             harness.command_line(summary),
             "Each method runs in a fresh process after the images are made; peak = GPU max allocated, or on a "
             "CPU the growth of that process's peak RSS over the loaded model.", "",
             "| method | correct (effective target) | correct (reference target) | AUC | TPR @ 1 % FPR | s / image | peak |",
             "|---|---|---|---|---|---|---|"]
    for method, r in results.items():
        e, ref = r["effective"], r["reference"]
        peak = (f"{r['peak_gib']:.2f} GiB" if r["peak_gib"] is not None
                else f"+{r['cpu_peak_rss_growth_gib']:.2f} GiB RSS")
        lines.append(f"| {method} | {e['correct']}/{e['total']} | {ref['correct']}/{ref['total']} | {e['auc']:.3f} | "
                     f"{e['tpr_at_1pct_fpr']:.2f} | {r['seconds_per_image']:.2f} | {peak} |")
    lines += ["", "Confusion matrices (rows: true key, columns: predicted, effective target):", ""]
    for method, r in results.items():
        lines += [f"**{method}**", "", "| true \\ predicted | " + " | ".join(keys.ids) + " |",
                  "|---|" + "---|" * len(keys)]
        for kid, row in zip(keys.ids, r["effective"]["confusion"]):
            lines.append(f"| {kid} | " + " | ".join(str(c) for c in row[:len(keys)]) + " |")
        lines.append("")
    harness.write_results(harness.out_stem(a), summary, lines)


if __name__ == "__main__":
    main()
