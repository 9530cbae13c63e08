"""Where the Tree-Ring signal is lost on its way back from an 8-bit image to the recovered initial noise.

    .venv/bin/python benchmarks/ring_loss.py --model demo --per-key 20  # → benchmarks/results/ring_loss/ring_loss_demo.{md,json}

The Table 2 analogue says *how well* each decoder inversion classifies; this says *why*. For watermarked
images of every key it measures, stage by stage:

1. the diffusion inversion alone: the true z0 inverted (the inversion's own error floor), and the true z0
   plus synthetic errors of known size (−20 / −15 / −10 dB) and band (white, low spatial frequencies where the
   rings live, high frequencies) — how much z0 error the ring survives, and in which band it hurts;
2. each decoder inversion (encoder, gradient-free, gradient-based): its z0 error in total and in the low band
   per channel, the pixel PSNR of D(ẑ0) against the evidence, and what survives to ẑT;
3. the decoder's gain per latent channel for small low- and high-frequency perturbations: a channel or band
   with little gain is (nearly) invisible in the image, so no decoder inversion can recover it.

Per row: z0 NMSE, ẑT NMSE (dB, mean over images), ring amplitude (least-squares gain of the recovered masked
spectrum on the true one: 1 = intact, 0 = gone), and 3-key accuracy (argmin L1, effective target).
"""

from __future__ import annotations

import time

import numpy as np

import harness  # also puts the repository root on sys.path

LOW_BAND = 0.1     # |frequency| ≤ 0.1 cycles / latent pixel on both axes: radius 6 of 32 is 0.19, the core rings
HIGH_BAND = 0.25   # |frequency| > 0.25 on either axis


def band_masks(size: int):
    import torch

    f = torch.fft.fftfreq(size).abs()
    low = (f[:, None] <= LOW_BAND) & (f[None, :] <= LOW_BAND)
    high = ~((f[:, None] <= HIGH_BAND) & (f[None, :] <= HIGH_BAND))
    return low, high


def band_limited(noise, band):
    import torch

    return torch.fft.ifft2(torch.fft.fft2(noise) * band).real


def nmse_db(z, ref):
    import torch

    return 10 * torch.log10((z - ref).flatten(1).pow(2).sum(1) / ref.flatten(1).pow(2).sum(1))


