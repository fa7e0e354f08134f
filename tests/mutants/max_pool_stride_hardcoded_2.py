"""max pool backward that steps its windows by 2 whatever stride the forward used (stride = 2 hard-coded, as for 2x2 pooling): its windows are the wrong ones wherever stride != 2."""

import numpy as np

from gradmatrix.manual import max_pool_forward  # noqa: F401


def max_pool_backward(dout, cache):
    x, (pool, _) = cache
    stride = 2  # should be the stride in the cache
    n, c = x.shape[:2]
    ho, wo = dout.shape[2:]
    dx = np.zeros_like(x)
    for i in range(ho):
        for j in range(wo):
            rows, cols = slice(i * stride, i * stride + pool), slice(j * stride, j * stride + pool)
            window = x[:, :, rows, cols]
            flat = window.reshape(n, c, -1)
            mask = np.zeros_like(flat)
            np.put_along_axis(mask, flat.argmax(axis=-1)[..., None], 1, axis=-1)
            dx[:, :, rows, cols] += mask.reshape(window.shape) * dout[:, :, i, j][:, :, None, None]
    return dx
