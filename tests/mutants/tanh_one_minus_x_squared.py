"""tanh backward as 1 - x**2 from the cached input, where 1 - tanh(x)**2 (1 - y**2, from the output) is due."""

import numpy as np


def tanh_forward(x):
    return np.tanh(x), (x,)  # caches the input


def tanh_backward(dout, cache):
    (x,) = cache
    return dout * (1 - x * x)  # should be 1 - tanh(x)**2
