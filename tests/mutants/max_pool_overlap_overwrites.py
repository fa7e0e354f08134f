"""max pool backward that assigns (dx[window] = ...) instead of adding: where windows overlap (stride < pool) a pixel that is the maximum of two windows keeps one gradient, and a later window's zeros overwrite earlier ones."""

import numpy as np

from gradmatrix.manual import max_pool_forward  # noqa: F401


def max_pool_backward(dout, cache):
    x, (pool, stride) = cache
    n, c = x.shape[:2]
    ho, wo = dout.shape[2:]
    dx = np.zeros_like(x)
    for i in range(ho):
        for j in range(wo):
            window = x[:, :, i * stride:i * stride + pool, j * stride:j * stride + pool].reshape(n, c, -1)
            routed = np.zeros_like(window)
            np.put_along_axis(routed, window.argmax(axis=-1)[..., None], dout[:, :, i, j][..., None], axis=-1)
            rows, cols = slice(i * stride, i * stride + pool), slice(j * stride, j * stride + pool)
            dx[:, :, rows, cols] = routed.reshape(n, c, pool, pool)  # should be +=
    return dx
