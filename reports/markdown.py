"""agreement.md, readable in a terminal: the verdict and the findings first, then the tallies
(failing rows in a table, passing ones summarised), conventions at kinks and the first
discrepancies one by one.

Every string that comes from the document (ids, op and tensor names, messages, tracebacks,
causes, environment values) goes through ``reports.escape``: into a code span or a fenced
block whose fence nothing inside can close, or into prose with every markup character
backslash-escaped. No markup or raw HTML from a record gets through.
"""

from __future__ import annotations

from gradmatrix.reports.compare import AGREE, CONVENTION, DISAGREE, ERROR, SKIPPED
from gradmatrix.reports.console import (at_fault, finding_title, override_lines,
                                         plural, references_text, shown, verdict_text, warning_lines,
                                        worst_text)
from gradmatrix.reports.document import precision_line, precision_note, worst_ratio
from gradmatrix.reports.escape import markdown_block, markdown_code as code, markdown_text as text

MAX_DETAILED = 10  # groups of like discrepancies shown, one block each; agreement.json has them all


def cell(value) -> str:
    """A code span in a table cell."""
    return code(value, table_cell=True)


def verdict_parts(summary: dict) -> tuple[str, str]:
    """The verdict of a whole run (every comparison, the references' among themselves included)
    as plain text: its word ("PASS", "FAIL", "PASS for the checked part only") and the rest of
    the line (": 1 disagree (of 3 comparisons)"), strings from the summary as they are."""
    if summary["passed"]:
        notes = [f"{plural(summary[CONVENTION], 'comparison')} differ only at kinks, by convention"] if summary[CONVENTION] else []
        notes += [f"{summary[SKIPPED]} skipped"] if summary[SKIPPED] else []
        agreeing = summary[AGREE] + summary[CONVENTION]
        if summary.get("unchecked"):  # never a bare PASS for a module with unchecked functions
            notes.append(f"{summary['unchecked']} function(s) or class(es) of the module not checked, see run.accounting")
            return "PASS for the checked part only", f": all {agreeing} comparisons agree ({'; '.join(notes)})"
        rest = f": all {agreeing} comparisons agree" if agreeing != 1 else ": the 1 comparison agrees"
        return "PASS", rest + (f" ({'; '.join(notes)})" if notes else "")
    parts = []
    if summary[DISAGREE]:
        parts.append(f"{summary[DISAGREE]} disagree")
    if summary[ERROR]:
        parts.append(plural(summary[ERROR], "error"))
    if not summary["complete"]:
        why = f": {summary['interrupted']}" if summary["interrupted"] else ""
        parts.append(f"INCOMPLETE, {summary['missing']} of {plural(summary['expected'], 'comparison')} missing{why}")
    parts += [f"{name} unimplemented (the starter's stub)" for name in summary.get("stubs", ())]
    parts += summary.get("problems", [])  # why else it is not a pass (skips, inconsistent records, ...)
    if not parts:
        parts.append("no comparison ran")
    return "FAIL", f": {', '.join(parts)} (of {plural(summary['comparisons'], 'comparison')})"


def verdict_line(summary: dict) -> str:
    """The verdict of a whole run, its word in bold: ``**FAIL**: 1 disagree (of 3 comparisons)``.
    Not escaped: for a console (which drops the ``**``); the Markdown report escapes
    ``verdict_parts`` instead."""
    word, rest = verdict_parts(summary)
    return f"**{word}**{rest}"


def _more(items: list, first: int = 4) -> str:
    spans = ", ".join(code(c) for c in items[:first])
    return spans + (f" and {len(items) - first} more" if len(items) > first else "")


def _finding_lines(number: int, f: dict, where: str | None = None) -> list:
    lines = [f"{number}. **{text(finding_title(f))}**" + (f", {text(where)}" if where else "")]
    if f["cause"]:
        lines += [f"   - likely cause: {text(f['cause']['text'])}", f"   - evidence: {text(f['cause']['evidence'])}"]
    lines.append(f"   - worst: {code(worst_text(f))}")
    if f["worst"].get("reproduce"):
        lines.append(f"   - reproduce: {code(f['worst']['reproduce'])}")
    lines.append(f"   - fails in: {_more(f['cases'])}")
    if f["passing_cases"]:
        lines.append(f"   - agrees in: {_more(f['passing_cases'])}")
    return lines


