"""Layer normalization and batch normalization (training mode): forward and backward.

Both standardize x of shape (N, D) with statistics over one axis, then scale and shift
per feature:

    mu = mean(x), var = mean((x - mu)^2)      over the axis (biased variance, 1/M)
    std = sqrt(var + eps)
    xhat = (x - mu) / std
    out = gamma * xhat + beta                  gamma, beta: (D,)

layer norm: the axis is the features (axis 1, M = D), one mean and variance per sample;
batch norm: the axis is the batch (axis 0, M = N), one mean and variance per feature,
from the batch itself (training mode; no running averages are kept or used).

The backward pass is shared.  x_i reaches xhat along three branches (directly, through mu
and through var), and the gradients of the three branches sum, visibly, with ``+=``.
Computation stays in the input's floating dtype (eps included).
"""

from __future__ import annotations

import numpy as np

from .validation import (
    as_float_array,
    check_cache,
    check_values,
    fits_dtype,
    real_scalar,
    same_dtype,
    same_shape,
)

_AXIS = {"layernorm": 1, "batchnorm": 0}


def _check_eps(eps, dtype: np.dtype):
    """Return ``eps`` as a positive scalar of ``dtype``, or raise naming ``eps``."""
    value = real_scalar(eps, "eps", "> 0")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"eps must be a finite number > 0 (it keeps 1/sqrt(var + eps) finite), got {eps!r}")
    if not fits_dtype(value, dtype):  # 1e300 would be inf in float32
        raise ValueError(f"eps must be representable as a positive {dtype}, got {eps!r}")
    cast = dtype.type(value)
    if not cast > 0:
        raise ValueError(f"eps must be representable as a positive {dtype}, got {eps!r}")
    return cast


def _forward(x, gamma, beta, eps, op: str):
    x = as_float_array(x, "x", ndim=2)
    gamma = as_float_array(gamma, "gamma", ndim=1)
    beta = as_float_array(beta, "beta", ndim=1)
    dtype = same_dtype(x=x, gamma=gamma, beta=beta)
    d = x.shape[1]
    same_shape("gamma", gamma, (d,), f"one scale per feature of x {x.shape}")
    same_shape("beta", beta, (d,), f"one shift per feature of x {x.shape}")
    eps = _check_eps(eps, dtype)
    axis = _AXIS[op]
    mu = x.mean(axis=axis, keepdims=True)
    centered = x - mu
    var = (centered * centered).mean(axis=axis, keepdims=True)  # biased: 1/M
    std = np.sqrt(var + eps)
    xhat = centered / std
    out = gamma * xhat + beta
    return out, (xhat, gamma, std)


def _backward(dout, cache, op: str):
    fn = f"{op}_forward"
    xhat, gamma, std = check_cache(cache, ("xhat", "gamma", "std"), fn)
    if xhat.ndim != 2:
        raise ValueError(f"cache[0] (xhat) must have 2 dimension(s), got shape {xhat.shape}")
    n, d = xhat.shape
    same_shape("cache[1] (gamma)", gamma, (d,), f"one scale per feature of xhat {xhat.shape}")
    same_shape("cache[2] (std)", std, (n, 1) if op == "layernorm" else (1, d), f"the statistics of {op}")
    check_values("cache[2] (std)", std, std > 0, "positive values (sqrt(var + eps))")
    dout = as_float_array(dout, "dout", ndim=2)
    same_shape("dout", dout, xhat.shape, f"the shape of out in {fn}")
    same_dtype(dout=dout, xhat=xhat)
    axis = _AXIS[op]

    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    # three branches from x to xhat = (x - mu) / std; their gradients sum
    dx = dxhat / std  # directly
    dx += -dxhat.mean(axis=axis, keepdims=True) / std  # through mu
    dx += -xhat * (dxhat * xhat).mean(axis=axis, keepdims=True) / std  # through var
    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, eps):
    """Layer normalization: standardize each ROW of x over its D features, then scale and shift.

    Inputs:
        x: (N, D) float32/float64.
        gamma: (D,) scale, dtype of ``x``.
        beta: (D,) shift, dtype of ``x``.
        eps: a real number > 0 added to the variance (1e-5 in torch and jax).

    Returns:
        out: (N, D).
        cache: ``(xhat, gamma, std)`` with xhat (N, D) and std = sqrt(var + eps) (N, 1).
    """
    return _forward(x, gamma, beta, eps, "layernorm")


