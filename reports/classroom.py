"""A class of submissions as tables: CSV and HTML (function by submission, verdict and
cause), and each submission's results in the autograder ``results.json`` format Gradescope
reads.  Reads the class's rows (``gradmatrix.classroom`` makes them), runs nothing.

A row is one submission::

    {"submission": "alice", "file": "alice/layers.py", "status": 0, "seconds": 4.2,
     "message": "",                      # why it could not be checked, "" when it was
     "skipped_statements": [...],        # a script's top-level statements not run
     "functions": {"affine": {"functions": ["affine_forward", "affine_backward"],
                              "verdict": "pass" | "fail" | "error" | "not checked" | ...,
                              "cause": "...", "reproduce": "..."}}}

The class's functions are the union over its submissions, in first-seen order: a function
one submission lacks is "missing" there, so that every submission gets the same tests.
"""

from __future__ import annotations

import csv
import io

from gradmatrix.reports.escape import html_text

PASS, FAIL, ERROR, MISSING, NOT_CHECKED = "pass", "fail", "error", "missing", "not checked"
POINTS = 1.0  # a function's points in results.json: all for a pass, none otherwise
CSV_COLUMNS = ("submission", "file", "function", "functions", "verdict", "score", "max_score", "cause",
               "reproduce", "status", "seconds")
# the autograder specification's visibility values and test statuses (results.json)
GRADESCOPE_VISIBILITY = ("hidden", "after_due_date", "after_published", "visible")
GRADESCOPE_STATUS = ("passed", "failed")


def class_functions(rows: list) -> dict:
    """op -> its function names, over every submission, in first-seen order."""
    ops: dict = {}
    for row in rows:
        for op, entry in row["functions"].items():
            ops.setdefault(op, entry["functions"])
    return ops


def cell(row: dict, op: str) -> dict:
    """A submission's entry for one function of the class: its own, or why there is none
    (the submission could not be checked: its message; the file lacks the function)."""
    entry = row["functions"].get(op)
    if entry is not None:
        return entry
    if row["message"]:
        return {"functions": [], "verdict": NOT_CHECKED, "cause": row["message"], "reproduce": ""}
    return {"functions": [], "verdict": MISSING, "cause": f"not found in {row['file']}", "reproduce": ""}


def score(row: dict, ops) -> float:
    return sum(POINTS for op in ops if cell(row, op)["verdict"] == PASS)


def submission_verdict(row: dict, ops) -> str:
    """The submission's verdict: not checked (its message), error when a function raised,
    ended its process or ran past its time limit, else pass only when every function of
    the class passes."""
    if row["message"]:
        return NOT_CHECKED
    verdicts = [cell(row, op)["verdict"] for op in ops]
    if ERROR in verdicts:
        return ERROR
    return PASS if verdicts and all(v == PASS for v in verdicts) else FAIL


def line(row: dict, ops, done: int, total: int) -> str:
    """The console's line for a finished submission."""
    verdict = submission_verdict(row, ops or row["functions"])
    wrong = [f"{op}: {c['cause']}" for op in (ops or row["functions"])
             if (c := cell(row, op))["verdict"] not in (PASS, MISSING)]
    why = row["message"] or (wrong[0] if wrong else "")
    return (f"[{done}/{total}] {row['submission']}: {verdict.upper()} in {row['seconds']:.0f} s"
            + (f" ({why})" if why else ""))


