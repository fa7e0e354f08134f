"""agreement.html: one self-contained page (inline CSS, figures embedded, no network).

Every string that comes from the document (op and module names, ids, messages from candidate
code, environment values, findings) goes through ``reports.escape.html_text``, in text and in
quoted attributes alike; nothing from a record is ever inserted unescaped.
"""

from __future__ import annotations

import base64

from gradmatrix.reports import plots
from gradmatrix.reports.compare import AGREE, CONVENTION, DISAGREE, ERROR, SKIPPED, headline
from gradmatrix.reports.document import precision_line, precision_note
from gradmatrix.reports.console import (at_fault, finding_title, override_lines,
                                        references_text, shown, verdict_text, warning_lines,
                                        worst_text)
from gradmatrix.reports.per_op import per_op
from gradmatrix.reports.escape import html_text as e

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1150px;color:#1d1d1f;padding:0 1rem;overflow-wrap:anywhere}
.scroll,.fig{overflow-x:auto;max-width:100%}.scroll table{overflow-wrap:normal}.fig img{max-width:none;height:auto}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.verdict{font-size:1.3rem;padding:.8rem 1rem;border-radius:6px;margin:1rem 0}
.pass{background:#e3f4e6;border:1px solid #7cc08a}.fail{background:#fbe3e1;border:1px solid #e0867c}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.88rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.grid td{text-align:center;min-width:6rem}
.c0{background:#d7f0db}.c1{background:#eef7d8}.c2{background:#fff1c7}.c3{background:#f9c9c3}.cna{background:#eee;color:#888}
code{font-size:.85em;background:#f4f4f6;padding:0 .2em;border-radius:3px;overflow-wrap:anywhere}
pre.cmd{white-space:pre;overflow-x:auto;background:#f4f4f6;padding:.4rem .6rem;border-radius:4px;font-size:.85em;user-select:all}
.finding{border-left:4px solid #e0867c;padding:.1rem 1rem;margin:1rem 0;background:#fffafa}.finding h3{margin:.4rem 0}
.cause{font-size:1.05rem}.bad{color:#b3261e;font-size:.8em}small{color:#555}
.ops{display:flex;flex-wrap:wrap;gap:1.5rem}.ops>*{min-width:0;max-width:100%}.where{font-weight:600}.muted{color:#666;font-size:.85rem}
img{max-width:100%;border:1px solid #eee}
@media (max-width:600px){body{margin:1rem auto;padding:0 .6rem}.verdict{font-size:1.1rem}}
"""


def _cell_class(ratio) -> str:
    if ratio is None:
        return "cna"
    if ratio < 0.01:
        return "c0"
    if ratio < 0.1:
        return "c1"
    if ratio <= 1:
        return "c2"
    return "c3"


def _grid_table(document: dict, op: str) -> str:
    """One row per pair compared, one column per dtype: each cell the worst comparison of that
    pair in that dtype, coloured by its share of the allowed error."""
    pairs, cells = plots.grid_cells(document, op)
    dtypes = sorted({dtype for _, dtype in cells}, reverse=True)
    if not pairs or not dtypes:
        return ""
    rows = ["<div class='scroll'><table class='grid'><tr><th>pair</th>"
            + "".join(f"<th>{e(d)}</th>" for d in dtypes) + "</tr>"]
    for pair in pairs:
        row = []
        for dtype in dtypes:
            cell = cells.get((pair, dtype))
            if cell is None:
                row.append("<td class='cna'>not compared</td>")
            elif cell["problem"]:
                row.append(f"<td class='c3' title='{e(cell['problem'])}'>fails<br><small>{e(cell['tensor'] or 'raised')}"
                           "</small></td>")
            else:
                row.append(f"<td class='{_cell_class(cell['ratio'])}' title='{cell['ratio']:.2g} of the allowed error'>"
                           f"{shown(cell['error'], '.1e')}<br><small>{e(cell['tensor'])}</small></td>")
        rows.append(f"<tr><th>{e(' ~ '.join(pair))}</th>{''.join(row)}</tr>")
    rows.append("</table></div>")
    return "".join(rows)


def _finding_html(number: int, f: dict, where: str | None = None) -> str:
    out = [f"<div class='finding'><h3>{number}. {e(finding_title(f))}</h3>"]
    if where:
        out.append(f"<p class='where'>{e(where[0].upper() + where[1:])}</p>")
    if f["cause"]:
        out.append(f"<p class='cause'>Likely cause: <b>{e(f['cause']['text'])}</b></p>"
                   f"<p class='muted'>Evidence: {e(f['cause']['evidence'])}</p>")
    out.append(f"<p>Worst: {e(worst_text(f))}</p>")
    if f["worst"].get("reproduce"):
        out.append(f"<pre class='cmd'>{e(f['worst']['reproduce'])}</pre>")
    cases = ", ".join(f["cases"][:20]) + (f" and {len(f['cases']) - 20} more" if len(f["cases"]) > 20 else "")
    agree = ", ".join(f["passing_cases"][:20]) + (f" and {len(f['passing_cases']) - 20} more"
                                                   if len(f["passing_cases"]) > 20 else "")
    out.append(f"<details><summary>cases</summary><p>Fails in: {e(cases)}</p>"
               + (f"<p>Agrees in: {e(agree)}</p>" if agree else "") + "</details></div>")
    return "".join(out)


def _findings(document: dict) -> list:
    """Each finding's block, naming the candidate's function at fault as the console does."""
    found = document.get("findings") or []
    functions = document["run"].get("candidate_functions") or {}
    candidate = document["run"].get("candidate")
    return [_finding_html(number, f, at_fault(f, found, functions) if f["impl"] == candidate else None)
            for number, f in enumerate(found, 1)]


def _verdict_per_op(document: dict) -> str:
    rows = [f"<tr><td>{e(op)}</td><td class='{'' if v['verdict'] == 'agree' else 'bad'}'>{e(v['verdict'])}</td>"
            f"<td class='num'>{v['agreeing']} of {v['comparisons']}</td><td>{e(v['line'].split(' (', 1)[1][:-1] if ' (' in v['line'] else '')}</td></tr>"
            for op, v in per_op(document).items()]
    return ("<div class='scroll'><table><tr><th>op</th><th>verdict</th><th>agree</th><th>worst</th></tr>"
            + "".join(rows) + "</table></div>")


def summary(document: dict) -> str:
    """A notebook's view of a result: the verdict, the findings and a verdict per op, with
    the report's styles scoped to it (nothing else on the notebook's page changes)."""
    passed = document["summary"]["passed"]
    return "\n".join([f"<div class='gradmatrix'><style>{_scoped(CSS)}</style>",
                      f"<div class='verdict {'pass' if passed else 'fail'}'>{e(verdict_text(document))}</div>",
                      *_findings(document)[:3], _verdict_per_op(document), "</div>"])


def _scoped(css: str) -> str:
    """The report's CSS with each rule under ``.gradmatrix`` (the body's rule and the page's
    media queries left out)."""
    rules = [rule for rule in css.split("@media")[0].replace("\n", "").split("}") if rule.strip() and not rule.startswith("body")]
    return "".join(".gradmatrix " + ",.gradmatrix ".join(rule.split("{")[0].split(",")) + "{" + rule.split("{", 1)[1] + "}"
                   for rule in rules)


def _figure(svg: bytes | None, alt: str) -> str:
    """The figure at its own size (the SVG's; its text legible on a phone), in a box of its
    own that scrolls sideways where the figure is wider than the page."""
    if not svg:
        return ""
    return (f"<div class='fig'><img alt='{e(alt)}' "
            f"src='data:image/svg+xml;base64,{base64.b64encode(svg).decode('ascii')}'></div>")


MAX_ROWS = 200  # discrepancy rows on the page; agreement.json has them all


def render(document: dict) -> str:
    """The HTML report of an agreement document: the verdict and the findings first, then the
    agreement per op (failing ops first), conventions, discrepancies and the environment."""
    s = document["summary"]
    env = document["environment"]
    run = document["run"]
    records = document["comparisons"]
    found = document.get("findings") or []
    bad = [r for r in records if r["verdict"] in (DISAGREE, ERROR)]
    bad_ops = sorted({r["op"] for r in bad})
    ops = bad_ops + sorted({r["op"] for r in records} - set(bad_ops))
    dtypes = sorted({r["dtype"] for r in records})
    pairs = sorted({"~".join(r["pair"]) for r in records})
    verdict = verdict_text(document)
    passed = (document.get("verdict") or {}).get("verdict", "pass" if s["passed"] else "fail") == "pass" and s["passed"]
    health = references_text(document)
    # the float32 matmul-precision recheck matters where TF32 exists (a GPU); on a CPU it is noise
    note = precision_line(document) if env.get("device", "cpu") != "cpu" else None
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>gradmatrix: {e(verdict)}</title><style>{CSS}</style></head><body>",
        "<h1>gradmatrix agreement report</h1>",
        f"<div class='verdict {'pass' if passed else 'fail'}' id='verdict'>{e(verdict)}</div>",
        f"<p class='muted'>candidate <code>{e(run.get('candidate'))}</code>, matrix <code>{e(run.get('matrix'))}</code>, "
        f"created {e(document.get('created'))}, {e(document.get('duration_s'))} s"
        + (f"; {e(health)}" if health else "") + "</p>",
    ]
    for reason in s.get("unavailable", []):
        out.append(f"<p class='fail verdict'>Not run: {e(reason)}</p>")
    if found:
        out.append(f"<h2 id='findings'>Findings ({len(found)})</h2><p class='muted'>Failing comparisons grouped by "
                   "implementation, op, tensor and failure pattern, worst first.</p>")
        out += _findings(document)
    out += [f"<p class='override'>{e(line)}</p>" for line in override_lines(document)]
    warned = warning_lines(document)
    if warned:
        out.append(f"<h2 id='warnings'>Warnings ({len(document.get('warnings') or ())})</h2><p class='muted'>"
                   "Differences that leave every value right: shown, not failed (they fail with --strict).</p>")
        out.append("<ul>" + "".join(f"<li>{e(line)}</li>" for line in warned) + "</ul>")
    out += [
        f"<p>{e(note)}</p>" if note else "",
        "<h2>Summary</h2>",
        "<div class='scroll'><table><tr><th>comparisons</th><th>agree</th><th>at kinks (convention)</th><th>disagree</th><th>error</th>"
        "<th>skipped</th><th>planned</th></tr>",
        f"<tr><td class='num'>{s['comparisons']}</td><td class='num'>{s[AGREE]}</td><td class='num'>{s[CONVENTION]}</td>"
        f"<td class='num'>{s[DISAGREE]}</td><td class='num'>{s[ERROR]}</td><td class='num'>{s[SKIPPED]}</td>"
        f"<td class='num'>{s['expected']}</td></tr></table></div>",
        f"<p>Across ops {e(', '.join(ops))}; dtypes {e(', '.join(dtypes))}; pairs {e(', '.join(pairs))}."
        + (f" Disagreements in: <b>{e(', '.join(bad_ops))}</b>." if bad_ops else "") + "</p>",
    ]
    out.append("<h2>Verdict per op</h2>" + _verdict_per_op(document))
    out.append("<h2>Agreement per op</h2><p class='muted'>One row per pair compared, one column per dtype. Each cell: "
               "the worst comparison of that pair in that dtype over the op's cases, its norm-wise relative error and its tensor, coloured by its share of the allowed error "
               "(|a-b| / (rtol&middot;max|b| + numeric bound); green well inside, red beyond); \"fails\": it raised "
               "or returned the wrong structure. Plots: the worst error per case (labelled by what varies), one line "
               "per pair with a marker of its own (pairs that agree exactly lie side by side), an error of exactly 0 hollow "
               "on the row labelled 0, tolerance lines dashed, an x at the top for a comparison that raised or returned the wrong "
               "structure; comparisons with the numeric oracle also allow its own error bound, so they may sit above "
               "their line and still agree. Kink cases are left out of the plots: see Conventions at kinks.</p>")
    for op in ops:
        flag = " <span class='bad'>disagrees</span>" if op in bad_ops else ""
        out.append(f"<h3>{e(op)}{flag}</h3><div class='ops'>{_grid_table(document, op)}</div>")
        out.append(_figure(plots.error_by_case(document, op), f"error per case for {op}"))
    if document.get("conventions"):
        out.append("<h2>Conventions at kinks</h2><div class='scroll'><table><tr><th>op</th><th>dtype</th><th>derivative taken at the kink</th></tr>")
        for c in document["conventions"]:
            taken = "; ".join(f"{i}: {', '.join(f'{v:g}' for v in vals)}" for i, vals in c["conventions"].items())
            out.append(f"<tr><td>{e(c['op'])}</td><td>{e(c['dtype'])}</td><td>{e(taken)}</td></tr>")
        out.append("</table></div>")
    out.append(f"<h2>Discrepancies ({len(bad)})</h2>")
    if bad:
        out.append(f"<details><summary>every failing comparison ({len(bad)}; the findings above group them)</summary>"
                   "<div class='scroll'><table><tr><th>comparison</th><th>tensor</th><th>worst element</th><th>values (a vs b)</th>"
                   "<th>norm-wise rel err</th><th>max abs err</th><th>rel_error</th><th>message</th></tr>")
        for r in bad[:MAX_ROWS]:
            tensors = [t for t in r["tensors"] if not t.get("agree")] or [{"tensor": "", "problem": r["verdict"]}]
            extra = f"<br><em>{e(precision_note(r))}</em>" if precision_note(r) else ""
            for t in tensors:
                m = t.get("metrics")
                cells = (
                    [e(m["worst_index"]), f"{shown(m['a_value'], '.9g')} vs {shown(m['b_value'], '.9g')}", shown(m['normwise_rel_err'], '.3e'),
                     shown(m['max_abs_err'], '.3e'), shown(m['rel_error'], '.3e')] if m else [e(t.get("problem", "")), "", "", "", ""]
                )
                out.append(f"<tr><td><code>{e(r['id'])}</code></td><td>{e(t['tensor'])}</td>"
                           + "".join(f"<td class='num'>{c}</td>" for c in cells)
                           + f"<td>{e(headline(r))}{extra}</td></tr>")
        out.append("</table></div>")
        if len(bad) > MAX_ROWS:
            out.append(f"<p class='muted'>... and {len(bad) - MAX_ROWS} more in agreement.json.</p>")
        out.append("</details>")
    else:
        out.append("<p>None.</p>")
    out.append("<h2>Environment</h2><div class='scroll'><table>")
    rows = [("Python", env["python"]), ("platform", env["platform"]), ("device", env["device"])]
    rows += [(name, version) for name, version in env["versions"].items() if version]
    for framework, settings in env.get("frameworks", {}).items():
        rows += [(f"{framework}: {k}", v) for k, v in settings.items()]
    out += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows]
    out.append("</table></div></body></html>")
    return "\n".join(out) + "\n"
