"""ReLU backward builds its mask in the cached x (the caller's input array), overwriting it with 0s and 1s."""

from gradmatrix.manual import (  # noqa: F401  (the rest of the candidate is correct)
    affine_backward, affine_forward, relu_forward, softmax_loss, two_layer_net_loss,
)


def relu_backward(dout, cache):
    (x,) = cache  # the very array the caller passed to relu_forward
    x[x <= 0] = 0
    x[x > 0] = 1
    return dout * x
