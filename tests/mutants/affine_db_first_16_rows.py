"""affine backward whose db sums only the first 16 rows of dout (a slice left over from a fixed batch of 16): right only where N <= 16."""

from gradmatrix.manual import (  # noqa: F401  (the rest of the candidate is correct)
    affine_forward, relu_backward, relu_forward, softmax_loss, two_layer_net_loss,
)


def affine_backward(dout, cache):
    x, w, b = cache
    n = x.shape[0]
    rows = x.reshape(n, -1)
    return (dout @ w.T).reshape(x.shape), rows.T @ dout, dout[:16].sum(axis=0)  # should sum all N rows
