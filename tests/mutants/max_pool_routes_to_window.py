"""max pool backward routing each window's upstream gradient to every element of the window, as average pooling without the 1/pool**2, instead of to its maximum."""

import numpy as np

from gradmatrix.manual import max_pool_forward  # noqa: F401


def max_pool_backward(dout, cache):
    x, (pool, stride) = cache
    ho, wo = dout.shape[2:]
    dx = np.zeros_like(x)
    for p in range(pool):
        for q in range(pool):
            dx[:, :, p:p + stride * ho:stride, q:q + stride * wo:stride] += dout  # should be masked by argmax
    return dx
