"""ReLU derivative as np.heaviside(x, 17.0), the second argument taken for a scale rather than the value at 0: ReLU'(0) = 17, outside the subdifferential [0, 1]."""

import numpy as np

from gradmatrix.manual import relu_forward  # noqa: F401


def relu_backward(dout, cache):
    (x,) = cache
    return dout * np.heaviside(x, 17.0).astype(dout.dtype)
