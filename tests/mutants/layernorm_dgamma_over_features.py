"""layernorm dgamma and dbeta summed over the feature axis (axis 1, the axis of the statistics) instead of over the batch: (N,) where (D,) is due."""

from gradmatrix import manual
from gradmatrix.manual import layernorm_forward  # noqa: F401


def layernorm_backward(dout, cache):
    xhat, gamma, std = cache
    dx, _, _ = manual.layernorm_backward(dout, cache)
    return dx, (dout * xhat).sum(axis=1), dout.sum(axis=1)  # should be axis=0
