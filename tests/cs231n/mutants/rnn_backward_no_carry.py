"""rnn_backward feeds each step only dh[:, t]: the gradient h_{t+1} sends back to h_t is dropped
(not accumulated across time steps)."""

import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x.dot(Wx) + prev_h.dot(Wh) + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    dpre = dnext_h * (1.0 - next_h ** 2)
    return dpre.dot(Wx.T), dpre.dot(Wh.T), x.T.dot(dpre), prev_h.T.dot(dpre), dpre.sum(axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    n, steps, _ = x.shape
    h = np.zeros((n, steps, h0.shape[1]), dtype=np.result_type(x, h0))
    caches, prev_h = [], h0
    for t in range(steps):
        prev_h, step_cache = rnn_step_forward(x[:, t, :], prev_h, Wx, Wh, b)
        h[:, t, :] = prev_h
        caches.append(step_cache)
    return h, caches


def rnn_backward(dh, cache):
    dx = np.zeros((dh.shape[0], dh.shape[1], cache[0][0].shape[1]), dtype=dh.dtype)
    dWx = dWh = db = 0.0
    dprev_h = np.zeros_like(dh[:, 0, :])
    for t in reversed(range(dh.shape[1])):
        dx[:, t, :], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t, :], cache[t])  # BUG: + dprev_h
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, dprev_h, dWx, dWh, db
