"""Speed and memory of decoder inversion and the full analysis at SD 2.1 size, against the plain eager
implementation of the papers' code — on one device, in one run.

    .venv/bin/python benchmarks/gpu_inversion.py                 # GPU: SD 2.1 architecture, 512²
    .venv/bin/python benchmarks/gpu_inversion.py --compile       # + torch.compile (compile time reported apart)

Networks are built from resources/configs/sd21 (real weights when a local SD 2.1 folder is found, random
init otherwise: the cost does not depend on the weight values). On a machine without a GPU the same
measurements run on the bundled demo model and the output says so. Writes
benchmarks/results/gpu_inversion/gpu.json (or cpu.json) and a markdown table beside it.
"""

from __future__ import annotations

import copy
import json
import sys
import time

import torch

import harness  # also puts the repository root on sys.path
from harness import REPO

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
    p = harness.parser(__doc__, "gpu_inversion", model=False,
                       out_help="path stem of the results (STEM.md and STEM.json); default "
                                "benchmarks/results/gpu_inversion/gpu, or …/cpu without a GPU")
    p.add_argument("--iterations", type=int, default=20, help="decoder-inversion iterations per timing")
    p.add_argument("--compile", action="store_true", help="torch.compile the VAE (compile cost reported apart)")
    p.add_argument("--compile-mode", default="max-autotune-no-cudagraphs",
                   help="torch.compile mode (e.g. max-autotune: with CUDA graphs)")
    p.add_argument("--random-weights", action="store_true", help="ignore a local SD 2.1 folder")
    a = p.parse_args()
    device = pick_device(a.device)
    vae, unet, sched_cfg, what, size, ctx_dim = build_networks(device, not a.random_weights)
    gpu = device.type == "cuda"
    half = torch.float16 if gpu else torch.float32     # CPU half precision is ~60x slower: fp32 there
    prec = "fp16" if gpu else "fp32"
    n = a.iterations if gpu else max(3, a.iterations // 4)
    # Only the network being measured is on the device, so each peak is that measurement's own: the fp32
    # master VAE, its half copy and the UNet move in and out (peaks = weights resident + working memory).
    cpu = torch.device("cpu")
    vae32 = vae.eval().requires_grad_(False).to(cpu, torch.float32).to(memory_format=torch.channels_last)
    vae16 = copy.deepcopy(vae32).to(half) if gpu else vae32
    unet = unet.eval().requires_grad_(False).to(cpu, half).to(memory_format=torch.channels_last)
    scale = float(vae.config.scaling_factor)
    res: dict = {"device": device_name(device), "date": time.strftime("%Y-%m-%d"), "networks": what,
                 "image_size": size, "iterations_timed": n, "compile": a.compile, "command": " ".join(sys.argv),
                 "gradient_free_precision": prec,
                 "peak_memory_includes": "the weights of the one network measured (VAE or UNet) + working memory"}
    lat = size // 2 ** (len(vae.config.block_out_channels) - 1)

    def on_device(*resident):
        for m in (vae32, vae16, unet):
            if m not in resident:
                m.to(cpu)
        for m in resident:
            m.to(device)
        if gpu:
            torch.cuda.empty_cache()

    def images(b, h=size, w=size):
        return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(0)).to(device) * 2 - 1

    # The papers' plain eager iteration: one decode + one encode (a posterior sample), fp32.
    on_device(vae32)
    codec32 = LatentCodec(vae32, scale)
    x1 = images(1)
    with torch.no_grad():
        z = codec32.encode(x1)

        def eager_iter():
            codec32.vae.encode(codec32.decode(z)).latent_dist.sample()

        eager_iter()
        s, _ = timed(eager_iter, device, repeat=n)
    res["reference_eager_ms_per_iter"] = s * 1000

    # Gradient-based baseline, fp32, B = 1 (and the video-sized batch on a GPU).
    gb = DecoderInversionConfig("gradient-based", iterations=n)
    invert_decoder(codec32, x1, DecoderInversionConfig("gradient-based", iterations=2))
    s, peak = timed(lambda: invert_decoder(codec32, x1, gb), device)
    res["gradient_based_fp32_ms_per_iter"] = s * 1000 / n
    res["gradient_based_fp32_peak_gib_b1"] = gib(peak)
    if gpu:   # LaVie-sized case: 16 frames of 320×512 (the paper's video experiment)
        xv = images(16, 320, 512)
        try:
            _, peak = timed(lambda: invert_decoder(codec32, xv, DecoderInversionConfig("gradient-based", iterations=2)),
                            device)
            res["video16_gradient_based_peak_gib"] = gib(peak)
        except torch.cuda.OutOfMemoryError:
            res["video16_gradient_based_peak_gib"] = "out of memory"
        del xv

    # Gradient-free, in the engine's fastest precision for the device, B = 1 and batched.
    on_device(vae16)
    codec = LatentCodec(vae16, scale)
    x1 = images(1)
    if a.compile:
        t = time.perf_counter()
        vae16.encoder = torch.compile(vae16.encoder, mode=a.compile_mode)
        vae16.decoder = torch.compile(vae16.decoder, mode=a.compile_mode)
        invert_decoder(codec, images(8), DecoderInversionConfig(iterations=2, precision=prec))
        invert_decoder(codec, x1, DecoderInversionConfig(iterations=2, precision=prec))
        res["compile_seconds"] = time.perf_counter() - t
    for b in (1, 8):
        xb = images(b)
        cfg = DecoderInversionConfig(iterations=n, precision=prec)
        invert_decoder(codec, xb, DecoderInversionConfig(iterations=2, precision=prec))       # warm-up
        s, peak = timed(lambda: invert_decoder(codec, xb, cfg), device)
        res[f"gradient_free_fp16_ms_per_image_iter_b{b}"] = s * 1000 / (n * b)
        res[f"gradient_free_fp16_peak_gib_b{b}"] = gib(peak)
    res["speedup_vs_reference_eager"] = res["reference_eager_ms_per_iter"] / res["gradient_free_fp16_ms_per_image_iter_b8"]
    res["speedup_vs_gradient_based"] = res["gradient_based_fp32_ms_per_iter"] / res["gradient_free_fp16_ms_per_image_iter_b1"]
    if gpu:
        xv = images(16, 320, 512)
        _, peak = timed(lambda: invert_decoder(codec, xv, DecoderInversionConfig(iterations=2, precision=prec)), device)
        res["video16_gradient_free_peak_gib"] = gib(peak)
        del xv

    # 50-step naive DDIM inversion (UNet alone on the device), then the full analysis of one image
    # (100 gradient-free iterations + 50 steps; VAE and UNet both resident).
    on_device(unet)
    if ctx_dim:
        emb = torch.randn(1, 77, ctx_dim, generator=torch.Generator().manual_seed(1)).to(device, half)
        denoiser = _EmbeddingDenoiser(unet, emb)
    else:
        from engine.denoiser import Conditioning, Denoiser

        denoiser = Denoiser(unet, Conditioning())
    z0 = torch.randn(1, 4, lat, lat, generator=torch.Generator().manual_seed(2)).to(device)
    with torch.no_grad():
        invert_ddim(denoiser, z0, sched_cfg, DiffusionInversionConfig(steps=2))
        s, peak = timed(lambda: invert_ddim(denoiser, z0, sched_cfg, DiffusionInversionConfig(steps=50)), device)
    res["ddim_inversion_50_s"] = s
    res["ddim_inversion_peak_gib"] = gib(peak)

    on_device(vae16, unet)

    def full():
        d = invert_decoder(codec, x1, DecoderInversionConfig(iterations=100, precision=prec))
        with torch.no_grad():
            invert_ddim(denoiser, d.z0, sched_cfg, DiffusionInversionConfig(steps=50))

    full()
    s, peak = timed(full, device)
    res["full_analysis_s_per_image"] = s
    res["full_analysis_peak_gib"] = gib(peak)

    rows = [f"# Decoder-inversion benchmark — {res['device']}, {res['date']}", "",
            f"Networks: {what}; {size}² images; command `{res['command']}`.",
            f"Gradient-free precision: {prec} (keys named fp16 hold this precision's figures; on a CPU fp32). "
            f"Peak memory: {res['peak_memory_includes']}.", "", "| measure | value |", "|---|---|"]
    for k, v in res.items():
        if k in ("device", "date", "networks", "command"):
            continue
        rows.append(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |")
    harness.write_results(harness.out_stem(a, "gpu" if gpu else "cpu"), res, rows)


if __name__ == "__main__":
    main()
