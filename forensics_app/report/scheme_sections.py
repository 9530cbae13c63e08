"""Report text for the schemes beside Tree-Ring (Gaussian Shading, RingID, several at once): the keys tested
(by id and hash: never a secret), the per-method evidence in each scheme's own statistic, and each scheme's
known weaknesses for the limitations. Tree-Ring keeps its own sections unchanged."""

from __future__ import annotations

from html import escape as esc

TITLES = {"tree-ring": "Tree-Ring (Wen et al. 2023)", "gaussian-shading": "Gaussian Shading (Yang et al. 2024)",
          "ringid": "RingID (Ci et al. 2024)", "prc": "PRC watermark (Gunn, Zhao, Song 2025)"}

_TABLE = 'width="100%" border="1" cellspacing="0" cellpadding="3" style="border-collapse: collapse; border-color: #9aa3b0;"'


def schemes_of(keys) -> tuple[str, ...]:
    return tuple(getattr(keys, "schemes", None) or (getattr(keys, "scheme", "tree-ring"),))


def scheme_label(keys) -> str:
    """"Tree-Ring", "Gaussian Shading", or several joined with " / "."""
    short = {"tree-ring": "Tree-Ring", "gaussian-shading": "Gaussian Shading", "ringid": "RingID", "prc": "PRC"}
    return " / ".join(short.get(s, s) for s in schemes_of(keys))


def only_tree_ring(keys) -> bool:
    return schemes_of(keys) == ("tree-ring",)


