"""dx = dout @ w instead of dout @ w.T: wrong values for square weights, a shape error otherwise."""

from gradmatrix.manual import (  # noqa: F401  (the rest of the candidate is correct)
    affine_forward, relu_backward, relu_forward, softmax_loss, two_layer_net_loss,
)


def affine_backward(dout, cache):
    x, w, b = cache
    n = x.shape[0]
    rows = x.reshape(n, -1)
    dx = (dout @ w).reshape(x.shape)  # should be dout @ w.T
    return dx, rows.T @ dout, dout.sum(axis=0)
