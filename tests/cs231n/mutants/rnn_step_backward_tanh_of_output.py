"""rnn_step_backward takes tanh' as 1 - tanh(next_h)^2, applying tanh to the output once more."""

import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x.dot(Wx) + prev_h.dot(Wh) + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    dpre = dnext_h * (1.0 - np.tanh(next_h) ** 2)  # BUG: next_h already is the tanh
    return dpre.dot(Wx.T), dpre.dot(Wh.T), x.T.dot(dpre), prev_h.T.dot(dpre), dpre.sum(axis=0)
