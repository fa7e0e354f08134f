"""agreement.md, readable in a terminal: the verdict and the findings first, then the tallies
(failing rows in a table, passing ones summarised), conventions at kinks and the first
discrepancies one by one.

Anything that comes from a record (ids, messages, tensor names) goes into code spans, which
Markdown shows as written: no escapes to clutter the text, no markup or raw HTML let through.
"""

from __future__ import annotations

import re

from gradmatrix.reports.compare import AGREE, CONVENTION, DISAGREE, ERROR, SKIPPED
from gradmatrix.reports.console import finding_title, shown, plural, references_text, verdict_text, worst_text
from gradmatrix.reports.document import precision_line, precision_note

MAX_DETAILED = 10  # discrepancies shown one by one; agreement.json has them all


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


_PLAIN = re.compile(r"[^`*\[\]<>|\\!#{}\n\r~]*")


def safe(text) -> str:
    """Text as written where Markdown would show it so (names, numbers, words with
    underscores inside); backslash-escaped only where it holds markup characters."""
    text = str(text)
    if _PLAIN.fullmatch(text) and not re.search(r"(^|\W)_|_($|\W)", text):
        return text
    return escape(text)


def cell(text) -> str:
    """A table cell: a code span, its pipes escaped (a pipe ends a cell even inside code)."""
    return code(str(text)).replace("|", "\\|")


def verdict_line(summary: dict) -> str:
    """The verdict of a whole run (every comparison, the references' among themselves included)."""
    if summary["passed"]:
        notes = [f"{plural(summary[CONVENTION], 'comparison')} differ only at kinks, by convention"] if summary[CONVENTION] else []
        notes += [f"{summary[SKIPPED]} skipped"] if summary[SKIPPED] else []
        agreeing = summary[AGREE] + summary[CONVENTION]
        if summary.get("unchecked"):  # never a bare PASS for a module with unchecked functions
            notes.append(f"{summary['unchecked']} function(s) or class(es) of the module not checked, see run.accounting")
            return f"**PASS for the checked part only**: all {agreeing} comparisons agree ({'; '.join(notes)})"
        head = f"**PASS**: all {agreeing} comparisons agree" if agreeing != 1 else "**PASS**: the 1 comparison agrees"
        return head + (f" ({'; '.join(notes)})" if notes else "")
    parts = []
    if summary[DISAGREE]:
        parts.append(f"{summary[DISAGREE]} disagree")
    if summary[ERROR]:
        parts.append(plural(summary[ERROR], "error"))
    if not summary["complete"]:
        why = f": {summary['interrupted']}" if summary["interrupted"] else ""
        parts.append(f"INCOMPLETE, {summary['missing']} of {plural(summary['expected'], 'comparison')} missing{why}")
    parts += summary.get("problems", [])  # why else it is not a pass (skips, inconsistent records, ...)
    if not parts:
        parts.append("no comparison ran")
    return f"**FAIL**: {', '.join(parts)} (of {plural(summary['comparisons'], 'comparison')})"


def _more(items: list, shown: int = 4) -> str:
    text = ", ".join(code(c) for c in items[:shown])
    return text + (f" and {len(items) - shown} more" if len(items) > shown else "")


def _finding_lines(number: int, f: dict) -> list:
    lines = [f"{number}. **{safe(finding_title(f))}**"]
    if f["cause"]:
        lines += [f"   - likely cause: {safe(f['cause']['text'])}", f"   - evidence: {safe(f['cause']['evidence'])}"]
    lines.append(f"   - worst: {code(worst_text(f))}")
    if f["worst"].get("reproduce"):
        lines.append(f"   - reproduce: {code(f['worst']['reproduce'])}")
    lines.append(f"   - fails in: {_more(f['cases'])}")
    if f["passing_cases"]:
        lines.append(f"   - agrees in: {_more(f['passing_cases'])}")
    return lines