def layernorm_backward(dout, cache):
    """Gradients of layer normalization with respect to x, gamma and beta.

    Derivation (chain rule).  The statistics are per sample: for row i, mu_i and var_i
    are a mean over its D features, and mean_D below is a mean over a row (axis 1).

    * dbeta = sum over rows of dout: (D,).  beta[j] feeds out[:, j] with local gradient
      1; gradients sum over the N rows it is used in.
    * dgamma = sum over rows of dout o xhat: (D,), likewise with local gradient xhat.
    * dxhat = dout o gamma: (N, D), gamma broadcast to every row.
    * dx: x[i, j] reaches the loss along three branches, whose gradients sum:
        directly (dxhat[i, j]/dx[i, j] = 1/std_i):          dxhat[i, j] / std_i;
        through mu_i (dmu_i/dx[i, j] = 1/D, dxhat[i, k]/dmu_i = -1/std_i):
                                                            -mean_D(dxhat[i]) / std_i;
        through var_i (dvar_i/dx[i, j] = 2 (x[i, j] - mu_i)/D,
                       dxhat[i, k]/dvar_i = -xhat[i, k] / (2 std_i^2)):
                                                            -xhat[i, j] mean_D(dxhat[i] o xhat[i]) / std_i.
      (N, D) each, std (N, 1) broadcast along the row.

    Inputs:
        dout: (N, D) upstream gradient.
        cache: ``(xhat, gamma, std)`` from ``layernorm_forward``.

    Returns:
        dx: (N, D).
        dgamma: (D,).
        dbeta: (D,).
    """
    return _backward(dout, cache, "layernorm")


def batchnorm_forward(x, gamma, beta, eps):
    """Batch normalization, training mode: standardize each COLUMN of x over the batch.

    Uses the batch's own mean and biased variance (1/N), as ``F.batch_norm(training=True)``
    does for its output (torch's running variance, not computed here, is the unbiased one).
    A batch of one gives var = 0, xhat = 0, out = beta and dx = 0.

    Inputs:
        x: (N, D) float32/float64.
        gamma: (D,) scale, dtype of ``x``.
        beta: (D,) shift, dtype of ``x``.
        eps: a real number > 0 added to the variance (1e-5 in torch and jax).

    Returns:
        out: (N, D).
        cache: ``(xhat, gamma, std)`` with xhat (N, D) and std = sqrt(var + eps) (1, D).
    """
    return _forward(x, gamma, beta, eps, "batchnorm")


def batchnorm_backward(dout, cache):
    """Gradients of batch normalization (training mode) with respect to x, gamma and beta.

    Derivation (chain rule).  The statistics are per feature: for column j, mu_j and
    var_j are a mean over the N samples, and mean_N below is a mean over a column
    (axis 0).  They depend on every sample, so each row of dx depends on the whole batch.

    * dbeta = sum over rows of dout: (D,).  beta[j] feeds out[:, j] with local gradient
      1; gradients sum over the N rows it is used in.
    * dgamma = sum over rows of dout o xhat: (D,), likewise with local gradient xhat.
    * dxhat = dout o gamma: (N, D), gamma broadcast to every row.
    * dx: x[i, j] reaches the loss along three branches, whose gradients sum:
        directly (dxhat[i, j]/dx[i, j] = 1/std_j):          dxhat[i, j] / std_j;
        through mu_j (dmu_j/dx[i, j] = 1/N, dxhat[k, j]/dmu_j = -1/std_j):
                                                            -mean_N(dxhat[:, j]) / std_j;
        through var_j (dvar_j/dx[i, j] = 2 (x[i, j] - mu_j)/N,
                       dxhat[k, j]/dvar_j = -xhat[k, j] / (2 std_j^2)):
                                                            -xhat[i, j] mean_N(dxhat[:, j] o xhat[:, j]) / std_j.
      (N, D) each, std (1, D) broadcast down the columns.

    Inputs:
        dout: (N, D) upstream gradient.
        cache: ``(xhat, gamma, std)`` from ``batchnorm_forward``.

    Returns:
        dx: (N, D).
        dgamma: (D,).
        dbeta: (D,).
    """
    return _backward(dout, cache, "batchnorm")
