"""dx returned in the flattened (N, D) shape instead of x's shape (N, d_1, ..., d_k)."""

from gradmatrix.manual import (  # noqa: F401  (the rest of the candidate is correct)
    affine_forward, relu_backward, relu_forward, softmax_loss, two_layer_net_loss,
)


def affine_backward(dout, cache):
    x, w, b = cache
    n = x.shape[0]
    rows = x.reshape(n, -1)
    dx = dout @ w.T  # missing .reshape(x.shape)
    return dx, rows.T @ dout, dout.sum(axis=0)
