"""ReLU backward returns the local Jacobian's diagonal 1(x > 0) and ignores the upstream gradient dout."""

from gradmatrix.manual import (  # noqa: F401  (the rest of the candidate is correct)
    affine_backward, affine_forward, relu_forward, softmax_loss, two_layer_net_loss,
)


def relu_backward(dout, cache):
    (x,) = cache
    return (x > 0).astype(x.dtype)  # should be dout * (x > 0)
