"""Table S1 analogue (Hong et al., NeurIPS 2024) on a bundled model: NMSE of decoder inversion against
the true z0 of generated 8-bit images, for each method and iteration count, with runtime and peak memory.

    .venv/bin/python benchmarks/table_s1.py --model demo --count 100    # → benchmarks/results/table_s1/table_s1_demo.{md,json}

NMSE is reported as the paper does: the mean over images of 10·log10(‖z − z*‖²/‖z*‖²), with a 95 %
confidence interval (t distribution). Each configuration runs in a fresh process so that its peak
memory (GPU: max allocated; CPU: growth of the process's peak RSS) is its own.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time

import numpy as np

import harness  # also puts the repository root on sys.path

ROWS = [  # (label, config kwargs)
    ("gradient-based fp32, lr 0.1 scheduled", dict(method="gradient-based", lr=0.1, schedule="scheduled")),
    ("gradient-based fp32, lr 0.01 fixed", dict(method="gradient-based", lr=0.01, schedule="fixed")),
    ("gradient-free fp32, Adam lr 0.01 scheduled", dict(method="gradient-free", optimizer="adam", lr=0.01)),
    ("gradient-free fp16, Adam lr 0.01 scheduled", dict(method="gradient-free", optimizer="adam", lr=0.01, precision="fp16")),
    ("gradient-free fp32, forward step (ablation)", dict(method="gradient-free", optimizer="forward-step", schedule="fixed")),
    ("gradient-free fp32, inertial KM α 0.9 (ablation)", dict(method="gradient-free", optimizer="inertial-km", schedule="fixed")),
    ("gradient-free fp32, Adam lr 0.01 scheduled, posterior sample (reference E)",
     dict(method="gradient-free", optimizer="adam", lr=0.01, posterior="sample", seed=1)),
]


def runs_needed(kwargs: dict, iters: list[int]) -> dict[int, int]:
    """Map each reported iteration count to the run whose NMSE trace gives it. A run of N iterations passes
    through the same iterates as a shorter run when the step sizes agree on those steps: always for a fixed
    step, and for the gradient-free schedule when both N ≥ 100 (N_c = min(N, 100) is then the same)."""
    top = max(iters)
    if kwargs.get("schedule") == "fixed" or kwargs.get("optimizer") in ("forward-step", "inertial-km"):
        return {n: top for n in iters}
    if kwargs["method"] == "gradient-free":
        return {n: (top if n >= 100 else n) for n in iters}
    return {n: n for n in iters}     # gradient-based cosine decays to 0 at N: every N is its own run


def make_targets(model_id: str, count: int, seed: int, device: str):
    import torch

    from engine.generation import decode_to_uint8, initial_noise, sample_latents
    from engine.model_loader import load_model

    model = load_model(model_id, device=device)
    zs, xs = [], []
    for start in range(0, count, 50):
        seeds = list(range(seed + start, seed + min(start + 50, count)))
        z = sample_latents(model, initial_noise(model, seeds))
        x = torch.from_numpy(decode_to_uint8(model, z)).permute(0, 3, 1, 2).float() / 127.5 - 1
        zs.append(z.cpu())
        xs.append(x)
    return torch.cat(xs), torch.cat(zs)


def run_config(args: tuple) -> dict:
    model_id, device, kwargs, iterations, x, z_star, batch, rho = args
    import torch

    from engine.decoder_inversion import DecoderInversionConfig, invert_decoder
    from engine.model_loader import load_model

    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = load_model(model_id, device=device)
    if kwargs.get("optimizer") in ("forward-step", "inertial-km"):
        kwargs = dict(kwargs, lr=rho)
    config = DecoderInversionConfig(iterations=iterations, **kwargs)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    nmse, seconds, peaks = [], 0.0, []
    for i in range(0, len(x), batch):
        r = invert_decoder(model.codec, x[i:i + batch], config, z_star=z_star[i:i + batch])
        nmse.append(r.trace.nmse_db)
        seconds += r.trace.seconds
        if r.trace.peak_memory_bytes is not None:
            peaks.append(r.trace.peak_memory_bytes)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    nmse = np.concatenate(nmse)      # (images, iterations + 1): the whole trace
    return {"nmse_trace_db": nmse, "iterations": iterations, "ms_per_image_iteration": 1000 * seconds / len(x) / iterations,
            "peak_gib": (max(peaks) / 2**30) if peaks else None,
            "cpu_peak_rss_growth_gib": (rss_after - rss_before) / 2**20 if not peaks else None}


def mean_ci(values) -> tuple[float, float]:
    from scipy import stats

    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


def main() -> None:
    p = harness.parser(__doc__, "table_s1", count=100)
    p.add_argument("--iterations", default="20,50,100,200")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--rho", type=float, default=0.05, help="step of the forward-step / KM ablation rows")
    p.add_argument("--seed", type=int, default=10_000)
    p.add_argument("--fp16-on-cpu", action="store_true",
                   help="also run the fp16 row on a CPU (half-precision convolutions are ~60x slower there)")
    a = p.parse_args()

    from engine.decoder_inversion import DecoderInversionConfig, invert_decoder
    from engine.device import device_name, pick_device
    from engine.model_loader import load_model

    t0 = time.time()
    x, z_star = make_targets(a.model, a.count, a.seed, a.device)
    model = load_model(a.model, device=a.device)
    enc = invert_decoder(model.codec, x, DecoderInversionConfig("encoder"), z_star=z_star)
    coco = invert_decoder(model.codec, x, DecoderInversionConfig(iterations=100, record_cocoercivity=True), z_star=z_star)
    iters = [int(v) for v in a.iterations.split(",")]
    ctx = mp.get_context("spawn")
    results = {"encoder": {"0": {"nmse_db": enc.trace.nmse_db[:, -1].tolist(),
                                 "seconds_per_image": enc.trace.seconds / len(x), "peak_gib": None}}}
    dev = pick_device(a.device)
    rows = [(label, kw) for label, kw in ROWS
            if not (kw.get("precision") == "fp16" and dev.type == "cpu" and not a.fp16_on_cpu)]
    skipped = [label for label, _ in ROWS if label not in dict(rows)]
    with ctx.Pool(1, maxtasksperchild=1) as pool:
        for label, kwargs in rows:
            results[label] = {}
            plan = runs_needed(kwargs, iters)
            runs = {}
            for n_run in sorted(set(plan.values())):
                runs[n_run] = pool.apply(run_config, ((a.model, a.device, kwargs, n_run, x, z_star, a.batch, a.rho),))
            for n in iters:
                run = runs[plan[n]]
                results[label][str(n)] = {
                    "nmse_db": run["nmse_trace_db"][:, n].tolist(), "read_from_run_of": plan[n],
                    "ms_per_image_iteration": run["ms_per_image_iteration"],
                    "seconds_per_image": run["ms_per_image_iteration"] * n / 1000,
                    "peak_gib": run["peak_gib"], "cpu_peak_rss_growth_gib": run["cpu_peak_rss_growth_gib"]}
                m, ci = mean_ci(results[label][str(n)]["nmse_db"])
                print(f"{label:55s} {n:4d} it: {m:7.2f} ± {ci:.2f} dB, "
                      f"{results[label][str(n)]['seconds_per_image'] * 1000:.1f} ms/image", flush=True)
    summary = {"skipped_rows": skipped, "model": a.model, "count": a.count, "device": device_name(dev),
               **harness.provenance(t0),
               "cocoercivity_positive_fraction": float(np.mean(coco.trace.cocoercivity > 0)),
               "results": results}
    lines = [f"# Table S1 analogue on `{a.model}`", "",
             f"{a.count} generated images (DDIM 50 steps / one flow step, decoded and rounded to 8 bit); NMSE = mean over "
             f"images of 10·log10‖z − z*‖²/‖z*‖² ± 95 % CI. Device: {summary['device']}. Date {summary['date']}.",
             harness.command_line(summary), "",
             f"Cocoercivity (Eq. 14, 100 Adam iterations) positive for {summary['cocoercivity_positive_fraction']:.0%} of images.",
             "Runs that share their first iterates (fixed steps; the gradient-free schedule for N ≥ 100) are run once at "
             "the largest count and read at each checkpoint; time per image = measured time per iteration × iterations. "
             f"Forward-step / KM step ρ = {a.rho}. " + (
                 "The fp16 row was skipped on this CPU (see its line)." if skipped else
                 "fp16 rows on a CPU run half precision there: their timings are not representative of a GPU."
                 if dev.type == "cpu" else ""), "",
             "| method | " + " | ".join(f"{n} it" for n in iters) + " | ms / image at " + f"{iters[-1]} it | peak |",
             "|---|" + "---|" * (len(iters) + 2)]
    m, ci = mean_ci(results["encoder"]["0"]["nmse_db"])
    lines.append("| encoder only | " + " | ".join(f"{m:.2f} ± {ci:.2f}" for _ in iters) +
                 f" | {results['encoder']['0']['seconds_per_image'] * 1000:.1f} | – |")
    for label, _ in rows:
        cells = []
        for n in iters:
            m, ci = mean_ci(results[label][str(n)]["nmse_db"])
            cells.append(f"{m:.2f} ± {ci:.2f}")
        last = results[label][str(iters[-1])]
        peak = (f"{last['peak_gib']:.2f} GiB" if last["peak_gib"] is not None
                else f"+{last['cpu_peak_rss_growth_gib']:.2f} GiB RSS")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {last['seconds_per_image'] * 1000:.1f} | {peak} |")
    for label in skipped:
        lines.append(f"| {label} | not run on {summary['device']}: half-precision convolutions run ~60× slower on a "
                     f"CPU than fp32 (10 s per image per 10 iterations); pass --fp16-on-cpu to force it |" + " |" * len(iters))
    harness.write_results(harness.out_stem(a), summary, lines)


if __name__ == "__main__":
    main()
