"""The one comparison function: a pair of results on a case -> per-tensor metrics and a verdict.

Order of checks for every tensor (forward output first, then each gradient): present,
shape, dtype, finite, then values against the tolerance.  The first failing check names the
problem; values are only compared when the structure is right.

Which tensors a comparison has depends on the case's kind (``expected_tensors``): the
forward output, then ``d<input>`` per gradient (reverse mode), the directional derivative
``<u,Jv>`` ("jvp" cases) or ``Hv[<input>]`` per Hessian-vector block ("hvp" cases); see
``oracles.modes``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gradmatrix.oracles.cases import Case
from gradmatrix.oracles.modes import JVP_TENSOR, hv_tensor
from gradmatrix.oracles.result import Result
from gradmatrix.reports import severity
from gradmatrix.reports.metrics import constant_down_columns, equals_transposed, proportional_ratio, tensor_metrics
from gradmatrix.reports.tolerances import PROJECTION_Z, VACUOUS_FRACTION, tolerance_for

AGREE, DISAGREE, ERROR, SKIPPED = "agree", "disagree", "error", "skipped"
VACUOUS_OVERRIDE = "vacuous-override"  # a tensor's problem where the tolerance override allows 10% of its values
CONVENTION = "convention"  # differs only at kink elements: reported, not failed (unless strict)
PASSING = (AGREE, CONVENTION)


def expected_tensors(case: Case) -> list[tuple]:
    """(tensor, role, key in ``Result.grads`` or None for the forward value, shape), in order."""
    spec = case.spec
    dims = case.dim_map
    out_shape = () if spec.output_shape is None else spec.shape_of(spec.output_shape, dims)
    tensors = [(spec.output, "forward", None, out_shape)]
    if case.kind == "jvp":
        return tensors + [(JVP_TENSOR, "jvp", JVP_TENSOR, ())]
    for s in spec.inputs:
        if s.differentiable:
            shape = spec.shape_of(s.shape, dims)
            tensors.append((hv_tensor(s.name), "hvp", s.name, shape) if case.kind == "hvp"
                           else (f"d{s.name}", "gradient", s.name, shape))
    return tensors


def gradients_readable(case: Case, result: Result) -> bool:
    """Whether every gradient ``result`` owes ``case`` is there, numeric and of its expected
    shape: what a kink judgement (``OpSpec.kink_convention``, ``kink_subgradient``) needs
    before it indexes the gradients with the input's masks.  A result that fails this is
    judged by ``compare`` alone, which names the structural problem as a finding."""
    for tensor, role, key, shape in expected_tensors(case):
        if role != "gradient":
            continue
        value = result.grads.get(key)
        if value is None:
            return False
        value = np.asarray(value)
        if value.shape != tuple(shape) or value.dtype.kind not in "fiu":
            return False
    return True


def comparison_kind(case: Case, pair: tuple) -> str:
    """The tolerance kind of a pair on a case (``reports.tolerances``): "autodiff" or
    "numeric" in reverse mode, "jvp" or "jvp-numeric" in forward mode, "hvp" (two autodiff
    HVPs) or "hvp-fd" (against differences of the candidate's gradient) in second order."""
    if case.kind == "jvp":
        return "jvp-numeric" if "numeric" in pair else "jvp"
    if case.kind == "hvp":
        return "hvp-fd" if any(name.endswith(".fd") for name in pair) else "hvp"
    return "numeric" if "numeric" in pair else "autodiff"


def _check_structure(tensor: str, case: Case, result: Result, value, expected_shape) -> dict | None:
    """The first structural problem of one side's tensor, as data: ``{"kind": "missing" |
    "shape" | "dtype" | "non-finite", "impl", "message"}`` (and the shapes or dtypes), or None."""
    impl = result.impl
    if value is None:
        what = "value" if tensor == JVP_TENSOR else "gradient" if tensor.startswith("d") else "Hessian-vector product"
        return {"kind": "missing", "impl": impl, "message": f"{tensor}: {impl} returned no {what} for {tensor!r}"}
    expected_dtype = result.computes_in or case.dtype
    value = np.asarray(value)
    if value.shape != tuple(expected_shape):
        return {"kind": "shape", "impl": impl, "got": list(value.shape), "expected": list(expected_shape),
                "message": f"{tensor}: {impl} returned shape {value.shape}, expected {tuple(expected_shape)}"}
    if value.dtype != np.dtype(expected_dtype):
        return {"kind": "dtype", "impl": impl, "got": str(value.dtype), "expected": str(np.dtype(expected_dtype)),
                "message": f"{tensor}: {impl} returned dtype {value.dtype} for a {case.dtype} case, "
                           f"expected {expected_dtype}"}
    if not np.isfinite(value).all():
        return {"kind": "non-finite", "impl": impl, "message": f"{tensor}: {impl} returned non-finite values"}
    return None


def _compatible(tensor: str, case: Case, result: Result, value, expected_shape) -> tuple:
    """A difference of structure that leaves every value comparable (``reports.severity``):
    a shape differing only by axes of size 1, a float dtype more precise than the case's.

    Returns:
        (the value to compare, reshaped where it differed, the result with the dtype it
        returned accepted, the warnings), unchanged with no warnings otherwise.
    """
    if value is None:
        return value, result, []
    array = np.asarray(value)
    warnings = []
    if severity.differs_by_size_1_axes(array.shape, expected_shape):
        warnings.append({"kind": severity.SHAPE_SIZE_1, "impl": result.impl, "tensor": tensor,
                         "got": list(array.shape), "expected": list(expected_shape)})
        array = array.reshape(expected_shape)
    wanted = result.computes_in or case.dtype
    if severity.promoted(array.dtype, wanted) and result.computes_in is None:
        warnings.append({"kind": severity.DTYPE_PROMOTED, "impl": result.impl, "tensor": tensor,
                         "got": str(array.dtype), "expected": str(np.dtype(wanted))})
        result = replace(result, computes_in=str(array.dtype))
    return (array if warnings else value), result, warnings


ORDER_PROBLEMS = {
    # Result.repeats key -> the problem's kind and what it says of the backward
    "plain": ("state-outside-cache", "backward reads state outside its cache: its gradient changed when another "
                                     "forward ran between its forward and it"),
    "again": ("not-repeatable", "backward gave another gradient when called again on the same cache (it changes its "
                                "cache, or keeps state between calls)"),
}


def _order_problem(tensor: str, result: Result, key: str, rtol: float) -> dict | None:
    """Whether ``result``'s gradient ``key`` depends on the order of the calls that made it
    (``Result.repeats``): beyond the rounding allowed between two implementations of the
    dtype, the gradient of another call order differs.  A problem as data, or None."""
    if not result.repeats:  # an oracle's: called once
        return None
    given = np.asarray(result.grads.get(key), dtype=np.float64)
    for order, (kind, what) in ORDER_PROBLEMS.items():
        other = result.repeats.get(order, {}).get(key)
        if other is None or np.shape(other) != given.shape:
            continue
        other = np.asarray(other, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            scale = max(float(np.abs(given).max(initial=0.0)), float(np.abs(other).max(initial=0.0)))
            differs = ~(np.abs(given - other) <= rtol * scale) & ~(np.isnan(given) & np.isnan(other))
        if differs.any():
            where = [int(i) for i in np.unravel_index(int(np.argmax(differs)), given.shape)] if given.ndim else []
            return {"kind": kind, "impl": result.impl, "order": order, "index": where,
                    "message": f"{tensor}: {result.impl}'s {what} (first at {where})"}
    return None


def _outside_subdifferential(outside: dict | None, names: tuple, key: str, mask, allowed_abs) -> list[str]:
    """For each implementation whose gradient ``key`` lies outside the subdifferential at a
    kink element (beyond the comparison's allowance there), a phrase saying where."""
    strays = []
    for name in names:
        distance = ((outside or {}).get(name) or {}).get(key)
        if distance is None:
            strays.append(f"{name}'s derivative cannot be judged (the op declares no subdifferential)")
            continue
        beyond = np.asarray(distance, dtype=np.float64) - allowed_abs
        beyond = np.where(mask, beyond, -np.inf)
        if np.any(beyond > 0):
            where = tuple(int(i) for i in np.unravel_index(int(np.argmax(beyond)), beyond.shape))
            strays.append(f"{name}'s derivative lies {float(np.max(distance)):.3g} outside the subdifferential "
                          f"at {list(where)}")
    return strays


def _shape_evidence(value_a, value_b, rtol: float) -> dict:
    """For a shape mismatch, both shapes and whether a is b transposed (a finding's evidence)."""
    if value_a is None or value_b is None:
        return {}
    va, vb = np.asarray(value_a), np.asarray(value_b)
    if va.shape == vb.shape:
        return {}
    evidence = {"shapes": [list(va.shape), list(vb.shape)]}
    if va.ndim == 2 and va.shape == vb.shape[::-1]:
        with np.errstate(invalid="ignore", over="ignore"):
            allowed = 10 * rtol * float(np.max(np.abs(vb.astype(np.float64)), initial=0.0))
            evidence["transposed"] = equals_transposed(va, vb, allowed)
    return evidence


def _rounding_unit(case: Case, key) -> float:
    """The catalog's rounding unit of a tensor (``OpSpec.rounding_units``), for every pair:
    a value that cancels to about 0 (a bias gradient before batchnorm) is judged against
    the size of the terms it sums, whichever implementations are compared."""
    spec = case.spec
    if spec.rounding_units is None or case.kind != "random" and case.kind != "kink":
        return 0.0
    return float(spec.rounding_units(case.dim_map).get(spec.output if key is None else key, 0.0))


def base_record(case: Case, pair: tuple, verdict: str, message: str = "") -> dict:
    """The fields every comparison record has: case, pair, kind, verdict and message."""
    return {
        "id": f"{case.id}-{pair[0]}~{pair[1]}",
        "case": case.id,
        "op": case.op,
        "case_kind": case.kind,
        "dims": {k: (list(v) if isinstance(v, tuple) else v) for k, v in case.dims},
        **({"conditions": {name: bool(holds(case.dim_map)) for name, holds in case.spec.conditions.items()}}
           if case.spec.conditions else {}),
        "seed": case.seed,
        "dtype": case.dtype,
        "pair": list(pair),
        "kind": comparison_kind(case, pair),
        "tensors": [],
        "verdict": verdict,
        "message": message,
    }


def compare(case: Case, a: Result, b: Result, reproduce: str = "", kink_masks: dict | None = None,
            strict_kinks: bool = False, conventions: dict | None = None, outside: dict | None = None,
            extreme: bool = False, override: dict | None = None) -> dict:
    """Compare implementation ``a`` against reference ``b`` on ``case``.

    Args:
        case: the case both results were computed on.
        a: the result under test (the first of the pair).
        b: the reference (the second of the pair; the numeric oracle when present).
        reproduce: a command that reruns this comparison, quoted in messages.
        kink_masks: per input name, the gradient elements at a kink (kink cases only).
            A tensor that differs only there, with both sides inside the subdifferential
            (``outside``), is a convention difference: verdict "convention", which passes,
            unless ``strict_kinks``.
        strict_kinks: make convention differences fail ("disagree").
        conventions: implementation name -> the derivative it took at the kink, for the record.
        outside: implementation name -> {input: how far each gradient element lies outside
            the subdifferential} (``oracles.kinks``); an implementation missing here (the
            op declares no subdifferential) is never inside it.
        extreme: the case's inputs are extreme (``reports.severity.extreme_inputs``): a's
            non-finite result where b is finite is then a warning, not a failure.
        override: the call's tolerance override ``{"rtol", "atol", "reason", "scope"}``
            (``gradmatrix.check(rtol=..., reason=...)``); the layer's own is the op's
            ``OpSpec.tolerance``.  Both are merged into the table's by the larger bound
            (``reports.tolerances.tolerance_for``) and recorded with their reasons.

    Returns:
        A JSON-ready record: the case and pair, the comparison kind and tolerance, a list of
        per-tensor entries (metrics, allowed error, agreement or the structural problem),
        the warnings (``reports.severity``: they leave the verdict as the values give it), the verdict ("agree" or "disagree") and, on disagreement, a one-line message for the
        first failing tensor.

    A tensor agrees when ``|a - b| <= rtol * scale + bound`` at every element: scale is
    max|b|, or the larger of the two results' ``scales`` for the tensor where they give one
    (the size of the products a directional derivative sums, see ``oracles.modes``), and
    bound the reference's own error bound (the numeric oracles'); an override adds its atol.
    An overridden allowance that reaches ``VACUOUS_FRACTION`` of a tensor's scale fails:
    it could not tell an all-zeros gradient from the right one.
    """
    kind = comparison_kind(case, (a.impl, b.impl))
    tol = tolerance_for(case.dtype, kind, (case.spec.tolerance, override))

    entries, failures, kink_notes, warnings = [], [], [], list(a.warnings) + list(b.warnings)
    expected = expected_tensors(case)
    for tensor, role, key, expected_shape in expected:
        entry = {"tensor": tensor, "role": role}
        value_a = a.forward if key is None else a.grads.get(key)
        value_b = b.forward if key is None else b.grads.get(key)
        directions = b.directions.get(key) if role == "gradient" else None  # b given as projections
        # a shape differing by size-1 axes, a promoted dtype: a warning, the values still compared
        value_a, side_a, compatible = _compatible(tensor, case, a, value_a, expected_shape)
        side_b = b
        if directions is None:
            value_b, side_b, more = _compatible(tensor, case, b, value_b, expected_shape)
            compatible += more
        warnings += compatible
        problem = _check_structure(tensor, case, side_a, value_a, expected_shape) or _check_structure(
            tensor, case, side_b, value_b, expected_shape if directions is None else (len(directions),)
        )
        other, other_value = (b.impl, value_b) if problem and problem["impl"] == a.impl else (a.impl, value_a)
        if problem and problem["kind"] == "non-finite" and other_value is not None \
                and np.all(np.isfinite(np.asarray(other_value, dtype=np.float64))):
            # overflow (softmax without the max shift): a numerical instability, told apart
            # from a wrong derivative; only a warning where the inputs are extreme
            problem["message"] += f" where {other} is finite (numerical instability: overflow or 0/0)"
            problem["instability"] = True
            if extreme:
                warnings.append({"kind": severity.NON_FINITE_AT_EXTREME, "impl": problem["impl"], "tensor": tensor})
                entry.update(agree=True, warning=severity.NON_FINITE_AT_EXTREME, impl=problem["impl"])
                entries.append(entry)
                continue
        if problem:
            message = problem.pop("message")
            entry.update(agree=False, problem=message, problem_detail=problem, structural=problem["kind"] != "non-finite")
            entry.update(_shape_evidence(value_a, value_b, tol.rtol))
            failures.append((entry, f"{message} ({a.impl} vs {b.impl}, {case.dtype})"))
            entries.append(entry)
            continue
        va, vb = np.asarray(value_a, dtype=np.float64), np.asarray(value_b, dtype=np.float64)
        bound = b.error_bounds.get(key, 0.0) if key is not None else 0.0
        # the size each element's rounding is judged against: max|b| (max|a| when b is given as
        # projections: it has no elements), or the tensor's scales and rounding unit if larger
        elements = va if directions is not None else vb
        scale = max(float(np.abs(elements).max(initial=0.0)), a.scales.get(key, 0.0), b.scales.get(key, 0.0),
                    _rounding_unit(case, key))
        allowed_abs = tol.rtol * scale + tol.atol + bound
        if directions is not None:
            # a's gradient projected on b's directions: the allowance is normwise, rtol times
            # |a|_2 (or the scales and rounding unit over all n elements where larger), which a
            # correct gradient's rounding stays far below and a float32-accurate float64 one
            # exceeds (the bounds: PROJECTION_Z in reports.tolerances)
            floor = max(a.scales.get(key, 0.0), b.scales.get(key, 0.0), _rounding_unit(case, key)) * np.sqrt(va.size)
            allowed_abs = PROJECTION_Z * (tol.rtol * max(float(np.linalg.norm(va.reshape(-1))), floor)
                                          + tol.atol * np.sqrt(va.size)) + bound  # |atol|_2 over n elements
            va = directions.reshape(len(directions), -1) @ va.reshape(-1)
        gap = np.abs(va - vb)
        excess = gap - allowed_abs
        metrics = tensor_metrics(va, vb, excess)
        agree = bool((excess <= 0).all())
        mask = (kink_masks or {}).get(key) if role == "gradient" and directions is None else None
        at_kink_only = bool(not agree and mask is not None and np.all(excess[~mask] <= 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            used = np.where(gap == 0, 0.0, gap / allowed_abs)
        entry.update(
            agree=agree,
            metrics=metrics.to_dict(),
            of_allowed=float(used.max(initial=0.0)),  # < 1 agrees; the worst element's share of its allowance
            rtol=tol.rtol,
            max_bound=float(np.max(bound)) if np.ndim(bound) else float(bound),
        )
        if tol.atol:
            entry["atol"] = tol.atol
        if directions is not None:
            entry["projected_on"] = len(directions)  # values are <g, v_k> on that many random directions
        if agree and tol.overrides and scale > 0 and tol.rtol * scale + tol.atol >= VACUOUS_FRACTION * scale:
            # an override this loose would pass an all-zeros gradient (off by 100% of the scale):
            # an agreement under it is no evidence (a value off by more than even it allows
            # stays a disagreement, judged below)
            problem = (f"{tensor} ({a.impl} vs {b.impl}, {case.dtype}): the tolerance override allows "
                       f"{tol.rtol * scale + tol.atol:.2g}, at least {VACUOUS_FRACTION:.0%} of the largest value "
                       f"{scale:.2g}, so it cannot tell a wrong gradient (an all-zeros one) from rounding; "
                       f"not judged as a pass (lower atol below {VACUOUS_FRACTION * scale - tol.rtol * scale:.2g})")
            entry.update(agree=False, problem=problem, problem_detail={"kind": VACUOUS_OVERRIDE, "impl": a.impl},
                         structural=False)
            entries.append(entry)
            failures.append((entry, problem))
            continue
        if not agree:
            entry["ratio"] = proportional_ratio(va, vb)  # a / b where constant: evidence for a finding's cause
            if va.ndim == 2 and va.shape[0] == va.shape[1] > 1:
                entry["transposed"] = equals_transposed(va, vb, float(np.max(allowed_abs)))
            if directions is None and entry["ratio"] is None and constant_down_columns(va, vb, float(np.max(allowed_abs))):
                # evidence of a term missing along axis 0 (a mean's branch): the rows it spans
                entry["constant_down_columns"] = int(va.shape[0])
        entries.append(entry)
        if at_kink_only:
            entry["kink_only"] = True
            strays = _outside_subdifferential(outside, (a.impl, b.impl), key, mask, allowed_abs)
            entry["subgradient"] = not strays
            if strays:
                failures.append((entry, f"{tensor} ({a.impl} vs {b.impl}, {case.dtype}): at the kink "
                                 + "; ".join(strays) + " (a convention must lie in the subdifferential)"))
                continue
            kink_notes.append(f"{tensor} differs only at the kink ({int(mask.sum())} element(s))")
            if not strict_kinks:
                continue
        if not agree:
            where = f"at {metrics.worst_index}" if metrics.worst_index else "(scalar)"
            if directions is not None:
                where = f"projected on random direction {metrics.worst_index[0]} of {len(directions)}"
            failures.append((entry,
                f"{tensor} ({a.impl} vs {b.impl}, {case.dtype}): max rel err {metrics.normwise_rel_err:.1e} {where} "
                f"({metrics.a_value:.6g} vs {metrics.b_value:.6g}), allowed {tol.rtol:.0e}"
                + (f" + atol {tol.atol:.0e}" if tol.atol else "")
                + (" + numeric error bound" if np.any(bound) else "")
                + (" (tolerance overridden: " + "; ".join(o["reason"] for o in tol.overrides) + ")"
                   if tol.overrides else "")
            ))
    for (tensor, role, key, _), entry in zip(expected, entries):
        # a's gradients against a's own in another call order: the rounding two implementations
        # of the dtype may differ by, whatever the pair
        problem = (_order_problem(tensor, a, key, tolerance_for(case.dtype, "autodiff").rtol)
                   if role == "gradient" and "problem" not in entry else None)
        if problem:
            message = problem.pop("message")
            entry.update(agree=False, problem=message, problem_detail=problem, structural=False)
            failures.append((entry, f"{message} ({a.impl}, {case.dtype})"))
    overflowed = [w["impl"] for w in warnings if w["kind"] == severity.NON_FINITE_AT_EXTREME
                  and w["impl"] in (a.impl, b.impl)]
    if overflowed:
        # one side overflowed at extreme inputs (a non-finite tensor where the other is finite):
        # the values it computed from the overflow are part of that warning, not wrong
        # gradients of their own
        for entry, _ in failures:
            if "metrics" in entry:
                entry.update(agree=True, warning=severity.NON_FINITE_AT_EXTREME, impl=overflowed[0])
        failures = [(entry, message) for entry, message in failures if "metrics" not in entry]
    failures = [message for _, message in failures]
    verdict = DISAGREE if failures else (CONVENTION if kink_notes else AGREE)
    record = base_record(case, (a.impl, b.impl), verdict)
    record.update(tolerance={"rtol": tol.rtol, "why": tol.why}, tensors=entries)
    if tol.overrides:
        record["tolerance"].update(atol=tol.atol, overrides=list(tol.overrides))
    if case.kind == "kink":
        record["conventions"] = {name: (conventions or {}).get(name) for name in (a.impl, b.impl)}
    if warnings:
        record["warnings"] = list({severity.warning_key(w): w for w in warnings}.values())
    notes = sorted(set(a.notes) | set(b.notes))  # conventions an implementation follows (an L2 factor)
    if notes:
        record["notes"] = notes
    if kink_notes and not failures:
        record["message"] = f"convention difference ({a.impl} vs {b.impl}, {case.dtype}): " + "; ".join(kink_notes)
    return with_failures(record, failures, reproduce)


def with_failures(record: dict, failures: list, reproduce: str) -> dict:
    """``record`` with its reproduce command and, where there are failures, its message: the
    first failure, how many more, and the command that reproduces it."""
    if reproduce:
        record["reproduce"] = reproduce
    if failures:
        more = f" (+{len(failures) - 1} more tensor(s))" if len(failures) > 1 else ""
        record["message"] = with_reproduce(failures[0] + more, reproduce)
    return record


_REPRODUCE = "; reproduce: "


def with_reproduce(text: str, reproduce: str) -> str:
    """A record's message: what failed, then the command that reruns it (also the record's
    own ``reproduce`` field)."""
    return text + (f"{_REPRODUCE}{reproduce}" if reproduce else "")


def headline(record: dict) -> str:
    """A record's message without the command that reruns it, for a report that shows that
    command apart: ``with_reproduce`` undone, by the record's ``reproduce`` field."""
    message, reproduce = record.get("message", ""), record.get("reproduce")
    return message.removesuffix(f"{_REPRODUCE}{reproduce}") if reproduce else message
