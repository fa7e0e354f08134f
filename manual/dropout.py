"""Inverted dropout with an explicit mask: forward and backward side by side.

The mask is an argument, not drawn inside, so that every implementation compared on a case
sees the same units dropped (and a test can choose them).  "Inverted": kept units are
scaled by 1 / (1 - p) at training time, so the expected activation is unchanged and
nothing needs rescaling at test time.
"""

from __future__ import annotations

import numpy as np

from .validation import (
    as_float_array,
    check_cache,
    check_min_ndim,
    check_values,
    real_scalar,
    same_dtype,
    same_shape,
)


def _check_p(p) -> float:
    """Return the drop probability ``p`` as a float in [0, 1), or raise naming ``p``."""
    value = real_scalar(p, "p", "in [0, 1)")
    if not 0.0 <= value < 1.0:  # also refuses NaN; p = 1 would drop everything and divide by 0
        raise ValueError(f"p must be a drop probability in [0, 1), got {p!r}")
    return value


def dropout_forward(x, mask, p):
    """Inverted dropout: ``out = x * mask / (1 - p)``.

    Inputs:
        x: (N, D) float32/float64 (any shape with at least one element).
        mask: (N, D) of 0.0 (dropped) and 1.0 (kept), shape and dtype of ``x``; drawn by
            the caller, each unit kept with probability 1 - p.
        p: drop probability, a real number in [0, 1).

    Returns:
        out: (N, D), dtype of ``x``.
        cache: ``(keep,)`` with keep = mask / (1 - p), the factor each unit was scaled by.

    Raises:
        ValueError: a mask entry other than 0 and 1, mismatched shapes, p outside [0, 1).
    """
    x = as_float_array(x, "x", min_ndim=1)
    mask = as_float_array(mask, "mask", min_ndim=1)
    same_dtype(x=x, mask=mask)
    same_shape("mask", mask, x.shape, "one entry per element of x")
    binary = (mask == 0) | (mask == 1)
    if not np.all(binary):
        bad = tuple(int(i) for i in np.argwhere(~binary)[0])
        raise ValueError(f"mask must hold only 0 and 1, found {mask[bad]} at index {bad}")
    p = _check_p(p)
    if not x.dtype.type(p) < 1:  # below 1 as a Python float, 1 in float32: 1 / (1 - p) = inf
        raise ValueError(f"p must be a drop probability in [0, 1), got {p!r} ({float(x.dtype.type(p))} in {x.dtype})")
    one = x.dtype.type(1)
    keep = mask * (one / (one - x.dtype.type(p)))
    return x * keep, (keep,)


def dropout_backward(dout, cache):
    """Gradient of inverted dropout: ``dx = dout * mask / (1 - p)``.

    Derivation (chain rule, elementwise): out_i = x_i m_i / (1 - p) is linear in x_i with
    coefficient keep_i = m_i / (1 - p), so the Jacobian is diag(keep) and
    dx = dout o keep: (N, D) o (N, D).  Dropped units (m_i = 0) get no gradient; kept
    units get the same 1 / (1 - p) scaling as in the forward pass.

    Inputs:
        dout: (N, D) upstream gradient, shape and dtype of ``x``.
        cache: ``(keep,)`` from ``dropout_forward``.

    Returns:
        dx: (N, D).
    """
    (keep,) = check_cache(cache, ("keep",), "dropout_forward")
    check_min_ndim("cache[0] (keep)", keep, 1)
    # mask / (1 - p): 0 where dropped, one and the same scale >= 1 where kept
    kept = keep[keep != 0]
    scale = kept.flat[0] if kept.size else keep.dtype.type(1)
    check_values("cache[0] (keep)", keep, (keep == 0) | ((keep == scale) & (scale >= 1)),
                 "only 0 and one scale 1 / (1 - p) >= 1 (mask / (1 - p) from dropout_forward)")
    dout = as_float_array(dout, "dout")
    same_shape("dout", dout, keep.shape, "the shape of x in dropout_forward")
    same_dtype(dout=dout, keep=keep)
    return dout * keep
