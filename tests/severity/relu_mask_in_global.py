"""ReLU whose backward reads the mask its forward left in a module-level variable, not the cache."""

import numpy as np

_mask = None


def relu_forward(x):
    global _mask
    _mask = x > 0
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    return dout * _mask