def _alike_groups(groups: list) -> list:
    """Failing (op, pair, dtype) tallies that differ only in the pair, merged: one row for the
    candidate against three references that fail alike."""
    merged: dict = {}
    for g in groups:
        key = (g["op"], g["dtype"], g[AGREE], g[CONVENTION], g[DISAGREE], g[ERROR], g[SKIPPED],
               (g["worst"] or {}).get("tensor"), g["pair"].split("~")[0])
        merged.setdefault(key, []).append(g)
    return list(merged.values())


def _alike_records(bad: list) -> list:
    """The failing records grouped by op, verdict and failing tensors (one mistake seen
    against each reference in each dtype), each group worst first, the worst groups first."""
    def severity(r):
        return float("inf") if r["verdict"] == ERROR else (worst_ratio(r) or 0.0)

    groups: dict = {}
    for r in bad:
        failing = tuple(t["tensor"] for t in r["tensors"] if not t.get("agree"))
        groups.setdefault((r["op"], r["verdict"], failing), []).append(r)
    ordered = [sorted(g, key=severity, reverse=True) for g in groups.values()]
    return sorted(ordered, key=lambda g: severity(g[0]), reverse=True)


def render(document: dict) -> str:
    """The Markdown report of an agreement document."""
    s = document["summary"]
    env = document["environment"]
    run = document["run"]
    found = document.get("findings") or []
    lines = ["# gradmatrix agreement report", "", f"**{text(verdict_text(document))}**", ""]
    health = references_text(document)
    if health:
        lines += [text(health), ""]
    if found:
        lines += [f"## Findings ({len(found)})", "",
                  "Failing comparisons grouped by implementation, op, tensor and failure pattern, worst first.", ""]
        functions = run.get("candidate_functions") or {}
        for number, f in enumerate(found, 1):
            where = at_fault(f, found, functions) if f["impl"] == run.get("candidate") else None
            lines += _finding_lines(number, f, where)
        lines.append("")
    lines += [f"{text(line)}" for line in override_lines(document)] + ([""] if override_lines(document) else [])
    warned = warning_lines(document)
    if warned:
        lines += [f"## Warnings ({len(document.get('warnings') or ())})", "",
                  "Differences that leave every value right: shown, not failed (they fail with --strict).", ""]
        lines += [f"- {text(line)}" for line in warned]
        lines.append("")
    # the float32 matmul-precision recheck matters where TF32 exists (a GPU); on a CPU it is noise
    note = precision_line(document) if env.get("device", "cpu") != "cpu" else None
    lines += [
        "## Run",
        "",
        *([f"- {text(note)}"] if note else []),
        f"- comparisons: {s['comparisons']} of {s['expected']} planned; agree {s[AGREE]}, "
        f"convention differences at kinks {s[CONVENTION]}, disagree {s[DISAGREE]}, error {s[ERROR]}, skipped {s[SKIPPED]}",
        f"- whole run, the references' comparisons included: {text(''.join(verdict_parts(s)))}",
        f"- candidate: {code(run.get('candidate', 'manual'))}; matrix {code(run.get('matrix'))}; "
        f"oracles {text(', '.join(run.get('oracles', [])))}",
        f"- environment: Python {text(env['python'])}, "
        + ", ".join(f"{text(k)} {text(v)}" for k, v in env["versions"].items() if v)
        + f"; {code(env['platform'])}; device {code(env['device'])}",
    ]
    for reason in s.get("unavailable", []):
        lines.append(f"- not run: {text(reason)}")
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
        lines += ["| op | pairs | dtype | agree | at kinks | disagree | error | skipped | worst error | of allowed | worst tensor |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for merged in _alike_groups(failing_groups):
            g = merged[0]
            w = max((m["worst"] for m in merged if m["worst"]), key=lambda w: w["ratio"] or 0.0, default=None)
            worst = (shown(w['normwise_rel_err'], '.1e'), shown(w['ratio'], '.2g'), cell(w["tensor"])) if w else ("", "", "")
            pairs = cell(g["pair"]) if len(merged) == 1 else (
                cell(g["pair"].split("~")[0] + "~") + " " + ", ".join(cell(m["pair"].split("~", 1)[1]) for m in merged))
            lines.append(
                f"| {text(g['op'])} | {pairs} | {text(g['dtype'])} | {g[AGREE]} | {g[CONVENTION]} | {g[DISAGREE]} "
                f"| {g[ERROR]} | {g[SKIPPED]} | {worst[0]} | {worst[1]} | {worst[2]} |")
        lines.append("")
    if passing_groups:
        agreeing = sum(g[AGREE] + g[CONVENTION] for g in passing_groups)
        lines += [f"{plural(len(passing_groups), 'group')} of op, pair and dtype agree throughout "
                  f"({plural(agreeing, 'comparison')}):", ""]
        for op in sorted({g["op"] for g in passing_groups}):
            mine = [g for g in passing_groups if g["op"] == op]
            pairs = ", ".join(code(p) for p in sorted({g["pair"] for g in mine}))
            dtypes = text(", ".join(sorted({g["dtype"] for g in mine})))
            lines.append(f"- {text(op)} ({dtypes}): {pairs}")
    if document.get("conventions"):
        lines += ["", "## Conventions at kinks", "",
                  "The derivative each implementation took where the op has none (ReLU at exactly 0, ...); "
                  "differences there are reported, not failed, unless --strict-kinks.", "",
                  "| op | dtype | implementation: derivative at the kink |", "|---|---|---|"]
        for c in document["conventions"]:
            taken = "; ".join(f"{cell(i)}: {', '.join(f'{v:g}' for v in vals)}" for i, vals in c["conventions"].items())
            lines.append(f"| {text(c['op'])} | {text(c['dtype'])} | {taken} |")
    bad = [r for r in document["comparisons"] if r["verdict"] in (DISAGREE, ERROR)]
    lines += ["", f"## Discrepancies ({len(bad)})", ""]
    if not bad:
        lines.append("None.")
    alike = _alike_records(bad)
    for group in alike[:MAX_DETAILED]:
        r = group[0]
        lines += [f"### {code(r['id'])}", "", f"- verdict: **{text(r['verdict'])}**", f"- message: {code(r['message'])}"]
        note = precision_note(r)
        if note:
            lines.append(f"- matmul precision: {text(note)}")
        for t in r["tensors"]:
            if t.get("agree"):
                continue
            if "problem" in t:
                lines.append(f"- {code(t['tensor'])}: {code(t['problem'])}")
                continue
            m = t["metrics"]
            lines.append(
                f"- {code(t['tensor'])}: worst element {code(m['worst_index'])}: {m['a_value']:.9g} vs {m['b_value']:.9g}; "
                f"max abs err {shown(m['max_abs_err'], '.3e')}, norm-wise rel err {shown(m['normwise_rel_err'], '.3e')} "
                f"(allowed {t['rtol']:.0e}), CS231n rel_error {shown(m['rel_error'], '.3e')}"
            )
        if r.get("traceback"):
            lines += ["", markdown_block(r["traceback"].rstrip())]
        if len(group) > 1:
            lines.append(f"- and {plural(len(group) - 1, 'more comparison')} like it ({text(', '.join(sorted({x['dtype'] for x in group})))}; "
                         f"against {text(', '.join(sorted({p for x in group for p in x['pair'] if p not in r['pair'][:1]})))})")
        lines.append("")
    if len(alike) > MAX_DETAILED:
        lines.append(f"... and {plural(len(alike) - MAX_DETAILED, 'more group')}, each in agreement.json; the findings above group them all.")
    return "\n".join(lines).rstrip() + "\n"