def to_csv(rows: list) -> str:
    """One line per submission and function of the class (``CSV_COLUMNS``); a submission
    that could not be checked has one line per function with its message, or one line when
    the class has no function at all."""
    ops = class_functions(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        for op in ops or [""]:
            c = cell(row, op) if op else {"functions": [], "verdict": NOT_CHECKED, "cause": row["message"],
                                          "reproduce": ""}
            writer.writerow([row["submission"], row["file"], op, " ".join(c["functions"] or ops.get(op, [])),
                             c["verdict"], POINTS if c["verdict"] == PASS else 0.0, POINTS if op else 0.0,
                             c["cause"], c["reproduce"], row["status"], f"{row['seconds']:.1f}"])
    return out.getvalue()


def gradescope(row: dict, ops: dict) -> dict:
    """The submission's ``results.json`` for Gradescope's autograder: one test per function
    of the class (``name``, ``score``, ``max_score``, ``status``, ``output``), the total
    ``score``, ``execution_time`` in seconds and an ``output`` for the whole submission."""
    tests = []
    for number, (op, functions) in enumerate(ops.items(), 1):
        c = cell(row, op)
        passed = c["verdict"] == PASS
        output = f"{c['verdict'].upper()}" + (f": {c['cause']}" if c["cause"] else "")
        if c["reproduce"]:
            output += f"\nreproduce: {c['reproduce']}"
        tests.append({"name": f"{op} ({', '.join(c['functions'] or functions)})", "number": str(number),
                      "score": POINTS if passed else 0.0, "max_score": POINTS,
                      "status": "passed" if passed else "failed", "output": output})
    overall = row["message"] or f"gradmatrix checked {row['file']}: {submission_verdict(row, ops).upper()}"
    if row["skipped_statements"]:
        overall += (f"\n{len(row['skipped_statements'])} top-level statements of the file were not run "
                    f"(training, plotting or test code): " + "; ".join(
                        f"line {e['line']}: {e['statement']} ({e['reason']})" for e in row["skipped_statements"][:5]))
    return {"score": score(row, ops), "execution_time": round(row["seconds"]), "output": overall, "tests": tests}


CSS = """
body { font-family: system-ui, sans-serif; margin: 0.8em; line-height: 1.4; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
th:first-child, td:first-child { position: sticky; left: 0; background: #fff; }
td.pass { background: #d8f0d8; } td.fail { background: #f6d0d0; } td.error { background: #f3c2a0; }
td.missing, td.not-checked { background: #eee; color: #555; }
section { border-top: 1px solid #ccc; padding: 0.4em 0; overflow-wrap: anywhere; }
code { font-size: 0.85em; }
@media (max-width: 600px) { body { margin: 0.4em; } table { font-size: 0.8em; } }
"""


def to_html(rows: list) -> str:
    """The class table as one HTML page: function by submission, each cell its verdict
    (the cause on hover), then each submission's causes in full; the table scrolls sideways
    on a phone with the submission column held, and the causes wrap."""
    ops = class_functions(rows)
    head = "".join(f"<th>{html_text(op)}</th>" for op in ops)
    body = []
    for row in rows:
        cells = "".join(
            f"<td class=\"{c['verdict'].replace(' ', '-')}\" title=\"{html_text(c['cause'])}\">"
            f"{html_text(c['verdict'])}</td>" for c in (cell(row, op) for op in ops))
        body.append(f"<tr><td><a href=\"#{html_text(row['submission'])}\">{html_text(row['submission'])}</a></td>"
                    f"<td>{score(row, ops):g} / {POINTS * len(ops):g}</td>{cells}</tr>")
    sections = []
    for row in rows:
        items = [f"<li><b>{html_text(op)}</b>: {html_text(c['verdict'])}"
                 + (f": {html_text(c['cause'])}" if c["cause"] else "")
                 + (f"<br><code>{html_text(c['reproduce'])}</code>" if c["reproduce"] else "") + "</li>"
                 for op in ops if (c := cell(row, op))["verdict"] != PASS]
        if row["message"] and not ops:
            items.append(f"<li>{html_text(row['message'])}</li>")
        if row["skipped_statements"]:
            items.append(f"<li>{len(row['skipped_statements'])} top-level statements not run (a script): "
                         + html_text("; ".join(f"line {e['line']} ({e['reason']})"
                                               for e in row["skipped_statements"][:8])) + "</li>")
        verdict = submission_verdict(row, ops)
        sections.append(f"<section id=\"{html_text(row['submission'])}\"><h3>{html_text(row['submission'])}: "
                        f"{verdict}</h3><p><code>{html_text(row['file'])}</code>, {row['seconds']:.0f} s</p>"
                        + (f"<ul>{''.join(items)}</ul>" if items else "") + "</section>")
    counts = {v: sum(submission_verdict(r, ops) == v for r in rows) for v in (PASS, FAIL, ERROR, NOT_CHECKED)}
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>gradmatrix class table</title><style>{CSS}</style></head><body>"
            f"<h1>Class table: {len(rows)} submissions</h1>"
            f"<p>{counts[PASS]} pass, {counts[FAIL]} fail, {counts[ERROR]} error, {counts[NOT_CHECKED]} could not "
            "be checked.</p>"
            f"<div class=\"scroll\"><table><thead><tr><th>submission</th><th>score</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div><h2>Each submission</h2>{''.join(sections)}"
            "</body></html>\n")
