"""Agreement metrics, defined once: tests and report writers all use these."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """The CS231n elementwise relative error: ``max(|a - b| / max(1e-8, |a| + |b|))``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return _cs231n(np.abs(a - b), a, np.abs(b)) if a.size else 0.0


def normwise_rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """``max|a - b| / max|b|`` (b the reference); 0 when both are all zero, inf when only b is."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0:
        return 0.0
    return _normwise(float(np.max(np.abs(a - b))), float(np.max(np.abs(b))))


def _cs231n(gap: np.ndarray, a: np.ndarray, size_b: np.ndarray) -> float:
    """``rel_error`` from |a - b| and |b| (``tensor_metrics`` has them already)."""
    return float(np.max(gap / np.maximum(1e-8, np.abs(a) + size_b)))


def _normwise(largest_gap: float, ref_scale: float) -> float:
    """``normwise_rel_error`` from max|a - b| and max|b|."""
    if ref_scale == 0.0:
        return 0.0 if largest_gap == 0.0 else float("inf")
    return largest_gap / ref_scale


@dataclass
class TensorMetrics:
    """How two arrays of one tensor differ.

    Attributes:
        max_abs_err: max |a - b|.
        normwise_rel_err: max |a - b| / max |b|.
        rel_error: the CS231n elementwise relative error.
        worst_index: index of the element with the largest |a - b| (after the error bound).
        a_value, b_value: the two values there.
        ref_scale: max |b|.
    """

    max_abs_err: float
    normwise_rel_err: float
    rel_error: float
    worst_index: list
    a_value: float
    b_value: float
    ref_scale: float

    def to_dict(self) -> dict:
        # the fields are plain numbers and a list of ints: no deep copy (dataclasses.asdict's)
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), list) else v) for f in fields(self)}


def tensor_metrics(a: np.ndarray, b: np.ndarray, excess: np.ndarray | None = None) -> TensorMetrics:
    """Metrics of ``a`` against the reference ``b`` (same shape, compared in float64).

    Args:
        a, b: the two arrays.
        excess: optional elementwise amount by which |a - b| exceeds what is allowed; the
            worst element is where it is largest (else where |a - b| is).

    ``normwise_rel_error`` and ``rel_error`` from one |a - b| and one |b| (a check makes
    thousands of these on small arrays: each NumPy call counts).
    """
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if a64.size == 0:
        return TensorMetrics(0.0, 0.0, 0.0, [], 0.0, 0.0, 0.0)
    gap = np.abs(a64 - b64)  # NaN where either is
    unknown = np.isnan(gap)
    diff = np.where(unknown, np.inf, gap) if unknown.any() else gap
    if excess is None:
        rank = diff
    else:
        unknown = np.isnan(excess)
        rank = np.where(unknown, np.inf, excess) if unknown.any() else excess
    flat = int(np.argmax(rank))
    index = [int(i) for i in np.unravel_index(flat, a64.shape)] if a64.ndim else []
    size_b = np.abs(b64)
    ref_scale = float(size_b.max())  # NaN where a NaN is
    return TensorMetrics(
        max_abs_err=float(diff.max()),
        normwise_rel_err=_normwise(float(gap.max()), ref_scale),
        rel_error=_cs231n(gap, a64, size_b),
        worst_index=index,
        a_value=float(a64.reshape(-1)[flat]),
        b_value=float(b64.reshape(-1)[flat]),
        ref_scale=ref_scale,
    )


def proportional_ratio(a: np.ndarray, b: np.ndarray, fit: float = 1e-3) -> float | None:
    """The constant c with ``a = c * b``, when one fits every element (else None).

    c is the least-squares factor ``<a, b> / <b, b>``; it fits when ``max|a - c b|`` is at most
    ``fit`` times ``max|a|``.  A finding reads a constant ratio as its likely cause (8 = N: a
    missing 1/N; -1: a sign); a single element always has one, so a finding trusts a ratio
    only when it holds across draws.  A reference of zeros has none.

    Args:
        a, b: same-shape arrays, a the one under test, b the reference.
        fit: the largest misfit, relative to max|a|, still called constant.
    """
    a64 = np.asarray(a, dtype=np.float64).reshape(-1)
    b64 = np.asarray(b, dtype=np.float64).reshape(-1)
    if a64.size == 0 or not np.all(np.isfinite(a64)) or not np.all(np.isfinite(b64)):
        return None
    bb = float(b64 @ b64)
    if bb == 0.0:
        return None
    c = float(a64 @ b64) / bb
    top = float(np.max(np.abs(a64)))
    if top == 0.0 or float(np.max(np.abs(a64 - c * b64))) > fit * top:
        return None
    return c


def constant_down_columns(a: np.ndarray, b: np.ndarray, allowed: float) -> bool:
    """Whether the error ``a - b`` is one row repeated: the same in every row (down each
    column, along axis 0), within ``allowed``, and larger than ``allowed`` somewhere.

    A term that depends on the column only, missing or extra, leaves such an error: the
    gradient through a mean over the batch axis (batchnorm's ``-mean(dxhat) / std``) is the
    classic one.  Needs at least two rows.

    Args:
        a, b: same-shape arrays of at least 2 dimensions, a the one under test.
        allowed: the largest difference between rows still called the same (absolute).
    """
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if a64.ndim < 2 or a64.shape[0] < 2 or a64.shape != b64.shape:
        return False
    error = a64 - b64
    if not np.all(np.isfinite(error)) or float(np.max(np.abs(error))) <= allowed:
        return False
    return float(np.max(np.abs(error - error[:1]))) <= allowed


def equals_transposed(a: np.ndarray, b: np.ndarray, allowed: float) -> bool:
    """Whether ``a`` is ``b`` transposed, within ``allowed`` at every element (2-D, b not
    symmetric-shaped away: shapes (m, n) and (n, m))."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if a64.ndim != 2 or b64.ndim != 2 or a64.shape != b64.shape[::-1]:
        return False
    return bool(np.all(np.abs(a64 - b64.T) <= allowed))
