"""Is a detection null under alteration drawn from the same distribution as the robustness references under the same
alteration (docs/algorithms.md §4.4)? For each alteration: the detection statistic T of the references' clean images
(benchmarks/robustness.py's cache: 150 clean, seeds 300000…) that the shipped calibration covers, beside the T the
calibration holds for its own clean images under that alteration; a two-sided Mann–Whitney test of equal
distributions (scipy.stats.mannwhitneyu); and the share of each sample below the null's threshold at the level. A
small p says the references differ from the null's images; a large one leaves a false-positive excess to the spread
of a finite null.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/detection_null_spread.py
"""

from __future__ import annotations

import time

import numpy as np
import torch

import harness

ALTERATIONS = (("rotation+resizedcrop+noise", 0.3), ("rotation+resizedcrop+blur@0.05", 0.3),
               ("rotation+resizedcrop+noise", 0.2), ("rotation+resizedcrop+blur@0.05", 0.2))


def main() -> None:
    p = harness.parser(__doc__, "detection_null_spread", keys=True)
    p.add_argument("--method", default="encoder")
    p.add_argument("--fpr", type=float, default=0.01)
    args = p.parse_args()

    from scipy.stats import mannwhitneyu, nhypergeom

    from engine.attacks import apply_attacks, combined
    from engine.calibration import Calibration
    from engine.latent_evidence import LatentReader
    from engine.model_loader import load_model
    from engine.noise_statistics import evidence_statistics
    from engine.options import AnalysisOptions
    from engine.pixel_levels import from_uint8
    from engine.recovery import recover_z_t
    from engine.robustness_verdicts import latent_conclusions
    from engine.treering import KeySet
    from engine.verdicts import OUTSIDE_CALIBRATION
    from detection_null_altered import threshold
    from robustness import cached_references

    started = time.time()
    model = load_model(args.model, device=args.device)
    keys = KeySet.load(args.keys)
    config = AnalysisOptions(methods=(args.method,)).to_config(model)
    cal = Calibration.load(harness.REPO / "resources" / "calibrations" / f"{args.model}.json")
    entry = cal.methods[args.method]
    refs, _ = cached_references(model, keys, 50, 150, 300_000)
    clean = [r for r in refs if r.key_id is None]
    rows = []
    for name, strength in ALTERATIONS:
        label = f"{name} {strength:g}"
        null = np.asarray(entry.detection_null_altered[label])
        pixels = torch.from_numpy(from_uint8(np.stack([apply_attacks(r.pixels, combined(name, strength, r.seed))
                                                       for r in clean])))
        z = recover_z_t(model, pixels, args.method, config)
        cs = latent_conclusions(keys, z, pixels, config, args.method, entry)
        evidence, _ = LatentReader(keys, config.score_target).read(
            z.numpy(), [evidence_statistics(x) for x in pixels.numpy()])
        # the references' own T where the calibration covers them, as the null keeps its images
        t = np.array([e.detection_statistic for e, c in zip(evidence, cs) if c.calibration != OUTSIDE_CALIBRATION])
        cut = threshold(null, args.fpr)
        below_null, below_refs = int(np.sum(null < cut)), int(np.sum(t < cut))
        # cut is the null's (below_null + 1)-th smallest value; if both samples came from one distribution, the
        # references below it would follow the negative hypergeometric law over the pooled ranks
        tail = float(nhypergeom(len(null) + len(t), len(t), below_null + 1).sf(below_refs - 1))
        rows.append({"alteration": label, "null": len(null), "references": len(t),
                     "median_null": float(np.median(null)), "median_references": float(np.median(t)),
                     "mann_whitney_p": float(mannwhitneyu(null, t, alternative="two-sided").pvalue),
                     "threshold": cut, "null_below": below_null, "references_below": below_refs,
                     "expected_references_below": len(t) * (below_null + 1) / (len(null) + 1),
                     "p_as_many_references_below": tail})
        print(rows[-1], flush=True)
    summary = {**harness.provenance(started), "method": args.method, "calibration": cal.content_sha256, "rows": rows}
    lines = [f"# Detection nulls under alteration against the references (`{args.model}`, {args.method})", "",
             harness.command_line(summary), "",
             "T of the calibration's clean images under each alteration (the null) and of the 150 clean robustness "
             "references under the same alteration that the calibration covers; Mann–Whitney two-sided p; how many "
             f"of each lie below the null's threshold at {args.fpr:g}; how many references would lie below it on "
             "average, and the probability of as many or more, if both samples came from one distribution "
             "(negative hypergeometric over the pooled ranks; the rows share their base images, so they are not "
             "independent tests).", "",
             "| alteration | null images | references | median T (null) | median T (references) | Mann–Whitney p | "
             "threshold | null below | references below | expected | P(as many or more) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['alteration']} | {r['null']} | {r['references']} | {r['median_null']:.3g} | "
              f"{r['median_references']:.3g} | {r['mann_whitney_p']:.3g} | {r['threshold']:.3g} | {r['null_below']} | "
              f"{r['references_below']} | {r['expected_references_below']:.2g} | {r['p_as_many_references_below']:.2g} |"
              for r in rows]
    harness.write_results(harness.out_stem(args), summary, lines)


if __name__ == "__main__":
    main()
