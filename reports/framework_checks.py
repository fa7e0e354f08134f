"""Records of the checks made only on functions with their own backward in a framework.

A ``torch.autograd.Function`` or a ``jax.custom_vjp`` rule is checked at float64 and float32
like any declared layer (``reports.compare``); three checks are its own, and this module
judges their measurements (``oracles.framework``) into records of the same form, so that
documents, findings, the console and ``raise_for_failures`` read them as any other:

* "low-precision" (float16, bfloat16): the candidate's value and gradients against the
  float64 ground truth on the same dtype-rounded inputs, allowed ``K`` times the
  reference's own error at that dtype plus a floor of a few ulps (``reports.tolerances``).
  Where that allowance is comparable to the gradient's size the check cannot decide: the
  record is an error saying so (never a pass), unless the candidate is off by more even
  than that (a disagreement).
* "rerun": the backward run again on the same inputs; any gradient differing from the first
  run's by more than ``nondet_tol`` (absolute, 0 by default) is a finding.
* "second-order": the gradient of ``<grad, v>`` with respect to the inputs and to ``dout``
  (what ``torch.autograd.gradgradcheck`` checks) against the reference's.
"""

from __future__ import annotations

import numpy as np

from gradmatrix.oracles.cases import Case
from gradmatrix.reports.compare import AGREE, DISAGREE, ERROR, base_record, with_failures
from gradmatrix.reports.metrics import tensor_metrics
from gradmatrix.reports.tolerances import (EPS, LOW_PRECISION_FLOOR_ULPS, LOW_PRECISION_K, VACUOUS_FRACTION,
                                           tolerance_for)

LOW_PRECISION, RERUN, SECOND_ORDER = "low-precision", "rerun", "second-order"  # case kinds
RERUN_SUFFIX = ".rerun"  # the candidate run again: ``candidate.rerun``
UNDECIDED = "undecided"  # a tensor's problem kind where the allowance is vacuous


