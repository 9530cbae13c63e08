#!/usr/bin/env python3
"""Train the bundled demo latent-diffusion models (``resources/models/demo`` and ``demo-flow``).

Everything is trained from scratch, offline and with fixed seeds, on 64x64 random crops of
scikit-image's bundled photographs (plus a few grey-scale textures and procedural images):

1. a KL autoencoder (``diffusers.AutoencoderKL``, 64x64x3 <-> 4x32x32, one down-sampling), whose
   ``scaling_factor`` is set to 1/std of the posterior-mode latents of the training crops;
2. ``demo``: an unconditional epsilon-prediction ``UNet2DModel`` on the scaled latents, trained with
   the DDPM loss under SD-2.1-base's DDIM schedule (scaled_linear 0.00085 -> 0.012, 1000 steps);
3. ``demo-flow``: a one-step rectified-flow ``UNet2DModel`` in InstaFlow's convention
   (``z0 = zT + unet(zT, 1000).sample``): flow matching initialised from the demo UNet, then
   distilled into one Euler step on (zT, many-step-Euler z0) pairs of that flow.

Both output folders are complete diffusers-format folders (safetensors, fp32) with a model card and a
grid of 16 samples; the wall-clock time of each stage and the measured metrics are written to
``training_report.json`` in each folder. The defaults reproduce the shipped models.

Experiments (not shipped): ``--only demo --unet-steps 8000 --unet-bf16 --center-latents`` trains a
demo UNet 6.7x longer (73 min on the 2-core CPU) and reports its sample quality every
``--unet-eval-every`` steps; see benchmarks/README.md for what it showed.

Needs the ``train`` extra (scikit-image). Smoke run (a few steps, scratch folder)::

    python packaging/train_demo_model.py --smoke --out out/smoke_models

Real run (~30 min on an idle 2-core CPU, longer when the cores are shared)::

    nohup python packaging/train_demo_model.py > out_train.log 2>&1 &
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

# The 2 cores are shared with other work: sleeping (not spinning) OpenMP workers avoid the
# oversubscription collapse. Must be set before torch loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as F

import diffusers
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    FlowMatchEulerDiscreteScheduler,
    UNet2DModel,
)

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
# Colour photographs of skimage.data that ship with the wheel (no download). "chelsea" == "cat".
TRAIN_COLOUR = ["astronaut", "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel",
                "logo", "motorcycle_left", "motorcycle_right"]
TRAIN_GREY = ["camera", "brick", "grass", "gravel", "coins", "moon"]
HELD_OUT = ["coffee", "rocket", "chelsea"]
CROP = 64          # image side; --image-size changes it (with the VAE depth, the latent side LATENT follows)
LATENT = 32


def _load_image(name: str) -> torch.Tensor:
    """(3, H, W) float32 in [0, 1]."""
    import skimage.data as skd

    if name in ("motorcycle_left", "motorcycle_right"):
        left, right, _ = skd.stereo_motorcycle()
        arr = left if name == "motorcycle_left" else right
    else:
        arr = getattr(skd, name)()
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    arr = arr.astype(np.float32)
    if arr.max() > 1.5:
        arr = arr / 255.0
    if arr.shape[2] == 4:  # RGBA logo: composite onto white
        a = arr[..., 3:4]
        arr = arr[..., :3] * a + (1.0 - a)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


class CropSampler:
    """Random-scale 64x64 crops with flips and mild colour jitter, 8-bit quantised, in [-1, 1]."""

    def __init__(self, names, weights, procedural_frac=0.0, jitter=True):
        self.images = [_load_image(n) for n in names]
        w = torch.tensor(weights, dtype=torch.float64)
        self.weights = w / w.sum()
        self.procedural_frac = procedural_frac
        self.jitter = jitter

    def _crop(self, img, g):
        _, h, w = img.shape
        lo, hi = math.log(48.0), math.log(max(49.0, 0.7 * min(h, w)))
        side = int(round(math.exp(lo + (hi - lo) * torch.rand((), generator=g).item())))
        side = min(side, h, w)
        y = int(torch.randint(0, h - side + 1, (), generator=g))
        x = int(torch.randint(0, w - side + 1, (), generator=g))
        c = img[None, :, y:y + side, x:x + side]
        if side != CROP:
            c = F.interpolate(c, size=(CROP, CROP), mode="bilinear", antialias=True,
                              align_corners=False)
        return c[0].clamp(0, 1)

    @staticmethod
    def _procedural(g):
        kind = int(torch.randint(0, 3, (), generator=g))
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, CROP), torch.linspace(-1, 1, CROP),
                                indexing="ij")
        if kind == 0:  # smooth random colour field
            k = int(torch.randint(2, 9, (), generator=g))
            grid = torch.rand(1, 3, k, k, generator=g)
            img = F.interpolate(grid, size=(CROP, CROP), mode="bicubic", align_corners=True)[0]
        elif kind == 1:  # two-colour sinusoidal grating
            ang = torch.rand((), generator=g) * math.pi
            freq = 1.0 + 10.0 * torch.rand((), generator=g)
            ph = torch.rand((), generator=g) * 2 * math.pi
            s = 0.5 + 0.5 * torch.sin(freq * math.pi * (xx * torch.cos(ang) + yy * torch.sin(ang)) + ph)
            c1, c2 = torch.rand(3, 1, 1, generator=g), torch.rand(3, 1, 1, generator=g)
            img = c1 * s + c2 * (1 - s)
        else:  # discs and boxes on a flat background
            img = torch.rand(3, 1, 1, generator=g).expand(3, CROP, CROP).clone()
            for _ in range(int(torch.randint(2, 8, (), generator=g))):
                col = torch.rand(3, 1, 1, generator=g)
                cx, cy = (torch.rand(2, generator=g) * 2 - 1).tolist()
                r = 0.1 + 0.5 * torch.rand((), generator=g).item()
                if torch.rand((), generator=g) < 0.5:
                    m = ((xx - cx) ** 2 + (yy - cy) ** 2) < r * r
                else:
                    m = ((xx - cx).abs() < r) & ((yy - cy).abs() < 0.6 * r)
                img = torch.where(m[None], col.expand(3, CROP, CROP), img)
        return img.clamp(0, 1)

    def _jitter(self, c, g):
        b = 1.0 + 0.2 * (torch.rand((), generator=g) - 0.5)   # brightness +-10%
        k = 1.0 + 0.2 * (torch.rand((), generator=g) - 0.5)   # contrast +-10%
        s = 1.0 + 0.3 * (torch.rand((), generator=g) - 0.5)   # saturation +-15%
        c = c * b
        m = c.mean()
        c = (c - m) * k + m
        grey = (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])[None]
        c = (c - grey) * s + grey
        return c.clamp(0, 1)

    def sample(self, n, g):
        out = []
        for _ in range(n):
            if self.procedural_frac > 0 and torch.rand((), generator=g) < self.procedural_frac:
                c = self._procedural(g)
            else:
                i = int(torch.multinomial(self.weights, 1, generator=g))
                c = self._crop(self.images[i], g)
                if self.jitter:
                    c = self._jitter(c, g)
            if torch.rand((), generator=g) < 0.5:
                c = c.flip(-1)
            out.append(c)
        x = torch.stack(out)
        x = torch.round(x * 255.0) / 255.0  # 8-bit images, as a suspect PNG would be
        return x * 2.0 - 1.0


def train_sampler(procedural_frac):
    names = TRAIN_COLOUR + TRAIN_GREY
    weights = [1.0] * len(TRAIN_COLOUR) + [0.35] * len(TRAIN_GREY)
    weights[names.index("motorcycle_left")] = weights[names.index("motorcycle_right")] = 0.5
    return CropSampler(names, weights, procedural_frac=procedural_frac, jitter=True)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def nparams(m):
    return sum(p.numel() for p in m.parameters())


def lr_at(step, total, peak, warmup, floor=0.1):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


class EMA:
    def __init__(self, model, decay):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model, step):
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, model):
        model.load_state_dict(self.shadow)


class Progress:
    def __init__(self, name, total, every):
        self.name, self.total, self.every = name, total, every
        self.t0 = time.time()
        self.acc, self.n = 0.0, 0

    def step(self, i, loss, extra=""):
        self.acc += float(loss)
        self.n += 1
        if (i + 1) % self.every == 0 or i + 1 == self.total:
            el = time.time() - self.t0
            eta = el / (i + 1) * (self.total - i - 1)
            print(f"[{self.name}] {i + 1}/{self.total} loss {self.acc / self.n:.5f} {extra}"
                  f"| {el / (i + 1):.3f} s/step, elapsed {el / 60:.1f} min, eta {eta / 60:.1f} min",
                  flush=True)
            self.acc, self.n = 0.0, 0


def save_ckpt(obj, ckpt, seconds):
    torch.save(obj, ckpt)
    ckpt.with_suffix(".json").write_text(json.dumps({"seconds": seconds}))


def load_ckpt(ckpt, name):
    """A finished stage's checkpoint and its original wall-clock seconds (--resume)."""
    meta = ckpt.with_suffix(".json")
    secs = json.loads(meta.read_text())["seconds"] if meta.exists() else None
    print(f"[{name}] resumed from {ckpt} (trained in {fmt_s(secs)})", flush=True)
    return torch.load(ckpt), secs


