"""Seed 001's score network, one sample, in the lecture's COLUMN convention.

    z = W x + b        (H,) = (H, D) (D,) + (H,)
    h = f(z)           (H,), f = the logistic sigmoid
    s = u^T h          scalar

The lecture leaves f generic; here f is the sigmoid, so f'(z) = h (1 - h) comes from the
cached activation.  Gradients follow the shape convention: each has its parameter's shape.
"""

from __future__ import annotations

import numpy as np

from .activations import sigmoid_forward
from .validation import as_float_array, check_cache, check_values, fits_dtype, matmul, same_dtype, same_shape


def _check_shapes(x, W, b, u, names=("x", "W", "b", "u")) -> None:
    """Check x (D,), W (H, D), b (H,), u (H,) against each other."""
    xn, wn, bn, un = names
    for name, array, ndim in ((xn, x, 1), (wn, W, 2), (bn, b, 1), (un, u, 1)):
        if array.ndim != ndim:
            raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    h, d = W.shape
    same_shape(xn, x, (d,), f"one input per column of {wn} {W.shape}; one sample, no batch axis")
    same_shape(bn, b, (h,), f"one bias per row of {wn} {W.shape}")
    same_shape(un, u, (h,), f"one score weight per row of {wn} {W.shape}")


def _check_ds(ds, dtype: np.dtype):
    """Return the scalar upstream gradient ``ds`` in ``dtype``, or raise naming ``ds``.

    A Python int or float is cast to ``dtype`` (the usual ``ds = 1.0``); an array or a
    NumPy scalar must already have that dtype, like every other argument.
    """
    if type(ds) in (int, float):
        if type(ds) is float and not np.isfinite(ds):
            raise ValueError(f"ds must be finite, got {ds!r}")
        try:
            value = float(ds)
        except OverflowError:  # a Python int beyond 1e308
            value = float("inf")
        if not fits_dtype(value, dtype):  # 1e300 is inf in float32
            raise ValueError(f"ds must be finite in {dtype}, got {ds!r}")
        return dtype.type(ds)
    ds = as_float_array(ds, "ds", ndim=0)
    if ds.dtype != dtype:
        raise TypeError(f"ds must have the dtype of the cache, {dtype}, got {ds.dtype}")
    return ds[()]


def score_net_forward(x, W, b, u):
    """Score of one sample: ``s = u^T sigmoid(W x + b)``.

    Inputs:
        x: (D,) float32/float64, one sample as a column vector (no batch axis).
        W: (H, D) weights, dtype of ``x`` (column convention: W x, not x W).
        b: (H,) biases.
        u: (H,) score weights.

    Returns:
        s: scalar of the dtype of ``x``.
        cache: ``(x, W, h, u)`` with h = sigmoid(W x + b), (H,).
    """
    x = as_float_array(x, "x", ndim=1)
    W = as_float_array(W, "W", ndim=2)
    b = as_float_array(b, "b", ndim=1)
    u = as_float_array(u, "u", ndim=1)
    dtype = same_dtype(x=x, W=W, b=b, u=u)
    _check_shapes(x, W, b, u)
    # BLAS sums products in an order that depends on the operands' memory layout; C-order
    # operands (no copy when they already are) make the result the same for every layout
    z = matmul(np.ascontiguousarray(W), np.ascontiguousarray(x)) + b
    h, _ = sigmoid_forward(z)
    s = matmul(np.ascontiguousarray(u), h)
    return dtype.type(s), (x, W, h, u)


def score_net_backward(ds, cache):
    """Gradients of the score with respect to x, W, b and u.

    Derivation (chain rule through s = u^T h, h = f(z), z = W x + b; the lecture's steps):

    * ds/du = h: (H,).  s is linear in u with coefficient h (shape convention: h, not h^T).
    * delta = ds/dh ds/dz = u o f'(z) = u o h o (1 - h): (H,), the local error signal at z
      (the Jacobian dh/dz = diag(f'(z)) turns the product into a Hadamard product).
    * ds/db = delta dz/db = delta I = delta: (H,).
    * ds/dW = outer(delta, x): (H, 1)(1, D) = (H, D).  W[i, j] reaches s only through
      z_i, with dz_i/dW[i, j] = x_j, so ds/dW[i, j] = delta_i x_j; in the lecture's
      row-vector notation, delta^T x^T.
    * ds/dx = W^T delta: (D, H)(H,) = (D,).  x_j feeds every z_i (through W[i, j]), and
      gradients sum over those H branches: the sum is the product with W transposed.

    Each is scaled by the scalar upstream gradient ``ds``.

    Inputs:
        ds: scalar upstream gradient (1.0 for ds/d.), a Python number or a 0-d array of
            the cache's dtype.
        cache: ``(x, W, h, u)`` from ``score_net_forward``.

    Returns:
        dx: (D,).
        dW: (H, D).
        db: (H,).
        du: (H,).
    """
    x, W, h, u = check_cache(cache, ("x", "W", "h", "u"), "score_net_forward")
    _check_shapes(x, W, h, u, names=("cache[0] (x)", "cache[1] (W)", "cache[2] (h)", "cache[3] (u)"))
    # f'(z) = h (1 - h) holds only for a sigmoid output
    check_values("cache[2] (h)", h, (h >= 0) & (h <= 1), "sigmoid outputs in [0, 1]")
    ds = _check_ds(ds, x.dtype)
    du = ds * h
    delta = ds * u * (h * (1 - h))  # ds/dz, (H,)
    db = delta
    dW = np.outer(delta, x)
    dx = matmul(np.ascontiguousarray(W).T, delta)  # C-order W: the same sums for every layout
    return dx, dW, db, du
