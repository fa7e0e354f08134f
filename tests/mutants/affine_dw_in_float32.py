"""dw computed in float32 and cast back, so a float64 gradient is only float32-accurate (~1e-7)."""

import numpy as np

from gradmatrix.manual import (  # noqa: F401  (the rest of the candidate is correct)
    affine_forward, relu_backward, relu_forward, softmax_loss, two_layer_net_loss,
)


def affine_backward(dout, cache):
    x, w, b = cache
    n = x.shape[0]
    rows = x.reshape(n, -1)
    dw = (rows.astype(np.float32).T @ dout.astype(np.float32)).astype(x.dtype)
    return (dout @ w.T).reshape(x.shape), dw, dout.sum(axis=0)
