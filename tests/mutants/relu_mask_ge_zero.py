"""ReLU mask with x >= 0 (seed 002's convention): gradient 1 instead of 0 at exactly x = 0, a kink."""

from gradmatrix.manual import (  # noqa: F401  (the rest of the candidate is correct)
    affine_backward, affine_forward, relu_forward, softmax_loss, two_layer_net_loss,
)


def relu_backward(dout, cache):
    (x,) = cache
    return dout * (x >= 0)
