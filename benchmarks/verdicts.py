"""Verdicts an examiner can defend, measured: calibrate on one seed range, evaluate on a disjoint one.

    .venv/bin/python benchmarks/verdict_data.py --model demo     # the analysed images (cached, ~40 min on 2 cores)
    .venv/bin/python benchmarks/verdicts.py --model demo         # → benchmarks/results/verdicts/verdicts_demo.{md,json}

For each decoder inversion and each test (uncalibrated analytic, calibrated on the model), at nominal
false-positive levels 1 % and 0.1 %: the empirical FPR on un-watermarked evaluation images with its
Clopper–Pearson 95 % interval; among watermarked images, the share identified, inconclusive and not detected,
and the wrong-key rate among those identified with its one-sided 95 % upper bound; the same FPR on altered
clean images (rotated 10°, cropped to 88 % of the side and resized back, JPEG 50), where a positive must stay
within 2× nominal or be marked "outside calibration"; and the Table 2 figures on the same images (argmin-L1
accuracy and the papers' predicted-key accuracy), so they stay comparable. The calibration is built by
`engine.calibration_making.calibration_from_latents` from the calibration range, exactly as `calibrate` builds one.
"""

from __future__ import annotations

import time

import numpy as np

import harness
from engine.rates import clopper_pearson, upper_bound
from verdict_data import ALTERATIONS, load_group, pixel_statistics


def conclusions(z_t: np.ndarray, keys, target: str, fpr: float, calibration, method: str, pixels=None):
    from engine.latent_evidence import LatentReader
    from engine.verdicts import conclude

    evidence, _ = LatentReader(keys, target).read(z_t.astype(np.float32), pixels)
    return [conclude(ev, fpr, calibration, method) for ev in evidence], [ev.scores for ev in evidence]


