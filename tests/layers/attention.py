"""Scaled dot-product attention on (N, T, D) inputs: a layer gradmatrix's catalog does not have.

``gradmatrix check tests/layers/attention.py`` checks the declared layer; the tests also
check two classic mistakes: ``attention_backward_missing_transpose`` (dv = p @ dout instead
of p^T @ dout) and ``attention_backward_wrong_axis`` (the softmax backward summed over the
query axis instead of the key axis).
"""

import numpy as np

import gradmatrix


def attention_reference(xp, q, k, v):
    """The forward once more, against the Python array API (torch, JAX and NumPy run it)."""
    s = xp.matmul(q, xp.permute_dims(k, (0, 2, 1))) / q.shape[-1] ** 0.5
    e = xp.exp(s - xp.max(s, axis=-1, keepdims=True))
    return xp.matmul(e / xp.sum(e, axis=-1, keepdims=True), v)


def _softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@gradmatrix.layer(shapes={"q": (2, 3, 4), "k": (2, 3, 4), "v": (2, 3, 4)}, reference=attention_reference)
def attention_forward(q, k, v):
    """softmax(q k^T / sqrt(D)) v over the last axis.

    Inputs:
    - q, k, v: (N, T, D)
    Returns (out, cache), out (N, T, D).
    """
    scale = 1.0 / q.shape[-1] ** 0.5  # a Python float: it keeps float32 inputs float32
    p = _softmax(q @ k.transpose(0, 2, 1) * scale)  # (N, T, T): row t, weights over the keys
    return p @ v, (q, k, v, p, scale)


def attention_backward(dout, cache):
    """out = p v: dv = p^T dout, dp = dout v^T; softmax rows: ds = p (dp - sum_j dp p);
    s = q k^T scale: dq = ds k scale, dk = ds^T q scale.  Returns (dq, dk, dv), each (N, T, D)."""
    q, k, v, p, scale = cache
    dv = p.transpose(0, 2, 1) @ dout
    dp = dout @ v.transpose(0, 2, 1)
    ds = p * (dp - np.sum(dp * p, axis=-1, keepdims=True))
    dq = ds @ k * scale
    dk = ds.transpose(0, 2, 1) @ q * scale
    return dq, dk, dv


def attention_backward_missing_transpose(dout, cache):
    """dv = p dout: the transpose of p is missing (same shape, since p is square)."""
    q, k, v, p, scale = cache
    dv = p @ dout
    dp = dout @ v.transpose(0, 2, 1)
    ds = p * (dp - np.sum(dp * p, axis=-1, keepdims=True))
    return ds @ k * scale, ds.transpose(0, 2, 1) @ q * scale, dv


def attention_backward_wrong_axis(dout, cache):
    """The softmax backward's sum over axis -2 (the queries) instead of -1 (the keys)."""
    q, k, v, p, scale = cache
    dv = p.transpose(0, 2, 1) @ dout
    dp = dout @ v.transpose(0, 2, 1)
    ds = p * (dp - np.sum(dp * p, axis=-2, keepdims=True))
    return ds @ k * scale, ds.transpose(0, 2, 1) @ q * scale, dv
