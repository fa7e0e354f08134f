"""Mutants of layer_utils: a forgotten ReLU mask (affine_relu), a dgamma of shape (1, M)
(affine_bn_relu, shape-only), float64 results for float32 inputs (conv_relu, dtype-only),
a stub returning None (conv_relu_pool's backward), half a pair (conv_bn_relu's forward) and a
helper of no known op."""

import numpy as np

from . import layer_utils as _ok


def affine_relu_forward(x, w, b):
    return _ok.affine_relu_forward(x, w, b)


def affine_relu_backward(dout, cache):
    fc_cache, relu_cache = cache
    return _ok.affine_backward(dout, fc_cache)  # the ReLU's mask forgotten


def affine_bn_relu_forward(x, w, b, gamma, beta, bn_param):
    return _ok.affine_bn_relu_forward(x, w, b, gamma, beta, bn_param)


def affine_bn_relu_backward(dout, cache):
    dx, dw, db, dgamma, dbeta = _ok.affine_bn_relu_backward(dout, cache)
    return dx, dw, db, dgamma.reshape(1, -1), dbeta  # shape-only


def conv_relu_forward(x, w, b, conv_param):
    out, cache = _ok.conv_relu_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), conv_param)
    return out, cache  # float64 for a float32 case: dtype-only


def conv_relu_backward(dout, cache):
    return _ok.conv_relu_backward(dout.astype(np.float64), cache)


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    return _ok.conv_relu_pool_forward(x, w, b, conv_param, pool_param)


def conv_relu_pool_backward(dout, cache):
    dx, dw, db = None, None, None
    # TODO: implement the backward pass of the conv-relu-pool convenience layer
    return dx, dw, db


def conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param):
    raise NotImplementedError


def eval_numerical_gradient(f, x):
    return None
