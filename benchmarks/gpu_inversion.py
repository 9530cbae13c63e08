"""Speed and memory of decoder inversion and the full analysis at SD 2.1 size, against the plain eager
implementation of the papers' code — on one device, in one run.

    .venv/bin/python benchmarks/gpu_inversion.py                 # GPU: SD 2.1 architecture, 512²
    .venv/bin/python benchmarks/gpu_inversion.py --compile       # + torch.compile (compile time reported apart)

Networks are built from resources/configs/sd21 (real weights when a local SD 2.1 folder is found, random
init otherwise: the cost does not depend on the weight values). On a machine without a GPU the same
measurements run on the bundled demo model and the output says so. Writes benchmarks/results/gpu.json
(or cpu.json) and a markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.decoder_inversion import DecoderInversionConfig, invert_decoder  # noqa: E402
from engine.device import device_name, pick_device, synchronize  # noqa: E402
from engine.diffusion_inversion import DiffusionInversionConfig, invert_ddim  # noqa: E402
from engine.latent_codec import LatentCodec  # noqa: E402


class _EmbeddingDenoiser:
    """A text-conditioned UNet called with fixed (random) prompt embeddings: the cost of SD's ε(z, t)."""

    def __init__(self, unet, embeddings):
        self.unet, self.embeddings = unet, embeddings

    def __call__(self, z, t):
        b = z.shape[0]
        tt = torch.full((b,), float(t), device=z.device)
        return self.unet(z.to(self.unet.dtype), tt, encoder_hidden_states=self.embeddings.expand(b, -1, -1)).sample.float()


def build_networks(device, use_real: bool):
    from diffusers import AutoencoderKL, UNet2DConditionModel

    cfg = REPO / "resources" / "configs" / "sd21"
    if device.type != "cuda":
        from engine.model_loader import load_model

        m = load_model("demo", device=str(device))
        return m.codec.vae, m.unet, m.scheduler_config, "bundled demo model (no GPU found)", m.image_size, None
    if use_real:
        from engine.model_registry import locate

        where = locate("sd21")
        if where.found:
            vae = AutoencoderKL.from_pretrained(where.path, subfolder="vae", local_files_only=True, use_safetensors=True)
            unet = UNet2DConditionModel.from_pretrained(where.path, subfolder="unet", local_files_only=True,
                                                        use_safetensors=True)
            return vae, unet, json.loads((cfg / "scheduler.json").read_text()), f"SD 2.1 weights from {where.path}", 512, 1024
    vae = AutoencoderKL.from_config(json.loads((cfg / "vae.json").read_text()))
    unet = UNet2DConditionModel.from_config(json.loads((cfg / "unet.json").read_text()))
    return vae, unet, json.loads((cfg / "scheduler.json").read_text()), "SD 2.1 architecture, random init", 512, 1024