def to_uint8(x):
    """[-1, 1] tensor -> uint8 numpy (N, H, W, 3), the reference hand-off (clamp, x255, round)."""
    x = ((x / 2 + 0.5).clamp(0, 1) * 255.0).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def from_uint8(a):
    return torch.from_numpy(a).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def save_grid(imgs_u8, path, nrow=4, pad=2):
    from PIL import Image

    n, h, w, _ = imgs_u8.shape
    ncol = math.ceil(n / nrow)
    grid = np.full((ncol * (h + pad) + pad, nrow * (w + pad) + pad, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, nrow)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = imgs_u8[i]
    Image.fromarray(grid).save(path)


def psnr_u8(a, b):
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(1)
    per = 10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-12))
    return float(per.mean()), float(10 * np.log10(255.0 ** 2 / mse.mean()))


# --------------------------------------------------------------------------------------------
# Models and schedulers
# --------------------------------------------------------------------------------------------
def make_vae(args):
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * len(args.vae_channels),
        up_block_types=("UpDecoderBlock2D",) * len(args.vae_channels),
        block_out_channels=tuple(args.vae_channels), layers_per_block=args.vae_layers,
        norm_num_groups=16, sample_size=CROP, mid_block_add_attention=False,
        scaling_factor=1.0,
    )


def make_unet(args):
    return UNet2DModel(
        sample_size=LATENT, in_channels=4, out_channels=4,
        block_out_channels=tuple(args.unet_channels), layers_per_block=args.unet_layers,
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=16, attention_head_dim=32,
    )


def make_ddim():
    # SD 2.1-base's scheduler config (epsilon prediction).
    return DDIMScheduler(
        num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
        prediction_type="epsilon", clip_sample=False, set_alpha_to_one=False, steps_offset=1,
        timestep_spacing="leading", trained_betas=None,
    )


def make_flow_scheduler():
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000)


# --------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------
def train_vae(args, sampler, ckpt, x_eval=None):
    torch.manual_seed(args.seed)
    vae = make_vae(args)
    if ckpt.exists() and args.resume:
        sd, secs = load_ckpt(ckpt, "vae")
        vae.load_state_dict(sd)
        return vae, secs
    g = torch.Generator().manual_seed(args.seed + 1)
    gs = torch.Generator().manual_seed(args.seed + 2)
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, betas=(0.9, 0.99), weight_decay=1e-4)
    prog = Progress("vae", args.vae_steps, args.log_every)
    npix = 3 * CROP * CROP
    vae.train()
    for i in range(args.vae_steps):
        for pg in opt.param_groups:
            pg["lr"] = lr_at(i, args.vae_steps, args.vae_lr, args.warmup)
        x = sampler.sample(args.vae_batch, g)
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=gs)).sample
        l1 = (rec - x).abs().mean()
        mse = (rec - x).pow(2).mean()
        kl = post.kl().mean() / npix  # LDM convention (sums per image), divided by #pixels
        loss = l1 + mse + args.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        prog.step(i, loss.item(), f"(l1 {l1.item():.4f} kl/px {kl.item():.3f}) ")
        if x_eval is not None and ((i + 1) % (5 * args.log_every) == 0 or i + 1 == args.vae_steps):
            vae.eval()
            with torch.no_grad():
                r = decode(vae, vae.encode(x_eval).latent_dist.mode())
            vae.train()
            print(f"[vae] step {i + 1}: held-out PSNR {psnr_u8(to_uint8(x_eval), to_uint8(r))[0]:.2f} dB",
                  flush=True)
    vae.eval()
    secs = time.time() - prog.t0
    save_ckpt(vae.state_dict(), ckpt, secs)
    return vae, secs


