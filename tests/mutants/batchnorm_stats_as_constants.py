"""batchnorm backward treating the batch mean and variance as constants: dx = dout * gamma / std, the branches through mu and var (which depend on every x) dropped."""

from gradmatrix.manual import batchnorm_forward  # noqa: F401


def batchnorm_backward(dout, cache):
    xhat, gamma, std = cache
    dx = dout * gamma / std  # only the direct branch
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
