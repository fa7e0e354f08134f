"""The two-layer network of the seeds: affine -> ReLU -> affine -> softmax loss."""

from __future__ import annotations

import numbers

import numpy as np

from .layers import affine_backward, affine_forward, relu_backward, relu_forward
from .losses import softmax_loss
from .validation import as_float_array, matmul, same_dtype

PARAM_NAMES = ("W1", "b1", "W2", "b2")


def _check_params(params) -> dict:
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict with keys {PARAM_NAMES}, got {type(params).__name__}")
    missing = [k for k in PARAM_NAMES if k not in params]
    extra = sorted(str(k) for k in params if k not in PARAM_NAMES)
    if missing or extra:
        raise ValueError(f"params must have exactly the keys {PARAM_NAMES}; missing {missing}, unexpected {extra}")
    ndims = {"W1": 2, "b1": 1, "W2": 2, "b2": 1}
    checked = {k: as_float_array(params[k], f"params['{k}']", ndim=ndims[k]) for k in PARAM_NAMES}
    h = checked["W1"].shape[1]
    if checked["b1"].shape != (h,):
        raise ValueError(f"params['b1'] must have shape ({h},) to match W1 {checked['W1'].shape}, got {checked['b1'].shape}")
    if checked["W2"].shape[0] != h:
        raise ValueError(f"params['W2'] must have shape ({h}, C) to match W1 {checked['W1'].shape}, got {checked['W2'].shape}")
    c = checked["W2"].shape[1]
    if checked["b2"].shape != (c,):
        raise ValueError(f"params['b2'] must have shape ({c},) to match W2 {checked['W2'].shape}, got {checked['b2'].shape}")
    return checked


def _check_reg(reg, dtype: np.dtype):
    """Return ``reg`` as a scalar of ``dtype``, or raise naming ``reg``."""
    # numbers.Real covers int, float, fractions and NumPy's integer and floating scalars;
    # bool is an int to Python but never a regularization strength, and complex, strings,
    # None, lists and arrays (0-d included) are refused.
    if isinstance(reg, (bool, np.bool_)) or not isinstance(reg, numbers.Real):
        raise TypeError(f"reg must be a real number (int or float), got {type(reg).__name__} {reg!r}")
    try:
        value = float(reg)
    except OverflowError:
        raise ValueError(f"reg must be a finite number >= 0, got {reg!r} (too large for a float)") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"reg must be a finite number >= 0, got {reg!r}")
    with np.errstate(over="ignore"):
        cast = dtype.type(reg)
    if not np.isfinite(cast):
        raise ValueError(f"reg must be a finite number >= 0 representable in {dtype}, got {reg!r}")
    return cast


def two_layer_net_loss(params, X, y=None, reg=0.0):
    """Loss and gradients of the two-layer net of seed 002.

    Forward (shapes with X: (N, D), W1: (D, H), W2: (H, C)):

        y1 = X W1 + b1            (N, H)
        h1 = max(0, y1)           (N, H)
        scores = h1 W2 + b2       (N, C)
        loss = softmax_loss(scores, y) + reg * (sum(W1**2) + sum(W2**2))

    Backward, reusing each layer's backward (the chain rule, layer by layer):

        dscores = (p - onehot(y)) / N                     (N, C)
        dh1, dW2, db2 = affine_backward(dscores)          (N, H), (H, C), (C,)
        dy1 = relu_backward(dh1) = dh1 * 1(y1 > 0)        (N, H)
        dW1 = X^T dy1,  db1 = sum over rows of dy1        (D, H), (H,)

    The first layer's dX = dy1 W1^T is not needed (X is data, not a parameter), so the
    first affine layer's backward is written out without it: it would be a third of the
    backward's multiply-adds.

    W1 and W2 each reach the loss along two paths, the data term and the L2 term, and
    gradients sum at branches: dW += 2 * reg * W (d/dW of reg * sum(W**2)).

    Inputs:
        params: dict with W1 (D, H), b1 (H,), W2 (H, C), b2 (C,), one floating dtype.
        X: (N, D) inputs, dtype of the params.
        y: (N,) integer labels in [0, C), or None to get the scores.
        reg: L2 strength, a finite real number >= 0 (int, float or a NumPy scalar; not
            bool, complex or an array), representable in the params' dtype.

    Returns:
        With ``y=None``: scores (N, C).
        Otherwise ``(loss, grads)``: loss a scalar and grads a dict keyed like params,
        each gradient with its parameter's shape and dtype.
    """
    p = _check_params(params)
    X = as_float_array(X, "X", ndim=2)
    dtype = same_dtype(X=X, **{f"params['{k}']": v for k, v in p.items()})
    if X.shape[1] != p["W1"].shape[0]:
        raise ValueError(f"X must have shape (N, {p['W1'].shape[0]}) to match W1 {p['W1'].shape}, got {X.shape}")
    reg = _check_reg(reg, dtype)

    y1, _ = affine_forward(X, p["W1"], p["b1"])
    h1, relu_cache = relu_forward(y1)
    scores, affine2_cache = affine_forward(h1, p["W2"], p["b2"])
    if y is None:
        return scores

    data_loss, dscores = softmax_loss(scores, y)
    loss = data_loss + reg * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))

    dh1, dW2, db2 = affine_backward(dscores, affine2_cache)
    dy1 = relu_backward(dh1, relu_cache)
    # the first affine layer's backward without its dX (see above)
    dW1 = matmul(X.T, dy1)  # (D, N) @ (N, H) -> (D, H)
    db1 = dy1.sum(axis=0)  # (H,): b1 is broadcast over the N rows, so its gradient sums them
    # the L2 branch: gradients sum where W1 and W2 are used twice
    dW1 += 2 * reg * p["W1"]
    dW2 += 2 * reg * p["W2"]
    return dtype.type(loss), {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
