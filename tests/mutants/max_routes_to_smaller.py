"""max gate routing by the wrong comparison: the gradient goes to x where x <= y, i.e. to the smaller input."""

import numpy as np

from gradmatrix.manual import max_forward  # noqa: F401


def max_backward(dout, cache):
    x, y = cache
    to_x = x <= y  # should be x >= y
    zero = np.zeros((), dtype=dout.dtype)
    return np.where(to_x, dout, zero), np.where(to_x, zero, dout)