def render(document: dict) -> str:
    """The Markdown report of an agreement document."""
    s = document["summary"]
    env = document["environment"]
    run = document["run"]
    found = document.get("findings") or []
    lines = ["# gradmatrix agreement report", "", f"**{safe(verdict_text(document))}**", ""]
    health = references_text(document)
    if health:
        lines += [safe(health), ""]
    if found:
        lines += [f"## Findings ({len(found)})", "",
                  "Failing comparisons grouped by implementation, op, tensor and failure pattern, worst first.", ""]
        for number, f in enumerate(found, 1):
            lines += _finding_lines(number, f)
        lines.append("")
    # the float32 matmul-precision recheck matters where TF32 exists (a GPU); on a CPU it is noise
    note = precision_line(document) if env.get("device", "cpu") != "cpu" else None
    lines += [
        "## Run",
        "",
        *([f"- {safe(note)}"] if note else []),
        f"- comparisons: {s['comparisons']} of {s['expected']} planned; agree {s[AGREE]}, "
        f"convention differences at kinks {s[CONVENTION]}, disagree {s[DISAGREE]}, error {s[ERROR]}, skipped {s[SKIPPED]}",
        f"- whole run, the references' comparisons included: {safe(verdict_line(s).replace('**', ''))}",
        f"- candidate: {code(run.get('candidate', 'manual'))}; matrix {code(run.get('matrix'))}; "
        f"oracles {safe(', '.join(run.get('oracles', [])))}",
        f"- environment: Python {env['python']}, "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
        + f"; {code(env['platform'])}; device {code(env['device'])}",
    ]
    for reason in s.get("unavailable", []):
        lines.append(f"- not run: {safe(reason)}")
    failing_groups = [g for g in document["groups"] if g[DISAGREE] or g[ERROR]]
    passing_groups = [g for g in document["groups"] if not (g[DISAGREE] or g[ERROR])]
    lines += [
        "",
        "## Agreement by op, pair and dtype",
        "",
        "Worst error: the norm-wise relative error (max|a-b| / max|b|) of the tensor that used most of its "
        "allowance; of allowed: the largest elementwise |a-b| / (rtol max|b| + numeric error bound), below 1 agrees "
        "(for `<u,Jv>` the size of the summed products stands in for max|b|, see reports/tolerances.py).",
        "",
    ]
    if failing_groups:
        lines += ["| op | pair | dtype | agree | at kinks | disagree | error | skipped | worst error | of allowed | worst tensor |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for g in failing_groups:
            w = g["worst"]
            worst = (shown(w['normwise_rel_err'], '.1e'), shown(w['ratio'], '.2g'), cell(w["tensor"])) if w else ("", "", "")
            lines.append(
                f"| {safe(g['op'])} | {cell(g['pair'])} | {g['dtype']} | {g[AGREE]} | {g[CONVENTION]} | {g[DISAGREE]} "
                f"| {g[ERROR]} | {g[SKIPPED]} | {worst[0]} | {worst[1]} | {worst[2]} |")
        lines.append("")
    if passing_groups:
        agreeing = sum(g[AGREE] + g[CONVENTION] for g in passing_groups)
        lines += [f"{plural(len(passing_groups), 'group')} of op, pair and dtype agree throughout "
                  f"({plural(agreeing, 'comparison')}):", ""]
        for op in sorted({g["op"] for g in passing_groups}):
            mine = [g for g in passing_groups if g["op"] == op]
            pairs = ", ".join(code(p) for p in sorted({g["pair"] for g in mine}))
            dtypes = ", ".join(sorted({g["dtype"] for g in mine}))
            lines.append(f"- {safe(op)} ({dtypes}): {pairs}")
    if document.get("conventions"):
        lines += ["", "## Conventions at kinks", "",
                  "The derivative each implementation took where the op has none (ReLU at exactly 0, ...); "
                  "differences there are reported, not failed, unless --strict-kinks.", "",
                  "| op | dtype | implementation: derivative at the kink |", "|---|---|---|"]
        for c in document["conventions"]:
            taken = "; ".join(f"{cell(i)}: {', '.join(f'{v:g}' for v in vals)}" for i, vals in c["conventions"].items())
            lines.append(f"| {safe(c['op'])} | {c['dtype']} | {taken} |")
    bad = [r for r in document["comparisons"] if r["verdict"] in (DISAGREE, ERROR)]
    lines += ["", f"## Discrepancies ({len(bad)})", ""]
    if not bad:
        lines.append("None.")
    for r in bad[:MAX_DETAILED]:
        lines += [f"### {code(r['id'])}", "", f"- verdict: **{r['verdict']}**", f"- message: {code(r['message'])}"]
        note = precision_note(r)
        if note:
            lines.append(f"- matmul precision: {note}")
        for t in r["tensors"]:
            if t.get("agree"):
                continue
            if "problem" in t:
                lines.append(f"- {code(t['tensor'])}: {code(t['problem'])}")
                continue
            m = t["metrics"]
            lines.append(
                f"- {code(t['tensor'])}: worst element {m['worst_index']}: {m['a_value']:.9g} vs {m['b_value']:.9g}; "
                f"max abs err {shown(m['max_abs_err'], '.3e')}, norm-wise rel err {shown(m['normwise_rel_err'], '.3e')} "
                f"(allowed {t['rtol']:.0e}), CS231n rel_error {shown(m['rel_error'], '.3e')}"
            )
        if r.get("traceback"):
            lines += ["", "```", r["traceback"].replace("```", "'''").rstrip(), "```"]
        lines.append("")
    if len(bad) > MAX_DETAILED:
        lines.append(f"... and {len(bad) - MAX_DETAILED} more, each in agreement.json; the findings above group them all.")
    return "\n".join(lines).rstrip() + "\n"