def timed(fn, device, repeat: int = 1) -> tuple[float, int | None]:
    """Seconds per call and peak memory; synchronised only around the timed block."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    synchronize(device)
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    synchronize(device)
    seconds = (time.perf_counter() - t) / repeat
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return seconds, peak


def gib(b):
    return None if b is None else b / 2**30


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--iterations", type=int, default=20, help="decoder-inversion iterations per timing")
    p.add_argument("--compile", action="store_true", help="torch.compile the VAE (compile cost reported apart)")
    p.add_argument("--random-weights", action="store_true", help="ignore a local SD 2.1 folder")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    device = pick_device(a.device)
    vae, unet, sched_cfg, what, size, ctx_dim = build_networks(device, not a.random_weights)
    gpu = device.type == "cuda"
    fp16 = torch.float16 if gpu else torch.float32
    n = a.iterations if gpu else max(3, a.iterations // 4)
    vae = vae.to(device).eval().requires_grad_(False).to(memory_format=torch.channels_last)
    unet = unet.to(device, fp16).eval().requires_grad_(False).to(memory_format=torch.channels_last)
    res: dict = {"device": device_name(device), "date": time.strftime("%Y-%m-%d"), "networks": what,
                 "image_size": size, "iterations_timed": n, "compile": a.compile, "command": " ".join(sys.argv)}
    codec32 = LatentCodec(vae, float(vae.config.scaling_factor))
    lat = size // 2 ** (len(vae.config.block_out_channels) - 1)

    def images(b, h=size, w=size):
        return torch.rand(b, 3, h, w, device=device, generator=torch.Generator(device).manual_seed(0)) * 2 - 1

    # The papers' plain eager iteration: one decode + one encode (a posterior sample), fp32.
    x1 = images(1)
    with torch.no_grad():
        z = codec32.encode(x1)

        def eager_iter():
            codec32.vae.encode(codec32.decode(z)).latent_dist.sample()

        eager_iter()
        s, _ = timed(eager_iter, device, repeat=n)
    res["reference_eager_ms_per_iter"] = s * 1000

    vae16 = vae.to(fp16) if gpu else vae
    codec = LatentCodec(vae16, float(vae.config.scaling_factor))
    if a.compile:
        t = time.perf_counter()
        vae16.encoder = torch.compile(vae16.encoder, mode="max-autotune-no-cudagraphs")
        vae16.decoder = torch.compile(vae16.decoder, mode="max-autotune-no-cudagraphs")
        invert_decoder(codec, images(8), DecoderInversionConfig(iterations=2, precision="fp16" if gpu else "fp32"))
        invert_decoder(codec, x1, DecoderInversionConfig(iterations=2, precision="fp16" if gpu else "fp32"))
        res["compile_seconds"] = time.perf_counter() - t
    prec = "fp16" if gpu else "fp32"
    for b in (1, 8):
        xb = images(b)
        cfg = DecoderInversionConfig(iterations=n, precision=prec)
        invert_decoder(codec, xb, DecoderInversionConfig(iterations=2, precision=prec))       # warm-up
        s, peak = timed(lambda: invert_decoder(codec, xb, cfg), device)
        res[f"gradient_free_fp16_ms_per_image_iter_b{b}"] = s * 1000 / (n * b)
        res[f"gradient_free_fp16_peak_gib_b{b}"] = gib(peak)
    vae32 = vae16.to(torch.float32)
    codec32 = LatentCodec(vae32, float(vae.config.scaling_factor))
    gb = DecoderInversionConfig("gradient-based", iterations=n)
    invert_decoder(codec32, x1, DecoderInversionConfig("gradient-based", iterations=2))
    s, peak = timed(lambda: invert_decoder(codec32, x1, gb), device)
    res["gradient_based_fp32_ms_per_iter"] = s * 1000 / n
    res["gradient_based_fp32_peak_gib_b1"] = gib(peak)
    res["speedup_vs_reference_eager"] = res["reference_eager_ms_per_iter"] / res["gradient_free_fp16_ms_per_image_iter_b8"]
    res["speedup_vs_gradient_based"] = res["gradient_based_fp32_ms_per_iter"] / res["gradient_free_fp16_ms_per_image_iter_b1"]

    # LaVie-sized case: 16 frames of 320×512 (the paper's video experiment).
    if gpu:
        xv = images(16, 320, 512)
        codec16 = LatentCodec(vae32.to(fp16), float(vae.config.scaling_factor))
        _, peak = timed(lambda: invert_decoder(codec16, xv, DecoderInversionConfig(iterations=2, precision="fp16")), device)
        res["video16_gradient_free_peak_gib"] = gib(peak)
        codec32 = LatentCodec(codec16.vae.to(torch.float32), float(vae.config.scaling_factor))
        try:
            _, peak = timed(lambda: invert_decoder(codec32, xv, DecoderInversionConfig("gradient-based", iterations=2)), device)
            res["video16_gradient_based_peak_gib"] = gib(peak)
        except torch.cuda.OutOfMemoryError:
            res["video16_gradient_based_peak_gib"] = "out of memory"
        del xv
        codec = LatentCodec(codec32.vae.to(fp16), float(vae.config.scaling_factor))

    # 50-step naive DDIM inversion, and the full analysis of one image (100 GF iterations + 50 steps).
    if ctx_dim:
        emb = torch.randn(1, 77, ctx_dim, device=device, dtype=fp16)
        denoiser = _EmbeddingDenoiser(unet, emb)
    else:
        from engine.denoiser import Conditioning, Denoiser

        denoiser = Denoiser(unet, Conditioning())
    z0 = torch.randn(1, 4, lat, lat, device=device)
    with torch.no_grad():
        invert_ddim(denoiser, z0, sched_cfg, DiffusionInversionConfig(steps=2))
        s, peak = timed(lambda: invert_ddim(denoiser, z0, sched_cfg, DiffusionInversionConfig(steps=50)), device)
    res["ddim_inversion_50_s"] = s
    res["ddim_inversion_peak_gib"] = gib(peak)

    def full():
        d = invert_decoder(codec, x1, DecoderInversionConfig(iterations=100, precision=prec))
        with torch.no_grad():
            invert_ddim(denoiser, d.z0, sched_cfg, DiffusionInversionConfig(steps=50))

    s, peak = timed(full, device)
    res["full_analysis_s_per_image"] = s
    res["full_analysis_peak_gib"] = gib(peak)

    out = Path(a.out or REPO / "benchmarks" / "results" / ("gpu.json" if gpu else "cpu.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    rows = [f"# Decoder-inversion benchmark — {res['device']}, {res['date']}", "",
            f"Networks: {what}; {size}² images; command `{res['command']}`.", "", "| measure | value |", "|---|---|"]
    for k, v in res.items():
        if k in ("device", "date", "networks", "command"):
            continue
        rows.append(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |")
    out.with_suffix(".md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
