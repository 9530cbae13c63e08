"""Table-2-style benchmark per scheme beside Tree-Ring (Gaussian Shading, RingID, PRC), per decoder inversion.

    .venv/bin/python benchmarks/verdict_data.py --model demo     # the clean negatives (shared with the verdicts)
    .venv/bin/python benchmarks/scheme_data.py --model demo      # the watermarked images, per scheme
    .venv/bin/python benchmarks/schemes.py --model demo          # → benchmarks/results/schemes/schemes_demo.{md,json}

Reads the cached recovered z_T and scores them here; nothing is inverted. Per scheme and method:

* detection of the scheme's own statistic (the smallest p-value over the scheme's keys) on its watermarked
  images against the clean images: AUC, TPR at 1 % and 0.1 % empirical FPR (WAVES' rule, with the number of
  negatives behind it), and at the analytic level (p < 0.01 / K, Bonferroni over the scheme's K keys) the TPR
  and the clean images' FPR with its Clopper–Pearson 95 % interval — whether the analytic p-value holds its level;
* identification with the scheme's natural key count (its own classifier: the nearest key by its distance):
  Gaussian Shading 100 users, RingID 64 keys at rings scaled to the latent, RingID's 2048 keys at the reference
  rings (scored offline on fewer images), PRC 10 keys; Wilson 95 % intervals;
* the scan's conclusion with one key vault holding Gaussian Shading's 100, RingID's 64 and PRC's 10 keys (174,
  Bonferroni over keys × schemes; `engine.verdicts.conclude`, uncalibrated): identified with the right key,
  wrong key, inconclusive, not detected, and the vault's false positives on the clean images.
"""

from __future__ import annotations

import time

import numpy as np

import harness
from engine.rates import auc, clopper_pearson, tpr_at_fpr, upper_bound, wilson
from scheme_data import GRADIENT_BASED, KEYS_TAG, benchmark_keys
from verdict_data import group_path, load_group

FPR = 0.01
SCHEMES = ("gaussian-shading", "ringid", "ringid-2048", "prc")
IN_VAULT = ("gaussian-shading", "ringid", "prc")


def negatives(model: str, method: str) -> dict[str, dict]:
    """Clean groups: the verdict benchmark's calibration and evaluation ranges, or the gradient-based clean group."""
    if method == GRADIENT_BASED:
        return {"clean@gb": load_group(model, "clean@gb", KEYS_TAG)}
    return {g: load_group(model, g) for g in ("calibration_clean", "evaluation_clean") if group_path(model, g).exists()}


def positives(model: str, scheme: str, method: str) -> dict | None:
    group = f"{scheme}@gb" if method == GRADIENT_BASED else scheme
    return load_group(model, group, KEYS_TAG) if group_path(model, group, KEYS_TAG).exists() else None


def scheme_row(keys, pos: np.ndarray, labels: np.ndarray, neg: np.ndarray, target: str) -> dict:
    labels = [str(v) for v in labels]
    import torch

    from engine.watermarks import scheme_for

    scheme = scheme_for(keys)
    k = len(keys)
    sp = scheme.score(torch.from_numpy(pos.astype(np.float32)), keys, target)
    sn = scheme.score(torch.from_numpy(neg.astype(np.float32)), keys, target)
    min_p = lambda rows: np.array([min(s.p_value for s in r) for r in rows])
    pp, pn = min_p(sp), min_p(sn)
    with np.errstate(divide="ignore"):
        tp, tn = -np.log(np.maximum(pp, 1e-300)), -np.log(np.maximum(pn, 1e-300))
    nearest = [min(r, key=lambda s: s.l1).key_id for r in sp]
    right = int(sum(n == lab for n, lab in zip(nearest, labels)))
    fp = int((pn * k <= FPR).sum())
    row = {"keys": k, "watermarked": len(pos), "clean": len(neg), "auc": auc(tp, tn),
           "tpr_at_1pct": tpr_at_fpr(tp, tn, 0.01), "tpr_at_01pct": tpr_at_fpr(tp, tn, 0.001),
           "analytic_tpr": float((pp * k <= FPR).mean()), "analytic_clean_fp": fp,
           "analytic_clean_ci95": clopper_pearson(fp, len(neg)), "identified": right,
           "identified_ci95": wilson(right, len(pos)),
           "median_min_p_watermarked": float(np.median(pp)), "median_min_p_clean": float(np.median(pn))}
    if keys.scheme == "gaussian-shading":
        true = [1 - next(s.l1 for s in r if s.key_id == lab) for r, lab in zip(sp, labels)]
        row.update(true_key_bit_accuracy_mean=float(np.mean(true)), true_key_bit_accuracy_min=float(np.min(true)),
                   clean_bit_accuracy_mean=float(np.mean([1 - s.l1 for r in sn for s in r])))
    if keys.scheme == "prc":
        row.update(detected_at_key_fpr=float(np.mean([any(s.detected_at_key_fpr for s in r) for r in sp])),
                   clean_detected_at_key_fpr=int(sum(any(s.detected_at_key_fpr for s in r) for r in sn)))
    return row


