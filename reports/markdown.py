"""agreement.md: the summary per op x pair x dtype, then every discrepancy."""

from __future__ import annotations

from gradmatrix.reports.compare import AGREE, CONVENTION, DISAGREE, ERROR, SKIPPED
from gradmatrix.reports.document import precision_line, precision_note


def escape(text) -> str:
    """Text safe inside a Markdown table cell or paragraph: no markup, no raw HTML."""
    out = str(text)
    for ch in "\\`*_{}[]<>()#+!|~":
        out = out.replace(ch, "\\" + ch)
    return out.replace("\n", " ").replace("\r", " ")


def code(text) -> str:
    """Inline code that cannot be closed early by backticks in ``text``."""
    text = str(text).replace("\n", " ")
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def verdict_line(summary: dict) -> str:
    if summary["passed"]:
        notes = [f"{summary[CONVENTION]} differ only at kinks, by convention"] if summary[CONVENTION] else []
        notes += [f"{summary[SKIPPED]} skipped"] if summary[SKIPPED] else []
        agreeing = summary[AGREE] + summary[CONVENTION]
        if summary.get("unchecked"):  # never a bare PASS for a module with unchecked functions
            notes.append(f"{summary['unchecked']} function(s) or class(es) of the module not checked, see run.accounting")
            return f"**PASS for the checked part only**: all {agreeing} comparisons agree ({'; '.join(notes)})"
        return f"**PASS**: all {agreeing} comparisons agree" + (f" ({'; '.join(notes)})" if notes else "")
    parts = []
    if summary[DISAGREE]:
        parts.append(f"{summary[DISAGREE]} disagree")
    if summary[ERROR]:
        parts.append(f"{summary[ERROR]} errors")
    if not summary["complete"]:
        why = f": {summary['interrupted']}" if summary["interrupted"] else ""
        parts.append(f"INCOMPLETE, {summary['missing']} of {summary['expected']} comparisons missing{why}")
    if not parts:
        parts.append("no comparison ran")
    return f"**FAIL**: {', '.join(parts)} (of {summary['comparisons']} comparisons)"


def render(document: dict) -> str:
    """The Markdown report of an agreement document."""
    s = document["summary"]
    env = document["environment"]
    run = document["run"]
    lines = [
        "# gradmatrix agreement report",
        "",
        verdict_line(s),
        "",
        *([f"- {escape(precision_line(document))}"] if precision_line(document) else []),
        f"- comparisons: {s['comparisons']} of {s['expected']} planned; agree {s[AGREE]}, "
        f"convention differences at kinks {s[CONVENTION]}, disagree {s[DISAGREE]}, error {s[ERROR]}, skipped {s[SKIPPED]}",
        f"- candidate: {code(run.get('candidate', 'manual'))}; matrix {code(run.get('matrix'))}; "
        f"oracles {escape(', '.join(run.get('oracles', [])))}",
        f"- environment: Python {env['python']}, "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
        + f"; {escape(env['platform'])}; device {escape(env['device'])}",
    ]
    for reason in s.get("unavailable", []):
        lines.append(f"- not run: {escape(reason)}")
    lines += [
        "",
        "## Agreement by op, pair and dtype",
        "",
        "Worst error: the norm-wise relative error (max|a-b| / max|b|) of the tensor that used most of its "
        "allowance; of allowed: the largest elementwise |a-b| / (rtol max|b| + numeric error bound), below 1 agrees "
        "(for <u,Jv> the size of the summed products stands in for max|b|, see reports/tolerances.py).",
        "",
        "| op | pair | dtype | agree | at kinks | disagree | error | skipped | worst error | of allowed | worst tensor |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for g in document["groups"]:
        w = g["worst"]
        worst = (f"{w['normwise_rel_err']:.1e}", f"{w['ratio']:.2g}", escape(w["tensor"])) if w else ("", "", "")
        lines.append(
            f"| {escape(g['op'])} | {escape(g['pair'])} | {g['dtype']} | {g[AGREE]} | {g[CONVENTION]} | {g[DISAGREE]} | {g[ERROR]} "
            f"| {g[SKIPPED]} | {worst[0]} | {worst[1]} | {worst[2]} |"
        )
    if document.get("conventions"):
        lines += ["", "## Conventions at kinks", "",
                  "The derivative each implementation took where the op has none (ReLU at exactly 0, ...); "
                  "differences there are reported, not failed, unless --strict-kinks.", "",
                  "| op | dtype | implementation: derivative at the kink |", "|---|---|---|"]
        for c in document["conventions"]:
            taken = "; ".join(f"{escape(i)}: {', '.join(f'{v:g}' for v in vals)}" for i, vals in c["conventions"].items())
            lines.append(f"| {escape(c['op'])} | {c['dtype']} | {taken} |")
    bad = [r for r in document["comparisons"] if r["verdict"] in (DISAGREE, ERROR)]
    lines += ["", f"## Discrepancies ({len(bad)})", ""]
    if not bad:
        lines.append("None.")
    for r in bad:
        lines += [f"### {escape(r['id'])}", "", f"- verdict: **{r['verdict']}**", f"- message: {code(r['message'])}"]
        note = precision_note(r)
        if note:
            lines.append(f"- matmul precision: {escape(note)}")
        for t in r["tensors"]:
            if t.get("agree"):
                continue
            if "problem" in t:
                lines.append(f"- {code(t['tensor'])}: {escape(t['problem'])}")
                continue
            m = t["metrics"]
            lines.append(
                f"- {code(t['tensor'])}: worst element {m['worst_index']}: {m['a_value']:.9g} vs {m['b_value']:.9g}; "
                f"max abs err {m['max_abs_err']:.3e}, norm-wise rel err {m['normwise_rel_err']:.3e} "
                f"(allowed {t['rtol']:.0e}), CS231n rel_error {m['rel_error']:.3e}"
            )
        if r.get("traceback"):
            lines += ["", "```", r["traceback"].replace("```", "'''").rstrip(), "```"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
