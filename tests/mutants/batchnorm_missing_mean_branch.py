"""batchnorm backward without the branch through the mean: dx keeps the direct and variance terms but drops -mean_N(dxhat) / std."""

from gradmatrix.manual import batchnorm_forward  # noqa: F401


def batchnorm_backward(dout, cache):
    xhat, gamma, std = cache
    dxhat = dout * gamma
    dx = dxhat / std - xhat * (dxhat * xhat).mean(axis=0, keepdims=True) / std  # + the mean's branch missing
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
