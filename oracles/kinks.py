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

from typing import Mapping

import numpy as np

from gradmatrix.oracles.draws import KINK_MARGIN, away_from_zero, distinct, labels, scaled_weights


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


# --- kink cases: inputs at points of non-differentiability, and the convention taken there ---


def net_off_kinks(inputs: dict, dims: Mapping, rng: np.random.Generator) -> dict:
    """Redraw b1 column by column until no hidden pre-activation lies within KINK_MARGIN of 0."""
    return net_off_kinks_except(inputs, rng, keep=None)


def net_off_kinks_except(inputs: dict, rng: np.random.Generator, keep: int | None) -> dict:
    """As ``net_off_kinks``, leaving hidden unit ``keep`` (a deliberate kink) alone, apart from sample 0."""
    for _ in range(1000):
        z = inputs["X"] @ inputs["W1"] + inputs["b1"]
        near = np.abs(z) < KINK_MARGIN
        if keep is not None:
            near[0, keep] = False
            if np.any(near[1:, keep]):  # other samples of the kink unit: move them by redrawing their rows of X
                rows = 1 + np.flatnonzero(near[1:, keep])
                inputs["X"][rows] = rng.standard_normal((rows.size, inputs["X"].shape[1]))
                continue
        close = np.any(near, axis=0)
        if not close.any():
            return inputs
        inputs["b1"] = np.where(close, rng.standard_normal(close.shape), inputs["b1"])
    raise RuntimeError("could not draw two-layer-net inputs away from the ReLU kink")


def relu_kink_inputs(rng: np.random.Generator, dims: Mapping):
    """x with exact 0.0 and -0.0 entries among ordinary values; the gradient at those is a convention."""
    shape = (dims["N"], dims["D"])
    x = away_from_zero(rng, shape, dims)
    where = rng.random(shape)
    x[where < 0.25] = 0.0
    x[(where >= 0.25) & (where < 0.4)] = -0.0
    return {"x": x}, {"x": x == 0}


def relu_convention(grads: dict, inputs: dict, dout) -> float | None:
    """The derivative taken at x = 0: dx / dout there (0 for torch and jax, 0.5 numeric, 1 for y >= 0)."""
    at = (inputs["x"] == 0) & (dout != 0)
    if not at.any():
        return None
    ratios = np.asarray(grads["x"], dtype=np.float64)[at] / dout[at].astype(np.float64)
    return float(np.round(np.median(ratios), 6))


def net_kink_inputs(rng: np.random.Generator, dims: Mapping):
    """A first sample X[0] = 0 and b1[0] = 0, so the hidden pre-activation y1[0, 0] is exactly 0.

    Only db1[0] depends on the ReLU convention there (dW1 gets X[0]^T dy1[0] = 0 either way).
    """
    n, d, h, c = dims["N"], dims["D"], dims["H"], dims["C"]
    inputs = {
        "X": rng.standard_normal((n, d)), "y": labels(rng, (n,), dims),
        "W1": scaled_weights(rng, (d, h), dims), "b1": rng.standard_normal(h),
        "W2": scaled_weights(rng, (h, c), dims), "b2": rng.standard_normal(c),
    }
    inputs["X"][0] = 0.0
    inputs["b1"][0] = 0.0
    inputs = net_off_kinks_except(inputs, rng, keep=0)
    mask = {k: np.zeros(inputs[k].shape, dtype=bool) for k in ("W1", "b1", "W2", "b2")}
    mask["b1"][0] = True
    return inputs, mask


def gates_off_ties(inputs: dict, dims: Mapping, rng: np.random.Generator) -> dict:
    """Redraw y wherever |x - y| < KINK_MARGIN, so random max-gate cases stay off ties."""
    for _ in range(1000):
        close = np.abs(inputs["x"] - inputs["y"]) < KINK_MARGIN
        if not close.any():
            return inputs
        inputs["y"] = np.where(close, rng.standard_normal(close.shape), inputs["y"])
    raise RuntimeError("could not draw max-gate inputs away from ties")


def max_kink_inputs(rng: np.random.Generator, dims: Mapping):
    """x and y with exact ties (y = x) at about a third of the elements, the first included."""
    shape = (dims["N"], dims["D"])
    inputs = gates_off_ties({"x": rng.standard_normal(shape), "y": rng.standard_normal(shape)}, dims, rng)
    tie = rng.random(shape) < 0.35
    tie.flat[0] = True
    inputs["y"] = np.where(tie, inputs["x"], inputs["y"])
    return inputs, {"x": tie, "y": tie}


def max_convention(grads: dict, inputs: dict, dout) -> float | None:
    """The share of the upstream gradient routed to x at ties x == y (manual 1; torch, jax, numeric 0.5)."""
    at = (inputs["x"] == inputs["y"]) & (dout != 0)
    if not at.any():
        return None
    ratios = np.asarray(grads["x"], dtype=np.float64)[at] / dout[at].astype(np.float64)
    return float(np.round(np.median(ratios), 6))


def max_pool_kink_inputs(rng: np.random.Generator, dims: Mapping):
    """Distinct values, then in about half of the windows (the first included) the maximum
    copied onto another element of its window: exact ties.  Needs pool == stride and
    windows tiling x exactly (the kink shapes below)."""
    pool = dims["pool"]
    if dims["stride"] != pool or any(size % pool for size in dims["HW"]):
        raise ValueError("max_pool kink cases need non-overlapping windows that tile x exactly")
    shape = (dims["N"], dims["C"], *dims["HW"])
    x = distinct(rng, shape, dims)
    windows = pool_windows(x, pool).copy()
    flat = windows.reshape(-1, pool * pool)
    tied = rng.random(flat.shape[0]) < 0.5
    tied[0] = True
    for row in np.flatnonzero(tied):
        top = int(np.argmax(flat[row]))
        other = (top + 1 + int(rng.integers(pool * pool - 1))) % (pool * pool)
        flat[row, other] = flat[row, top]
    n, c, ho, wo = windows.shape[:4]
    x = windows.reshape(n, c, ho, wo, pool, pool).transpose(0, 1, 2, 4, 3, 5).reshape(shape)
    at_max = windows == windows.max(axis=-1, keepdims=True)
    ties = at_max & (at_max.sum(axis=-1, keepdims=True) > 1)
    mask = ties.reshape(n, c, ho, wo, pool, pool).transpose(0, 1, 2, 4, 3, 5).reshape(shape)
    return {"x": x}, {"x": mask}


def max_pool_convention(grads: dict, inputs: dict, dout) -> float | None:
    """The share of a tied window's upstream gradient routed to its FIRST maximum (row-major):
    1 for manual, torch and jax, 1/2 for a central difference at a two-way tie."""
    x = inputs["x"]
    pool = x.shape[-1] // dout.shape[-1]  # kink cases tile x exactly with pool == stride
    windows = pool_windows(x, pool)
    at_max = windows == windows.max(axis=-1, keepdims=True)
    tied = (at_max.sum(axis=-1) > 1) & (dout != 0)
    if not tied.any():
        return None
    routed = np.take_along_axis(pool_windows(np.asarray(grads["x"], dtype=np.float64), pool),
                                windows.argmax(axis=-1)[..., None], axis=-1)[..., 0]
    return float(np.round(np.median(routed[tied] / dout[tied].astype(np.float64)), 6))
