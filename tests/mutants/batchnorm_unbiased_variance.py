"""batchnorm with the unbiased batch variance (1 / (N - 1), np.var(ddof=1)) where training mode normalizes with the biased one (1 / N)."""

import numpy as np


def batchnorm_forward(x, gamma, beta, eps):
    mu = x.mean(axis=0, keepdims=True)
    var = x.var(axis=0, ddof=1, keepdims=True)  # should be ddof=0
    std = np.sqrt(var + eps)
    xhat = (x - mu) / std
    return gamma * xhat + beta, (xhat, gamma, std)


def batchnorm_backward(dout, cache):
    # the gradient of this (N - 1) forward, derived consistently: dvar/dx = 2 (x - mu) / (N - 1)
    xhat, gamma, std = cache
    n = xhat.shape[0]
    dxhat = dout * gamma
    dx = dxhat / std - dxhat.mean(axis=0, keepdims=True) / std
    dx -= xhat * (dxhat * xhat).sum(axis=0, keepdims=True) / ((n - 1) * std)
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
