"""Device choice and the peak-memory / wall-clock measurements reported with every result."""

from __future__ import annotations

import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch


def pick_device(requested: str = "auto") -> torch.device:
    """auto → cuda, then mps, then cpu. ValueError (one sentence) for a device this machine does not have."""
    if requested != "auto":
        try:
            device = torch.device(requested)
        except (RuntimeError, ValueError):
            raise ValueError(f"unknown device {requested!r}: use auto, cpu, cuda, cuda:N or mps") from None
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise ValueError(f"device {requested!r}: no CUDA GPU is available to this torch build on this machine")
            if device.index is not None and device.index >= torch.cuda.device_count():
                raise ValueError(f"device {requested!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
        elif device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"device {requested!r}: Apple's MPS is not available on this machine")
        elif device.type not in ("cpu", "cuda", "mps"):
            raise ValueError(f"device {requested!r} is not supported: use auto, cpu, cuda, cuda:N or mps")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def fastest_precision(device: torch.device) -> str:
    """Network precision of the gradient-free inversion that is fastest on `device`: fp16 on CUDA (the paper
    runs it fully in fp16; our iterate and Adam state stay fp32), fp32 elsewhere (CPU half-precision
    convolutions measured ~60x slower; MPS untested, so it keeps the safe choice)."""
    return "fp16" if device.type == "cuda" else "fp32"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Measurement:
    seconds: float = 0.0
    peak_memory_bytes: int | None = None    # GPU only; None on the CPU (not measured)


@contextmanager
def measure(device: torch.device) -> Iterator[Measurement]:
    """Wall time (synchronised at both ends, never inside) and peak GPU memory of the block."""
    m = Measurement()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    try:
        yield m
    finally:
        synchronize(device)
        m.seconds = time.perf_counter() - start
        if device.type == "cuda":
            m.peak_memory_bytes = int(torch.cuda.max_memory_allocated(device))
