"""sigmoid backward as dout * s: the local gradient sigma(x) taken for sigma(x) (1 - sigma(x)), the factor (1 - s) forgotten."""

from gradmatrix.manual import sigmoid_forward  # noqa: F401


def sigmoid_backward(dout, cache):
    (out,) = cache
    return dout * out  # should be dout * out * (1 - out)