@torch.no_grad()
def encode_mode(vae, x, bs=128):
    return torch.cat([vae.encode(x[i:i + bs]).latent_dist.mode() for i in range(0, len(x), bs)])


@torch.no_grad()
def decode(vae, z_unscaled, bs=128):
    return torch.cat([vae.decode(z_unscaled[i:i + bs]).sample for i in range(0, len(z_unscaled), bs)])


def train_ddpm(args, latents, ckpt, steps, bf16, name="demo", eval_fn=None):
    """DDPM epsilon-loss training of a fresh UNet (seeded identically whatever `steps` is).

    `bf16` runs the forward/backward under CPU bfloat16 autocast (fp32 master weights, fp32 loss):
    about twice as fast on a CPU with AVX512-BF16. `eval_fn(unet, step)` is called on the EMA weights
    every `args.unet_eval_every` steps, to watch sample quality during a long run.
    """
    torch.manual_seed(args.seed + 10)
    unet = make_unet(args)
    if ckpt.exists() and args.resume:
        sd, secs = load_ckpt(ckpt, name)
        unet.load_state_dict(sd)
        return unet, secs
    sched = make_ddim()
    acp = sched.alphas_cumprod
    g = torch.Generator().manual_seed(args.seed + 11)
    opt = torch.optim.AdamW(unet.parameters(), lr=args.unet_lr, betas=(0.9, 0.99), weight_decay=1e-4)
    ema = EMA(unet, args.ema)
    prog = Progress(name, steps, args.log_every)
    unet.train()
    for i in range(steps):
        for pg in opt.param_groups:
            pg["lr"] = lr_at(i, steps, args.unet_lr, args.warmup)
        idx = torch.randint(0, len(latents), (args.unet_batch,), generator=g)
        z0 = latents[idx]
        t = torch.randint(0, 1000, (args.unet_batch,), generator=g)
        eps = torch.randn(z0.shape, generator=g)
        a = acp[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1 - a).sqrt() * eps
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred = unet(zt, t).sample
        loss = F.mse_loss(pred.float(), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        ema.update(unet, i)
        prog.step(i, loss.item())
        if eval_fn is not None and args.unet_eval_every and (i + 1) % args.unet_eval_every == 0 and i + 1 < steps:
            snap = make_unet(args)
            snap.load_state_dict(ema.shadow)
            snap.eval()
            eval_fn(snap, i + 1)
            torch.save(ema.shadow, ckpt.with_name(f"{ckpt.stem}_step{i + 1}.pt"))
    ema.copy_to(unet)
    unet.eval()
    secs = time.time() - prog.t0
    save_ckpt(unet.state_dict(), ckpt, secs)
    return unet, secs


def train_flow_matching(args, latents, init_state, ckpt):
    torch.manual_seed(args.seed + 20)
    unet = make_unet(args)
    if ckpt.exists() and args.resume:
        sd, secs = load_ckpt(ckpt, "flow")
        unet.load_state_dict(sd)
        return unet, secs
    unet.load_state_dict(init_state)
    g = torch.Generator().manual_seed(args.seed + 21)
    opt = torch.optim.AdamW(unet.parameters(), lr=args.unet_lr, betas=(0.9, 0.99), weight_decay=1e-4)
    ema = EMA(unet, args.ema)
    prog = Progress("flow-match", args.fm_steps, args.log_every)
    unet.train()
    for i in range(args.fm_steps):
        for pg in opt.param_groups:
            pg["lr"] = lr_at(i, args.fm_steps, args.unet_lr, args.warmup)
        idx = torch.randint(0, len(latents), (args.unet_batch,), generator=g)
        z0 = latents[idx]
        zT = torch.randn(z0.shape, generator=g)
        t = torch.rand(args.unet_batch, generator=g)
        tt = t.view(-1, 1, 1, 1)
        xt = tt * zT + (1 - tt) * z0
        loss = F.mse_loss(unet(xt, 1000.0 * t).sample, z0 - zT)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        ema.update(unet, i)
        prog.step(i, loss.item())
    ema.copy_to(unet)
    unet.eval()
    secs = time.time() - prog.t0
    save_ckpt(unet.state_dict(), ckpt, secs)
    return unet, secs


@torch.no_grad()
def flow_ode(unet, zT, steps, bs=256):
    """Euler solve of dz/dt = -v from t = 1 (noise) to t = 0 with `steps` uniform steps."""
    outs = []
    for i in range(0, len(zT), bs):
        z = zT[i:i + bs].clone()
        for k in range(steps):
            t = 1.0 - k / steps
            z = z + (1.0 / steps) * unet(z, torch.full((len(z),), 1000.0 * t)).sample
        outs.append(z)
    return torch.cat(outs)


@torch.no_grad()
def one_step(unet, zT, bs=256):
    return torch.cat([zT[i:i + bs] + unet(zT[i:i + bs], torch.full((len(zT[i:i + bs]),), 1000.0)).sample
                      for i in range(0, len(zT), bs)])


def train_distill(args, pairs_T, pairs_0, init_state, ckpt):
    torch.manual_seed(args.seed + 30)
    unet = make_unet(args)
    if ckpt.exists() and args.resume:
        sd, secs = load_ckpt(ckpt, "distill")
        unet.load_state_dict(sd)
        return unet, secs
    unet.load_state_dict(init_state)
    g = torch.Generator().manual_seed(args.seed + 31)
    opt = torch.optim.AdamW(unet.parameters(), lr=args.distill_lr, betas=(0.9, 0.99), weight_decay=1e-4)
    ema = EMA(unet, args.ema)
    prog = Progress("distill", args.distill_steps, args.log_every)
    unet.train()
    for i in range(args.distill_steps):
        for pg in opt.param_groups:
            pg["lr"] = lr_at(i, args.distill_steps, args.distill_lr, args.warmup)
        idx = torch.randint(0, len(pairs_T), (args.unet_batch,), generator=g)
        zT, z0 = pairs_T[idx], pairs_0[idx]
        pred = zT + unet(zT, torch.full((len(zT),), 1000.0)).sample
        loss = F.mse_loss(pred, z0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        ema.update(unet, i)
        prog.step(i, loss.item())
    ema.copy_to(unet)
    unet.eval()
    secs = time.time() - prog.t0
    save_ckpt(unet.state_dict(), ckpt, secs)
    return unet, secs


@torch.no_grad()
def ddim_sample(unet, zT, steps=50, bs=256):
    sched = make_ddim()
    sched.set_timesteps(steps)
    outs = []
    for i in range(0, len(zT), bs):
        z = zT[i:i + bs].clone()
        for t in sched.timesteps:
            eps = unet(z, t).sample
            z = sched.step(eps, t, z, eta=0.0).prev_sample
        outs.append(z)
    return torch.cat(outs)


def nmse_db(z, zref):
    d = (z - zref).pow(2).flatten(1).sum(1) / zref.pow(2).flatten(1).sum(1)
    return float((10 * torch.log10(d)).mean())


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------
def write_folder(path, vae, unet, scheduler, sched_class):
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    vae.save_pretrained(path / "vae", safe_serialization=True)
    unet.save_pretrained(path / "unet", safe_serialization=True)
    scheduler.save_pretrained(path / "scheduler")
    index = {
        "_class_name": "TreeRingDemoLDM",
        "_diffusers_version": diffusers.__version__,
        "vae": ["diffusers", "AutoencoderKL"],
        "unet": ["diffusers", "UNet2DModel"],
        "scheduler": ["diffusers", sched_class],
    }
    (path / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


def verify_folder(path, sched_cls):
    vae = AutoencoderKL.from_pretrained(path, subfolder="vae", use_safetensors=True, local_files_only=True)
    unet = UNet2DModel.from_pretrained(path, subfolder="unet", use_safetensors=True, local_files_only=True)
    sched = sched_cls.from_pretrained(path, subfolder="scheduler", local_files_only=True)
    assert not list(path.rglob("*.bin")), "only safetensors may be shipped"
    return vae, unet, sched


def fmt_s(s):
    return "n/a (resumed)" if s is None else f"{s / 60:.1f} min"


def model_card(kind, rep, args):
    m = rep["metrics"]
    t = rep["stage_seconds"]
    common_data = (
        f"- **Training images** (scikit-image {rep['skimage_version']}, bundled, no download): colour "
        f"{', '.join(TRAIN_COLOUR)} (motorcycle = `stereo_motorcycle()` left/right views); grey-scale "
        f"textures (replicated to RGB, lower sampling weight) {', '.join(TRAIN_GREY)}; plus "
        f"{args.procedural_frac:.0%} procedural images (smooth colour fields, gratings, discs/boxes).\n"
        f"- **Held out** (whole images, never seen in training): {', '.join(HELD_OUT)}.\n"
        f"- **Crops**: random square crops of log-uniform side 48 px … 0.7·min(H, W), resized to 64×64 "
        f"(bilinear, antialiased), horizontal flip p = 0.5, brightness/contrast ±10 %, saturation ±15 %, "
        f"8-bit quantised, scaled to [-1, 1].\n"
    )
    vae_arch = (
        f"- **VAE** (`AutoencoderKL`): {CROP}×{CROP}×3 ↔ 4×{LATENT}×{LATENT} ({'one down-sampling' if len(args.vae_channels) == 2 else f'{len(args.vae_channels) - 1} down-samplings'}), block_out_channels "
        f"{tuple(args.vae_channels)}, layers_per_block {args.vae_layers}, norm groups 16, no mid-block "
        f"attention, {rep['params']['vae'] / 1e6:.2f} M parameters. Loss L1 + MSE on a posterior sample + "
        f"KL weight {args.kl_weight:g} (LDM convention: KL summed per image, relative to the per-image "
        f"summed reconstruction loss). {args.vae_steps} AdamW steps, batch {args.vae_batch}, lr "
        f"{args.vae_lr:g} (warm-up {args.warmup}, cosine to 10 %), time {fmt_s(t.get('vae'))}.\n"
        f"- **Latent scaling factor** `{m['scaling_factor']:.6f}` = 1/std of the posterior-mode latents of "
        f"{args.n_latent_crops} training crops (unscaled std {m['latent_std_unscaled']:.4f}, mean "
        f"{m['latent_mean_unscaled']:.4f}; scaled latents have mean {m['latent_mean_scaled']:.3f}, std 1, "
        f"per-channel std {', '.join(f'{v:.2f}' for v in m['latent_channel_std_scaled'])}). "
        + ("The per-channel means of the trained encoder's latents (unscaled "
           + ", ".join(f"{v:.3f}" for v in m["latent_channel_mean_before_centering"])
           + ") were folded out exactly after training: subtracted from the bias of `quant_conv` (mean "
           "half) and added back through `post_quant_conv`'s bias, so D(E(x)) is unchanged and the "
           "latents are zero-mean per channel (no `shift_factor` needed). "
           if args.center_latents else "")
        + f"Mean posterior std (unscaled) {m['posterior_std_mean']:.4f}.\n"
    )
    unet_arch = (
        f"- **UNet** (`UNet2DModel`): 4×{LATENT}×{LATENT}, block_out_channels {tuple(args.unet_channels)}, "
        f"layers_per_block {args.unet_layers}, down DownBlock2D/DownBlock2D/AttnDownBlock2D (self-attention "
        f"only at 8×8), norm groups 16, {rep['params']['unet'] / 1e6:.2f} M parameters, fp32.\n"
    )
    ae_metrics = (
        f"| AE held-out PSNR (64×64 crops of {', '.join(HELD_OUT)}, {args.eval_crops} crops) | "
        f"{m['ae_psnr_heldout_db']:.2f} dB (mean per-crop; pooled-MSE {m['ae_psnr_heldout_pooled_db']:.2f} dB) |\n"
        f"| AE PSNR on training-distribution crops | {m['ae_psnr_train_db']:.2f} dB |\n"
        f"| Encoder-inverse NMSE: E(round8(D(z*))) vs z*, 32 demo-generated z* | "
        f"{m['encoder_nmse_db']:.2f} dB (mean of per-image 10·log10) |\n"
    )
    psnr_note = ("PSNR convention: both the input crop and the reconstruction are 8-bit images "
                 "(reconstruction = clamp → ×255 → round), peak 255; equivalently peak-to-peak 2 in [-1, 1].")
    machine = f"2-core CPU ({platform.processor() or platform.machine()}), torch {torch.__version__}, {args.threads} threads"
    if kind == "demo":
        head = (
            "# demo — tiny unconditional latent diffusion model (ε-prediction, DDIM)\n\n"
            "A toy latent diffusion model bundled with treering-forensics so that the whole pipeline "
            "(decoder inversion → DDIM inversion → Tree-Ring test) can run on a CPU in seconds. It mimics "
            "Stable Diffusion 2.1-base's *structure* (KL-VAE with a latent scaling factor, ε-prediction UNet, "
            f"SD 2.1-base's DDIM scheduler config) at {CROP}×{CROP} pixels / 4×{LATENT}×{LATENT} latents. Its samples are "
            "textures and colour patches, not photographs. **Not** a substitute for SD: verdicts on real "
            "images need the real model.\n\n"
        )
        train = (
            f"- **Diffusion training**: DDPM ε-loss (uniform t ∈ {{0…999}}) on the scaled posterior-mode "
            f"latents of {args.n_latent_crops} precomputed training crops, scheduler = DDIMScheduler with "
            f"SD 2.1-base's config (1000 steps, scaled_linear 0.00085 → 0.012, epsilon, clip_sample False, "
            f"set_alpha_to_one False, steps_offset 1, leading spacing). {args.unet_steps} AdamW steps, batch "
            f"{args.unet_batch}, lr {args.unet_lr:g} (warm-up {args.warmup}, cosine to 10 %), EMA "
            f"{args.ema} (weights shipped = EMA), "
            + ("CPU bfloat16 autocast for the forward/backward pass (fp32 master weights and loss), "
               if args.unet_bf16 else "fp32, ")
            + f"time {fmt_s(t.get('demo_unet'))}.\n"
            + ("- **Sample quality during training** (EMA weights, the 32 evaluation noises below): "
               + "; ".join(f"step {e['step']}: std {e['sample_std']:.3f}, encoder NMSE {e['encoder_nmse_db']:.2f} dB"
                           for e in m.get("demo_unet_progress", []))
               + f"; final ({args.unet_steps}): std {m['demo_sample_std']:.3f}, encoder NMSE "
               + f"{m['encoder_nmse_db']:.2f} dB.\n" if m.get("demo_unet_progress") else "")
        )
        extra = (
            f"| DDIM sampling (50 steps, eta 0), scaled-latent std of 32 samples | {m['demo_sample_std']:.3f} |\n"
        )
        grid = ("`samples_grid.png`: 16 samples, DDIM 50 steps (`DDIMScheduler.set_timesteps(50)`), eta 0, "
                f"noise `torch.randn(16, 4, {LATENT}, {LATENT}, generator=torch.Generator().manual_seed({args.seed + 100}))`, "
                "decoded with `vae.decode(z / scaling_factor)`.")
    else:
        head = (
            "# demo-flow — tiny one-step rectified-flow latent model (InstaFlow convention)\n\n"
            "A toy one-step text-free analogue of InstaFlow bundled with treering-forensics. Generation is a "
            "single Euler step `z0 = zT + unet(zT, 1000).sample` (time label 1000 = noise, dt = 1); the "
            "scheduler folder holds a `FlowMatchEulerDiscreteScheduler` config, which is how the engine "
            "recognises the one-step-flow kind. Same VAE as `demo` (its own copy). Samples are textures and "
            "colour patches, not photographs.\n\n"
        )
        train = (
            f"- **Stage 0**: an ε-prediction UNet trained exactly like demo's but for {args.flow_init_steps} steps "
            f"in fp32 (time {fmt_s(t.get('flow_init_unet', t.get('demo_unet')))}), the starting point of stage 1.\n"
            f"- **Stage 1, flow matching** (initialised from stage 0's EMA weights): "
            f"x_t = t·zT + (1 − t)·z0, t ~ U[0, 1], label 1000·t, target v = z0 − zT; {args.fm_steps} steps, "
            f"batch {args.unet_batch}, lr {args.unet_lr:g}, EMA {args.ema}, time {fmt_s(t.get('flow_matching'))}.\n"
            f"- **Stage 2, one-step distillation**: {args.n_pairs} pairs (zT ~ N(0, I), z0 = {args.ode_steps}-step "
            f"Euler solve of the stage-1 flow from zT; time {fmt_s(t.get('flow_pairs'))}); fine-tuned from stage 1 "
            f"so that zT + v(zT, 1000) ≈ z0 (latent MSE); {args.distill_steps} steps, batch {args.unet_batch}, "
            f"lr {args.distill_lr:g}, EMA {args.ema} (weights shipped = EMA), time {fmt_s(t.get('distill'))}.\n"
        )
        extra = (
            f"| One-step vs {args.ode_steps}-step-ODE z0 on {args.flow_eval_noises} held-out noises: MSE | "
            f"{m['flow_onestep_mse']:.4f} (NMSE {m['flow_onestep_nmse_db']:.2f} dB; z0 variance "
            f"{m['flow_ode_z0_var']:.3f}) |\n"
            f"| Same on training pairs: MSE | {m['flow_onestep_mse_trainpairs']:.4f} |\n"
            f"| Stage-1 flow, {args.ode_steps}-step ODE, scaled-latent std of samples | {m['flow_ode_sample_std']:.3f} |\n"
            f"| One-step samples, scaled-latent std | {m['flow_onestep_sample_std']:.3f} |\n"
        )
        grid = (f"`samples_grid.png`: 16 samples, one Euler step, noise `torch.randn(16, 4, {LATENT}, {LATENT}, "
                f"generator=torch.Generator().manual_seed({args.seed + 100}))`, decoded with "
                "`vae.decode(z / scaling_factor)`.")
    return (
        head
        + "## Data\n\n" + common_data
        + "\n## Architecture and training\n\n" + vae_arch + unet_arch + train
        + f"- **Seeds**: base seed {args.seed} (every stage derives its own fixed seed from it); "
          f"`torch.use_deterministic_algorithms(True, warn_only=True)`, {args.threads} threads; a repeated launch reproduced the logged losses exactly.\n"
        + f"- **Machine**: {machine}; whole run {rep['total_seconds'] / 60:.1f} min wall clock.\n"
        + f"- Reproduce: `python packaging/train_demo_model.py {rep['reproduce_cli']}` (needs the `train` "
          f"extra).\n"
        + "\n## Measurements\n\n| metric | value |\n|---|---|\n" + ae_metrics + extra
        + "\n" + psnr_note + "\n\n## Samples\n\n![samples](samples_grid.png)\n\n" + grid + "\n\n"
        + "## Loading\n\n```python\nfrom diffusers import AutoencoderKL, UNet2DModel\n"
        + f"vae = AutoencoderKL.from_pretrained(path, subfolder=\"vae\", use_safetensors=True, local_files_only=True)\n"
        + f"unet = UNet2DModel.from_pretrained(path, subfolder=\"unet\", use_safetensors=True, local_files_only=True)\n```\n"
        + "\nTraining images: scikit-image's bundled sample data; see scikit-image's `skimage/data/README.txt` "
          "for each image's source and licence.\n"
    )


def reproduce_cli(cli):
    """The invocation minus what does not change the weights (--resume and the scratch/output folders)."""
    out, skip = [], False
    for a in cli.split():
        if skip:
            skip = False
        elif a in ("--out", "--work"):
            skip = True
        elif a != "--resume" and not a.startswith(("--out=", "--work=")):
            out.append(a)
    return " ".join(out)


# --------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "resources" / "models")
    p.add_argument("--work", type=Path, default=REPO / "out" / "train_demo_work",
                   help="scratch folder for stage checkpoints and diagnostics")
    p.add_argument("--resume", action="store_true", help="reuse finished stage checkpoints in --work")
    p.add_argument("--seed", type=int, default=20240601)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--smoke", action="store_true", help="a few steps of everything (end-to-end check)")
    p.add_argument("--procedural-frac", type=float, default=0.12)
    p.add_argument("--image-size", type=int, default=64, help="training crop side in pixels")
    p.add_argument("--vae-channels", type=int, nargs="+", default=[32, 64],
                   help="block_out_channels; each block after the first halves the side (2 → latent = image / 2)")
    p.add_argument("--only", choices=("demo", "demo-flow"),
                   help="write only this model's folder (default: both); `demo` skips the flow stages")
    p.add_argument("--skip-flow", dest="only", action="store_const", const="demo", help="same as --only demo")
    p.add_argument("--vae-layers", type=int, default=2)
    p.add_argument("--vae-steps", type=int, default=800)
    p.add_argument("--vae-batch", type=int, default=16)
    p.add_argument("--vae-lr", type=float, default=1.5e-3)
    p.add_argument("--kl-weight", type=float, default=1e-5)
    p.add_argument("--center-latents", action=argparse.BooleanOptionalAction, default=False,
                   help="fold the AE's per-channel latent means into the conv biases (an exact reparametrisation; "
                        "removes the samples' colour cast; the shipped models were trained without it)")
    p.add_argument("--n-latent-crops", type=int, default=8192)
    p.add_argument("--eval-crops", type=int, default=192)
    p.add_argument("--unet-channels", type=int, nargs=3, default=[32, 64, 128])
    p.add_argument("--unet-layers", type=int, default=1)
    p.add_argument("--unet-steps", type=int, default=1200, help="demo UNet training steps")
    p.add_argument("--unet-bf16", action=argparse.BooleanOptionalAction, default=False,
                   help="train the demo UNet under CPU bfloat16 autocast (about 2x faster on AVX512-BF16)")
    p.add_argument("--unet-eval-every", type=int, default=2000,
                   help="print sample std / encoder NMSE of the EMA weights every N demo-UNet steps (0: never)")
    p.add_argument("--flow-init-steps", type=int, default=1200,
                   help="steps of the fp32 epsilon UNet that initialises flow matching (the shipped demo-flow "
                        "was initialised from a 1200-step one; trained separately when it differs from the demo UNet)")
    p.add_argument("--unet-batch", type=int, default=64)
    p.add_argument("--unet-lr", type=float, default=8e-4)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--fm-steps", type=int, default=600)
    p.add_argument("--n-pairs", type=int, default=2048)
    p.add_argument("--ode-steps", type=int, default=16)
    p.add_argument("--distill-steps", type=int, default=500)
    p.add_argument("--distill-lr", type=float, default=4e-4)
    p.add_argument("--flow-eval-noises", type=int, default=128)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--log-every", type=int, default=50)
    a = p.parse_args(argv)
    if a.smoke:
        a.vae_steps, a.unet_steps, a.fm_steps, a.distill_steps = 6, 6, 4, 4
        a.flow_init_steps, a.unet_eval_every = 4, 3
        a.n_latent_crops, a.eval_crops, a.n_pairs, a.ode_steps = 128, 32, 64, 4
        a.flow_eval_noises, a.warmup, a.log_every = 16, 2, 2
    return a


def main(argv=None):
    args = parse_args(argv)
    global CROP, LATENT
    CROP, LATENT = args.image_size, args.image_size // 2 ** (len(args.vae_channels) - 1)
    cli = " ".join(sys.argv[1:]) if argv is None else " ".join(argv)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    import skimage

    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    T0 = time.time()
    stages, metrics = {}, {}
    resumed = [n for n in ("vae", "demo_unet", "flow_init_unet", "flow_unet", "flow_pairs", "flow_onestep_unet")
               if args.resume and (args.work / f"{n}.pt").exists()]

    def stage_done(name, t):
        stages[name] = None if t is None else round(t, 1)
        print(f"=== stage {name}: {fmt_s(t)} (total {(time.time() - T0) / 60:.1f} min)", flush=True)

    # ---- data -------------------------------------------------------------------------------
    t = time.time()
    sampler = train_sampler(args.procedural_frac)
    held = CropSampler(HELD_OUT, [1.0] * len(HELD_OUT), procedural_frac=0.0, jitter=False)
    x_held = held.sample(args.eval_crops, torch.Generator().manual_seed(args.seed + 3))
    x_lat = sampler.sample(args.n_latent_crops, torch.Generator().manual_seed(args.seed + 4))
    save_grid(to_uint8(x_lat[:32]), args.work / "train_crops.png", nrow=8)
    stage_done("data", time.time() - t)

    # ---- autoencoder ------------------------------------------------------------------------
    vae, tv = train_vae(args, sampler, args.work / "vae.pt", x_held[:64])
    stage_done("vae", tv)
    t = time.time()
    with torch.no_grad():
        post_held = vae.encode(x_held).latent_dist
        rec_held = decode(vae, post_held.mode())
        metrics["ae_psnr_heldout_db"], metrics["ae_psnr_heldout_pooled_db"] = psnr_u8(
            to_uint8(x_held), to_uint8(rec_held))
        save_grid(np.concatenate([to_uint8(x_held[:16]), to_uint8(rec_held[:16])]),
                  args.work / "ae_heldout_recon.png", nrow=8)
        mu = encode_mode(vae, x_lat)
        rec_tr = decode(vae, mu[:256])
        metrics["ae_psnr_train_db"], _ = psnr_u8(to_uint8(x_lat[:256]), to_uint8(rec_tr))
        metrics["latent_channel_mean_before_centering"] = [float(m) for m in mu.mean((0, 2, 3))]
        if args.center_latents:
            # Exact reparametrisation: move the per-channel mean of the mode latents from the encoder's
            # quant_conv bias into the decoder's post_quant_conv bias. D(E(x)) is unchanged; the
            # latents become zero-mean, which the diffusion model otherwise fails to reproduce
            # (samples with a colour cast, off the encoder's manifold).
            c = mu.mean((0, 2, 3))
            lc = c.numel()
            vae.quant_conv.bias[:lc] -= c
            vae.post_quant_conv.bias += vae.post_quant_conv.weight[:, :, 0, 0] @ c
            mu_new = encode_mode(vae, x_lat[:256])
            assert torch.allclose(mu_new, mu[:256] - c.view(1, -1, 1, 1), atol=1e-4)
            assert torch.allclose(decode(vae, mu_new), rec_tr, atol=1e-4)
            mu = mu - c.view(1, -1, 1, 1)
        std = float(mu.std())
        metrics["latent_std_unscaled"] = std
        metrics["latent_mean_unscaled"] = float(mu.mean())
        metrics["posterior_std_mean"] = float(vae.encode(x_lat[:256]).latent_dist.std.mean())
        sf = 1.0 / std
        vae.register_to_config(scaling_factor=sf)
        metrics["scaling_factor"] = sf
        latents = (mu * sf).contiguous()
        metrics["latent_mean_scaled"] = float(latents.mean())
        metrics["latent_std_scaled"] = float(latents.std())
        metrics["latent_channel_std_scaled"] = [float(s) for s in latents.transpose(0, 1).flatten(1).std(1)]
    print(f"[vae] held-out PSNR {metrics['ae_psnr_heldout_db']:.2f} dB, train PSNR "
          f"{metrics['ae_psnr_train_db']:.2f} dB, latent std {std:.4f} -> scaling_factor {sf:.6f}", flush=True)
    stage_done("latents_and_ae_eval", time.time() - t)

    # ---- demo UNet (epsilon, DDIM) ------------------------------------------------------------
    g_eval = torch.Generator().manual_seed(args.seed + 100)
    zT_eval = torch.randn(32, 4, LATENT, LATENT, generator=g_eval)

    @torch.no_grad()
    def eval_ddim(model):
        z = ddim_sample(model, zT_eval, steps=50)
        u8_ = to_uint8(decode(vae, z / sf))
        # Encoder inverse: x = 8-bit-rounded D(z*), NMSE(E(x), z*) in dB.
        return z, u8_, nmse_db(encode_mode(vae, from_uint8(u8_)) * sf, z)

    def watch(model, step):
        z, _, nmse = eval_ddim(model)
        metrics.setdefault("demo_unet_progress", []).append(
            {"step": step, "sample_std": float(z.std()), "encoder_nmse_db": nmse})
        print(f"[demo] step {step}: EMA sample std {float(z.std()):.3f}, encoder NMSE {nmse:.2f} dB", flush=True)

    unet, tu = train_ddpm(args, latents, args.work / "demo_unet.pt", args.unet_steps, args.unet_bf16,
                          eval_fn=watch)
    stage_done("demo_unet", tu)
    t = time.time()
    z_demo, u8, metrics["encoder_nmse_db"] = eval_ddim(unet)
    metrics["demo_sample_std"] = float(z_demo.std())
    metrics["demo_sample_mean"] = float(z_demo.mean())
    print(f"[demo] sample std {metrics['demo_sample_std']:.3f}, encoder NMSE {metrics['encoder_nmse_db']:.2f} dB",
          flush=True)
    stage_done("demo_eval", time.time() - t)

    # ---- demo-flow: flow matching, pairs, one-step distillation -------------------------------
    def training_report():
        # Sum of the stages' own times, so that a run resumed from stage checkpoints reports the time a
        # single uninterrupted run took for the same work.
        total = sum(v for v in stages.values() if v is not None)
        rep = {
            "cli": cli,
            "reproduce_cli": reproduce_cli(cli),
            "diffusers_version": diffusers.__version__,
            "torch_version": torch.__version__,
            "skimage_version": skimage.__version__,
            "python": platform.python_version(),
            "machine": f"2-core CPU ({platform.processor() or platform.machine()}), {args.threads} torch threads",
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "data": {"train_colour": TRAIN_COLOUR, "train_grey": TRAIN_GREY, "held_out": HELD_OUT},
            "params": {"vae": nparams(vae), "unet": nparams(unet)},
            "stage_seconds": stages,
            "resumed_stages": resumed,
            "total_seconds": round(total, 1),
            "this_invocation_seconds": round(time.time() - T0, 1),
            "metrics": metrics,
            "psnr_convention": "8-bit images (input crop and clamp/x255/round reconstruction), peak 255, "
                               "mean of per-crop PSNR (pooled = PSNR of the mean MSE)",
            "nmse_convention": "mean over images of 10*log10(||z - z*||^2 / ||z*||^2), scaled latents",
        }
        return rep, total

    if args.only == "demo":
        demo_dir = args.out / "demo"
        write_folder(demo_dir, vae, unet, make_ddim(), "DDIMScheduler")
        save_grid(u8[:16], demo_dir / "samples_grid.png")
        v2, u2, _ = verify_folder(demo_dir, DDIMScheduler)
        with torch.no_grad():
            zz, tt = zT_eval[:2], torch.tensor([500, 500])
            assert torch.allclose(u2(zz, tt).sample, unet(zz, tt).sample, atol=1e-5)
            assert torch.allclose(v2.decode(zz).sample, vae.decode(zz).sample, atol=1e-5)
        rep, total = training_report()
        (demo_dir / "README.md").write_text(model_card("demo", rep, args))
        # The report sits in the model's own folder: the shipped demo-flow came from another invocation.
        (demo_dir / "training_report.json").write_text(json.dumps(rep, indent=2) + "\n")
        print(json.dumps(metrics, indent=2))
        print(f"=== done (DDIM model only) in {total / 60:.1f} min; wrote {demo_dir}", flush=True)
        return
    if args.flow_init_steps == args.unet_steps and not args.unet_bf16:
        flow_init = unet
    else:
        # The shipped demo-flow starts from a short fp32 epsilon UNet; training it separately keeps
        # demo-flow reproducible when the demo UNet's own recipe changes.
        flow_init, ti = train_ddpm(args, latents, args.work / "flow_init_unet.pt", args.flow_init_steps,
                                   False, name="flow-init")
        stage_done("flow_init_unet", ti)
    fm, tf = train_flow_matching(args, latents, {k: v.clone() for k, v in flow_init.state_dict().items()},
                                 args.work / "flow_unet.pt")
    stage_done("flow_matching", tf)
    t = time.time()
    g_pairs = torch.Generator().manual_seed(args.seed + 40)
    pairs_T = torch.randn(args.n_pairs, 4, LATENT, LATENT, generator=g_pairs)
    pairs_path = args.work / "flow_pairs.pt"
    if args.resume and pairs_path.exists():
        pairs_0, t_pairs = load_ckpt(pairs_path, "flow pairs")
    else:
        pairs_0 = flow_ode(fm, pairs_T, args.ode_steps)
        t_pairs = time.time() - t
        save_ckpt(pairs_0, pairs_path, t_pairs)
    zT_fe = torch.randn(args.flow_eval_noises, 4, LATENT, LATENT, generator=torch.Generator().manual_seed(args.seed + 41))
    z0_fe = flow_ode(fm, zT_fe, args.ode_steps)
    metrics["flow_ode_sample_std"] = float(z0_fe.std())
    metrics["flow_ode_z0_var"] = float(z0_fe.var())
    print(f"[flow] ODE sample std {metrics['flow_ode_sample_std']:.3f}", flush=True)
    stage_done("flow_pairs", t_pairs)
    one, td = train_distill(args, pairs_T, pairs_0, {k: v.clone() for k, v in fm.state_dict().items()},
                            args.work / "flow_onestep_unet.pt")
    stage_done("distill", td)
    t = time.time()
    with torch.no_grad():
        z1 = one_step(one, zT_fe)
        metrics["flow_onestep_mse"] = float(F.mse_loss(z1, z0_fe))
        metrics["flow_onestep_nmse_db"] = nmse_db(z1, z0_fe)
        ntr = min(len(pairs_T), args.flow_eval_noises)
        metrics["flow_onestep_mse_trainpairs"] = float(F.mse_loss(one_step(one, pairs_T[:ntr]), pairs_0[:ntr]))
        z_flow = one_step(one, zT_eval)
        metrics["flow_onestep_sample_std"] = float(z_flow.std())
        img_flow = decode(vae, z_flow / sf)
        z_enc_f = encode_mode(vae, from_uint8(to_uint8(img_flow))) * sf
        metrics["encoder_nmse_db_flow_samples"] = nmse_db(z_enc_f, z_flow)
        save_grid(to_uint8(decode(vae, z0_fe[:16] / sf)), args.work / "flow_ode_samples.png")
    print(f"[demo-flow] one-step vs ODE MSE {metrics['flow_onestep_mse']:.4f} "
          f"(NMSE {metrics['flow_onestep_nmse_db']:.2f} dB), train pairs "
          f"{metrics['flow_onestep_mse_trainpairs']:.4f}", flush=True)
    stage_done("flow_eval", time.time() - t)

    # ---- write folders -------------------------------------------------------------------------
    t = time.time()
    demo_dir, flow_dir = args.out / "demo", args.out / "demo-flow"
    if args.only is None:
        write_folder(demo_dir, vae, unet, make_ddim(), "DDIMScheduler")
        save_grid(u8[:16], demo_dir / "samples_grid.png")
    write_folder(flow_dir, vae, one, make_flow_scheduler(), "FlowMatchEulerDiscreteScheduler")
    save_grid(to_uint8(img_flow[:16]), flow_dir / "samples_grid.png")

    # Reload from disk and check the shipped folders reproduce the in-memory models.
    v2, f2, s3 = verify_folder(flow_dir, FlowMatchEulerDiscreteScheduler)
    assert abs(v2.config.scaling_factor - sf) < 1e-12
    with torch.no_grad():
        zz = zT_eval[:2]
        tt = torch.tensor([500, 500])
        assert torch.allclose(one_step(f2, zz), one_step(one, zz), atol=1e-5)
        assert torch.allclose(v2.decode(zz).sample, vae.decode(zz).sample, atol=1e-5)
        if args.only is None:
            _, u2, s2 = verify_folder(demo_dir, DDIMScheduler)
            assert torch.allclose(u2(zz, tt).sample, unet(zz, tt).sample, atol=1e-5)
            assert s2.config.prediction_type == "epsilon"
    assert s3.config.num_train_timesteps == 1000
    stage_done("write_and_verify", time.time() - t)

    rep, total = training_report()
    written = [flow_dir] if args.only else [demo_dir, flow_dir]
    for d in written:
        (d / "README.md").write_text(model_card(d.name, rep, args))
        (d / "training_report.json").write_text(json.dumps(rep, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    print(f"=== done in {total / 60:.1f} min; wrote {', '.join(map(str, written))}", flush=True)

if __name__ == "__main__":
    main()
