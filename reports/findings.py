"""Findings: the candidate's failing comparisons grouped by mistake, each with a likely cause.

A run compares the candidate with every reference on every case, so one mistake fails dozens
of comparisons the same way.  A finding is one such group: the same implementation, op,
tensor and failure pattern ("values", "shape", "dtype", "non-finite", "missing", or the
exception raised).  It counts the comparisons, lists the cases it covers and the cases of the
op that pass, keeps the worst comparison, and states a likely cause where the numbers show
one, with its evidence:

- a constant ratio to the reference (8 = N: a missing 1/N; 2: a factor 2; -1: a sign);
- a transpose (the candidate's values are the reference transposed);
- a sum over the wrong axis (a shape whose length is another dimension of the case);
- agreement only at one value of a dimension (N = 1, pad = 0, reg = 0), only without
  overlapping windows, only away from kinks;
- errors only in float64 at float32's accuracy (float32 arithmetic inside a float64
  computation), or only in float32 (precision).

``verdict`` counts the candidate's own comparisons; agreement among the references
(torch~jax, torch~numeric, ...) is counted apart, as a health check of the references.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict

from gradmatrix.reports.compare import DISAGREE, ERROR, PASSING, SKIPPED, headline

# the causes of the call-order problems (reports.compare.ORDER_PROBLEMS), as the console says them
ORDER_PROBLEMS = {
    "state-outside-cache": "backward reads state outside its cache (a variable its forward sets, not the cache it "
                           "returns): right in a single-layer test, wrong in a network of two such layers",
    "not-repeatable": "backward changes its cache or keeps state between calls: a second call on the same cache "
                      "gives another gradient",
}

# how close two ratios must be to be "the same"; ratios come from least-squares fits of
# float32 or float64 values, so 1e-3 leaves room for float32 rounding and none for a real change
_SAME = 1e-3
_PATTERN_RANK = {"raised": 0, "error": 0, "missing": 1, "shape": 1, "dtype": 2, "non-finite": 3, "values": 4}


def is_candidate(name: str, candidate: str) -> bool:
    """Whether a pair member is the candidate (its gradient differenced, ``<name>.fd``, included)."""
    return name == candidate or name.startswith(candidate + ".")


def candidate_side(record: dict, candidate: str) -> int | None:
    """0 or 1: where the candidate stands in the record's pair; None for a pair of references."""
    for side, name in enumerate(record["pair"]):
        if is_candidate(name, candidate):
            return side
    return None


def verdict(document_records: list, candidate: str, complete: bool = True) -> dict:
    """The candidate's verdict from its own comparisons, and the references' health apart.

    Args:
        complete: whether the run as a whole may pass; "pass" is never given otherwise.

    Returns:
        {"candidate": {"comparisons", "agree", "disagree", "error", "skipped"},
         "references": {"comparisons", "agree", "disagree", "error", "skipped"},
         "verdict": "pass" / "fail" / "error" / "incomplete"}.
    """
    def tally(records):
        counts = {"comparisons": len(records), "agree": 0, "disagree": 0, "error": 0, "skipped": 0}
        for r in records:
            key = "agree" if r["verdict"] in PASSING else r["verdict"]
            counts[key] += 1
        return counts

    mine = [r for r in document_records if candidate_side(r, candidate) is not None]
    theirs = [r for r in document_records if candidate_side(r, candidate) is None]
    own = tally(mine)
    # as reports.document.check_status: raised, or returned the wrong structure, shape or dtype
    own["cannot_check"] = sum(_cannot_check(r, candidate) for r in mine)
    if own["cannot_check"]:
        word = "error"
    elif own["disagree"]:
        word = "fail"
    elif not complete or not own["agree"]:
        word = "incomplete"
    else:
        word = "pass"
    return {"verdict": word, "candidate": own, "references": tally(theirs)}


def _cannot_check(record: dict, candidate: str) -> bool:
    if record["verdict"] == ERROR:
        failed = (record.get("error") or {}).get("impl", record["pair"][0])
        return is_candidate(failed, candidate)
    return any(t.get("structural") and is_candidate(_problem(t).get("impl", ""), candidate) for t in record["tensors"])


def _problem(entry: dict) -> dict:
    """A tensor's structural problem as data (``reports.compare``): kind and implementation."""
    return entry.get("problem_detail") or {}


