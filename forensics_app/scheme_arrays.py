"""Arrays for the window's evidence panel for schemes beside Tree-Ring (no Qt, no torch at import): what the
recovered z_T shows in the scheme's own terms, for one key."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EvidenceView:
    values: np.ndarray        # 2-D, NaN = not part of the key
    low: float
    high: float
    label: str
    title: str
    caption: str


def watermark_channel(key) -> int | None:
    """The channel a key's pattern lives on (Tree-Ring: its channel; RingID: its ring channel)."""
    for name in ("channel", "ring_channel"):
        if hasattr(key, name):
            return int(getattr(key, name))
    return None


def key_for_view(key, key_sets=()) -> tuple[object | None, str]:
    """(the key with what its evidence view needs, "") or (None, why not). A key read back from a case file is
    its public record only: RingID's is rebuilt from it (RingID keys have no secret), Gaussian Shading's and
    PRC's are taken from a key set the examiner has loaded that holds the same key (same id and SHA-256)."""
    record = getattr(key, "record", None)
    if not isinstance(record, dict):
        return key, ""                          # a key of a vault: it carries its secrets
    sha = record.get("sha256")
    if key.scheme == "ringid":
        from engine.watermarks.ringid import RingIDKey

        try:
            rebuilt = RingIDKey.from_vault_dict(record)
        except (ValueError, TypeError) as exc:
            return None, f"the recorded RingID key {key.id} cannot be rebuilt ({exc})"
        if rebuilt.sha256 != sha:
            return None, f"the recorded RingID key {key.id} does not match its recorded SHA-256"
        return rebuilt, ""
    for keys in key_sets:
        for k in getattr(keys, "keys", ()):
            if k.id == key.id and getattr(k, "scheme", None) == key.scheme and not hasattr(k, "record") \
                    and getattr(k, "sha256", None) == sha:
                return k, ""
    return None, (f"The case file keeps only the public record of key {key.id} (no secrets). Import the key vault "
                  f"that holds it (SHA-256 {str(sha)[:16]}…) to see this view.")


def evidence_view(z_t: np.ndarray, key) -> EvidenceView:
    """Gaussian Shading: which of the key's watermark bits were recovered (1 = match), channels side by side.
    RingID: |F(z_T) − key| on the ring bins of the ring channel (dark = close). PRC: its parity checks."""
    import torch          # here, not at import: the window comes up without torch

    if key.scheme == "gaussian-shading":
        from engine.watermarks.gaussian_shading import decode

        bits, _ = decode(torch.from_numpy(np.asarray(z_t, dtype=np.float32))[None], key)
        s = key.watermark_bits()
        agree = (bits[0].reshape(s.shape) == s).astype(float)
        grid = np.concatenate([np.pad(a, ((0, 0), (0, 1)), constant_values=np.nan) for a in agree], axis=1)[:, :-1]
        k = int(agree.sum())
        return EvidenceView(grid, 0.0, 1.0, "bit matches", f"{key.id}: recovered watermark bits (bright = match)",
                            f"{k} of {s.size} bits match ({k / s.size:.3f}); one block per watermark channel "
                            f"({s.shape[1]}×{s.shape[2]} bits, each voted over {key.copies} copies). Chance: half.")
    if key.scheme == "ringid":
        from engine.watermarks.ringid import _centred_fft

        spectrum = _centred_fft(torch.from_numpy(np.asarray(z_t, dtype=np.float64)[key.ring_channel])).numpy()
        mask = key.mask_2d()
        diff = np.where(mask, np.abs(spectrum - key.pattern()[1]), np.nan)
        high = float(np.nanmax(diff)) if np.isfinite(diff).any() else 1.0
        return EvidenceView(diff, 0.0, high, "|F − key|", f"|F(z_T) − {key.id}| on the rings (channel "
                            f"{key.ring_channel})", f"Mean over the {int(mask.sum())} ring bins = "
                            f"{np.nanmean(diff):.2f}, the ring-channel distance. Dark = close to the key.")
    if key.scheme == "prc":
        from engine.watermarks.prc import VAR, detect_statistics
        from scipy import special

        m, p = key.material(), key.params
        z = np.asarray(z_t, dtype=np.float64).reshape(-1)
        post = special.erf(z / np.sqrt(2 * VAR * (1 + VAR))) * (1 - 2 * p.noise_rate) * (1 - 2 * m.pad.astype(float))
        prod = np.sort(post[m.checks].prod(axis=-1))[::-1]
        side = int(np.ceil(np.sqrt(prod.size)))
        grid = np.full(side * side, np.nan)
        grid[:prod.size] = prod
        s = detect_statistics(torch.from_numpy(z.reshape((1, *key.latent_shape))), key)[0]
        return EvidenceView(grid.reshape(side, side), -1.0, 1.0, "check product",
                            f"{key.id}: the {p.r} parity checks, sorted (bright = satisfied)",
                            f"Product of the sign posteriors per check; S = {s.statistic:.1f}, threshold "
                            f"{s.threshold:.1f}, null mean {s.null_mean:.1f}. Without the code, as many dark as bright.")
    raise ValueError(f"no evidence view for scheme {key.scheme!r}")
