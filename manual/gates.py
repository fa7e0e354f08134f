"""The gates of seed 001's computational graph, vectorized: add, multiply, max.

Each gate takes two inputs of one shape and acts elementwise, so each local Jacobian is
diagonal and every backward pass is an elementwise product with the upstream gradient.
The lecture's node intuitions, one per gate:

* add "distributes": both inputs get the upstream gradient unchanged;
* multiply "switches": each input gets the upstream gradient times the OTHER input;
* max "routes": the larger input gets the whole upstream gradient, the other none.

Inputs are never broadcast against each other: a broadcast input would need its gradient
summed over the broadcast axes, so shapes must match exactly (a ``ValueError`` otherwise).
Computation stays in the inputs' floating dtype.
"""

from __future__ import annotations

import numpy as np

from .validation import as_float_array, check_cache, check_min_ndim, same_dtype, same_shape


def _check_pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Return x, y as float arrays of one shape and one dtype, or raise naming the argument."""
    x = as_float_array(x, "x", min_ndim=1)
    y = as_float_array(y, "y", min_ndim=1)
    same_dtype(x=x, y=y)
    same_shape("y", y, x.shape, "the shape of x; gates do not broadcast")
    return x, y


def _check_backward(dout, cache, fn: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unpack a gate's cache ``(x, y)`` and check ``dout`` against it."""
    x, y = check_cache(cache, ("x", "y"), fn)
    check_min_ndim("cache[0] (x)", x, 1)
    same_shape("cache[1] (y)", y, x.shape, "the shape of cache[0] (x)")
    dout = as_float_array(dout, "dout")
    same_shape("dout", dout, x.shape, f"the shape of out in {fn}")
    same_dtype(dout=dout, x=x)
    return dout, x, y


def add_forward(x, y):
    """Add gate: ``out = x + y``, elementwise.

    Inputs:
        x: (N, D) float32/float64 (any shape with at least one element).
        y: (N, D), the shape and dtype of ``x``.

    Returns:
        out: (N, D).
        cache: ``(x, y)``, kept for their shape and dtype (the gradient needs no values).
    """
    x, y = _check_pair(x, y)
    return x + y, (x, y)


def add_backward(dout, cache):
    """Gradients of the add gate: ``dx = dout``, ``dy = dout`` ("distributes").

    Derivation (chain rule): d(x + y)/dx = 1 and d(x + y)/dy = 1 elementwise, so each
    local Jacobian is the identity and dx = dout I = dout, dy = dout: (N, D) each.  Both
    are fresh arrays, so a caller accumulating into one (``dy += ...``) leaves the other
    and ``dout`` alone.

    Inputs:
        dout: (N, D) upstream gradient.
        cache: ``(x, y)`` from ``add_forward``.

    Returns:
        dx: (N, D).
        dy: (N, D).
    """
    dout, x, y = _check_backward(dout, cache, "add_forward")
    return dout.copy(), dout.copy()


def multiply_forward(x, y):
    """Multiply gate: ``out = x * y``, elementwise.

    Inputs:
        x: (N, D) float32/float64 (any shape with at least one element).
        y: (N, D), the shape and dtype of ``x``.

    Returns:
        out: (N, D).
        cache: ``(x, y)``.
    """
    x, y = _check_pair(x, y)
    return x * y, (x, y)


def multiply_backward(dout, cache):
    """Gradients of the multiply gate: ``dx = dout * y``, ``dy = dout * x`` ("switches").

    Derivation (chain rule): d(x y)/dx = y and d(x y)/dy = x elementwise, so the local
    Jacobians are diag(y) and diag(x): each input's gradient is the upstream gradient
    times the other input, (N, D) o (N, D).

    Inputs:
        dout: (N, D) upstream gradient.
        cache: ``(x, y)`` from ``multiply_forward``.

    Returns:
        dx: (N, D).
        dy: (N, D).
    """
    dout, x, y = _check_backward(dout, cache, "multiply_forward")
    return dout * y, dout * x


def max_forward(x, y):
    """Max gate: ``out = maximum(x, y)``, elementwise.

    Inputs:
        x: (N, D) float32/float64 (any shape with at least one element).
        y: (N, D), the shape and dtype of ``x``.

    Returns:
        out: (N, D).
        cache: ``(x, y)``.
    """
    x, y = _check_pair(x, y)
    return np.maximum(x, y), (x, y)


def max_backward(dout, cache):
    """Gradients of the max gate: ``dx = dout * 1(x >= y)``, ``dy = dout * 1(y > x)`` ("routes").

    Derivation (chain rule): away from ties, d max(x, y)/dx = 1(x > y) and
    d max(x, y)/dy = 1(y > x) elementwise (the lecture's 1(y > z)), so the local
    Jacobians are diagonal 0/1 masks and the upstream gradient goes whole to the larger
    input: (N, D) o (N, D).

    At a tie x == y max has no derivative.  Convention here: the whole gradient goes to
    the FIRST argument x (1(x >= y)) and none to y (1(y > x)), so dx + dy = dout still
    holds.  ``torch.maximum`` and ``jnp.maximum`` split ties 0.5 / 0.5, and so does a
    central difference; the catalog's kink cases report that as a convention difference.

    Inputs:
        dout: (N, D) upstream gradient.
        cache: ``(x, y)`` from ``max_forward``.

    Returns:
        dx: (N, D).
        dy: (N, D).
    """
    dout, x, y = _check_backward(dout, cache, "max_forward")
    zero = np.zeros((), dtype=dout.dtype)
    to_x = x >= y  # ties route to x
    dx = np.where(to_x, dout, zero)
    dy = np.where(to_x, zero, dout)
    return dx, dy
