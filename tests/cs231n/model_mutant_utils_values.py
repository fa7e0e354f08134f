"""Mutants of layer_utils with wrong values: conv_relu's mask taken from the upstream
gradient, conv_relu_pool without the ReLU's mask, affine_bn_relu's batchnorm backward
treating the batch statistics as constants, conv_bn_relu's dgamma and dbeta swapped."""

import numpy as np

from . import layer_utils as _ok


def conv_relu_forward(x, w, b, conv_param):
    return _ok.conv_relu_forward(x, w, b, conv_param)


def conv_relu_backward(dout, cache):
    conv_cache, relu_cache = cache
    return _ok.conv_backward_naive(dout * (dout > 0), conv_cache)  # mask from dout, not from the input


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    return _ok.conv_relu_pool_forward(x, w, b, conv_param, pool_param)


def conv_relu_pool_backward(dout, cache):
    conv_cache, relu_cache, pool_cache = cache
    return _ok.conv_backward_naive(_ok.max_pool_backward_naive(dout, pool_cache), conv_cache)  # ReLU skipped


def affine_bn_relu_forward(x, w, b, gamma, beta, bn_param):
    return _ok.affine_bn_relu_forward(x, w, b, gamma, beta, bn_param)


def affine_bn_relu_backward(dout, cache):
    fc_cache, bn_cache, relu_cache = cache
    xhat, gamma, inv, axis = bn_cache
    dz = _ok.relu_backward(dout, relu_cache)
    dgamma, dbeta = (dz * xhat).sum(axis=0), dz.sum(axis=0)
    da = dz * gamma * inv  # the mean's and the variance's dependence on x dropped
    dx, dw, db = _ok.affine_backward(da, fc_cache)
    return dx, dw, db, dgamma, dbeta


def conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param):
    return _ok.conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param)


def conv_bn_relu_backward(dout, cache):
    dx, dw, db, dgamma, dbeta = _ok.conv_bn_relu_backward(dout, cache)
    return dx, dw, db, dbeta, dgamma  # swapped