def _entry(tensor: str, role: str, a: np.ndarray, b: np.ndarray, allowed_abs: float, rtol: float) -> tuple:
    """A measured tensor entry: ``|a - b| <= allowed_abs`` at every element (b the reference)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf where a value overflowed: nan, never agree
        diff = np.abs(a - b)
        excess = diff - allowed_abs
        metrics = tensor_metrics(a, b, excess)
    with np.errstate(divide="ignore", invalid="ignore"):
        used = np.where(diff == 0, 0.0, diff / allowed_abs)
    used = np.where(np.isnan(used), np.inf, used)
    entry = {"tensor": tensor, "role": role, "agree": bool(np.all(excess <= 0)), "metrics": metrics.to_dict(),
             "of_allowed": float(np.max(used, initial=0.0)), "rtol": rtol}
    return entry, metrics


def _where(metrics) -> str:
    return f"at {metrics.worst_index}" if metrics.worst_index else "(scalar)"


def _finish(record: dict, failures: list, reproduce: str, verdict: str | None = None) -> dict:
    record["verdict"] = verdict or (DISAGREE if failures else AGREE)
    return with_failures(record, failures, reproduce)


def low_precision_record(case: Case, candidate: str, reference: str, tensors: list, reproduce: str = "",
                         kinks: dict | None = None) -> dict:
    """Judge a candidate at float16 or bfloat16 by the reference's own error there.

    Args:
        case: the case, of kind "low-precision", its dtype the low one.
        candidate, reference: the implementations' names.
        tensors: ``(tensor, role, candidate value, reference value in the dtype, float64
            truth)`` per tensor (the forward output, then each gradient), float64 arrays
            computed from the same dtype-rounded inputs and dout.
        reproduce: a call that reruns this comparison.
        kinks: per gradient tensor, ``(at, outside)``: the elements where rounding to the
            dtype put the inputs on a kink (a tie of ``max``: the derivative is a set there,
            ``OpSpec.kink_subgradient``), and how far the candidate's value lies outside that
            set.  There the convention is free: the candidate's value counts as the truth's
            where it lies in the set (within the floor), and the reference's is never its
            error; a note says how many elements.

    Returns:
        A record: each tensor's entry carries its ``allowance`` (k, the reference's error,
        the floor, the allowed error, the truth's size); verdict "agree", "disagree", or
        "error" with ``error.undecided`` where an allowance is vacuous and the candidate
        within it.
    """
    dtype = case.dtype
    record = base_record(case, (candidate, reference), AGREE)
    record["kind"] = LOW_PRECISION
    record["tolerance"] = {"k": LOW_PRECISION_K, "floor_ulps": LOW_PRECISION_FLOOR_ULPS,
                           "vacuous_fraction": VACUOUS_FRACTION,
                           "why": "reports.tolerances: K times the reference's own error at the dtype, plus a floor"}
    failures, undecided = [], []
    for tensor, role, value, ref_value, truth in tensors:
        truth = np.asarray(truth, dtype=np.float64)
        size = float(np.max(np.abs(truth), initial=0.0))
        if tensor in (kinks or {}):
            at, outside = kinks[tensor]
            inside = at & (np.asarray(outside) <= LOW_PRECISION_FLOOR_ULPS * EPS[dtype] * size)
            ref_value = np.where(at, truth, np.asarray(ref_value, dtype=np.float64))
            value = np.where(inside, truth, np.asarray(value, dtype=np.float64))
            record.setdefault("notes", []).append(
                f"{tensor}: {int(at.sum())} element(s) on a kink of the {dtype}-rounded inputs (a tie), judged by "
                f"the derivative's set there: {int(inside.sum())} inside it")
        reference_error = float(np.max(np.abs(np.asarray(ref_value, dtype=np.float64) - truth), initial=0.0))
        floor = LOW_PRECISION_FLOOR_ULPS * EPS[dtype] * size
        allowed = LOW_PRECISION_K * reference_error + floor
        entry, metrics = _entry(tensor, role, value, truth, allowed, allowed / size if size else float("inf"))
        # vacuous: comparable to the value's size, or not finite (the reference overflowed); a
        # value that is exactly 0 in the truth and in the reference is held to exactly 0
        vacuous = not np.isfinite(allowed) or (allowed > 0 and allowed >= VACUOUS_FRACTION * size)
        entry["allowance"] = {"k": LOW_PRECISION_K, "reference_error": reference_error, "floor": floor,
                              "allowed": allowed, "size": size, "vacuous": vacuous}
        bound = (f"allowed {allowed:.1e} = {LOW_PRECISION_K:g} x the reference's own {dtype} error "
                 f"{reference_error:.1e} + {LOW_PRECISION_FLOOR_ULPS:g} ulps {floor:.1e}")
        entry["bound"] = bound
        if not entry["agree"] and np.isfinite(allowed):
            failures.append(f"{tensor} ({candidate} vs {reference}, {dtype}): max abs err {metrics.max_abs_err:.1e} "
                            f"{_where(metrics)} ({metrics.a_value:.6g} vs float64 truth {metrics.b_value:.6g}), "
                            f"{bound}")
        elif vacuous:
            # within an allowance that could hide a wrong formula (an all-zeros gradient): no pass
            message = (f"{tensor} ({candidate} vs {reference}, {dtype}): cannot decide at {dtype}: the "
                       f"reference's own error makes the allowance {allowed:.1e}, {allowed / size if size else 1:.0%} "
                       f"of the largest value {size:.1e} (a wrong gradient could pass); check at a wider dtype")
            entry.update(agree=False, problem=message, structural=False,
                         problem_detail={"kind": UNDECIDED, "impl": reference})
            undecided.append(message)
        record["tensors"].append(entry)
    if failures or not undecided:
        return _finish(record, failures + undecided, reproduce)
    record["error"] = {"impl": reference, "exception": None, UNDECIDED: True}
    return _finish(record, undecided, reproduce, ERROR)


def rerun_record(case: Case, candidate: str, runs: list, nondet_tol: float, reproduce: str = "") -> dict:
    """Judge the gradients of several runs on the same inputs against the first run's.

    Args:
        case: the case, of kind "rerun".
        candidate: the candidate's name.
        runs: per run, {input name: gradient} (float64 arrays), the first run first.
        nondet_tol: the absolute difference allowed between runs (0: identical).
        reproduce: a call that reruns this comparison.
    """
    again = candidate + RERUN_SUFFIX
    record = base_record(case, (again, candidate), AGREE)
    record["kind"] = RERUN
    record["tolerance"] = {"nondet_tol": nondet_tol, "runs": len(runs),
                           "why": "a backward run again on the same inputs gives the same gradient, up to nondet_tol"}
    failures = []
    first = runs[0]
    for name in first:
        # the run farthest from the first
        worst = max(runs[1:], key=lambda r: float(np.max(np.abs(r[name] - first[name]), initial=0.0)))
        entry, metrics = _entry(f"d{name}", "gradient", worst[name], first[name], nondet_tol, nondet_tol)
        entry["runs"] = len(runs)
        if not entry["agree"]:
            failures.append(f"d{name} ({candidate} run again, {case.dtype}): the backward is not deterministic: "
                            f"over {len(runs)} runs on the same inputs it differs by up to {metrics.max_abs_err:.1e} "
                            f"{_where(metrics)} ({metrics.a_value:.6g} vs {metrics.b_value:.6g}), beyond nondet_tol "
                            f"{nondet_tol:g}")
        record["tensors"].append(entry)
    return _finish(record, failures, reproduce)


def second_order_record(case: Case, candidate: str, reference: str, mine: dict, theirs: dict,
                        reproduce: str = "") -> dict:
    """Judge the gradient of ``<grad, v>`` (by input, and "dout") against the reference's.

    The tolerance is the dtype's "hvp" one (two autodiff second-order passes), relative to
    the reference's largest element per tensor.
    """
    tol = tolerance_for(case.dtype, "hvp")
    record = base_record(case, (candidate, reference), AGREE)
    record["kind"] = SECOND_ORDER
    record["tolerance"] = {"rtol": tol.rtol, "why": tol.why}
    failures = []
    for name, b in theirs.items():
        tensor = f"d<grad,v>/d{name}"
        b = np.asarray(b, dtype=np.float64)
        entry, metrics = _entry(tensor, "second-order", mine[name], b, tol.rtol * float(np.max(np.abs(b), initial=0.0)),
                                tol.rtol)
        if not entry["agree"]:
            failures.append(f"{tensor} ({candidate} vs {reference}, {case.dtype}): the double backward is wrong: "
                            f"max rel err {metrics.normwise_rel_err:.1e} {_where(metrics)} ({metrics.a_value:.6g} vs "
                            f"{metrics.b_value:.6g}), allowed {tol.rtol:.0e}")
        record["tensors"].append(entry)
    return _finish(record, failures, reproduce)


def low_precision_bounds(records: list) -> list:
    """The allowance of every low-precision tensor, in words (what a passing check prints)."""
    lines = []
    for record in records:
        for entry in record.get("tensors", ()):
            allowance = entry.get("allowance")
            if record.get("kind") == LOW_PRECISION and allowance:
                lines.append(f"{entry['tensor']} at {record['dtype']} ({record['case']}): error "
                             f"{entry['metrics']['max_abs_err']:.1e} against the float64 truth, {entry['bound']}, "
                             f"largest value {allowance['size']:.1e}")
    return lines