def main() -> None:
    p = harness.parser(__doc__, "verdicts", keys=True)
    p.add_argument("--keys-tag", default="", help="the cache folder of --keys' watermarked groups "
                   "(verdict_data.py --keys-tag); the results are named after it")
    args = p.parse_args()
    started = time.time()

    from engine.analysis import AnalysisConfig  # noqa: F401  (torch import before the engine's numerics)
    from engine.calibration_making import calibration_from_latents
    from engine.model_loader import load_model
    from engine.options import AnalysisOptions
    from engine.treering import KeySet

    model = load_model(args.model, device="cpu")
    keys = KeySet.load(args.keys)
    config = AnalysisOptions().to_config(model)
    dtype = str(model.dtype).replace("torch.", "")
    methods = config.methods
    cal_groups = {"clean": load_group(args.model, "calibration_clean"),
                  **{k: load_group(args.model, f"calibration_{k}", args.keys_tag) for k in keys.ids}}
    latents = {m: {g: d[f"z_t/{m}"] for g, d in cal_groups.items()} for m in methods}
    calibration = calibration_from_latents(model.spec.id, model.weight_sha256, keys, config, dtype, latents,
                                           source="benchmark calibration range (seeds 100000…)",
                                           pixel_statistics={g: pixel_statistics(d) for g, d in cal_groups.items()})
    ev_clean = load_group(args.model, "evaluation_clean")
    ev_keyed = {k: load_group(args.model, f"evaluation_{k}", args.keys_tag) for k in keys.ids}
    from verdict_data import group_path

    altered = {name: load_group(args.model, f"altered_clean_{name}") for name in ALTERATIONS
               if group_path(args.model, f"altered_clean_{name}").exists()}     # those that were made

    # The calibrated test is exact for exhibits exchangeable with the calibration images: check that the
    # evaluation's clean detection statistics come from the same distribution (two-sample Kolmogorov–Smirnov).
    from scipy.stats import ks_2samp

    exchangeability = {}
    for method in methods:
        _, scores = conclusions(ev_clean[f"z_t/{method}"], keys, config.score_target, 0.01, None, method)
        evaluation_t = [min(s.p_value for s in row) for row in scores]
        test = ks_2samp(np.log(calibration.methods[method].clean_detection), np.log(evaluation_t))
        exchangeability[method] = {"ks_statistic": float(test.statistic), "p_value": float(test.pvalue),
                                   "calibration_n": len(calibration.methods[method].clean_detection),
                                   "evaluation_n": len(evaluation_t)}
    rows = []
    for method in methods:
        for mode in ("uncalibrated", "calibrated"):
            cal = calibration.methods[method] if mode == "calibrated" else None
            for fpr in (0.01, 0.001):
                row = {"method": method, "test": mode, "fpr": fpr}
                cs, _ = conclusions(ev_clean[f"z_t/{method}"], keys, config.score_target, fpr, cal, method,
                                    pixel_statistics(ev_clean))
                fp = sum(c.detected and c.calibration != "outside calibration" for c in cs)
                row["clean"] = {"n": len(cs), "false_positives": fp, "ci95": clopper_pearson(fp, len(cs)),
                                "outside_calibration": sum(c.calibration == "outside calibration" for c in cs)}
                ident = wrong = inconclusive = missed = outside = n = single = single_wrong = 0
                nearest_ok = predicted_ok = 0
                for key_id, data in ev_keyed.items():
                    cs, scores = conclusions(data[f"z_t/{method}"], keys, config.score_target, fpr, cal, method,
                                             pixel_statistics(data))
                    for c, s in zip(cs, scores):
                        n += 1
                        if c.detected and len(c.candidates) == 1 and c.calibration != "outside calibration":
                            single += 1         # one key left: named when the test is valid, else "most likely"
                            single_wrong += c.candidates[0] != key_id
                        if c.outcome == "identified":
                            ident += 1
                            wrong += c.key != key_id
                        elif c.outcome == "inconclusive":
                            inconclusive += 1
                            outside += c.calibration == "outside calibration"
                        else:
                            missed += 1
                        best = min(s, key=lambda x: x.l1)
                        nearest_ok += best.key_id == key_id
                        predicted_ok += best.key_id == key_id and best.p_value < fpr / len(keys)
                row["watermarked"] = {"n": n, "identified": ident, "wrong_key": wrong,
                                      "wrong_key_upper95": upper_bound(wrong, ident), "inconclusive": inconclusive,
                                      "inconclusive_outside_calibration": outside, "not_detected": missed,
                                      "single_candidate": single, "single_candidate_wrong": single_wrong,
                                      "table2_nearest_correct": nearest_ok, "table2_predicted_correct": predicted_ok}
                row["altered_clean"] = {}
                for name, data in altered.items():
                    cs, _ = conclusions(data[f"z_t/{method}"], keys, config.score_target, fpr, cal, method,
                                        pixel_statistics(data))
                    fp = sum(c.detected and c.calibration != "outside calibration" for c in cs)
                    row["altered_clean"][name] = {
                        "n": len(cs), "false_positives": fp, "ci95": clopper_pearson(fp, len(cs)),
                        "raw_detections": sum(c.detected for c in cs),
                        "outside_calibration": sum(c.calibration == "outside calibration" for c in cs)}
                rows.append(row)
                print(row, flush=True)

    summary = {**harness.provenance(started), "model": args.model, "keys": args.keys,
               "calibration": {"counts": calibration.counts, "min_supported_p": {
                   m: c.min_supported_p for m, c in calibration.methods.items()},
                   "coverage": {m: c.coverage for m, c in calibration.methods.items()}},
               "evaluation": {"clean": int(len(ev_clean["seed"])),
                              "per_key": {k: int(len(v["seed"])) for k, v in ev_keyed.items()},
                              "altered": {k: int(len(v["seed"])) for k, v in altered.items()}},
               "exchangeability": exchangeability, "rows": rows}

    def pct(k, n):
        return f"{k}/{n} ({100 * k / n:.1f} %)" if n else "–"

    def ci(c):
        return f"[{100 * c[0]:.2f}, {100 * c[1]:.2f}] %"

    lines = [f"# Verdicts on `{args.model}`: detection apart from identification, calibrated on the model", "",
             harness.command_line(summary), "",
             f"Calibration: seeds 100000… — {calibration.counts['clean']} clean, "
             + ", ".join(f"{calibration.counts[k]} {k}" for k in keys.ids)
             + f"; evaluation: seeds 200000… — {len(ev_clean['seed'])} clean, "
             + ", ".join(f"{len(v['seed'])} {k}" for k, v in ev_keyed.items())
             + "; altered clean: " + ", ".join(f"{len(v['seed'])} {k}" for k, v in altered.items())
             + ". Settings: a default scan's (`AnalysisOptions()`).", "",
             "A false positive is a clean image concluded `identified` or `inconclusive` with candidates (a "
             "positive the tool would present); one marked *outside calibration* is counted apart. Intervals: "
             "Clopper–Pearson 95 %; wrong-key bound: one-sided 95 %.", "",
             "'One key left' counts the detected exhibits whose identification test excludes every key but one: "
             "the calibrated test then names it (`identified`); the uncalibrated one does not (`inconclusive`, "
             "'most likely'), and this column shows why.", "",
             "| method | test | nominal FPR | clean FPR [95 % CI] | identified | wrong key (≤ 95 % bound) | "
             "one key left: wrong | inconclusive | not detected | Table 2: argmin L1 / predicted |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c, w = r["clean"], r["watermarked"]
        lines.append(f"| {r['method']} | {r['test']} | {r['fpr']:g} | {pct(c['false_positives'], c['n'])} {ci(c['ci95'])} | "
                     f"{pct(w['identified'], w['n'])} | "
                     + (f"{w['wrong_key']} (≤ {100 * w['wrong_key_upper95']:.1f} %)" if w['identified'] else "–")
                     + f" | {w['single_candidate_wrong']} of {w['single_candidate']} | "
                     f"{pct(w['inconclusive'], w['n'])} | {pct(w['not_detected'], w['n'])} | "
                     f"{w['table2_nearest_correct']} / {w['table2_predicted_correct']} of {w['n']} |")
    lines += ["", "Exchangeability of calibration and evaluation clean images (two-sample Kolmogorov–Smirnov on the "
              "log detection statistic; the calibrated p-value is exact when they are exchangeable): "
              + "; ".join(f"{m}: D = {e['ks_statistic']:.3f}, p = {e['p_value']:.2f} ({e['calibration_n']} vs "
                          f"{e['evaluation_n']})" for m, e in exchangeability.items()) + "."]
    lines += ["", "Altered clean images: presented positives [95 % CI] (raw detections; marked outside calibration)", "",
              "| method | test | nominal FPR | " + " | ".join(altered) + " |", "|---|---|---|" + "---|" * len(altered)]
    for r in rows:
        cells = [f"{pct(a['false_positives'], a['n'])} {ci(a['ci95'])} ({a['raw_detections']}; {a['outside_calibration']})"
                 for a in r["altered_clean"].values()]
        lines.append(f"| {r['method']} | {r['test']} | {r['fpr']:g} | " + " | ".join(cells) + " |")
    name = f"verdicts_{args.model}" + (f"_{args.keys_tag}" if args.keys_tag else "")
    harness.write_results(harness.out_stem(args, name), summary, lines)


if __name__ == "__main__":
    main()
