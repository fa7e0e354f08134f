"""Sigmoid and tanh, elementwise: forward and backward side by side.

Both backward passes use the cached OUTPUT, not the input: the derivative of each is a
polynomial in its own value (sigma' = sigma (1 - sigma), tanh' = 1 - tanh^2), so the
forward's result is all the backward needs and no exponential is evaluated twice.
Computation stays in the input's floating dtype.
"""

from __future__ import annotations

import numpy as np

from .validation import as_float_array, check_cache, check_min_ndim, check_values, same_dtype, same_shape


def _check_out(out: np.ndarray, lo: int, fn: str) -> None:
    """Check a cached output: at least 1-D, values in [lo, 1] (what ``fn`` can return).

    The backward pass computes the derivative from these values, so a cache holding
    anything else (the input, say) would give a silently wrong gradient.
    """
    check_min_ndim("cache[0] (out)", out, 1)
    check_values("cache[0] (out)", out, (out >= lo) & (out <= 1), f"{fn} outputs in [{lo}, 1]")


def _check_dout(dout, out: np.ndarray, fn: str) -> np.ndarray:
    """Return ``dout`` checked against the cached output: same shape, same dtype."""
    dout = as_float_array(dout, "dout")
    same_shape("dout", dout, out.shape, f"the shape of out in {fn}")
    same_dtype(dout=dout, out=out)
    return dout


def sigmoid_forward(x):
    """Logistic sigmoid, elementwise: ``out = 1 / (1 + exp(-x))``.

    Evaluated as ``1 / (1 + exp(-|x|))`` for x >= 0 and ``exp(-|x|) / (1 + exp(-|x|))``
    for x < 0, so ``exp`` only ever sees non-positive arguments and never overflows
    (float32 inputs of -100 give 3.7e-44, not a warning and an inf).

    Inputs:
        x: (N, d_1, ..., d_k) float32 or float64, any shape with at least one element.

    Returns:
        out: same shape and dtype as ``x``, values in [0, 1].
        cache: ``(out,)``, the output: the backward pass needs nothing else.
    """
    x = as_float_array(x, "x", min_ndim=1)
    e = np.exp(-np.abs(x))  # in (0, 1]
    out = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
    return out, (out,)


def sigmoid_backward(dout, cache):
    """Gradient of the sigmoid: ``dx = dout * out * (1 - out)``.

    Derivation (chain rule, elementwise): sigma(x) = 1 / (1 + e^-x), so
    dsigma/dx = e^-x / (1 + e^-x)^2 = sigma(x) (1 - sigma(x)).  The Jacobian is diagonal,
    diag(sigma (1 - sigma)), and dout times a diagonal Jacobian is the elementwise product
    dout * out * (1 - out): (N, ...) o (N, ...) o (N, ...).

    Inputs:
        dout: (N, d_1, ..., d_k) upstream gradient, shape and dtype of the output.
        cache: ``(out,)`` from ``sigmoid_forward``.

    Returns:
        dx: (N, d_1, ..., d_k), dtype of the output.
    """
    (out,) = check_cache(cache, ("out",), "sigmoid_forward")
    _check_out(out, 0, "sigmoid_forward")
    dout = _check_dout(dout, out, "sigmoid_forward")
    local = out * (1 - out)  # dsigma/dx, from the output
    return dout * local


def tanh_forward(x):
    """Hyperbolic tangent, elementwise: ``out = tanh(x)``.

    Inputs:
        x: (N, d_1, ..., d_k) float32 or float64, any shape with at least one element.

    Returns:
        out: same shape and dtype as ``x``, values in [-1, 1].
        cache: ``(out,)``, the output.
    """
    x = as_float_array(x, "x", min_ndim=1)
    out = np.tanh(x)
    return out, (out,)


def tanh_backward(dout, cache):
    """Gradient of tanh: ``dx = dout * (1 - out**2)``.

    Derivation (chain rule, elementwise): tanh = sinh / cosh, so
    dtanh/dx = (cosh^2 - sinh^2) / cosh^2 = 1 - tanh^2.  The Jacobian is
    diag(1 - out^2), and dout times it is the elementwise product: (N, ...) o (N, ...).

    Inputs:
        dout: (N, d_1, ..., d_k) upstream gradient, shape and dtype of the output.
        cache: ``(out,)`` from ``tanh_forward``.

    Returns:
        dx: (N, d_1, ..., d_k), dtype of the output.
    """
    (out,) = check_cache(cache, ("out",), "tanh_forward")
    _check_out(out, -1, "tanh_forward")
    dout = _check_dout(dout, out, "tanh_forward")
    local = 1 - out * out  # dtanh/dx, from the output
    return dout * local
