"""A batchnorm backward missing its mean branch, beside a relu that writes into dout and an
affine that promotes float32 to float64: one real bug among warnings."""

import numpy as np


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    dout[cache <= 0] = 0
    return dout


def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1).dot(w) + b * np.float64(1.0)
    return out, (x, w, b)


def affine_backward(dout, cache):
    x, w, b = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    db = np.sum(dout, axis=0)
    return dx, dw, db


def batchnorm_forward(x, gamma, beta, bn_param):
    eps = bn_param.get("eps", 1e-5)
    mean, var = x.mean(axis=0), x.var(axis=0)
    x_hat = (x - mean) / np.sqrt(var + eps)
    return gamma * x_hat + beta, (x_hat, gamma, var, eps)


def batchnorm_backward(dout, cache):
    x_hat, gamma, var, eps = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    dx = (dx_hat - x_hat * (dx_hat * x_hat).sum(axis=0) / N) / np.sqrt(var + eps)  # the mean term is missing
    return dx, dgamma, dbeta
