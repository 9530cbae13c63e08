"""Decoder inversion on latents on and off the autoencoder's manifold, on a bundled model.

    .venv/bin/python benchmarks/manifold_gap.py --model demo --count 24 # → benchmarks/results/manifold_gap/manifold_gap_demo.{md,json}

Two sets of true latents z*, each decoded and rounded to an 8-bit image x, then inverted:
- *on the manifold*: the encoder's latents of held-out photograph crops (what the autoencoder was trained on);
- *generated*: the diffusion model's samples (DDIM 50 steps / one flow step), what a watermarked image holds.
NMSE (dB, mean over images) of each decoder inversion against z*. The paper's premise (encoder not an exact
inverse, decoder inversion clearly better) can hold on one set and fail on the other: when the generator's
samples leave the manifold the decoder cannot pin them down and every inversion stays far from z*.
Needs scikit-image (the `train` extra) for the photographs.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import harness  # also puts the repository root on sys.path

sys.path.insert(0, str(harness.REPO / "packaging"))

METHODS = [  # (label, DecoderInversionConfig kwargs)
    ("encoder", dict(method="encoder")),
    ("gradient-free, Adam lr 0.01 scheduled, 100 it", dict(method="gradient-free", iterations=100)),
    ("gradient-free, forward step ρ 0.05, 100 it", dict(method="gradient-free", optimizer="forward-step", lr=0.05,
                                                       schedule="fixed", iterations=100)),
    ("gradient-based, Adam lr 0.1 scheduled, 100 it", dict(method="gradient-based", iterations=100)),
]


def main() -> None:
    a = harness.parser(__doc__, "manifold_gap", count=24).parse_args()

    import torch
    import train_demo_model as training

    from engine.decoder_inversion import DecoderInversionConfig, invert_decoder
    from engine.device import device_name
    from engine.generation import decode_to_uint8, initial_noise, sample_latents
    from engine.model_loader import load_model

    t0 = time.time()
    model = load_model(a.model, device=a.device)
    training.CROP = model.image_size
    held = training.CropSampler(training.HELD_OUT, [1.0] * len(training.HELD_OUT), procedural_frac=0.0, jitter=False)
    photos = held.sample(a.count, torch.Generator().manual_seed(11)).to(model.device)
    with torch.no_grad():
        sets = {"on the manifold: encoder latents of held-out photographs": model.codec.encode(photos).float(),
                "generated: the model's samples": sample_latents(model, initial_noise(model, list(range(900, 900 + a.count))))}
    results = {}
    for name, z_star in sets.items():
        x = torch.from_numpy(decode_to_uint8(model, z_star)).permute(0, 3, 1, 2).float().to(model.device) / 127.5 - 1
        row = {"latent_std": float(z_star.std())}
        for label, kwargs in METHODS:
            r = invert_decoder(model.codec, x, DecoderInversionConfig(**kwargs), z_star=z_star)
            row[label] = {"nmse_db": float(np.mean(r.trace.nmse_db[:, -1])),
                          "nmse_db_per_image": r.trace.nmse_db[:, -1].tolist(),
                          "pixel_psnr_db": float(np.mean(r.pixel_psnr_db))}
        results[name] = row
        print(name, {k: (round(v["nmse_db"], 2) if isinstance(v, dict) else round(v, 3)) for k, v in row.items()},
              flush=True)

    summary = {"model": a.model, "count": a.count, "device": device_name(model.device), **harness.provenance(t0),
               "results": results}
    lines = [f"# Decoder inversion on and off the autoencoder's manifold — `{a.model}`", "",
             f"{a.count} latents per set, decoded and rounded to 8 bit, then inverted; NMSE against the true latent "
             f"(dB, mean over images). Device {summary['device']}, date {summary['date']}.",
             harness.command_line(summary), "",
             "| latents | std | " + " | ".join(label for label, _ in METHODS) + " |", "|---|---|" + "---|" * len(METHODS)]
    for name, row in results.items():
        lines.append(f"| {name} | {row['latent_std']:.2f} | " +
                     " | ".join(f"{row[label]['nmse_db']:.2f}" for label, _ in METHODS) + " |")
    lines += ["", "PSNR of D(ẑ0) against the 8-bit image (dB):", "",
              "| latents | " + " | ".join(label for label, _ in METHODS) + " |", "|---|" + "---|" * len(METHODS)]
    for name, row in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[label]['pixel_psnr_db']:.1f}" for label, _ in METHODS) + " |")
    harness.write_results(harness.out_stem(a), summary, lines)


if __name__ == "__main__":
    main()
