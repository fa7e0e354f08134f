"""The one comparison function: a pair of results on a case -> per-tensor metrics and a verdict.

Order of checks for every tensor (forward output first, then each gradient): present,
shape, dtype, finite, then values against the tolerance.  The first failing check names the
problem; values are only compared when the structure is right.
"""

from __future__ import annotations

import numpy as np

from oracles.cases import Case
from oracles.result import Result
from reports.metrics import tensor_metrics
from reports.tolerances import tolerance_for

AGREE, DISAGREE, ERROR, SKIPPED = "agree", "disagree", "error", "skipped"
CONVENTION = "convention"  # differs only at kink elements: reported, not failed (unless strict)
PASSING = (AGREE, CONVENTION)


def _tensors(case: Case, result: Result) -> dict:
    """Tensor name -> array: the forward output, then d<input> for each gradient."""
    spec = case.spec
    tensors = {spec.output: result.forward}
    for name in spec.differentiable:
        tensors[f"d{name}"] = result.grads.get(name)
    return tensors


def _check_structure(tensor: str, case: Case, result: Result, value, expected_shape) -> str | None:
    """The first structural problem of one side's tensor, or None."""
    if value is None:
        return f"{tensor}: {result.impl} returned no gradient for {tensor[1:]!r}"
    expected_dtype = result.computes_in or case.dtype
    value = np.asarray(value)
    if value.shape != tuple(expected_shape):
        return f"{tensor}: {result.impl} returned shape {value.shape}, expected {tuple(expected_shape)}"
    if value.dtype != np.dtype(expected_dtype):
        return f"{tensor}: {result.impl} returned dtype {value.dtype} for a {case.dtype} case, expected {expected_dtype}"
    if not np.all(np.isfinite(value)):
        return f"{tensor}: {result.impl} returned non-finite values"
    return None


def base_record(case: Case, pair: tuple, verdict: str, message: str = "") -> dict:
    """The fields every comparison record has: case, pair, kind, verdict and message."""
    return {
        "id": f"{case.id}-{pair[0]}~{pair[1]}",
        "case": case.id,
        "op": case.op,
        "case_kind": case.kind,
        "dims": {k: (list(v) if isinstance(v, tuple) else v) for k, v in case.dims},
        "seed": case.seed,
        "dtype": case.dtype,
        "pair": list(pair),
        "kind": "numeric" if "numeric" in pair else "autodiff",
        "tensors": [],
        "verdict": verdict,
        "message": message,
    }


def compare(case: Case, a: Result, b: Result, reproduce: str = "", kink_masks: dict | None = None,
            strict_kinks: bool = False, conventions: dict | None = None) -> dict:
    """Compare implementation ``a`` against reference ``b`` on ``case``.

    Args:
        case: the case both results were computed on.
        a: the result under test (the first of the pair).
        b: the reference (the second of the pair; the numeric oracle when present).
        reproduce: a command that reruns this comparison, quoted in messages.
        kink_masks: per input name, the gradient elements at a kink (kink cases only).
            A tensor that differs only there is a convention difference: verdict
            "convention", which passes, unless ``strict_kinks``.
        strict_kinks: make convention differences fail ("disagree").
        conventions: implementation name -> the derivative it took at the kink, for the record.

    Returns:
        A JSON-ready record: the case and pair, the comparison kind and tolerance, a list of
        per-tensor entries (metrics, allowed error, agreement or the structural problem),
        the verdict ("agree" or "disagree") and, on disagreement, a one-line message for the
        first failing tensor.
    """
    spec = case.spec
    kind = "numeric" if "numeric" in (a.impl, b.impl) else "autodiff"
    tol = tolerance_for(case.dtype, kind, spec.tolerance_overrides)
    dims = case.dim_map
    shapes = {spec.output: () if spec.output_shape is None else spec.shape_of(spec.output_shape, dims)}
    for s in spec.inputs:
        if s.differentiable:
            shapes[f"d{s.name}"] = spec.shape_of(s.shape, dims)

    ta, tb = _tensors(case, a), _tensors(case, b)
    entries, failures, kink_notes = [], [], []
    for tensor, expected_shape in shapes.items():
        entry = {"tensor": tensor, "role": "forward" if tensor == spec.output else "gradient"}
        problem = _check_structure(tensor, case, a, ta[tensor], expected_shape) or _check_structure(
            tensor, case, b, tb[tensor], expected_shape
        )
        if problem:
            structural = "non-finite" not in problem
            entry.update(agree=False, problem=problem, structural=structural)
            failures.append(f"{problem} ({a.impl} vs {b.impl}, {case.dtype})")
            entries.append(entry)
            continue
        va, vb = np.asarray(ta[tensor], dtype=np.float64), np.asarray(tb[tensor], dtype=np.float64)
        bound = b.error_bounds.get(tensor[1:], 0.0) if tensor != spec.output else 0.0
        allowed_abs = tol.rtol * float(np.max(np.abs(vb), initial=0.0)) + bound
        excess = np.abs(va - vb) - allowed_abs
        metrics = tensor_metrics(va, vb, excess)
        agree = bool(np.all(excess <= 0))
        mask = (kink_masks or {}).get(tensor[1:]) if tensor != spec.output else None
        at_kink_only = bool(not agree and mask is not None and np.all(excess[~mask] <= 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            used = np.where(np.abs(va - vb) == 0, 0.0, np.abs(va - vb) / allowed_abs)
        entry.update(
            agree=agree,
            metrics=metrics.to_dict(),
            of_allowed=float(np.max(used, initial=0.0)),  # < 1 agrees; the worst element's share of its allowance
            rtol=tol.rtol,
            max_bound=float(np.max(bound)) if np.ndim(bound) else float(bound),
        )
        entries.append(entry)
        if at_kink_only:
            entry["kink_only"] = True
            kink_notes.append(f"{tensor} differs only at the kink ({int(mask.sum())} element(s))")
            if not strict_kinks:
                continue
        if not agree:
            where = f"at {metrics.worst_index}" if metrics.worst_index else "(scalar)"
            failures.append(
                f"{tensor} ({a.impl} vs {b.impl}, {case.dtype}): max rel err {metrics.normwise_rel_err:.1e} {where} "
                f"({metrics.a_value:.6g} vs {metrics.b_value:.6g}), allowed {tol.rtol:.0e}"
                + (" + numeric error bound" if np.any(bound) else "")
            )
    verdict = DISAGREE if failures else (CONVENTION if kink_notes else AGREE)
    record = base_record(case, (a.impl, b.impl), verdict)
    record.update(tolerance={"rtol": tol.rtol, "why": tol.why}, tensors=entries)
    if case.kind == "kink":
        record["conventions"] = {name: (conventions or {}).get(name) for name in (a.impl, b.impl)}
    if kink_notes and not failures:
        record["message"] = f"convention difference ({a.impl} vs {b.impl}, {case.dtype}): " + "; ".join(kink_notes)
    if failures:
        more = f" (+{len(failures) - 1} more tensor(s))" if len(failures) > 1 else ""
        record["message"] = failures[0] + more + (f"; reproduce: {reproduce}" if reproduce else "")
    return record
