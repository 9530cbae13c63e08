"""The report's account of a restored reading (`ImageAnalysis.restoration`), as HTML: the exhibit's conclusion as
submitted and the restored one side by side, per decoder inversion, with the restoration's settings and trace,
labelled as a separate reading that names no key holder. No Qt."""

from __future__ import annotations

from engine.restored_verdict import restored_headline, restored_interpretation
from forensics_app.report.text import esc, number

_TABLE = 'width="100%" border="1" cellspacing="0" cellpadding="3" style="border-collapse: collapse; border-color: #9aa3b0;"'


def restored_section(a, method_titles: dict[str, str]) -> str:
    """The exhibit's restored reading, or "" when none was made."""
    s = getattr(a, "restoration", None)
    if s is None:
        return ""
    gap = " → ".join(number(g, ".3g") for g in s.prior_gap) or "n/a"
    out = ["<h3>Restored reading — a separate reading beside the conclusion as submitted</h3>",
           f"<p><b>Restoration:</b> {esc(s.settings)}. Prior gap per iteration (RMS of the restored image against "
           f"the prior's own image, 8-bit levels): {esc(gap)}; restored against submitted pixels: "
           f"{number(s.change_psnr_db, '.1f')} dB PSNR.</p>",
           '<p class="small">The exhibit\'s conclusion above is drawn from the image as submitted and is not changed '
           "by the restoration. The degradation is the one the examiner stated (or a JPEG quality read from the file's "
           "own quantization table), not one the tool inferred from the pixels; the restored "
           "pixels are analysed with the same methods, settings, keys and calibration (whose coverage check tells "
           "when the restored pixels do not look like the model's own images, as after a degradation stated wrongly), "
           "and the restored reading names no key holder (docs/algorithms.md §6).</p>"]
    if s.failure:
        out.append(f'<p class="alert">No restored reading: {esc(s.failure)}</p>')
        return "".join(out)
    c = s.conclusion
    out.append(f"<p><b>Restored conclusion ({esc(method_titles.get(c.method, c.method))}): "
               f"{esc(restored_headline(c))}</b></p>")
    rows = []
    for m, r in s.methods.items():
        raw = a.methods.get(m)
        raw_c = raw.conclusion if raw is not None else None
        rows.append(f"<tr><td>{esc(method_titles.get(m, m))}</td>"
                    f"<td>{esc(raw_c.headline() if raw_c is not None else 'n/a')}</td>"
                    f"<td>{_p_with_state(raw_c)}</td>"
                    f"<td>{esc(restored_headline(r.conclusion))}</td>"
                    f"<td>{_p_with_state(r.conclusion)}</td></tr>")
    out.append(f"<table {_TABLE}><tr><th>Method</th><th>As submitted</th><th>Detection p</th>"
               f"<th>Restored</th><th>Detection p</th></tr>{''.join(rows)}</table>")
    out.append('<p class="small muted">Both p-values are the same test, the run\'s detection test (calibrated where a '
               "calibration applies), on the pixels as submitted and as restored; each names its state.</p>")
    for m, r in s.methods.items():
        finding = "<br>".join(esc(line) for line in r.conclusion.finding().splitlines())
        out.append(f'<p class="small"><b>{esc(method_titles.get(m, m))}, restored</b>: {finding}</p>')
    out.append(f'<p class="interp">Interpretation: {esc(restored_interpretation(c))}</p>')
    return "".join(out)


def _p_with_state(c) -> str:
    if c is None:
        return "n/a"
    return f"{number(c.detection_p, '.3g')} ({esc(c.calibration)})"
