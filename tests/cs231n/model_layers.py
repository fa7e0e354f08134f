"""Minimal layers with the course's signatures, for the model and sandwich fixtures.

Written for gradmatrix's tests: an independent, correct implementation, vectorized where
the course asks for naive loops (the values are what is checked).
"""

import numpy as np


def affine_forward(x, w, b):
    """x (N, d_1, ..., d_k), w (D, M), b (M,) -> out (N, M)."""
    out = x.reshape(x.shape[0], -1).dot(w) + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    x, w, b = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)


def softmax_loss(x, y):
    """x (N, C) scores, y (N,) labels -> (loss, dx)."""
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = x.shape[0]
    loss = -log_probs[np.arange(n), y].mean()
    dx = np.exp(log_probs)
    dx[np.arange(n), y] -= 1
    return loss, dx / n


def _norm_forward(x, gamma, beta, eps, axis):
    mu = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, keepdims=True)
    inv = 1.0 / np.sqrt(var + eps)
    xhat = (x - mu) * inv
    return gamma * xhat + beta, (xhat, gamma, inv, axis)


def _norm_backward(dout, cache):
    xhat, gamma, inv, axis = cache
    dgamma = (dout * xhat).sum(axis=0)  # gamma scales features: summed over the batch either way
    dbeta = dout.sum(axis=0)
    dxhat = dout * gamma
    dx = inv * (dxhat - dxhat.mean(axis=axis, keepdims=True)
                - xhat * (dxhat * xhat).mean(axis=axis, keepdims=True))
    return dx, dgamma, dbeta


def batchnorm_forward(x, gamma, beta, bn_param):
    """Training mode only (what the fixtures need); statistics over the batch axis."""
    return _norm_forward(x, gamma, beta, bn_param.get("eps", 1e-5), 0)


def batchnorm_backward(dout, cache):
    return _norm_backward(dout, cache)


def layernorm_forward(x, gamma, beta, ln_param):
    return _norm_forward(x, gamma, beta, ln_param.get("eps", 1e-5), 1)


def layernorm_backward(dout, cache):
    return _norm_backward(dout, cache)


def conv_forward_naive(x, w, b, conv_param):
    """x (N, C, H, W), w (F, C, HH, WW) -> (N, F, H', W'), by one window per output pixel."""
    stride, pad = conv_param["stride"], conv_param["pad"]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    f, _, hh, ww = w.shape
    ho = 1 + (xp.shape[2] - hh) // stride
    wo = 1 + (xp.shape[3] - ww) // stride
    out = np.zeros((x.shape[0], f, ho, wo), dtype=np.result_type(x, w))
    for i in range(ho):
        for j in range(wo):
            window = xp[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    _, _, hh, ww = w.shape
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows, cols = slice(i * stride, i * stride + hh), slice(j * stride, j * stride + ww)
            dw += np.tensordot(dout[:, :, i, j], xp[:, :, rows, cols], axes=([0], [0]))
            dxp[:, :, rows, cols] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    return dx, dw, dout.sum(axis=(0, 2, 3))


def max_pool_forward_naive(x, pool_param):
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    ho, wo = 1 + (x.shape[2] - ph) // s, 1 + (x.shape[3] - pw) // s
    out = np.zeros(x.shape[:2] + (ho, wo), dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = x[:, :, i * s:i * s + ph, j * s:j * s + pw].max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    n, c = x.shape[:2]
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * s:i * s + ph, j * s:j * s + pw].reshape(n, c, -1)
            top = window.argmax(axis=2)
            r, q = np.unravel_index(top, (ph, pw))
            nn, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
            np.add.at(dx, (nn, cc, i * s + r, j * s + q), dout[:, :, i, j])
    return dx


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """x (N, C, H, W): batchnorm per channel, over N, H and W (the channels moved last)."""
    n, c, h, w = x.shape
    out, cache = batchnorm_forward(x.transpose(0, 2, 3, 1).reshape(-1, c), gamma, beta, bn_param)
    return out.reshape(n, h, w, c).transpose(0, 3, 1, 2), (cache, x.shape)


def spatial_batchnorm_backward(dout, cache):
    cache, (n, c, h, w) = cache
    dx, dgamma, dbeta = batchnorm_backward(dout.transpose(0, 2, 3, 1).reshape(-1, c), cache)
    return dx.reshape(n, h, w, c).transpose(0, 3, 1, 2), dgamma, dbeta
