"""max pool backward routing a tied window's gradient to its LAST maximum (row-major) rather than the first, as np.argmax over the reversed window does."""

import numpy as np

from gradmatrix.manual import max_pool_forward  # noqa: F401


def max_pool_backward(dout, cache):
    x, (pool, stride) = cache
    n, c = x.shape[:2]
    ho, wo = dout.shape[2:]
    windows = np.lib.stride_tricks.sliding_window_view(x, (pool, pool), axis=(2, 3))[:, :, ::stride, ::stride]
    flat = windows.reshape(n, c, ho, wo, pool * pool)
    last_max = pool * pool - 1 - flat[..., ::-1].argmax(axis=-1)
    zero = np.zeros((), dtype=dout.dtype)
    dx = np.zeros_like(x)
    for p in range(pool):
        for q in range(pool):
            dx[:, :, p:p + stride * ho:stride, q:q + stride * wo:stride] += np.where(last_max == p * pool + q, dout, zero)
    return dx
