"""The agreement document: records of a run, summarised. Reports only read this.

``build`` turns the records a run produced (one per comparison, from
``reports.compare``) into the document that ``agreement.json`` holds and every other format
is rendered from.
"""

from __future__ import annotations

import time
from collections import defaultdict

from gradmatrix.reports.compare import AGREE, CONVENTION, DISAGREE, ERROR, SKIPPED

SCHEMA = "gradmatrix/agreement"
SCHEMA_VERSION = 1
VERDICTS = (AGREE, CONVENTION, DISAGREE, ERROR, SKIPPED)


def worst_ratio(record: dict) -> float | None:
    """Largest share of its allowed error used by any tensor of a record (None if none measured).

    Tensors that differ only at a kink are left out of a passing ("convention") record: their
    difference is a convention, reported separately, not an error.
    """
    skip_kinks = record.get("verdict") == CONVENTION
    ratios = [t["of_allowed"] for t in record.get("tensors", [])
              if "of_allowed" in t and not (skip_kinks and t.get("kink_only"))]
    return max(ratios) if ratios else None


def precision_note(record: dict) -> str | None:
    """What repeating a float32 disagreement at matmul precision "highest" showed, in words
    (None when it was not repeated: no torch/JAX in the pair, float64, or already highest)."""
    again = record.get("at_highest_precision")
    if not again:
        return None
    if again["verdict"] in (AGREE, CONVENTION):
        return ("disappears at matmul precision 'highest': the cause is the framework's reduced-precision "
                "float32 matmul (TF32 or similar), not a wrong gradient")
    return f"persists at matmul precision 'highest' ({again['verdict']}): not explained by matmul precision"


def precision_summary(records: list) -> dict:
    """How many float32 disagreements were repeated at precision "highest", and how many
    of them disappeared there."""
    rechecked = [r for r in records if r.get("at_highest_precision")]
    gone = [r for r in rechecked if r["at_highest_precision"]["verdict"] in (AGREE, CONVENTION)]
    return {"rechecked": len(rechecked), "disappear_at_highest": len(gone)}


def precision_line(document: dict) -> str | None:
    """One sentence on the float32 disagreements repeated at precision "highest", if any."""
    p = document.get("matmul_precision") or {}
    if not p.get("rechecked"):
        return None
    env = document.get("environment", {})
    return (f"{p['rechecked']} float32 disagreement(s) involving torch or JAX (device {env.get('device', 'cpu')}, "
            f"matmul precision {env.get('matmul_precision', 'default')}) were repeated at precision 'highest': "
            f"{p['disappear_at_highest']} disappear there (reduced-precision float32 matmul, not a wrong gradient), "
            f"{p['rechecked'] - p['disappear_at_highest']} persist")


def _group_key(record: dict) -> tuple:
    return (record["op"], "~".join(record["pair"]), record["dtype"])


def summarize(records: list) -> list:
    """Per op x pair x dtype: counts by verdict and the worst error, as a sorted list."""
    groups: dict = defaultdict(lambda: {v: 0 for v in VERDICTS} | {"worst": None})
    for record in records:
        group = groups[_group_key(record)]
        group[record["verdict"]] += 1
        ratio = worst_ratio(record)
        if ratio is not None and (group["worst"] is None or ratio > group["worst"]["ratio"]):
            tensor = max(
                (t for t in record["tensors"] if "metrics" in t and not (record["verdict"] == CONVENTION and t.get("kink_only"))),
                key=lambda t: t["of_allowed"],
            )
            group["worst"] = {
                "ratio": ratio,
                "normwise_rel_err": tensor["metrics"]["normwise_rel_err"],
                "rtol": tensor["rtol"],
                "tensor": tensor["tensor"],
                "id": record["id"],
            }
    return [
        {"op": op, "pair": pair, "dtype": dtype, "comparisons": sum(g[v] for v in VERDICTS), **g}
        for (op, pair, dtype), g in sorted(groups.items())
    ]


def kink_conventions(records: list) -> list:
    """Per op and dtype, the derivative each implementation took at the kink (from kink cases)."""
    seen: dict = defaultdict(dict)
    for record in records:
        for impl, value in (record.get("conventions") or {}).items():
            if value is not None:
                seen[(record["op"], record["dtype"])].setdefault(impl, set()).add(value)
    return [
        {"op": op, "dtype": dtype, "conventions": {impl: sorted(v) for impl, v in sorted(impls.items())}}
        for (op, dtype), impls in sorted(seen.items())
    ]


def build(records: list, environment: dict, run: dict, expected: int | None = None,
          started: float | None = None, interrupted: str = "") -> dict:
    """The agreement document of a run.

    Args:
        records: comparison records (any order; sorted by id here, for determinism).
        environment: from ``reports.environment.collect``.
        run: the options of the run (matrix, ops, dtypes, oracles, seeds, candidate, ...).
        expected: how many comparisons the run planned; fewer records means incomplete.
        started: the run's start (``time.time()``), for its duration.
        interrupted: why the run stopped early, if it did.

    Returns:
        A JSON-ready dict; ``summary.passed`` is true only for a complete run with no
        disagreement or error.
    """
    records = sorted(records, key=lambda r: r["id"])
    counts = {v: sum(r["verdict"] == v for r in records) for v in VERDICTS}
    expected = len(records) if expected is None else expected
    complete = len(records) >= expected and not interrupted
    unavailable = sorted({r["message"] for r in records if r["verdict"] == SKIPPED})
    now = time.time()
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "duration_s": None if started is None else round(now - started, 3),
        "environment": environment,
        "run": run,
        "summary": {
            "comparisons": len(records),
            "expected": expected,
            "missing": max(0, expected - len(records)),
            "complete": complete,
            "interrupted": interrupted,
            **counts,
            "passed": complete and counts[DISAGREE] == 0 and counts[ERROR] == 0 and len(records) > 0,
            "unavailable": unavailable,
            # functions and classes of the candidate module that were not checked (run.accounting)
            "unchecked": sum(1 for e in run.get("accounting") or () if not e["checked"]),
        },
        "matmul_precision": precision_summary(records),
        "groups": summarize(records),
        "conventions": kink_conventions(records),
        "comparisons": records,
    }


def check_status(document: dict) -> int:
    """Exit status of checking a candidate: 0 all agree, 1 a disagreement (or an incomplete
    run), 2 the candidate could not be checked (it raised, or returned the wrong structure,
    shape or dtype, also when its gradient was differenced for a Hessian-vector product)."""
    candidate = document["run"].get("candidate")
    own = (candidate, f"{candidate}.fd")  # in "hvp" cases the candidate's gradient is differenced
    for record in document["comparisons"]:
        if not any(name in own for name in record["pair"]):
            continue
        if record["verdict"] == ERROR and (record["pair"][0] == candidate
                                           or record["message"].startswith(f"{candidate}.fd failed")):
            return 2
        if any(t.get("structural") and candidate in t.get("problem", "") for t in record["tensors"]):
            return 2
    return 0 if document["summary"]["passed"] else 1
