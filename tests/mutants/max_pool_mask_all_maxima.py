"""max pool backward with the common mask = (window == window.max()): every tied maximum of a window gets the full upstream gradient, so a tie counts it twice."""

import numpy as np

from gradmatrix.manual import max_pool_forward  # noqa: F401


def max_pool_backward(dout, cache):
    x, (pool, stride) = cache
    ho, wo = dout.shape[2:]
    dx = np.zeros_like(x)
    for i in range(ho):
        for j in range(wo):
            window = x[:, :, i * stride:i * stride + pool, j * stride:j * stride + pool]
            mask = window == window.max(axis=(2, 3), keepdims=True)
            dx[:, :, i * stride:i * stride + pool, j * stride:j * stride + pool] += mask * dout[:, :, i:i + 1, j:j + 1]
    return dx
