"""tanh backward as 1 - tanh(out)**2: the cache already holds y = tanh(x), and tanh is applied to it a second time."""

import numpy as np

from gradmatrix.manual import tanh_forward  # noqa: F401


def tanh_backward(dout, cache):
    (out,) = cache
    return dout * (1 - np.tanh(out) ** 2)  # should be 1 - out**2
