"""Seed 000's in-place mask: dout[x <= 0] = 0; return dout, right values but written into the upstream gradient."""

from gradmatrix.manual import (  # noqa: F401  (the rest of the candidate is correct)
    affine_backward, affine_forward, relu_forward, softmax_loss, two_layer_net_loss,
)


def relu_backward(dout, cache):
    (x,) = cache
    dout[x <= 0] = 0
    return dout