def vault_row(vault, groups: dict[str, dict], neg: dict, method: str, target: str, calibration=None) -> dict:
    """The scan's conclusions with the whole vault, per scheme's watermarked images and on clean: uncalibrated,
    or with `calibration` (a `MethodCalibration` of the vault, drawn on other clean images), whose coverage check
    reads the same noise and pixel statistics as a scan."""
    import torch

    from engine.noise_statistics import key_region, noise_statistics
    from engine.verdicts import Evidence, conclude
    from engine.watermarks import independent_key_ids, scheme_for
    from verdict_data import pixel_statistics

    scheme = scheme_for(vault)
    independent = independent_key_ids(vault)
    region = key_region(vault)

    def conclusions(group: dict):
        z = group[f"z_t/{method}"]
        scores = scheme.score(torch.from_numpy(z.astype(np.float32)), vault, target)
        pixels = pixel_statistics(group)
        noise = [{**noise_statistics(z[i], region).values, **pixels[i]} if calibration is not None else {}
                 for i in range(len(z))]
        return [conclude(Evidence(s, None, 0, n, independent), FPR, calibration, method) for s, n in zip(scores, noise)]

    out = {"keys": len(vault), "calibrated": calibration is not None}
    clean = conclusions(neg)
    fp = sum(c.detected and c.calibration != "outside calibration" for c in clean)
    out["clean"] = {"n": len(clean), "detected": fp, "ci95": clopper_pearson(fp, len(clean)),
                    "outside_calibration": sum(c.calibration == "outside calibration" for c in clean)}
    for name, group in groups.items():
        cs, labels = conclusions(group), group["label"]
        ident = [c for c in cs if c.outcome == "identified"]
        wrong = sum(c.key != lab for c, lab in zip(cs, labels) if c.outcome == "identified")
        out[name] = {"n": len(cs), "identified_right": len(ident) - wrong, "identified_wrong": wrong,
                     "wrong_upper95": upper_bound(wrong, len(ident)) if ident else None,
                     "inconclusive": sum(c.outcome == "inconclusive" for c in cs),
                     "inconclusive_true_key_candidate": sum(c.outcome == "inconclusive" and lab in c.candidates
                                                            for c, lab in zip(cs, labels)),
                     "not_detected": sum(c.outcome == "not_detected" for c in cs)}
    return out


def vault_calibration(model, vault, config, model_name: str, method: str):
    """The vault calibrated as `calibrate --per-key 0` would: on the verdict cache's calibration range of clean
    images only (no watermarked images of 174 keys), so it calibrates detection; identification keeps each
    scheme's own rule."""
    from engine.calibration_making import calibration_from_latents
    from verdict_data import pixel_statistics

    clean = load_group(model_name, "calibration_clean")
    cal = calibration_from_latents(model.spec.id, model.weight_sha256, vault, config,
                                   str(model.dtype).replace("torch.", ""), {method: {"clean": clean[f"z_t/{method}"]}},
                                   source="benchmark calibration range (seeds 100000…), clean only",
                                   pixel_statistics={"clean": pixel_statistics(clean)})
    return cal.methods[method]


