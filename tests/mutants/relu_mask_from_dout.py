"""ReLU mask taken from the upstream gradient instead of the input: dout * (dout > 0)."""

from gradmatrix.manual import (  # noqa: F401  (the rest of the candidate is correct)
    affine_backward, affine_forward, relu_forward, softmax_loss, two_layer_net_loss,
)


def relu_backward(dout, cache):
    return dout * (dout > 0)  # should be dout * (x > 0)
