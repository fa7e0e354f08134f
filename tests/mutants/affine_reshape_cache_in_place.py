"""affine backward flattens the cached x in place (x.shape = (N, D)), changing the caller's array."""

from gradmatrix.manual import (  # noqa: F401  (the rest of the candidate is correct)
    affine_forward, relu_backward, relu_forward, softmax_loss, two_layer_net_loss,
)


def affine_backward(dout, cache):
    x, w, b = cache
    n = x.shape[0]
    shape = x.shape
    x.shape = (n, -1)  # flattens the caller's array itself, not a view of it
    return (dout @ w.T).reshape(shape), x.T @ dout, dout.sum(axis=0)
