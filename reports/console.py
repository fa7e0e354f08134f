"""What a run prints on the console: the verdict, one short block per finding, worst first.

The candidate's verdict counts only its own comparisons; the references' agreement among
themselves is one line apart, a health check of the references.  Forward-mode and
second-order findings that accompany a reverse-mode one get a line each ("also: ..."): they
are the same mistake seen through another check.
"""

from __future__ import annotations

import json

from gradmatrix.oracles.modes import base_name
from gradmatrix.reports import severity
from gradmatrix.reports.compare import DISAGREE, VACUOUS_OVERRIDE
from gradmatrix.reports.per_op import op_lines

MAX_BLOCKS = 3  # reverse-mode findings shown in full, then one line each up to MAX_LINES
MAX_LINES = 12
MAX_WARNING_ITEMS = 4  # what each warning line names before it counts the rest
MAX_ALSO = 3


def plural(count: int, word: str, plural_form: str | None = None) -> str:
    """``1 comparison``, ``2 comparisons``."""
    return f"{count} {word if count == 1 else (plural_form or word + 's')}"


def _cases(names: list) -> str:
    return plural(len(names), "case")


def verdict_text(document: dict) -> str:
    """The one-line verdict of the candidate, from its own comparisons."""
    v = document.get("verdict") or {}
    s = document["summary"]
    own = v.get("candidate") or {"comparisons": s["comparisons"], "agree": s["agree"] + s["convention"],
                                 "disagree": s["disagree"], "error": s["error"], "skipped": s["skipped"]}
    name = document["run"].get("candidate", "the candidate")
    n = own["comparisons"]
    if not s["complete"]:
        why = f": {s['interrupted']}" if s.get("interrupted") else ""
        head = (f"INCOMPLETE: {s['missing']} of {plural(s['expected'], 'comparison')} did not run{why}; "
                f"this is not a pass")
        if own["disagree"] or own["error"]:
            head += f" ({own['disagree']} disagree, {plural(own['error'], 'error')} so far)"
        return head
    if own.get("cannot_check", own["error"]):
        bad = own.get("cannot_check", own["error"])
        rest = own["disagree"] + own["error"] - bad
        return (f"ERROR: {name} could not be checked in {bad} of {plural(n, 'comparison')} "
                f"(it raised, or returned the wrong structure, shape or dtype)"
                + (f"; {rest} more disagree" if rest > 0 else ""))
    if own["disagree"] and _judged_by_a_vacuous_override(document) == own["disagree"]:
        reason = (document["run"].get("tolerance_override") or {}).get("reason")
        return (f"NOT A PASS: the tolerance override{f' ({reason})' if reason else ''} is too loose to judge "
                f"{own['disagree']} of {plural(n, 'comparison')}: it allows 10% or more of the values themselves, so "
                f"it cannot tell a wrong gradient from rounding there; lower it (each finding says below what)")
    if own["disagree"]:
        return f"FAIL: {name} disagrees with the references in {own['disagree']} of {plural(n, 'comparison')}"
    if own["error"]:  # none blamed on the candidate: the references it is compared with failed there
        return (f"NOT A PASS: {name} could not be checked in {own['error']} of {plural(n, 'comparison')}: the "
                f"reference failed there, not {name} (below)")
    if s.get("stubs"):
        return (f"FAIL: {name} leaves {', '.join(s['stubs'])} unimplemented (the starter's stub); "
                f"the rest agrees in {plural(n, 'comparison')}")
    if not n:
        return "FAIL: no comparison of the candidate ran"
    if not s.get("passed", True) and s.get("warnings") and document["run"].get("strict") and not s.get("problems"):
        return (f"FAIL (strict): {name} agrees in all {plural(n, 'comparison')}, but with "
                f"{plural(s['warnings'], 'warning')} (below), which --strict fails")
    if not s.get("passed", True):  # complete and agreeing, but the run does not pass (a skip, a problem)
        return f"NOT A PASS: {'; '.join(s.get('problems') or ['the run does not pass'])}"
    kinks = s.get("convention", 0)
    note = f" ({plural(kinks, 'comparison')} differ only at kinks, by convention)" if kinks else ""
    if s.get("warnings"):
        note += f"; {plural(s['warnings'], 'warning')}, below"
    return f"PASS: {name} agrees in all {plural(n, 'comparison')}" + note if n > 1 else f"PASS: {name} agrees in its 1 comparison{note}"


def _judged_by_a_vacuous_override(document: dict) -> int:
    """The candidate's disagreeing comparisons whose every failing tensor fails only because
    the tolerance override allows as much as the values themselves there."""
    candidate = document["run"].get("candidate")
    count = 0
    for r in document["comparisons"]:
        failing = [t for t in r["tensors"] if not t.get("agree", True)]
        count += (r["verdict"] == DISAGREE and candidate in {base_name(n) for n in r["pair"]} and bool(failing)
                  and all((t.get("problem_detail") or {}).get("kind") == VACUOUS_OVERRIDE for t in failing))
    return count


