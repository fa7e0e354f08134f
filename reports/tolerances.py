"""Tolerances: one table, keyed by dtype and comparison kind, each entry justified.

A tensor agrees when, at every element,

    |a - b| <= rtol * max|b| + bound

with b the reference (the second of the pair), rtol from this table and bound the
reference's own elementwise error bound (only the numeric oracle has one, see
``oracles.numeric``).  rtol is relative to the tensor's largest element ("norm-wise"), not
to each element, so tiny gradient entries that lose all their digits to cancellation do not
raise false alarms, and it does not grow with the array size (decided deliberately: the
matrix's largest reductions are known, and a size-scaled tolerance would hide mistakes in
large cases).

Kinds:
* "autodiff": two implementations that compute the same formula in the case's dtype
  (manual, torch, jax, a candidate); they differ only by rounding and summation order.
* "numeric": anything against the float64 central differences.
* "jvp": forward mode against reverse mode (or two reverse modes) through the scalar
  <u, J v> = sum_k <g_k, v_k> ("jvp" cases, ``oracles.modes``).
* "jvp-numeric": forward mode against the float64 directional difference.
* "hvp": two autodiff Hessian-vector products (torch and jax) in the case's dtype.
* "hvp-fd": a Hessian-vector product against float64 central differences of the
  candidate's gradient.

The scalar <u, J v> is a sum of products that can cancel to nearly nothing, so for "jvp"
kinds max|b| is replaced by the size of what was summed (``reports.compare``): on the
reverse side sum_k max|g_k| * sum|v_k|, on the forward side max|J v| * sum|u|, the larger of
the two sides.  A gradient with elementwise error rtol * max|g_k| (what reverse mode
allows) moves <g, v> by at most rtol * max|g_k| * sum|v_k|, so the same rtol as reverse mode
is the consistent choice: forward and reverse agree exactly when each is right at its
reverse-mode tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

# Projected gradients (the numeric oracle's large inputs, ``oracles.numeric``): the values
# compared are <g, v_k> along K = 16 standard Gaussian directions v_k, and the allowance per
# direction is normwise: PROJECTION_Z * rtol * |g|_2.  For an error e, <e, v> ~ N(0, |e|_2^2).
# A correct gradient's rounding is far below its dtype's rtol in norm, |e|_2 <= rtol |g|_2 / M,
# with M >= 100 measured in float32 (worst rounding ~1e-6 against rtol 1e-4) and M >= 1e3 in
# float64 (~1e-11 against 1e-8): a false alarm needs |z| > M >= 100, probability 2 Phi(-100),
# nil.  A gradient whose error is k times the allowance (|e|_2 = k rtol |g|_2) passes one
# direction with probability P(|z| < 1/k) <= sqrt(2/pi) / k, all K with at most (0.8 / k)^K:
# a float64 gradient computed in float32 (rounding 2^-24 per element, RMS 3.5e-8 relative, so
# k >= 3.5 against rtol 1e-8) passes with probability below 2e-10 at any size, and a mistake
# with k = 10 below 3e-18.  (An allowance of 7 * rtol * max|g| * sqrt(n), elementwise
# allowances summed, let a float32-accurate float64 gradient pass at every size.)
PROJECTION_Z = 1.0

@dataclass(frozen=True)
class Tolerance:
    rtol: float
    why: str
    atol: float = 0.0  # only from an override: the table's entries are relative
    overrides: tuple = ()  # the overrides merged in (each as given, with its reason and scope)


TOLERANCES: dict[tuple[str, str], Tolerance] = {
    ("float64", "autodiff"): Tolerance(
        1e-10,
        "eps64 = 2.2e-16 times ~1e5 for reductions over up to ~1e3 terms with cancellation "
        "(db sums N rows, dW sums N outer products); measured worst on the default matrix "
        "~3e-15.  A float64 gradient computed in float32 is off by ~1e-7 and fails by 1000x.",
    ),
    ("float64", "numeric"): Tolerance(
        1e-8,
        "the numeric oracle's own error is allowed separately (its bound); this covers what the "
        "bound's estimate leaves out, measured below 2e-11 of max|b| on the default matrix, "
        "while a float32-accurate gradient (~1e-7) still fails.",
    ),
    ("float32", "autodiff"): Tolerance(
        1e-4,
        "eps32 = 1.2e-7 times ~1e3: float32 reductions over up to ~1e3 terms (blocked BLAS "
        "sums in torch and XLA, pairwise sums in NumPy) with cancellation; measured worst on "
        "the default matrix ~1e-6.  Wrong gradients (a missing transpose, a wrong axis) are "
        "off by O(1).",
    ),
    ("float32", "numeric"): Tolerance(
        1e-4,
        "as float32 autodiff: the float32 result's rounding dominates, the float64 numeric "
        "truth is ~1e-10 accurate.",
    ),
    ("float64", "jvp"): Tolerance(
        1e-10,
        "as float64 autodiff, relative to the size of the summed products (see above): forward "
        "and reverse mode evaluate the same chain rule in another order and differ by rounding "
        "only.  A wrong gradient moves <g, v> by O(1) of that size (a random v sees any error).",
    ),
    ("float64", "jvp-numeric"): Tolerance(
        1e-8,
        "as float64 numeric: the directional difference carries its own Richardson + rounding "
        "bound; this covers the direction's rounding in x + t v (at most eps / 1e-5 ~ 2e-11 of "
        "the size) and what the bound's estimate leaves out.",
    ),
    ("float32", "jvp"): Tolerance(
        1e-4,
        "as float32 autodiff, relative to the size of the summed products: both sides' J v "
        "and gradients are float32 (the sum itself is taken in float64 by the harness).",
    ),
    ("float32", "jvp-numeric"): Tolerance(
        1e-4,
        "as float32 numeric: the float32 forward mode's rounding dominates the float64 truth.",
    ),
    ("float64", "hvp"): Tolerance(
        1e-10,
        "torch differentiates <its gradient, v> in reverse mode, jax its gradient in forward "
        "mode (jvp of grad): the same second derivatives in another summation order, rounding "
        "only, as float64 autodiff.",
    ),
    ("float64", "hvp-fd"): Tolerance(
        1e-8,
        "central differences of the float64 gradient with step t = 1e-5 max(1, max|x|) / max|v| "
        "and Richardson: the bound allows |D(t/2) - D(t)| (what is left of the t^2 error) plus "
        "the gradient's rounding amplified by 1/t (64 eps max|g| / (t/2), see oracles.numeric); "
        "1e-8 covers the rest, while a gradient that is wrong (a missing 1/N, a wrong sign) "
        "changes H v by O(1).",
    ),
    ("float32", "hvp"): Tolerance(
        1e-4,
        "as float32 autodiff: two float32 second-order passes, reductions over up to ~1e3 terms.",
    ),
    ("float32", "hvp-fd"): Tolerance(
        1e-4,
        "a float32 Hessian-vector product against the float64 differences of the gradient at the "
        "same (float32-rounded) inputs: the float32 rounding dominates, as float32 numeric.",
    ),
}


def tolerance_for(dtype: str, kind: str, overrides=()) -> Tolerance:
    """The tolerance for a comparison: the table's entry, merged with the overrides a user
    gave for the call or the layer (``override_value``) by taking the larger of each bound,
    as JAX's ``tolerance(dtype, tol)`` does: an override loosens, it never tightens the table.

    Args:
        dtype: "float32" or "float64".
        kind: "autodiff", "numeric", "jvp", "jvp-numeric", "hvp" or "hvp-fd".
        overrides: override dicts ``{"rtol", "atol", "reason", "scope"}`` (None entries are
            ignored); one that sets neither bound for ``dtype`` does not apply.
    """
    table = TOLERANCES[(dtype, kind)]
    rtol, atol, applied = table.rtol, 0.0, []
    for override in overrides:
        if not override:
            continue
        r, a = override_value(override.get("rtol"), dtype), override_value(override.get("atol"), dtype)
        if r is None and a is None:
            continue
        rtol, atol = max(rtol, r or 0.0), max(atol, a or 0.0)
        applied.append(override)
    if not applied:
        return table
    why = table.why + " Loosened by " + "; ".join(f"the {o.get('scope', 'call')}'s override: {o['reason']}"
                                                   for o in applied)
    return Tolerance(rtol, why, atol, tuple(applied))


def override_value(value, dtype: str) -> float | None:
    """An override's rtol or atol for ``dtype``: a number for every dtype, or a dict by dtype
    name (a dtype it does not name keeps the table's value: None)."""
    if isinstance(value, dict):
        return value.get(dtype)
    return value


# --- Overrides: what a user may loosen (``gradmatrix.check(rtol=, atol=, reason=)``) -----------
#
# An override is merged by the larger of each bound (``tolerance_for``).  It may not make the
# check vacuous: an allowance that reaches VACUOUS_FRACTION (below) of a tensor's largest
# element cannot tell a wrong formula from rounding, and an all-zeros gradient is off by
# exactly 100% of that size.  So an rtol of VACUOUS_FRACTION or more is refused where it is
# given, and a tensor whose allowance (rtol * scale + atol) reaches VACUOUS_FRACTION * scale
# fails with that said (``reports.compare``): an atol can only be judged against the size
# of each tensor it meets.  A tensor whose reference is exactly zero everywhere (scale 0) is
# judged as before: only zeros (within atol) agree with it.


# --- Low precision: functions with their own backward in float16 and bfloat16 -------------------
# (``reports.framework_checks``; the inputs and dout are the same dtype-rounded values for all)
#
# No fixed rtol serves half precision: the rounding of a gradient grows with the reductions it
# sums, and a fixed bound can exceed the gradient itself (a bfloat16 atol of 7.85e-3 above a
# signal of 6.9e-3 passed an all-zeros gradient).  So the allowance is measured per case, as
# FlashAttention's tests do: the reference (plain autodiff) run in the same dtype on the same
# inputs is compared with the float64 ground truth (the reference in float64), and
#
#     max|candidate - truth| <= LOW_PRECISION_K * max|reference - truth|
#                               + LOW_PRECISION_FLOOR_ULPS * EPS[dtype] * max|truth|
#
# K = 2 is FlashAttention's factor: a kernel may round differently from the plain
# implementation (another summation order, fused steps, a float32 accumulator or none), and
# twice the plain implementation's error covers that while a wrong formula (a sign, a factor,
# a transpose) is off by O(1) of the gradient.  The floor, two units in the last place of the
# gradient's largest element, is for a reference whose own error happens to be ~0 on a case
# (an elementwise op whose float64 result rounds to the same value): a kernel one rounding away
# from it is not wrong.
LOW_PRECISION_K = 2.0
LOW_PRECISION_FLOOR_ULPS = 2.0
# Machine epsilon (spacing of the dtype at 1.0): float16 has 10 fraction bits, bfloat16 7.
EPS = {"float64": 2.0 ** -52, "float32": 2.0 ** -23, "float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}
# An allowance at least this share of the gradient's largest element cannot tell a wrong
# formula from rounding (a missing factor 1/2 moves the gradient by 50% of its size, a missing
# 1/N for N >= 2 by more, a sign error by 200%; 10% leaves a factor of 5 below the smallest of
# these): the check says it cannot decide at that dtype instead of passing.  An all-zeros
# gradient is off by 100% of the size, so it either fails or meets an undecidable allowance:
# it never passes.
VACUOUS_FRACTION = 0.1
