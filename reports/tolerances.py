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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    why: str


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
}


def tolerance_for(dtype: str, kind: str, overrides=None) -> Tolerance:
    """The tolerance for a comparison, merged with an op's overrides by taking the max.

    Args:
        dtype: "float32" or "float64".
        kind: "autodiff" or "numeric".
        overrides: the op's ``tolerance_overrides`` ((dtype, kind) -> (rtol, why)).
    """
    base = TOLERANCES[(dtype, kind)]
    if overrides and (dtype, kind) in overrides:
        rtol, why = overrides[(dtype, kind)]
        if rtol > base.rtol:
            return Tolerance(rtol, f"op override: {why}")
    return base
