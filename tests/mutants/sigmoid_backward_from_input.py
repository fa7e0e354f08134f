"""sigmoid backward from the input: dout * x (1 - x) with x cached, the formula s (1 - s) applied to x instead of to s = sigmoid(x)."""

from gradmatrix.manual import sigmoid_forward as _sigmoid_forward


def sigmoid_forward(x):
    out, _ = _sigmoid_forward(x)
    return out, (x,)  # caches the input


def sigmoid_backward(dout, cache):
    (x,) = cache
    return dout * x * (1 - x)  # should be s (1 - s) with s = sigmoid(x)
