"""A rectifier with a floor, declared with named dims, matrices and kink cases of its own:
``gradmatrix check tests/layers/rectify.py`` runs the kink cases in the module's worker
process, drawn by ``kink_inputs`` and judged by ``subgradient`` and ``convention``, this
module's own code, as ``check_layer`` does in its caller's process.

``RECTIFY_NEGATIVE_AT_ZERO=1`` swaps in a backward wrong only at x = 0 (-dout there, outside
the subdifferential [0, dout]): no random draw lands there, so only the kink cases see it.
``RECTIFY_RULE_RAISES=1`` makes the declared subgradient raise: the declaration's failure,
reported on the kink cases, never the layer's.
"""

import os

import numpy as np

import gradmatrix


def rectify_forward(x, floor):
    """max(x, floor) of x (N, D); the cache is x."""
    return np.maximum(x, floor), x


def rectify_backward(dout, cache):
    """dx = dout where x > floor (floor 0 here), 0 elsewhere, 0 at x = 0 (a subgradient)."""
    if os.environ.get("RECTIFY_NEGATIVE_AT_ZERO"):
        return np.where(cache == 0, -dout, dout * (cache > 0))
    return dout * (cache > 0)


def kink_inputs(rng, dims):
    """x (N, D) with every other element exactly at the kink 0, and the mask of those."""
    x = rng.standard_normal((dims["N"], dims["D"]))
    at = np.zeros(x.shape, dtype=bool)
    at.flat[::2] = True
    x[at] = 0.0
    return {"x": x}, {"x": at}


def subgradient(grads, arrays, dout):
    """How far dx lies outside t * dout, t in [0, 1], at each kink element (0 elsewhere)."""
    if os.environ.get("RECTIFY_RULE_RAISES"):
        raise ValueError("this subgradient cannot read these inputs")
    dx, x = np.asarray(grads["x"], dtype=np.float64), arrays["x"]
    low, high = np.minimum(0.0, dout), np.maximum(0.0, dout)
    return {"x": np.where(x == 0, np.maximum(low - dx, 0) + np.maximum(dx - high, 0), 0.0)}


def convention(grads, arrays, dout):
    """The derivative taken at x = 0: dx / dout there, averaged."""
    at = (arrays["x"] == 0) & (dout != 0)
    return float(np.mean(np.asarray(grads["x"])[at] / dout[at])) if at.any() else None


rectify = gradmatrix.layer(
    rectify_forward, rectify_backward, shapes={"x": ("N", "D")}, positional=("x", "floor"),
    output=("out", ("N", "D")), matrices=[{"D": 3, "floor": 0.0}, {"N": 2, "D": 5, "floor": 0.0}],
    kinks=gradmatrix.Kinks(inputs=kink_inputs, shapes=({"N": 4, "D": 6, "floor": 0.0},), convention=convention,
                           subgradient=subgradient),
    reference=lambda xp, a, dims: xp.maximum(a["x"], xp.zeros_like(a["x"]) + dims["floor"]))