def _pattern(record: dict, entry: dict | None) -> str:
    if entry is None:
        exception = (record.get("error") or {}).get("exception")
        return f"raised {exception}" if exception else "error"
    if not entry.get("problem"):
        return "values"
    return _problem(entry).get("kind", "structure")


def _owner(record: dict, entry: dict | None, candidate: str) -> str:
    """The implementation a failure belongs to: a structural problem names its culprit."""
    side = candidate_side(record, candidate)
    culprit = _problem(entry).get("impl") if entry is not None else None
    if culprit in record["pair"]:
        return culprit.split(".")[0] if is_candidate(culprit, candidate) else culprit
    return candidate if side is not None else "~".join(record["pair"])


def _family(record: dict) -> str:
    """Comparisons that can be told apart by their cases: reverse mode (random and kink
    cases), forward mode, second order."""
    return "reverse" if record["case_kind"] in ("random", "kink") else record["case_kind"]


def _failing_entries(record: dict):
    """(entry or None, ...) of a failing record: None stands for the whole comparison (it raised)."""
    if record["verdict"] == ERROR or not record["tensors"]:
        return [None]
    failing = [t for t in record["tensors"] if not t["agree"]]
    beyond_kinks = [t for t in failing if not t.get("kink_only")]
    # a tensor differing only at a kink is a convention beside a real failure; alone (strict
    # kinks) it is the failure
    return beyond_kinks or failing


def _reproduce(record: dict) -> str:
    return record.get("reproduce", "")


def build(records: list, candidate: str) -> list:
    """The findings of a run, worst first.

    Args:
        records: the run's comparison records.
        candidate: the name of the implementation under test (``run.candidate``).

    Returns:
        A list of JSON-ready dicts: impl, op, tensor, pattern, count (failing comparisons),
        cases (failing case ids), passing_cases, references, dtypes, worst (id, message,
        values, error, reproduce) and cause (None, or kind, text and evidence).
    """
    groups: dict = defaultdict(list)
    for record in records:
        if record["verdict"] not in (DISAGREE, ERROR):
            continue
        for entry in _failing_entries(record):
            key = (_owner(record, entry, candidate), record["op"], entry["tensor"] if entry else "",
                   _pattern(record, entry), _family(record))
            groups[key].append((record, entry))
    findings = _merge_values_into_shape([_finding(key, items, records, candidate) for key, items in groups.items()])
    findings.sort(key=lambda f: (not is_candidate(f["impl"], candidate), f["family"] != "reverse",
                                 f["cause"] is None, _PATTERN_RANK.get(f["pattern"].split()[0].rstrip(","), 0),
                                 -(f["worst"]["of_allowed"] or 0.0), -f["count"]))
    return findings


def _merge_values_into_shape(findings: list) -> list:
    """A tensor with the wrong shape on some cases often has wrong values where the shapes
    happen to coincide (a transpose of a square matrix, a sum over an axis of the same
    length): with no cause of its own, such a "values" finding joins the "shape" one."""
    shaped = {(f["impl"], f["op"], f["tensor"], f["family"]): f for f in findings
              if f["pattern"] == "shape" and f["cause"] is not None}
    kept = []
    for f in findings:
        home = shaped.get((f["impl"], f["op"], f["tensor"], f["family"]))
        if f["pattern"] == "values" and home is not None and (f["cause"] is None or f["cause"]["kind"] in (
                "only-at", home["cause"]["kind"])):
            home["pattern"] = "shape, values"
            home["count"] += f["count"]
            home["cases"] = sorted(set(home["cases"]) | set(f["cases"]))
            home["passing_cases"] = sorted(set(home["passing_cases"]) - set(f["cases"]))
            home["dtypes"] = sorted(set(home["dtypes"]) | set(f["dtypes"]))
            home["references"] = sorted(set(home["references"]) | set(f["references"]))
            continue
        kept.append(f)
    return kept


