"""The report's account of a re-alignment search (`ImageAnalysis.realignment`), as HTML: its own conclusion per
decoder inversion, beside the exhibit's conclusion and labelled as a separate, search-corrected test; the
transforms tried, the winner and every corrected p-value. No Qt."""

from __future__ import annotations

from engine.search_verdict import search_headline, search_interpretation
from forensics_app.report.text import esc, number

_TABLE = 'width="100%" border="1" cellspacing="0" cellpadding="3" style="border-collapse: collapse; border-color: #9aa3b0;"'


def search_section(a, method_titles: dict[str, str]) -> str:
    """The exhibit's search, or "" when none ran."""
    s = getattr(a, "realignment", None)
    if s is None:
        return ""
    c = s.conclusion
    out = ["<h3>Re-alignment search — a separate, search-corrected test</h3>",
           f"<p><b>Search conclusion ({esc(method_titles.get(c.method, c.method))}): {esc(search_headline(c))}</b></p>",
           '<p class="small">The exhibit\'s conclusion above is drawn from the image as submitted and is not changed '
           "by the search. The search tries candidate inverse transforms of the suspect "
           f"(families: {esc(', '.join(s.families))}; {esc(s.intake)}), inverts each and scores every key; its "
           "p-value is corrected for every candidate and key tried, and it names no key holder (docs/algorithms.md "
           "§6).</p>"]
    rows = []
    for m, r in s.results.items():
        mc = s.conclusions[m]
        rows.append(f"<tr><td>{esc(method_titles.get(m, m))}</td><td>{len(r.transforms)} × {len(r.key_ids)}</td>"
                    f"<td>{esc(r.best.describe())}, key {esc(r.key_text)}</td>"
                    f"<td>{number(r.decoy_p, '.3g')}{f' ({r.decoys} decoys)' if r.decoy_p is not None else ''}</td>"
                    f"<td>{number(r.bonferroni_p, '.3g')}</td><td>{number(r.identity_p, '.3g')}</td>"
                    f"<td>{esc(search_headline(mc))}</td></tr>")
    out.append(f"<table {_TABLE}><tr><th>Method</th><th>Candidates × keys</th><th>Winner</th><th>Decoy p</th>"
               f"<th>Bonferroni p</th><th>As submitted, min p</th><th>Search conclusion</th></tr>{''.join(rows)}</table>")
    for m, mc in s.conclusions.items():
        finding = "<br>".join(esc(line) for line in mc.finding().splitlines())
        out.append(f'<p class="small"><b>{esc(method_titles.get(m, m))}</b>: {finding}</p>')
    out.append(f'<p class="interp">Interpretation: {esc(search_interpretation(c))}</p>')
    first = next(iter(s.results.values()))
    out.append(f'<p class="small muted">Transforms tried ({len(first.transforms)}): '
               f"{esc('; '.join(t.describe() for t in first.transforms))}.</p>")
    return "".join(out)