def references_text(document: dict) -> str | None:
    """The references' health: how their comparisons among themselves went."""
    ref = (document.get("verdict") or {}).get("references")
    if not ref or not ref["comparisons"]:
        return None
    if not ref["disagree"] + ref["error"]:
        return f"references agree among themselves: {ref['agree']} of {plural(ref['comparisons'], 'comparison')}"
    what = [f"disagree among themselves in {ref['disagree']}"] * bool(ref["disagree"]) \
        + [f"fail (raise, or give no result) in {ref['error']}"] * bool(ref["error"])
    return (f"WARNING: the references {' and '.join(what)} of {plural(ref['comparisons'], 'comparison')}; "
            f"a verdict against them is only as good as they are (see the report)")


def finding_title(f: dict) -> str:
    what = {"values": "wrong values", "shape": "wrong shape", "shape, values": "wrong shape or values",
            "dtype": "wrong dtype", "non-finite": "non-finite values", "missing": "missing",
            "state-outside-cache": "depends on state outside the cache",
            "not-repeatable": "changes when backward runs again"}.get(f["pattern"], f["pattern"])
    tensor = f" {f['tensor']}" if f["tensor"] else ""
    mode = {"jvp": " (forward mode)", "hvp": " (second order)"}.get(f["family"], "")
    passing = f"; {len(f['passing_cases'])} agree" if f["passing_cases"] else ""
    return (f"{f['op']}{tensor}{mode}: {what} in {_cases(f['cases'])} ({plural(f['count'], 'comparison')}, "
            f"{' and '.join(f['dtypes'])}){passing}")


def shown(value, spec: str) -> str:
    """A metric as the reports print it; a record stores an infinite one (a relative error
    against a reference of exactly 0) as null, printed "inf"."""
    return "inf" if value is None else format(value, spec)


def worst_text(f: dict) -> str:
    w = f["worst"]
    if f["pattern"] == VACUOUS_OVERRIDE and w.get("problem"):
        return w["problem"]  # the finding's tensor's, not the record's first failing one
    if "candidate_value" in w:
        index = f" at {w['index']}" if w.get("index") else ""
        reference = next((n for n in w["pair"] if n in f["references"]), "the reference")
        a, b = _distinct(w["candidate_value"], w["reference_value"])
        return (f"{a} vs {b} ({reference}){index}, "
                f"error {shown(w['normwise_rel_err'], '.1e')} relative, allowed {w['rtol']:.0e}; in {w['id']}")
    return w["message"]


def _distinct(a: float, b: float) -> tuple:
    """Two numbers with just enough digits to tell them apart (at most 17)."""
    for digits in (6, 9, 12, 17):
        sa, sb = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if sa != sb:
            break
    return sa, sb


def at_fault(f: dict, found: list, functions: dict) -> str | None:
    """Which of the candidate's functions a finding points at: the forward when its output
    is wrong, else the backward (whose forward's output agrees), from the functions the run
    recorded for the op (``run.candidate_functions``)."""
    names = functions.get(f["op"])
    if not names or f.get("role") is None:
        return None
    if len(names) == 1 or f["role"] == "forward":
        return f"in {names[0]}" + (" (its output)" if len(names) > 1 else "")
    output_wrong = any(g["op"] == f["op"] and g.get("role") == "forward" and g["impl"] == f["impl"] for g in found)
    return f"in {names[-1]}" + ("" if output_wrong else f" ({names[0]}'s output agrees)")


def finding_block(number: int, f: dict, where: str | None = None) -> list:
    lines = [f"{number}. {finding_title(f)}" + (f", {where}" if where else "")]
    if f["cause"]:
        lines.append(f"   likely cause: {f['cause']['text']}")
        lines.append(f"   evidence: {f['cause']['evidence']}")
    lines.append(f"   worst: {worst_text(f)}")
    if f["worst"].get("reproduce"):
        lines.append(f"   reproduce: {f['worst']['reproduce']}")
    return lines


