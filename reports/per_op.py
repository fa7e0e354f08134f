"""The verdict of each op of a run, from its records: what ``CheckResult.per_op`` returns and
the line per op the console, a pytest failure, ``repr`` and the reports print.

An op agrees only when its comparisons ran and agree; 0 of 0 is "not run", never "agree".
Its worst comparison is the one using the largest share of its allowed error among the
candidate's plain gradients (what the console's first finding shows), errors first.
"""

from __future__ import annotations

from gradmatrix.oracles.modes import base_name
from gradmatrix.reports.compare import DISAGREE, ERROR, PASSING, SKIPPED
from gradmatrix.reports.document import worst_ratio

AGREE = "agree"
NOT_RUN = "not run"
INCOMPLETE = "incomplete"
# how each verdict reads in the line per op
WORDS = {AGREE: "PASS", DISAGREE: "FAIL", ERROR: "ERROR", NOT_RUN: "NOT RUN", SKIPPED: "SKIPPED",
         INCOMPLETE: "INCOMPLETE"}


def _rank(record: dict) -> tuple:
    """Errors first, then the candidate's plain gradients (which name the element), then by
    the share of the allowance used."""
    return (record["verdict"] == ERROR, record.get("case_kind") in ("random", "kink"), worst_ratio(record) or 0.0)


def _worst_tensor(record: dict) -> dict | None:
    measured = [t for t in record.get("tensors", ()) if "of_allowed" in t]
    return max(measured, key=lambda t: t["of_allowed"], default=None)


def agreeing_message(record: dict) -> str:
    """A passing record's message (a passing record stores none): its closest tensor."""
    t = _worst_tensor(record)
    if t is None:
        return f"{' vs '.join(record['pair'])}, {record['dtype']}: agrees"
    return (f"{t['tensor']} ({' vs '.join(record['pair'])}, {record['dtype']}): agrees, max rel err "
            f"{t['metrics']['normwise_rel_err']:.1e} ({t['of_allowed']:.0%} of the allowed {t['rtol']:.0e}); in "
            f"{record['id']}")


def per_op(document: dict) -> dict:
    """op -> {"verdict", "comparisons", "failures", "agreeing", "references_failing", "worst",
    "notes", "line"}.

    ``comparisons``, ``failures`` and ``agreeing`` count the candidate's own comparisons of
    the op (all of them where it has none); ``references_failing`` the references' among
    themselves that disagree or fail.

    ``verdict`` is "agree", "disagree" or "error" by the op's records; "not run" when none of
    its comparisons ran, "skipped" when the candidate was compared with nothing, "incomplete"
    when what ran agrees but the run as a whole is incomplete or has problems.  ``worst`` is
    the worst record (a copy whose ``message`` is never empty), ``line`` the verdict line.
    """
    ops: dict = {}
    run = document["run"]
    summary = document["summary"]
    candidate = run.get("candidate")
    by_op: dict = {}
    for r in document["comparisons"]:
        by_op.setdefault(r["op"], []).append(r)
    for op in run.get("ops") or run.get("candidate_ops") or sorted(by_op):
        records = by_op.get(op, [])
        bad = [r for r in records if r["verdict"] in (DISAGREE, ERROR)]
        # the candidate's own comparisons: what the line counts (the references' among
        # themselves have a line of their own)
        own = [r for r in records if candidate in {base_name(n) for n in r["pair"]}] or records
        measured = [r for r in own if r["verdict"] != SKIPPED]
        verdict = ERROR if any(r["verdict"] == ERROR for r in bad) else (DISAGREE if bad else AGREE)
        if verdict == AGREE and not records:
            verdict = NOT_RUN
        elif verdict == AGREE and not measured:
            verdict = SKIPPED  # the candidate was compared with nothing
        elif verdict == AGREE and (any(r["verdict"] == SKIPPED for r in records)
                                   or not summary["complete"] or summary["problems"]):
            verdict = INCOMPLETE  # what ran agrees, but not all of it ran: never a pass
        worst = max(bad or records, key=_rank, default=None)
        if worst is not None and not worst.get("message"):
            worst = dict(worst, message=agreeing_message(worst))
        own_bad = sum(r["verdict"] in (DISAGREE, ERROR) for r in own)
        entry = {"verdict": verdict, "comparisons": len(own), "failures": own_bad,
                 "references_failing": len(bad) - own_bad if own is not records else 0,
                 "agreeing": sum(r["verdict"] in PASSING for r in own), "worst": worst,
                 "notes": sorted({n for r in records for n in r.get("notes", ())})}
        entry["line"] = op_line(op, entry)
        ops[op] = entry
    return ops


def op_line(op: str, entry: dict) -> str:
    """``batchnorm: FAIL, 50 of 102 comparisons disagree (worst dx: 6.9e-01 relative, allowed 1e-10)``."""
    word = WORDS.get(entry["verdict"], entry["verdict"].upper())
    n = entry["comparisons"]
    if entry["verdict"] in (DISAGREE, ERROR) and not entry["failures"]:  # only the references among themselves
        return (f"{op}: {word}, {entry['agreeing']} of {n} comparisons agree, but the references disagree or fail "
                f"among themselves in {entry.get('references_failing', 0)}")
    if entry["verdict"] in (DISAGREE, ERROR):
        head = f"{op}: {word}, {entry['failures']} of {n} comparisons {'fail' if entry['verdict'] == ERROR else 'disagree'}"
        if entry.get("references_failing"):
            head += f"; the references among themselves in {entry['references_failing']} more"
    elif entry["verdict"] == AGREE:
        head = f"{op}: {word}, {entry['agreeing']} of {n} comparisons agree"
    else:
        head = f"{op}: {word}, {entry['agreeing']} of {n} comparisons agree; not a pass"
    worst = entry["worst"]
    if worst is None or worst["verdict"] == ERROR:
        return head
    failing = [t for t in worst.get("tensors", ()) if not t.get("agree", True)]
    if worst["verdict"] == DISAGREE and failing and not any("of_allowed" in t for t in failing):
        # wrong structure (a dtype, a shape): no error to measure; what was wrong
        return f"{head} ({failing[0].get('problem') or failing[0]['tensor'] + ': wrong'})"
    t = _worst_tensor(dict(worst, tensors=failing) if failing else worst)
    if t is None:
        return head
    return (f"{head} (closest to its limit: {t['tensor']}, {worst['dtype']}, {t['of_allowed']:.0%} of the allowed error)"
            if t["of_allowed"] <= 1 else
            f"{head} (worst {t['tensor']}: {t['metrics']['normwise_rel_err']:.1e} relative, allowed {t['rtol']:.0e})")


def op_lines(document: dict, compact: bool = False) -> list:
    """One verdict line per op that ran (``console.not_run_lines`` names the others);
    ``compact``: the ops that pass share one line."""
    ops = {op: entry for op, entry in per_op(document).items() if entry["verdict"] != NOT_RUN}
    if not compact:
        return [entry["line"] for entry in ops.values()]
    passing = [op for op, entry in ops.items() if entry["verdict"] == AGREE]
    lines = [entry["line"] for entry in ops.values() if entry["verdict"] != AGREE]
    if passing:
        lines.append(f"PASS: {', '.join(passing)}" if len(passing) > 1 else ops[passing[0]]["line"])
    return lines
