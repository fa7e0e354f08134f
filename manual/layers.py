"""ReLU and the affine (fully connected) layer: forward and backward side by side.

Conventions (the CS231n layer contract): rows are samples, ``foo_forward`` returns
``(out, cache)`` and ``foo_backward(dout, cache)`` returns the gradient of the loss with
respect to each input, each with its input's shape ("shape convention").  Computation stays
in the input's floating dtype.
"""

from __future__ import annotations

import numpy as np

from .validation import as_float_array, check_cache, matmul, same_dtype, same_shape


def _check_affine_shapes(x, w, b, names=("x", "w", "b")) -> int:
    """Check x (N, d_1..d_k), w (D, M), b (M,) against each other; return D."""
    xn, wn, bn = names
    if x.ndim < 2:
        raise ValueError(f"{xn} must have at least 2 dimension(s), got shape {x.shape}")
    if w.ndim != 2:
        raise ValueError(f"{wn} must have 2 dimension(s), got shape {w.shape}")
    if b.ndim != 1:
        raise ValueError(f"{bn} must have 1 dimension(s), got shape {b.shape}")
    d = int(np.prod(x.shape[1:]))
    if w.shape[0] != d:
        raise ValueError(f"{wn} must have shape ({d}, M) to match {xn} of shape {x.shape} (D = {d}), got {w.shape}")
    same_shape(bn, b, (w.shape[1],), f"one bias per column of {wn} {w.shape}")
    return d


def relu_forward(x):
    """ReLU, elementwise: ``out = max(0, x)``.

    Inputs:
        x: (N, d_1, ..., d_k) float32 or float64, any shape with at least one element.

    Returns:
        out: same shape and dtype as ``x``.
        cache: ``(x,)``, what the backward pass needs.
    """
    x = as_float_array(x, "x", min_ndim=1)
    out = np.maximum(x, 0).astype(x.dtype, copy=False)
    return out, (x,)


def relu_backward(dout, cache):
    """Gradient of ReLU: ``dx = dout * 1(x > 0)``.

    Derivation: ReLU acts elementwise, so its Jacobian dout/dx is diagonal with entries
    1(x_i > 0); multiplying the upstream gradient by a diagonal matrix is an elementwise
    mask, and no Jacobian is ever formed.

    At exactly x = 0 (and -0.0) ReLU has no derivative; we take the subgradient 0, as
    ``torch.relu`` and ``jax.nn.relu`` do.  The seeds disagree here: one masks with
    ``y_grad[x <= 0] = 0`` (gradient 0 at 0, and it writes into the upstream gradient),
    the other with ``dh1 * (y1 >= 0)`` (gradient 1 at 0).  A central difference straddling
    0 gives 0.5.

    Inputs:
        dout: (N, d_1, ..., d_k) upstream gradient, shape and dtype of ``x``.
        cache: ``(x,)`` from ``relu_forward``.

    Returns:
        dx: (N, d_1, ..., d_k), dtype of ``x``.
    """
    (x,) = check_cache(cache, ("x",), "relu_forward")
    if x.ndim < 1:
        raise ValueError(f"cache[0] (x) must have at least 1 dimension(s), got shape {x.shape}")
    dout = as_float_array(dout, "dout")
    same_shape("dout", dout, x.shape, "the shape of x in relu_forward")
    same_dtype(dout=dout, x=x)
    # local gradient: the diagonal of the Jacobian, 1 where the unit was active
    local = x > 0
    dx = np.where(local, dout, np.zeros((), dtype=x.dtype))
    return dx


def affine_forward(x, w, b):
    """Affine layer: ``out = x.reshape(N, D) @ w + b``.

    Inputs:
        x: (N, d_1, ..., d_k) float32/float64; each row is flattened to D = d_1 * ... * d_k.
        w: (D, M) weights, dtype of ``x``.
        b: (M,) biases, dtype of ``x``.

    Returns:
        out: (N, M).
        cache: ``(x, w, b)``.
    """
    x = as_float_array(x, "x", min_ndim=2)
    w = as_float_array(w, "w", ndim=2)
    b = as_float_array(b, "b", ndim=1)
    same_dtype(x=x, w=w, b=b)
    n = x.shape[0]
    d = _check_affine_shapes(x, w, b)
    out = matmul(x.reshape(n, d), w) + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    """Gradients of the affine layer with respect to x, w and b.

    With X = x.reshape(N, D) and out = X w + b (b broadcast to every row):

    * dX = dout @ w.T: (N, M) @ (M, D).  out[p, q] = sum_u X[p, u] w[u, q], so
      dL/dX[p, u] = sum_q dout[p, q] w[u, q]; summing over q is a product with w
      transposed.  dx is dX reshaped back to x's shape.
    * dw = X.T @ dout: (D, N) @ (N, M).  dL/dw[u, q] = sum_p X[p, u] dout[p, q]; each
      weight is used by every sample, and gradients sum over the samples (the rows), which
      is the product with X transposed.
    * db = dout.sum(axis=0): (M,).  b[q] feeds out[p, q] for every row p with local
      gradient 1, so its gradient is the sum of the upstream gradient over the rows.

    Inputs:
        dout: (N, M) upstream gradient.
        cache: ``(x, w, b)`` from ``affine_forward``.

    Returns:
        dx: (N, d_1, ..., d_k), the shape of x.
        dw: (D, M).
        db: (M,).
    """
    x, w, b = check_cache(cache, ("x", "w", "b"), "affine_forward")
    d = _check_affine_shapes(x, w, b, names=("cache[0] (x)", "cache[1] (w)", "cache[2] (b)"))
    dout = as_float_array(dout, "dout", ndim=2)
    n = x.shape[0]
    same_shape("dout", dout, (n, w.shape[1]), "the shape of out in affine_forward")
    same_dtype(dout=dout, x=x)
    x_rows = x.reshape(n, d)
    dx = matmul(dout, w.T).reshape(x.shape)
    dw = matmul(x_rows.T, dout)
    db = dout.sum(axis=0)
    return dx, dw, db
