"""db averaged over the rows instead of summed: 1/N too small, right only when N = 1."""

from gradmatrix.manual import (  # noqa: F401  (the rest of the candidate is correct)
    affine_forward, relu_backward, relu_forward, softmax_loss, two_layer_net_loss,
)


def affine_backward(dout, cache):
    x, w, b = cache
    n = x.shape[0]
    rows = x.reshape(n, -1)
    return (dout @ w.T).reshape(x.shape), rows.T @ dout, dout.mean(axis=0)  # should be sum