def _grid(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table {_TABLE}><thead><tr>{head}</tr></thead>{body}</table>"


def _parameters(k) -> str:
    d = k.to_json_dict()
    if k.scheme == "gaussian-shading":
        return (f"{d['bits']} bits × {d['copies_per_bit']} copies (ch {d['ch']}, hw {d['hw']}), {esc(d['cipher'])}; "
                "key, nonce and watermark kept in the key vault only")
    if k.scheme == "ringid":
        return (f"key {d['index']} = bits {d['bits']} (outermost ring first), rings {d['r_in']}…{d['r_out'] - 1} "
                f"around DC, values ±{d['value']:g} on channel {d['ring_channel']}, noise ring on channel "
                f"{d['heter_channel']} (seed {d['heter_seed']})")
    if k.scheme == "prc":
        return (f"n {d['n']}, k {d['k']}, {d['r']} parity checks of weight {d['t']}, noise rate "
                f"{d['noise_rate']:.4f}, fpr {d['fpr']:g}; generated from a secret seed kept in the key vault only")
    if k.scheme == "tree-ring":
        return f"radius {k.radius}, channel {k.channel}, pattern {esc(k.pattern)}"
    return ""


def keys_section(keys) -> str:
    """Section 4 for key sets that are not Tree-Ring only: one row per key, named by id and SHA-256."""
    rows = []
    for k in keys.keys:
        d = k.to_json_dict()
        sha = d.get("sha256", "")
        rows.append([esc(k.id), esc(TITLES.get(k.scheme, k.scheme)),
                     f'<span class="mono small">{esc(sha[:32])}</span>' if sha else "—", _parameters(k)])
    schemes = ", ".join(TITLES.get(s, s) for s in schemes_of(keys))
    return (f"<h2>4. Keys tested</h2><p>K = {len(keys)} key(s) of {esc(schemes)}; with several schemes the "
            f"correction runs over every key of every scheme. Keys are named by id and the SHA-256 of their vault "
            f"record; secrets are never printed.</p>" + _grid(["Key", "Scheme", "SHA-256 (first 32 hex)", "Parameters"],
                                                               rows))


def evidence_table(results: dict, method_titles: dict, keys) -> str:
    """The recovered evidence in each scheme's own terms, for the nearest key of each method. A run read back
    from a case file saved before the scores' own statistics were kept has only each score's distance and
    p-value: then those are shown."""
    rows = []
    for m, r in results.items():
        s = next((s for s in r.scores if s.key_id == r.verdict.nearest_key), None)
        try:
            scheme = keys[r.verdict.nearest_key].scheme
        except KeyError:
            scheme = getattr(s, "scheme", "tree-ring")
        if s is None:
            detail = "n/a"
        elif not hasattr(s, "scheme"):
            detail = f"distance {s.l1:.4g} (the detailed statistic is not in this older case file)"
        elif scheme == "gaussian-shading":
            detail = (f"{s.matched} of {s.bits} bits match (bit accuracy {s.bit_accuracy:.3f}; the reference's "
                      f"1e-6 threshold for 256 bits is 166/256 = 0.648); soft correlation {s.soft:.3f}")
        elif scheme == "ringid":
            detail = (f"ring distance min({s.heter_distance:.2f}, {s.ring_distance:.2f}) = {s.l1:.2f} (noise channel, "
                      f"ring channel); per-channel p {s.heter_p:.3g}, {s.ring_p:.3g}")
        elif scheme == "prc":
            detail = (f"code statistic S = {s.statistic:.1f} against the reference threshold {s.threshold:.1f} "
                      f"(null mean {s.null_mean:.1f}); {'above' if s.detected_at_key_fpr else 'below'} it; "
                      "Decode (message recovery) not run")
        else:
            detail = f"L1 {s.l1:.4g}"
        rows.append([esc(method_titles.get(m, m)), esc(TITLES.get(scheme, scheme)), esc(r.verdict.nearest_key),
                     detail, f"{r.verdict.nearest_p_value:.3g}"])
    return ("<h3>Recovered evidence in the scheme's own terms</h3>"
            + _grid(["Method", "Scheme", "Nearest key", "Statistic", "p-value"], rows))


WEAKNESSES = {
    "gaussian-shading": (
        "<p><b>Gaussian Shading.</b> The statistic is the number k of the key's L watermark bits recovered (signs of "
        "ẑ<sub>T</sub>, decrypted with the key's ChaCha20 keystream, majority vote over the copies of each bit, a tie "
        "read as 0 as in the reference), and the p-value is its exact tail under the hypothesis that every decrypted "
        "copy is a fair coin. That holds for an image not made with the key only if the keystream is secret. It fails "
        "when one (key, nonce, watermark) was reused for every image, as in the public deployments: all images then "
        "share one sign pattern, which averaging and imprinting attacks copy onto other images. The scheme has no "
        "shift, crop or rotation invariance: any misalignment reads as chance. On this tool's small latents each bit "
        "has fewer copies than the reference's 64, so inversion error costs more bits.</p>"),
    "ringid": (
        "<p><b>RingID.</b> The statistic is the smaller of two mean distances over the ring bins of the centred "
        "spectrum (the key's ±v ring channel and its Gaussian-noise channel), as in the reference; the p-value is "
        "this tool's Rician approximation for white noise, not the reference's (which has none), and is uncalibrated "
        "on un-watermarked images of this model. Keys of one RingID set share most of their rings, so several keys "
        "can be close to one watermarked image: identification is the nearest key, not every key below the threshold. "
        "The ring pattern is fixed per key and can be forged onto other images; crops and rescaling move the rings.</p>"),
    "prc": (
        "<p><b>PRC watermark.</b> The statistic is the reference's sum S over the key's parity checks of log((1 + Π)/2), "
        "Π the product of the sign posteriors of ẑ<sub>T</sub> at the check's three positions; the p-value is "
        "Hoeffding's bound exp(−2(S − E0)²/Σ(lp − lm)²), valid whatever the image if the key is secret. Only Detect "
        "is run: the reference also reports Decode (belief propagation + test bits), whose extra false-positive "
        "chance (2<sup>−17</sup>) is not part of this p-value. The code needs the signs of z<sub>T</sub> at the "
        "right positions, so crops, shifts and rotations destroy it; a key holder (or a queried detector) can "
        "forge or remove it.</p>"),
}


def limitations(keys, fpr: float) -> str:
    """Each scheme's statistic, p-value and weaknesses; for non-Tree-Ring key sets also the correction."""
    k = len(keys)
    out = "".join(WEAKNESSES.get(s, "") for s in schemes_of(keys))
    if not only_tree_ring(keys):
        out += (f"<p><b>The correction.</b> With K = {k} key(s) tested, the nearest key's p-value is compared with "
                f"{fpr:g} / {k} = {fpr / k:.3g} (Bonferroni), which bounds the chance of any false match at {fpr:g} "
                "only if each p-value is valid; with several schemes K counts every key of every scheme, and the "
                "candidate is the scheme's nearest key with the smallest p-value. The nearest key exists for every "
                "image, watermarked or not.</p>")
    return out