def main() -> None:
    p = harness.parser(__doc__, "ring_loss", keys=True)
    p.add_argument("--per-key", type=int, default=20)
    p.add_argument("--iterations", type=int, default=100)
    a = p.parse_args()

    import torch

    from engine.analysis import AnalysisConfig
    from engine.decoder_inversion import DecoderInversionConfig, invert_decoder
    from engine.device import device_name
    from engine.generation import decode_to_uint8, initial_noise, sample_latents
    from engine.model_loader import load_model
    from engine.treering import KeySet, fft_latent, inject
    from engine.treering_scoring import score_keys

    t0 = time.time()
    model = load_model(a.model, device=a.device)
    keys = KeySet.load(a.keys)
    diffusion = AnalysisConfig.for_model(model).diffusion
    z_t, truth = [], []
    for k, key in enumerate(keys.keys):
        noise = initial_noise(model, [50_000 + 1000 * k + i for i in range(a.per_key)])
        z_t.append(inject(noise, key))
        truth += [k] * a.per_key
    z_t = torch.cat(z_t).to(model.device)
    truth = np.array(truth)
    z0 = sample_latents(model, z_t)
    x = torch.from_numpy(decode_to_uint8(model, z0)).permute(0, 3, 1, 2).float().to(model.device) / 127.5 - 1
    denoiser = model.denoiser()
    masks = torch.stack([keys.keys[k].mask() for k in truth]).to(model.device)
    true_spec = fft_latent(z_t)[masks]
    low, high = band_masks(model.latent_shape[-1])
    low, high = low.to(model.device), high.to(model.device)

    def invert(z):
        return model.invert(denoiser, z, diffusion).z_t

    def low_band_nmse_per_channel(z):
        err, ref = torch.fft.fft2(z - z0), torch.fft.fft2(z0)
        return [float(10 * torch.log10(err[:, c][:, low].abs().pow(2).sum() / ref[:, c][:, low].abs().pow(2).sum()))
                for c in range(z0.shape[1])]

    rows = []

    def row(stage: str, name: str, z0_hat, extra: dict | None = None):
        t = time.time()
        z_hat = invert(z0_hat)
        seconds = time.time() - t
        spec = fft_latent(z_hat)[masks]
        per_image = spec.numel() // len(truth)
        num = (spec.conj() * true_spec).real.reshape(len(truth), per_image).sum(1)
        den = true_spec.abs().pow(2).reshape(len(truth), per_image).sum(1)
        scores = score_keys(z_hat, keys)
        predicted = np.array([int(np.argmin([s.l1 for s in image])) for image in scores])
        r = {"stage": stage, "name": name,
             "z0_nmse_db": float(nmse_db(z0_hat, z0).mean()) if z0_hat is not z0 else None,
             "zt_nmse_db": float(nmse_db(z_hat, z_t).mean()),
             "ring_amplitude": float((num / den).mean()),
             "correct": int((predicted == truth).sum()), "total": len(truth),
             "inversion_seconds": seconds, **(extra or {})}
        rows.append(r)
        z0_txt = "exact" if r["z0_nmse_db"] is None else f"{r['z0_nmse_db']:.2f}"
        print(f"{stage:9s} {name:34s} z0 {z0_txt:>7s} dB  zT {r['zt_nmse_db']:6.2f} dB  ring amplitude "
              f"{r['ring_amplitude']:.2f}  {r['correct']}/{r['total']}", flush=True)

    row("diffusion", "true z0", z0)
    g = torch.Generator().manual_seed(7)
    for db in (-20, -15, -10):
        for band_name, band in (("white", None), ("low band", low), ("high band", high)):
            noise = torch.randn(z0.shape, generator=g).to(model.device)
            if band is not None:
                noise = band_limited(noise, band)
            scale = z0.flatten(1).norm(dim=1) / noise.flatten(1).norm(dim=1) * 10 ** (db / 20)
            row("diffusion", f"true z0 + {band_name} error {db} dB", z0 + noise * scale[:, None, None, None])

    decoder_rows = [("encoder", DecoderInversionConfig("encoder")),
                    (f"gradient-free Adam {a.iterations} it", DecoderInversionConfig("gradient-free", iterations=a.iterations)),
                    (f"gradient-free forward step ρ 0.05, {a.iterations} it",
                     DecoderInversionConfig("gradient-free", optimizer="forward-step", lr=0.05, schedule="fixed",
                                            iterations=a.iterations)),
                    (f"gradient-based {a.iterations} it", DecoderInversionConfig("gradient-based", iterations=a.iterations))]
    for name, cfg in decoder_rows:
        result = invert_decoder(model.codec, x, cfg)
        row("decoder", name, result.z0, {
            "z0_low_band_nmse_db_per_channel": low_band_nmse_per_channel(result.z0),
            "pixel_psnr_db": float(np.mean(result.pixel_psnr_db)), "decoder_seconds": result.trace.seconds})
        print(f"{'':9s} low-band z0 NMSE per channel {[round(v, 1) for v in rows[-1]['z0_low_band_nmse_db_per_channel']]}"
              f" dB, PSNR D(ẑ0) vs image {rows[-1]['pixel_psnr_db']:.1f} dB", flush=True)

    gains = []
    with torch.no_grad():
        base = model.codec.decode(z0).float()
        for c in range(z0.shape[1]):
            gain = {}
            for band_name, band in (("low", low), ("high", high)):
                noise = torch.zeros_like(z0)
                noise[:, c] = band_limited(torch.randn(z0[:, c].shape, generator=g).to(model.device), band)
                noise = noise * (0.05 * z0.flatten(1).norm(dim=1) / noise.flatten(1).norm(dim=1))[:, None, None, None]
                change = model.codec.decode(z0 + noise).float() - base
                gain[band_name] = float((change.flatten(1).norm(dim=1) / noise.flatten(1).norm(dim=1)).mean())
            gains.append(gain)
            print(f"decoder gain, channel {c}: low band {gain['low']:.3f}, high band {gain['high']:.3f}", flush=True)

    summary = {"model": a.model, "kind": model.kind, "keys": a.keys, "per_key": a.per_key,
               "diffusion_inversion": diffusion.label(), "device": device_name(model.device),
               **harness.provenance(t0), "rows": rows, "decoder_gain_per_channel": gains,
               "bands": {"low": f"|f| <= {LOW_BAND} on both axes", "high": f"|f| > {HIGH_BAND} on either axis"}}
    lines = [f"# Where the ring is lost on `{a.model}` ({model.kind})", "",
             f"{len(keys)} keys × {a.per_key} watermarked images (8-bit); diffusion inversion: {summary['diffusion_inversion']}; "
             f"device {summary['device']}; date {summary['date']}.", harness.command_line(summary), "",
             "Ring amplitude: least-squares gain of the recovered masked spectrum on the true one (1 = intact). "
             f"Accuracy: argmin L1 over the {len(keys)} keys, effective target. Low band: {summary['bands']['low']} "
             f"(cycles per latent pixel); high band: {summary['bands']['high']}.", "",
             "| stage | z0 estimate | z0 NMSE (dB) | ẑT NMSE (dB) | ring amplitude | correct |", "|---|---|---|---|---|---|"]
    for r in rows:
        z0_txt = "0 (exact)" if r["z0_nmse_db"] is None else f"{r['z0_nmse_db']:.2f}"
        lines.append(f"| {r['stage']} | {r['name']} | {z0_txt} | {r['zt_nmse_db']:.2f} | {r['ring_amplitude']:.2f} | "
                     f"{r['correct']}/{r['total']} |")
    lines += ["", "| decoder inversion | low-band z0 NMSE per channel (dB) | PSNR D(ẑ0) vs image (dB) |", "|---|---|---|"]
    for r in rows:
        if r["stage"] == "decoder":
            lines.append(f"| {r['name']} | {', '.join(f'{v:.1f}' for v in r['z0_low_band_nmse_db_per_channel'])} | "
                         f"{r['pixel_psnr_db']:.1f} |")
    lines += ["", "| latent channel | decoder gain, low band | decoder gain, high band |", "|---|---|---|"]
    for c, gain in enumerate(gains):
        lines.append(f"| {c} | {gain['low']:.3f} | {gain['high']:.3f} |")
    harness.write_results(harness.out_stem(a), summary, lines)


if __name__ == "__main__":
    main()
