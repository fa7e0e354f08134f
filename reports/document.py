"""The agreement document: records of a run, summarised. Reports only read this.

``build`` turns the records a run produced (one per comparison, from
``reports.compare``) and the run's plan (the comparison ids it set out to make) into the
document that ``agreement.json`` holds and every other format is rendered from.

The summary is never taken on trust: ``summarize_run`` derives it from the records and the
plan, re-deriving each record's verdict from its per-tensor metrics, and ``verify`` does so
again for a document read back from disk (``gradmatrix report``, ``merge``, ``diff``).  A
run passes only when every planned comparison ran exactly once, nothing disagrees or
failed, no implementation asked for was unavailable (skipped), the candidate was compared
with something for each of its ops, and every record's verdict matches its metrics.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, defaultdict

from gradmatrix.oracles.modes import base_name
from gradmatrix.reports import findings
from gradmatrix.reports.compare import AGREE, CONVENTION, DISAGREE, ERROR, PASSING, SKIPPED
from gradmatrix.reports import severity
from gradmatrix.reports.severity import NON_FINITE_AT_EXTREME

SCHEMA = "gradmatrix/agreement"
# 2: the run's plan is recorded and the summary lists why a run does not pass; 3: non-finite
# numbers are written as {"$numberDouble": "Infinity"} (reports.writers), where 2 wrote null
SCHEMA_VERSION = 3
VERDICTS = (AGREE, CONVENTION, DISAGREE, ERROR, SKIPPED)


def digest(ids) -> str:
    """A fingerprint of a set of comparison ids (order and repeats do not matter)."""
    return hashlib.sha256("\n".join(sorted(set(ids))).encode("utf-8")).hexdigest()


def make_plan(ids, matrix_ids=None, shard: str | None = None) -> dict:
    """The plan a run records: the ids it set out to compare and the matrix they come from.

    Args:
        ids: the comparison ids of this run (a shard's, or the one of ``--only``).
        matrix_ids: every id of the matrix the run was cut from (default: ``ids``).
        shard: "I/N" when the run is one shard of the matrix.
    """
    ids = sorted(ids)
    matrix_ids = ids if matrix_ids is None else list(matrix_ids)
    return {"ids": ids, "shard": shard, "matrix": {"comparisons": len(set(matrix_ids)), "digest": digest(matrix_ids)}}


def tensor_passes(tensor: dict) -> bool:
    """A tensor entry agrees by its own metrics: no problem, and its worst element within
    its allowance (``of_allowed`` <= 1), consistent with its ``agree`` flag."""
    if tensor.get("warning") == NON_FINITE_AT_EXTREME and "problem" not in tensor:
        return True  # a non-finite value only at extreme inputs: a warning (reports.severity)
    ratio = tensor.get("of_allowed")
    return bool(tensor.get("agree")) and "problem" not in tensor and ratio is not None and ratio <= 1.0


def derived_verdict(record: dict, strict_kinks: bool = False) -> str:
    """The verdict a record's tensors support.  Error and skipped records measure nothing
    and keep theirs; a passing verdict needs measured tensors; a tensor outside its
    allowance passes only as a convention: different only at a kink, inside the
    subdifferential there (``subgradient``), without strict kinks."""
    if record["verdict"] in (ERROR, SKIPPED):
        return record["verdict"]
    tensors = record.get("tensors") or []
    if not tensors:
        return DISAGREE
    convention = False
    for tensor in tensors:
        if tensor_passes(tensor):
            continue
        if tensor.get("kink_only") and tensor.get("subgradient") and "problem" not in tensor and not strict_kinks:
            convention = True
            continue
        return DISAGREE
    return CONVENTION if convention else AGREE


def _owner(name: str) -> str:
    return base_name(name)


def summarize_run(records: list, run: dict, plan: dict, interrupted: str = "", problems=()) -> dict:
    """The summary of a run, derived from its records and plan (never from a stored summary).

    Args:
        records: the comparison records (their verdicts are checked against their metrics).
        run: the run's options (candidate, candidate_ops, ops, strict_kinks, only).
        plan: from ``make_plan``.
        interrupted: why the run stopped early, if it did.
        problems: further reasons the run does not pass (a merge's uncovered shards).

    Returns:
        The summary dict; ``passed`` only when ``problems`` stays empty and every planned
        comparison agrees.
    """
    problems = list(problems)
    strict = bool(run.get("strict_kinks"))
    planned = set(plan["ids"])
    seen = Counter(r["id"] for r in records)
    repeated = sorted(i for i, n in seen.items() if n > 1)
    unplanned = sorted(set(seen) - planned)
    inconsistent = [r["id"] for r in records if derived_verdict(r, strict) != r["verdict"]]
    counts = {v: 0 for v in VERDICTS}
    for record in records:
        counts[derived_verdict(record, strict)] += 1
    if repeated:
        problems.append(f"{len(repeated)} comparison(s) recorded more than once (first: {repeated[0]})")
    if unplanned:
        problems.append(f"{len(unplanned)} record(s) the plan does not contain (first: {unplanned[0]})")
    if inconsistent:
        problems.append(f"{len(inconsistent)} record(s) whose verdict does not match their metrics "
                        f"(first: {inconsistent[0]})")
    covers = plan["matrix"]["digest"] == digest(plan["ids"]) and plan["matrix"]["comparisons"] == len(planned)
    whole = not plan.get("shard") and not run.get("only")  # a run of the whole matrix must cover it
    expected = max(len(planned), plan["matrix"]["comparisons"]) if whole else len(planned)
    missing = expected - len(planned & set(seen))
    if whole and not covers:
        problems.append(f"the plan ({len(planned)} comparisons) does not cover its matrix "
                        f"({plan['matrix']['comparisons']} comparisons)")
    unavailable = sorted({r["message"] for r in records if r["verdict"] == SKIPPED})
    if counts[SKIPPED]:
        problems.append(f"{counts[SKIPPED]} comparison(s) skipped, an implementation asked for is unavailable "
                        f"({'; '.join(unavailable[:2])})")
    candidate = run.get("candidate")
    if candidate and records:
        # an op whose comparisons ran (or were skipped) without one measuring the candidate
        compared = {r["op"] for r in records if candidate in {_owner(n) for n in r["pair"]}
                    and derived_verdict(r, strict) != SKIPPED}
        idle = sorted({r["op"] for r in records} - compared)
        if idle:
            problems.append(f"{candidate} was compared with nothing for {', '.join(idle)}")
    if not records:
        problems.append("no comparison ran")
    # a run restricted to some ops (--ops, --only, a shard) answers for those alone
    wanted = None if run.get("only") or run.get("shard") else run.get("ops")
    restricted = bool(run.get("only") or run.get("shard"))
    stubs = [e["name"] for e in run.get("accounting") or ()
             if e.get("stub") and not restricted and (wanted is None or e.get("op") in wanted)]
    warnings = len(severity.collect(records))
    complete = missing == 0 and not interrupted and not repeated and not unplanned and (covers or not whole)
    return {
        "comparisons": len(records),
        "expected": expected,
        "missing": missing,
        "complete": complete,
        "interrupted": interrupted,
        **counts,
        # a function left as the starter's stub fails the module, whatever the rest does
        "passed": complete and counts[DISAGREE] == 0 and counts[ERROR] == 0 and not problems and not stubs
                  and not (run.get("strict") and warnings),
        # differences that leave every value right (reports.severity), each counted once per op;
        # they fail only a strict run
        "warnings": warnings,
        "unavailable": unavailable,
        "problems": problems,
        # functions and classes of the candidate module that were not checked (run.accounting)
        "unchecked": sum(1 for e in run.get("accounting") or () if not e["checked"]),
        "stubs": stubs,  # functions left as the starter's stubs: each fails the module
    }


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
          started: float | None = None, interrupted: str = "", plan: dict | None = None,
          problems=()) -> dict:
    """The agreement document of a run.

    Args:
        records: comparison records (any order; sorted by id here, for determinism).
        environment: from ``reports.environment.collect``.
        run: the options of the run (matrix, ops, dtypes, oracles, seeds, candidate, ...).
        expected: how many comparisons the run planned, when no ``plan`` is given (the
            plan is then the records' ids, padded with ``expected - len(records)``
            placeholders: fewer records means incomplete).
        started: the run's start (``time.time()``), for its duration.
        interrupted: why the run stopped early, if it did.
        plan: from ``make_plan``: the ids the run set out to compare.
        problems: further reasons the run does not pass (see ``summarize_run``).

    Returns:
        A JSON-ready dict; ``summary.passed`` is true only for a complete run with no
        disagreement, error, skip or inconsistent record.
    """
    records = sorted(records, key=lambda r: r["id"])
    if plan is None:
        ids = [r["id"] for r in records]
        ids += [f"(planned comparison {i})" for i in range(max(0, (expected or 0) - len(set(ids))))]
        plan = make_plan(ids)
    now = time.time()
    summary = summarize_run(records, run, plan, interrupted, problems)
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "duration_s": None if started is None else round(now - started, 3),
        "environment": environment,
        "run": run,
        "plan": plan,
        "summary": summary,
        "matmul_precision": precision_summary(records),
        "groups": summarize(records),
        "conventions": kink_conventions(records),
        # the candidate's own verdict is a pass only where the run as a whole passes (complete,
        # nothing skipped, every record consistent): never a pass the summary does not give
        "verdict": findings.verdict(records, run.get("candidate", ""), summary["passed"]),
        "findings": findings.build(records, run.get("candidate", "")),
        "warnings": severity.collect(records),
        "comparisons": records,
    }


def verify(document: dict) -> dict:
    """A document read back, its summary and every derived section recomputed from its
    records and plan: an edited verdict, a record cut out, or a stored ``passed`` that the
    records do not support cannot pass.  Records whose verdict disagrees with their
    metrics are counted under the verdict their metrics support (and listed as a problem).

    Returns:
        A new document (the same created, duration, environment, run, plan and merge).
    """
    run = document["run"]
    strict = bool(run.get("strict_kinks"))
    records = [dict(r, verdict=derived_verdict(r, strict)) if derived_verdict(r, strict) != r["verdict"] else r
               for r in document["comparisons"]]
    problems = []
    inconsistent = [r["id"] for r in document["comparisons"] if derived_verdict(r, strict) != r["verdict"]]
    if inconsistent:
        problems.append(f"{len(inconsistent)} record(s) whose stored verdict does not match their metrics "
                        f"(first: {inconsistent[0]})")
    merge = document.get("merge") or {}
    problems += list(merge.get("problems", []))
    if merge.get("conflicts"):
        problems.append(f"{len(merge['conflicts'])} comparison(s) differ between shards")
    rebuilt = build(records, document["environment"], run, interrupted=document["summary"].get("interrupted", ""),
                    plan=document["plan"], problems=problems)
    rebuilt["created"], rebuilt["duration_s"] = document["created"], document.get("duration_s")
    if "merge" in document:
        rebuilt["merge"] = document["merge"]
    return rebuilt


def check_status(document: dict) -> int:
    """Exit status of checking a candidate: 0 all agree, 1 a disagreement (or an incomplete
    run), 2 the candidate could not be checked (it raised, or returned the wrong structure,
    shape or dtype, also when its gradient was differenced for a Hessian-vector product)."""
    candidate = document["run"].get("candidate")
    own = (candidate, f"{candidate}.fd")  # in "hvp" cases the candidate's gradient is differenced
    for record in document["comparisons"]:
        if not any(name in own for name in record["pair"]):
            continue
        if record["verdict"] == ERROR and (record.get("error") or {}).get("impl", record["pair"][0]) in own:
            return 2
        if any(t.get("structural") and (t.get("problem_detail") or {}).get("impl") in own for t in record["tensors"]):
            return 2
    return 0 if document["summary"]["passed"] else 1