def _finding(key: tuple, items: list, records: list, candidate: str) -> dict:
    impl, op, tensor, pattern, family = key
    failing_cases = sorted({r["case"] for r, _ in items})
    same = [r for r in records if r["op"] == op and _family(r) == family and candidate_side(r, candidate) is not None
            and r["verdict"] != SKIPPED]
    # a case agrees for this finding only where the tensor's values were compared and agree in
    # every comparison of the candidate there: a case that raised, or whose tensor could not
    # be compared, is evidence of nothing (cause inference reads value comparisons only)
    measured: dict = defaultdict(list)
    for r in same:
        measured[r["case"]].append(_agrees_by_value(r, tensor))
    passing_cases = sorted(c for c, seen in measured.items() if c not in failing_cases and seen and all(seen))
    worst_record, worst_entry = max(items, key=lambda it: _severity(it[1]))
    worst = {"id": worst_record["id"], "message": headline(worst_record),
             "reproduce": _reproduce(worst_record), "pair": worst_record["pair"],
             "of_allowed": None if worst_entry is None else worst_entry.get("of_allowed"),
             "problem": None if worst_entry is None else worst_entry.get("problem")}  # the tensor's own
    if worst_entry is not None and "metrics" in worst_entry:
        m = worst_entry["metrics"]
        side = candidate_side(worst_record, candidate) or 0
        values = (m["a_value"], m["b_value"]) if side == 0 else (m["b_value"], m["a_value"])
        worst.update(index=m["worst_index"], candidate_value=values[0], reference_value=values[1],
                     normwise_rel_err=m["normwise_rel_err"], rtol=worst_entry.get("rtol"))
    finding = {
        "impl": impl, "op": op, "tensor": tensor, "pattern": pattern, "family": family,
        "role": None if worst_entry is None else worst_entry.get("role"),  # "forward" or "gradient"
        "count": len(items), "cases": failing_cases, "passing_cases": passing_cases,
        "references": sorted({n for r, _ in items for n in r["pair"] if not is_candidate(n, candidate)}),
        "dtypes": sorted({r["dtype"] for r, _ in items}),
        "worst": worst,
    }
    by_case = {r["case"]: r for r in same}
    finding["cause"] = diagnose(finding, items, [by_case[c] for c in passing_cases], candidate)
    return finding


def _agrees_by_value(record: dict, tensor: str) -> bool:
    """Whether ``record`` compared ``tensor``'s values (or, for a whole-comparison finding,
    every tensor's) and they agree, a kink convention included."""
    if record["verdict"] in (ERROR, SKIPPED):
        return False
    entries = [t for t in record["tensors"] if t["tensor"] == tensor] if tensor else record["tensors"]
    return bool(entries) and all("problem" not in t and "warning" not in t and (t["agree"] or t.get("kink_only"))
                                 for t in entries)


def _severity(entry: dict | None) -> float:
    if entry is None or "of_allowed" not in entry:
        return float("inf")
    return entry["of_allowed"] or 0.0


# --- causes ------------------------------------------------------------------------------

def _close(x: float, y: float) -> bool:
    return abs(x - y) <= _SAME * max(abs(x), abs(y))


