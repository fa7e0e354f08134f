"""multiply gate not switching: dx = dout * x and dy = dout * y, each input times itself instead of the other input."""

from gradmatrix.manual import multiply_forward  # noqa: F401


def multiply_backward(dout, cache):
    x, y = cache
    return dout * x, dout * y  # should be dout * y, dout * x