def _bounds_text(name: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return f"{name} " + ", ".join(f"{dtype} {v:.0e}" for dtype, v in value.items())
    return f"{name} {value:.0e}"


def override_lines(document: dict) -> list:
    """One line per tolerance override in force (the call's, each layer's), with its reason
    and the ops whose comparisons it loosened: ``tolerance override (call): rtol float32
    2e-03 (why)``."""
    seen: dict = {}
    for record in document["comparisons"]:
        for o in (record.get("tolerance") or {}).get("overrides", ()):
            key = json.dumps(o, sort_keys=True)
            seen.setdefault(key, (o, []))
            if record["op"] not in seen[key][1]:
                seen[key][1].append(record["op"])
    given = document["run"].get("tolerance_override")
    if given and json.dumps(given, sort_keys=True) not in seen:
        seen[json.dumps(given, sort_keys=True)] = (given, [])  # given, but no comparison it could loosen
    lines = []
    for o, ops in seen.values():
        bounds = "; ".join(b for b in (_bounds_text("rtol", o.get("rtol")), _bounds_text("atol", o.get("atol"))) if b)
        where = f", on {', '.join(ops)}" if ops else ", on no comparison"
        lines.append(f"tolerance override ({o.get('scope', 'call')}{where}): {bounds} ({o['reason']})")
    return lines


def warning_lines(document: dict) -> list:
    """One line per kind of warning (``reports.severity``): what it means, then each
    occurrence (op and tensor, or function and parameter), after every error."""
    by_kind: dict = {}
    for w in document.get("warnings") or ():
        by_kind.setdefault(w["kind"], []).append(w)
    lines = []
    for kind, found in by_kind.items():
        items = [f"{w['op']}: {severity.describe(w)}" for w in found]
        more = f"; and {len(items) - MAX_WARNING_ITEMS} more" if len(items) > MAX_WARNING_ITEMS else ""
        lines.append(f"warning ({kind}): {severity.WARNINGS.get(kind, kind)}: "
                     f"{'; '.join(items[:MAX_WARNING_ITEMS])}{more}")
    return lines


def not_run_lines(document: dict) -> list:
    """One line per op of the run none of whose comparisons ran: such an op agrees in 0 of 0,
    which is not agreement, so it is named as not run."""
    run = document["run"]
    ran = {r["op"] for r in document["comparisons"]}
    return [f"{op}: did not run (0 comparisons)" for op in run.get("ops") or run.get("candidate_ops") or ()
            if op not in ran]


def render(document: dict, paths=(), compact: bool = False) -> list:
    """The console lines of a run: verdict, ops that did not run, findings (worst first), a
    verdict line per op (``compact``: the ops that pass share one), warnings, references'
    health, paths.  A pytest failure, ``repr`` and the notebook view show these same lines."""
    lines = [verdict_text(document)] + not_run_lines(document)
    found = document.get("findings") or []
    main = [f for f in found if f["family"] == "reverse"] or found[:MAX_BLOCKS]
    others = [f for f in found if f not in main]
    functions = document["run"].get("candidate_functions") or {}
    for number, f in enumerate(main[:MAX_BLOCKS], 1):
        where = at_fault(f, found, functions) if f["impl"] == document["run"].get("candidate") else None
        lines += finding_block(number, f, where)
    # every further reverse-mode error gets a line of its own: a real bug is never hidden
    # behind a count (warnings, which leave the values right, are not findings: see below)
    for number, f in enumerate(main[MAX_BLOCKS:MAX_LINES], MAX_BLOCKS + 1):
        where = at_fault(f, found, functions) if f["impl"] == document["run"].get("candidate") else None
        cause = f"; likely cause: {f['cause']['text']}" if f["cause"] else ""
        lines.append(f"{number}. {finding_title(f)}" + (f", {where}" if where else "") + cause)
    for f in others[:MAX_ALSO]:
        cause = f" ({f['cause']['text']})" if f["cause"] else ""
        lines.append(f"   also: {finding_title(f)}{cause}")
    hidden = len(main[MAX_LINES:]) + len(others[MAX_ALSO:])
    if hidden:
        lines.append(f"   ... and {plural(hidden, 'more finding')} in the report")
    lines += op_lines(document, compact)
    lines += override_lines(document)
    lines += warning_lines(document)
    health = references_text(document)
    if health:
        lines.append(health)
    notes = dict.fromkeys(n for r in document["comparisons"] for n in r.get("notes", ()))
    lines += [f"convention: {n}" for n in notes]  # what the candidate's contract found out (an L2 factor, dropout's p)
    lines += [f"report: {p}" for p in paths]
    return lines


def skipped_line(run: dict) -> str | None:
    """One line on a script's top-level statements that were not run (``run.skipped_statements``,
    ``oracles.scripts``): how many, their lines and why; None for a file imported as it is."""
    skipped = run.get("skipped_statements") or []
    if not skipped:
        return None
    lines = sorted({e["line"] for e in skipped})
    at = ", ".join(str(n) for n in lines[:8]) + (f" and {len(lines) - 8} more" if len(lines) > 8 else "")
    reasons = list(dict.fromkeys(e["reason"] for e in skipped))
    why = "; ".join(reasons[:4]) + ("; ..." if len(reasons) > 4 else "")
    return (f"gradmatrix check: {run.get('candidate', 'the file')} is a script: its definitions were loaded, "
            f"{plural(len(skipped), 'top-level statement')} not run (line{'s' if len(lines) > 1 else ''} {at}: "
            f"{why}); see skipped_statements in the report")