def _scalar_dims(record: dict) -> dict:
    return {k: v for k, v in record["dims"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _ratios(items: list, candidate: str) -> list | None:
    """Candidate / reference per failing comparison, where each is a constant; None if any is not."""
    ratios = []
    for record, entry in items:
        if entry is None:
            return None
        side = candidate_side(record, candidate) or 0
        ratio = entry.get("ratio")
        if ratio is None and "metrics" in entry and entry["metrics"]["worst_index"] == []:
            a, b = entry["metrics"]["a_value"], entry["metrics"]["b_value"]  # a scalar: its own ratio
            ratio = a / b if b else None
        if ratio is None or ratio == 0:
            return None
        ratios.append(ratio if side == 0 else 1.0 / ratio)
    # a single element has a ratio to any number: only one that holds across shapes or seeds says something
    if len({(r["op"], str(r["dims"]), r["seed"]) for r, _ in items}) < 2:
        return None
    return ratios


def _ratio_cause(tensor: str, items: list, candidate: str) -> dict | None:
    # at a kink the references take different derivatives (ReLU'(0): 0 or 0.5), so no
    # constant ratio holds there: random cases carry the evidence
    items = [(r, e) for r, e in items if r["case_kind"] != "kink"] or items
    ratios = _ratios(items, candidate)
    if not ratios:
        return None
    records = [r for r, _ in items]
    n = len(ratios)
    # a dimension of the case: the ratio follows it from case to case (or is it, where it is fixed)
    for name in _scalar_dims(records[0]):
        values = [_scalar_dims(r).get(name) for r in records]
        if any(v in (None, 0, 1) for v in values):
            continue
        if all(_close(q, v) for q, v in zip(ratios, values)):
            return {"kind": "missing-1/dim", "dim": name,
                    "text": f"a missing 1/{name}: {tensor} is {name} times the reference",
                    "evidence": f"ratio to the reference = {name} in all {n} failing comparisons ({_shown(ratios)})"}
        if all(_close(q, 1.0 / v) for q, v in zip(ratios, values)):
            return {"kind": "extra-1/dim", "dim": name,
                    "text": f"an extra 1/{name}: {tensor} is the reference divided by {name}",
                    "evidence": f"ratio to the reference = 1/{name} in all {n} failing comparisons ({_shown(ratios)})"}
        if all(0 < v < 1 for v in values) and all(_close(q, 1.0 - v) for q, v in zip(ratios, values)):
            return {"kind": "missing-1/(1-dim)", "dim": name,
                    "text": f"a missing 1/(1 - {name}): {tensor} is (1 - {name}) times the reference",
                    "evidence": f"ratio to the reference = 1 - {name} in all {n} failing comparisons ({_shown(ratios)})"}
    if not all(_close(q, ratios[0]) for q in ratios):
        return None
    c = ratios[0]
    if _close(c, -1.0):
        return {"kind": "sign", "text": f"a sign error: {tensor} is -1 times the reference",
                "evidence": f"ratio to the reference = -1 in all {n} failing comparisons"}
    if _close(c, 1.0):
        return None
    return {"kind": "factor", "factor": c, "text": f"a constant factor: {tensor} is {c:.4g} times the reference",
            "evidence": f"ratio to the reference = {c:.4g} in all {n} failing comparisons"}


def _shown(ratios: list) -> str:
    distinct = sorted({round(q, 6) for q in ratios})
    return ", ".join(f"{q:g}" for q in distinct[:4]) + (", ..." if len(distinct) > 4 else "")


def _dims_named(size: int, record: dict) -> str:
    names = [k for k, v in _scalar_dims(record).items() if v == size]
    return f"{size} = {' = '.join(names)}" if names else str(size)


def _shape_cause(tensor: str, items: list, candidate: str) -> dict | None:
    record, entry = items[0]
    shapes = entry.get("shapes")
    if not shapes:
        return None
    side = candidate_side(record, candidate) or 0
    mine, due = (shapes[0], shapes[1]) if side == 0 else (shapes[1], shapes[0])
    shown = f"{tuple(mine)} where {tuple(due)} is due"
    if all(e.get("transposed") for _, e in items):
        return {"kind": "transpose", "text": f"a missing transpose: {tensor} is the reference transposed",
                "evidence": f"shape {shown}, and the values equal the reference's transposed in all {len(items)} "
                            f"failing comparisons"}
    if len(mine) == 2 and mine == due[::-1]:
        return {"kind": "transpose", "text": f"a transpose: {tensor} has the reference's shape transposed",
                "evidence": f"shape {shown}"}
    differ = [i for i, (m, d) in enumerate(zip(mine, due)) if m != d] if len(mine) == len(due) else []
    named = set(_scalar_dims(record).values())
    if len(differ) == 1 and (mine[differ[0]] in named or mine[differ[0]] in due):
        got = ", ".join(_dims_named(s, record) for s in mine)
        want = ", ".join(_dims_named(s, record) for s in due)
        return {"kind": "wrong-axis", "text": f"a sum or mean over the wrong axis: {tensor} has shape ({got}) "
                                              f"where ({want}) is due", "evidence": f"shape {shown}"}
    if math.prod(mine) == math.prod(due):
        return {"kind": "reshape", "text": f"the right number of elements in the wrong shape: reshape {tensor} "
                                           f"to {tuple(due)}", "evidence": f"shape {shown}"}
    return None


_NEUTRAL = (0, 1)  # a term vanishes at 0; a sum or mean over a size-1 axis is the identity


def _condition_cause(failing: list, passing: list) -> dict | None:
    """A condition the op declares of its cases (``OpSpec.conditions``, in each record) that
    holds in every failing case and in no passing one."""
    for name in sorted(set().union(*(r.get("conditions", {}) for r in failing + passing))):
        if passing and all(r.get("conditions", {}).get(name) is True for r in failing) \
                and all(r.get("conditions", {}).get(name) is False for r in passing):
            return {"kind": "condition", "condition": name, "text": f"fails only where {name}",
                    "evidence": f"every failing case has it; the {len(passing)} that agree do not"}
    return None


def _partition(items: list, passing: list, prefer: str = "") -> dict | None:
    """A condition true of every failing case and of no passing case: "agrees only at N = 1".

    Several dimensions may take their passing value only in the same cases (the first default
    shape has N = 1 and reg = 0); the values that hide mistakes, 0 and 1, come first, then
    ``prefer`` (a dimension the ratio already names), and the others are named beside.
    """
    if not passing:
        return None
    failing = [r for r, _ in items]
    if all(r["case_kind"] == "kink" for r in failing) and any(r["case_kind"] != "kink" for r in passing):
        return {"kind": "kink", "text": "differs only at kinks: a different derivative at the kink",
                "evidence": "every failing case is a kink case; random cases agree"}
    condition = _condition_cause(failing, passing)
    if condition is not None:
        return condition
    separating = []
    dims = sorted(set().union(*(r["dims"] for r in failing + passing)))
    for name in dims:
        ok = {_hashable(r["dims"].get(name)) for r in passing}
        bad = {_hashable(r["dims"].get(name)) for r in failing}
        if None in ok or None in bad:
            continue  # a dimension only some shapes set
        if len(ok) == 1 and not ok & bad and not isinstance(next(iter(ok)), tuple):
            separating.append((name, next(iter(ok)), bad))
        elif all(isinstance(v, tuple) for v in bad) and not any(isinstance(v, tuple) for v in ok):
            return {"kind": "only-at", "dim": name, "value": "one axis",
                    "text": f"fails only where {name} has several axes", "evidence": f"cases with a single {name} agree"}
    if separating:
        separating.sort(key=lambda s: (s[0] != prefer, s[1] not in _NEUTRAL, _order(s[1]), s[0]))
        name, value, bad = separating[0]
        also = ", ".join(f"{n} = {_fmt(v)}" for n, v, _ in separating[1:])
        neutral = [(n, v) for n, v, _ in separating if v in _NEUTRAL]
        if prefer == name or not neutral:
            text = f"agrees only at {name} = {_fmt(value)}"
        else:
            look = {0: "the term scaled by {}", 1: "what {} > 1 changes"}
            text = (f"agrees only where {' and '.join(f'{n} = {_fmt(v)}' for n, v in neutral)}: look at "
                    + " and ".join(look[v].format(n) for n, v in neutral))
        return {"kind": "only-at", "dim": name, "value": value, "text": text,
                "evidence": f"the cases that agree have {name} = {_fmt(value)}" + (f" (and {also})" if also else "")
                            + f"; those that fail {name} = {', '.join(_fmt(v) for v in sorted(bad, key=_order))}"}
    only = []  # the other way round: every failing case has one value no passing case has
    for name in dims:
        bad = {_hashable(r["dims"].get(name)) for r in failing}
        ok = {_hashable(r["dims"].get(name)) for r in passing}
        if len(bad) == 1 and None not in bad and not bad & ok and not isinstance(next(iter(bad)), tuple):
            only.append((name, next(iter(bad))))
    if only:
        # several dims may set the failing cases apart together (N = 32 comes with Dx = 5): the
        # batch first, as a mistake that depends on the batch size is the commoner, the
        # others named beside it, so the cause is never one coincidence alone
        only.sort(key=lambda item: (item[0] != "N", item[0]))
        (name, value), rest = only[0], only[1:]
        also = f" (and {', '.join(f'{n} = {_fmt(v)}' for n, v in rest)})" if rest else ""
        return {"kind": "fails-only-at", "dim": name, "value": value,
                "text": f"fails only at {name} = {_fmt(value)}{also}",
                "evidence": f"every failing case has {name} = {_fmt(value)}{also}; the cases without it agree"}
    # dimensions only some shapes set (large logits: scale, shift): every failing case sets one
    unset = [d for d in dims if all(d not in r["dims"] for r in passing)]
    if unset and all(any(d in r["dims"] for d in unset) for r in failing):
        values = sorted({f"{d} = {_fmt(_hashable(r['dims'][d]))}" for r in failing for d in unset if d in r["dims"]})
        return {"kind": "fails-only-at", "dim": unset[0], "value": None,
                "text": f"fails only in the cases with {' or '.join(unset)}",
                "evidence": f"every failing case has {', '.join(values)}; the cases without agree"}
    return None


def _order(value):
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return (not number, value if number else 0, str(value))


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def _precision(items: list, passing: list) -> dict | None:
    failing = [r for r, e in items]
    errors = [e["metrics"]["normwise_rel_err"] for _, e in items if e is not None and "metrics" in e]
    if len(errors) != len(items) or not errors:
        return None
    worst = max(errors)
    passing_dtypes = {r["dtype"] for r in passing}
    if {r["dtype"] for r in failing} == {"float64"} and "float32" in passing_dtypes and worst < 1e-4:
        return {"kind": "float32-in-float64",
                "text": "float32 arithmetic inside a float64 computation: float64 results only float32-accurate",
                "evidence": f"fails only in float64, by at most {worst:.1e} relative (float32's rounding is 6e-08); "
                            f"float32 cases agree"}
    if {r["dtype"] for r in failing} == {"float32"} and "float64" in passing_dtypes:
        return {"kind": "float32-precision", "text": "a loss of precision in float32",
                "evidence": f"fails only in float32, by at most {worst:.1e} relative; float64 cases agree"}
    return None


def _column_cause(tensor: str, items: list) -> dict | None:
    """An error the same in every row (``reports.metrics.constant_down_columns``) in every
    failing comparison of values: a term that depends on the column only is missing."""
    measured = [(r, e) for r, e in items if e is not None and "metrics" in e and r["case_kind"] != "kink"]
    if len(measured) < 2 or not all(e.get("constant_down_columns") for _, e in measured):
        return None
    sizes = sorted({e["constant_down_columns"] for _, e in measured})
    named = {name for r, e in measured for name, v in _scalar_dims(r).items() if v == e["constant_down_columns"]}
    rows = f"{next(iter(named))} rows ({next(iter(named))} = {', '.join(map(str, sizes))})" if len(named) == 1 else \
        f"rows ({', '.join(map(str, sizes))})"
    return {"kind": "constant-down-columns",
            "text": f"a missing term that is the same in every row of {tensor}, such as the branch through a mean "
                    f"over axis 0 (batchnorm's -mean(dxhat)/std)",
            "evidence": f"{tensor} minus the reference is one row repeated down its {rows} in all "
                        f"{len(measured)} failing comparisons"}


def _raised_cause(items: list) -> dict | None:
    """A matrix product of operands whose inner sizes differ: one of them wants a transpose
    (NumPy's own words, in what the exception said: the record's ``error.said``)."""
    error = items[0][0].get("error") or {}
    # a report written before errors carried what their exception said: its message holds it
    said = error["said"] if "said" in error else items[0][0].get("message", "")
    if "core dimension" in said or "not aligned" in said:
        sizes = re.search(r"size (\d+) is different from (\d+)", said)
        detail = f" (inner sizes {sizes.group(1)} and {sizes.group(2)})" if sizes else ""
        return {"kind": "transpose", "text": "a matrix product of mismatched operands: one of them probably needs "
                                             "a transpose", "evidence": f"numpy refused the product{detail}"}
    return None


def diagnose(finding: dict, items: list, passing: list, candidate: str) -> dict | None:
    """A likely cause of a finding, with its evidence, where the numbers show one (else None).

    Args:
        finding: the finding (tensor, pattern).
        items: its failing (record, tensor entry or None) pairs.
        passing: one candidate record per case of the same op and mode that passes.
        candidate: the candidate's name, to orient ratios (candidate / reference).
    """
    tensor, pattern = finding["tensor"], finding["pattern"]
    if pattern in ORDER_PROBLEMS:  # the call order is the evidence: no partition of cases needed
        return {"kind": pattern, "text": ORDER_PROBLEMS[pattern],
                "evidence": f"{tensor} differs between call orders in all {len(items)} failing comparisons"}
    cause = None
    if pattern == "shape":
        cause = _shape_cause(tensor, items, candidate)
        if cause is not None and cause["kind"] != "transpose":  # a guess from the sizes alone: a
            cause = _condition_cause([r for r, _ in items], passing) or cause  # condition the op declares wins
        if cause is not None:
            return cause  # the shapes tell where it shows
    elif pattern == "values":
        cause = _precision(items, passing) or _ratio_cause(tensor, items, candidate) or _column_cause(tensor, items)
    elif pattern.startswith("raised"):
        where = _partition(items, passing)
        if where is not None and where.get("value") == 1 and where["kind"] == "fails-only-at":
            # raised only where a dimension is 1 (a .squeeze() that drops the batch axis at
            # N = 1): that, not the operands' shapes at the crash, is the evidence
            return dict(where, text=f"{where['text']}: an axis of size 1 dropped (a squeeze?) or treated apart")
        cause = _raised_cause(items)
    where = _partition(items, passing, prefer=(cause or {}).get("dim", ""))
    if cause is None:
        return where
    if where is not None:
        cause = dict(cause, evidence=f"{cause['evidence']}; {where['text']}", only=where)
    return cause
