"""Kinks: which derivatives are acceptable where a function is not differentiable.

At a kink an implementation may take any element of the subdifferential (the convex hull of
the one-sided derivatives), and implementations differ in which one they take: ReLU'(0) is
0 for torch and JAX, 1/2 for a central difference, 1 for a ``x >= 0`` mask.  Anything
outside it is a wrong gradient, not a convention: ReLU'(0) must lie in [0, 1]; at a tie of a
max (the max gate, a max-pool window) the tied inputs share the upstream gradient in
non-negative parts that add up to it.

Each ``*_subgradient`` function takes an implementation's gradients, the case's inputs and
its upstream gradient and returns, per differentiable input at a kink, how far each element
lies outside the subdifferential (0 inside it and away from kinks).  ``reports.compare``
holds that distance to the comparison's allowance: a difference at a kink passes as a
convention only when both implementations are inside.  The catalog declares the function of
each op with kink cases (``OpSpec.kink_subgradient``).
"""

from __future__ import annotations

import numpy as np


def pool_windows(x: np.ndarray, pool: int) -> np.ndarray:
    """(N, C, H, W) tiled exactly by non-overlapping pool x pool windows -> (N, C, H', W', pool * pool)."""
    n, c, h, w = x.shape
    tiles = x.reshape(n, c, h // pool, pool, w // pool, pool).transpose(0, 1, 2, 4, 3, 5)
    return tiles.reshape(n, c, h // pool, w // pool, pool * pool)


def _unpool(windows: np.ndarray, pool: int) -> np.ndarray:
    """The inverse of ``pool_windows``: (N, C, H', W', pool * pool) -> (N, C, H, W)."""
    n, c, ho, wo = windows.shape[:4]
    return windows.reshape(n, c, ho, wo, pool, pool).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho * pool, wo * pool)


def _outside_share(g: np.ndarray, d: np.ndarray) -> np.ndarray:
    """How far g lies outside {t d : t in [0, 1]}, the share of d one input may take."""
    low, high = np.minimum(0.0, d), np.maximum(0.0, d)
    return np.maximum(0.0, np.maximum(low - g, g - high))


def _f64(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def relu_subgradient(grads: dict, inputs: dict, dout) -> dict:
    """At x = 0 (and -0.0) dx must be t * dout with t in [0, 1]: ReLU'(0) in [0, 1]."""
    x, g, d = inputs["x"], _f64(grads["x"]), _f64(dout)
    return {"x": np.where(x == 0, _outside_share(g, d), 0.0)}


def max_subgradient(grads: dict, inputs: dict, dout) -> dict:
    """At ties x == y: dx = t * dout and dy = (1 - t) * dout, t in [0, 1]."""
    tie = inputs["x"] == inputs["y"]
    dx, dy, d = _f64(grads["x"]), _f64(grads["y"]), _f64(dout)
    total = np.abs(dx + dy - d)  # the shares must add up to the upstream gradient
    return {"x": np.where(tie, np.maximum(_outside_share(dx, d), total), 0.0),
            "y": np.where(tie, np.maximum(_outside_share(dy, d), total), 0.0)}


def max_pool_subgradient(grads: dict, inputs: dict, dout) -> dict:
    """In a window with tied maxima: each tied maximum gets t_i * dout, t_i >= 0, sum t_i = 1.

    Kink cases tile x exactly with pool == stride (``max_pool`` kink shapes), so each pixel
    belongs to one window.  Elements that are not a maximum are compared as usual (0).
    """
    x, d = inputs["x"], _f64(dout)
    pool = x.shape[-1] // d.shape[-1]
    windows = pool_windows(x, pool)
    g = pool_windows(_f64(grads["x"]), pool)
    at_max = windows == windows.max(axis=-1, keepdims=True)
    tied = at_max & (at_max.sum(axis=-1, keepdims=True) > 1)
    share = _outside_share(g, d[..., None])
    total = np.abs(np.where(tied, g, 0.0).sum(axis=-1, keepdims=True) - d[..., None])
    return {"x": _unpool(np.where(tied, np.maximum(share, total), 0.0), pool)}


def two_layer_net_subgradient(grads: dict, inputs: dict, dout) -> dict:
    """The kink case sets y1[0, 0] = 0 (X[0] = 0, b1[0] = 0); the rest of the net is off
    kinks.  There relu'(0) = t in [0, 1], so db1[0] = sum_{n >= 1} dy1[n, 0] + t dh1[0, 0]:
    an interval around the other samples' sum.  dW1 is unaffected (X[0] = 0).  The loss is
the mean cross-entropy (``manual.two_layer_net_loss``); the L2 term has no kink."""
    X, W1, b1, W2, b2 = (_f64(inputs[k]) for k in ("X", "W1", "b1", "W2", "b2"))
    y = inputs["y"]
    y1 = X @ W1 + b1
    scores = np.maximum(y1, 0.0) @ W2 + b2
    shifted = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    n = X.shape[0]
    probs[np.arange(n), y] -= 1.0
    dh1 = probs / n @ W2.T  # (N, H)
    at = y1 == 0
    rest = np.where(at, 0.0, dh1 * (y1 > 0)).sum(axis=0)  # (H,): the samples away from the kink
    # each kink sample n takes its own t_n in [0, 1] of dh1[n]: the sum ranges over an interval
    low = np.where(at, np.minimum(0.0, dh1), 0.0).sum(axis=0)
    high = np.where(at, np.maximum(0.0, dh1), 0.0).sum(axis=0)
    g = _f64(grads["b1"]) - rest
    outside = np.maximum(0.0, np.maximum(low - g, g - high))
    return {"b1": np.where(at.any(axis=0), outside, 0.0)}