def main() -> None:
    p = harness.parser(__doc__, "schemes")
    p.add_argument("--methods", default="encoder,gradient-free,gradient-based")
    p.add_argument("--reuse-scheme-rows", action="store_true",
                   help="take each scheme's own-test rows from the results already written (they do not depend on the "
                   "conclusion rules; RingID's 2048 keys take most of the time) and redo only the vault's conclusions")
    a = p.parse_args()
    t0 = time.time()

    from engine.model_loader import load_model
    from engine.options import AnalysisOptions
    from engine.watermarks.multi import MultiSchemeKeySet

    model = load_model(a.model, device="cpu")
    config = AnalysisOptions().to_config(model)
    target = config.score_target
    keys = benchmark_keys(model.latent_shape)
    vault = MultiSchemeKeySet(tuple(keys[s] for s in IN_VAULT))
    results: dict[str, dict] = {}
    import json

    earlier_path = harness.out_stem(a).with_suffix(".json")
    earlier_run = json.loads(earlier_path.read_text()) if a.reuse_scheme_rows and earlier_path.exists() else {}
    earlier, earlier_date = earlier_run.get("results", {}), earlier_run.get("scheme_rows_made", earlier_run.get("command"))
    for method in a.methods.split(","):
        try:
            clean = negatives(a.model, method)
        except FileNotFoundError:
            print(f"{method}: no clean images cached, skipped", flush=True)
            continue
        groups = {s: g for s in SCHEMES if (g := positives(a.model, s, method)) is not None}
        if not clean or not groups:
            continue
        neg = np.concatenate([g[f"z_t/{method}"] for g in clean.values()])
        all_clean = {k: np.concatenate([g[k] for g in clean.values()]) for k in next(iter(clean.values()))}
        in_vault = {s: g for s, g in groups.items() if s in IN_VAULT}
        results[method] = {
            "schemes": {s: earlier[method]["schemes"][s] if s in earlier.get(method, {}).get("schemes", {})
                        else scheme_row(keys[s], g[f"z_t/{method}"], g["label"], neg, target) for s, g in groups.items()},
            "vault": vault_row(vault, in_vault, all_clean, method, target)}
        if "calibration_clean" in clean and "evaluation_clean" in clean:
            cal = vault_calibration(model, vault, config, a.model, method)
            results[method]["vault_calibrated"] = {
                **vault_row(vault, in_vault, clean["evaluation_clean"], method, target, cal),
                "calibration_clean": len(cal.clean_detection)}
        print(method, "done", flush=True)

    gsk, rik, ref, prk = (keys[s].keys[0] for s in SCHEMES)
    side = "×".join(map(str, model.latent_shape))
    summary = {"model": a.model, "kind": model.kind, "latent_shape": list(model.latent_shape),
               "diffusion_inversion": config.diffusion.label(), "fpr": FPR,
               "parameters": {"gaussian-shading": {"users": 100, "ch": gsk.ch, "hw": gsk.hw, "bits": gsk.length,
                                                   "copies_per_bit": gsk.copies},
                              "ringid": {"keys": 64, "r_out": rik.r_out, "r_in": rik.r_in, "value": rik.value,
                                         "ring_bins": int(rik.mask_2d().sum())},
                              "ringid-2048": {"keys": len(keys["ringid-2048"]), "r_out": ref.r_out, "r_in": ref.r_in,
                                              "ring_bins": int(ref.mask_2d().sum())},
                              "prc": {"keys": len(keys["prc"]), "n": prk.params.n, "message_length": prk.message_length,
                                      "key_fpr": prk.fpr, "parity_checks": prk.params.r}},
               **harness.provenance(t0), "results": results}
    summary["scheme_rows_made"] = earlier_date if earlier else f"{summary['date']}: {summary['command']}"
    lines = [f"# Gaussian Shading, RingID and PRC on `{a.model}` ({model.kind}, latent {side})", "",
             f"Diffusion inversion {summary['diffusion_inversion']}; every image generated with the model's sampler as "
             f"an 8-bit PNG and analysed with the scan's settings (`benchmarks/scheme_data.py`); negatives are the "
             f"verdict benchmark's clean images (encoder and gradient-free) or {''}a clean group analysed with the "
             f"gradient-based inversion. Date {summary['date']}.", harness.command_line(summary), *(
                 ["Each scheme's own-test rows are the previous run's on the same cached z_T (`--reuse-scheme-rows`, "
                  f"recorded in the JSON as first made: {earlier_date}); the vault's conclusions were drawn again."]
                 if earlier else []), "",
             f"Adapted parameters for the {side} latent: Gaussian Shading ch {gsk.ch}, hw {gsk.hw} → {gsk.length} bits "
             f"× {gsk.copies} copies (reference on 4×64×64: 256 × 64); RingID rings scaled with the side, distances "
             f"{rik.r_in}…{rik.r_out - 1} ({summary['parameters']['ringid']['ring_bins']} bins, 64 keys, ±{rik.value:g}; "
             f"reference on 64×64: distances 3…13, 556 bins, 2048 keys, ±64); 'ringid-2048' keeps the reference rings "
             f"({summary['parameters']['ringid-2048']['ring_bins']} bins) and all 2048 keys; PRC n = {prk.params.n}, "
             f"message {prk.message_length} bits, {prk.params.r} parity checks, key FPR {prk.fpr:g} (reference n = "
             f"16384, 512 bits).", "",
             "## Each scheme's own test", "",
             "TPR columns: the empirical threshold on the clean images (WAVES' rule; n clean given). 'analytic': "
             f"smallest p-value below {FPR:g} / K — TPR, and the clean images it flags with the exact 95 % interval. "
             "Identified: the scheme's nearest key is the true key (Wilson 95 %).", "",
             "| scheme | method | keys | watermarked / clean | AUC | TPR @ 1 % | TPR @ 0.1 % | analytic TPR | "
             "analytic clean FP | identified | 95 % CI |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for method, r in results.items():
        for s, row in r["schemes"].items():
            lo, hi = row["analytic_clean_ci95"]
            ilo, ihi = row["identified_ci95"]
            lines.append(f"| {s} | {method} | {row['keys']} | {row['watermarked']} / {row['clean']} | {row['auc']:.3f} | "
                         f"{row['tpr_at_1pct']:.2f} | {row['tpr_at_01pct']:.2f} | {row['analytic_tpr']:.2f} | "
                         f"{row['analytic_clean_fp']}/{row['clean']} [{100 * lo:.1f}, {100 * hi:.1f} %] | "
                         f"{row['identified']}/{row['watermarked']} | {ilo:.2f}–{ihi:.2f} |")
    lines += ["", "Gaussian Shading bit accuracy of the true key (mean / min) against all keys on clean images (mean); "
              "PRC detections at the key's own threshold (the reference decision):", ""]
    for method, r in results.items():
        g, pr = r["schemes"].get("gaussian-shading"), r["schemes"].get("prc")
        parts = []
        if g:
            parts.append(f"GS {g['true_key_bit_accuracy_mean']:.3f} / {g['true_key_bit_accuracy_min']:.3f}, clean "
                         f"{g['clean_bit_accuracy_mean']:.3f}")
        if pr:
            parts.append(f"PRC {100 * pr['detected_at_key_fpr']:.0f} % of watermarked, {pr['clean_detected_at_key_fpr']}"
                         f"/{pr['clean']} clean; median smallest p {pr['median_min_p_watermarked']:.2g} vs "
                         f"{pr['median_min_p_clean']:.2g}")
        lines.append(f"- {method}: " + "; ".join(parts))
    lines += ["", f"## The scan's conclusion with one vault ({len(vault)} keys: 100 Gaussian Shading, 64 RingID, "
              f"{len(keys['prc'])} PRC)", "",
              f"`engine.verdicts.conclude` at FPR {FPR:g}: uncalibrated (Bonferroni over all {len(vault)} keys; clean: all "
              "clean images), and calibrated on the verdict benchmark's clean calibration range as `calibrate "
              "--per-key 0` would (detection only; clean: the disjoint evaluation range). A "
              "Gaussian Shading or PRC key that alone passes is named (independent draws); RingID keys are ranked, "
              "never named, so RingID images are at most inconclusive. Wrong-key: one-sided 95 % bound.", "",
              "| method | test | watermarked with | n | identified, right key | wrong key (bound) | inconclusive (true "
              "key among candidates) | not detected | clean: detected |", "|---|---|---|---|---|---|---|---|---|"]
    for method, r in results.items():
        for kind in ("vault", "vault_calibrated"):
            if kind not in r:
                continue
            v = r[kind]
            c = v["clean"]
            test = (f"calibrated on {v['calibration_clean']} other clean images" if kind == "vault_calibrated"
                    else "uncalibrated")
            for s in IN_VAULT:
                if s not in v:
                    continue
                row = v[s]
                bound = "—" if row["wrong_upper95"] is None else f"{100 * row['wrong_upper95']:.1f} %"
                outside = f", {c['outside_calibration']} outside calibration" if c["outside_calibration"] else ""
                lines.append(f"| {method} | {test} | {s} | {row['n']} | {row['identified_right']} | "
                             f"{row['identified_wrong']} ({bound}) | {row['inconclusive']} "
                             f"({row['inconclusive_true_key_candidate']}) | {row['not_detected']} | {c['detected']}/"
                             f"{c['n']} [{100 * c['ci95'][0]:.1f}, {100 * c['ci95'][1]:.1f} %]{outside} |")
    harness.write_results(harness.out_stem(a), summary, lines)


if __name__ == "__main__":
    main()
