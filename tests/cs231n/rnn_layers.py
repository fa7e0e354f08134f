"""Correct recurrent layers with CS231n assignment 3's signatures (rnn_layers.py).

Written for gradmatrix's tests: ``gradmatrix check`` must pass every function here.
Shapes: N sequences (a minibatch), T time steps, D input features, H hidden units,
V words in the vocabulary, M outputs.  Every backward returns its gradients in the
order the course's notebook unpacks them.
"""

import numpy as np


def affine_forward(x, w, b):
    """out = x.reshape(N, D) @ w + b: x (N, d_1, ..., d_k), w (D, M), b (M,) -> out (N, M)."""
    out = x.reshape(x.shape[0], -1).dot(w) + b
    return out, (x, w)


def affine_backward(dout, cache):
    """dx = dout w^T (reshaped back), dw = x^T dout, db = sum of dout over the batch."""
    x, w = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    db = dout.sum(axis=0)
    return dx, dw, db


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """next_h = tanh(x Wx + prev_h Wh + b): x (N, D), prev_h (N, H) -> next_h (N, H)."""
    next_h = np.tanh(x.dot(Wx) + prev_h.dot(Wh) + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    """Through tanh (1 - next_h^2), then the two products and the bias."""
    x, prev_h, Wx, Wh, next_h = cache
    dpre = dnext_h * (1.0 - next_h ** 2)  # (N, H)
    dx = dpre.dot(Wx.T)
    dprev_h = dpre.dot(Wh.T)
    dWx = x.T.dot(dpre)
    dWh = prev_h.T.dot(dpre)
    db = dpre.sum(axis=0)
    return dx, dprev_h, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b):
    """Hidden states h (N, T, H) of x (N, T, D), starting from h0 (N, H)."""
    n, steps, _ = x.shape
    h = np.zeros((n, steps, h0.shape[1]), dtype=np.result_type(x, h0))
    caches = []
    prev_h = h0
    for t in range(steps):
        prev_h, step_cache = rnn_step_forward(x[:, t, :], prev_h, Wx, Wh, b)
        h[:, t, :] = prev_h
        caches.append(step_cache)
    return h, caches


def rnn_backward(dh, cache):
    """Back through time: the gradient reaching h_t is dh[:, t] plus what h_{t+1} sends back."""
    dx_steps = []
    dWx = dWh = db = 0.0
    dprev_h = np.zeros_like(dh[:, 0, :])
    for t in reversed(range(dh.shape[1])):
        dx_t, dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t, :] + dprev_h, cache[t])
        dx_steps.append(dx_t)
        # the weights are shared by all steps: their gradients add up
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    dx = np.stack(dx_steps[::-1], axis=1)
    return dx, dprev_h, dWx, dWh, db


def word_embedding_forward(x, W):
    """out[n, t] = W[x[n, t]]: x (N, T) integers in [0, V), W (V, D) -> out (N, T, D)."""
    return W[x], (x, W.shape, W.dtype)


def word_embedding_backward(dout, cache):
    """dW[v] = sum of dout[n, t] over every (n, t) with x[n, t] = v (a word may repeat)."""
    x, shape, dtype = cache
    dW = np.zeros(shape, dtype=dtype)
    np.add.at(dW, x, dout)
    return dW


def _sigmoid(x):
    """Logistic function without overflow: exp of non-positive numbers only.

    The course's file provides it as ``sigmoid``; private here, so that every public function
    of this module is one gradmatrix checks.
    """
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One LSTM step; Wx (D, 4H), Wh (H, 4H), b (4H,) hold the gates i, f, o, g in that order."""
    H = prev_h.shape[1]
    a = x.dot(Wx) + prev_h.dot(Wh) + b
    i, f, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), _sigmoid(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c)


def lstm_step_backward(dnext_h, dnext_c, cache):
    """The cell state gets dnext_c plus what flows through next_h = o tanh(next_c)."""
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c = cache
    dc = dnext_c + dnext_h * o * (1.0 - tanh_c ** 2)
    di, df, do, dg = dc * g, dc * prev_c, dnext_h * tanh_c, dc * i
    dprev_c = dc * f
    # back through the gate nonlinearities: sigmoid' = s (1 - s), tanh' = 1 - t^2
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g ** 2)], axis=1)
    dx = da.dot(Wx.T)
    dprev_h = da.dot(Wh.T)
    dWx = x.T.dot(da)
    dWh = prev_h.T.dot(da)
    db = da.sum(axis=0)
    return dx, dprev_h, dprev_c, dWx, dWh, db


def lstm_forward(x, h0, Wx, Wh, b):
    """Hidden states h (N, T, H) of an LSTM over x (N, T, D), from h0 and a zero cell state."""
    n, steps, _ = x.shape
    h = np.zeros((n, steps, h0.shape[1]), dtype=np.result_type(x, h0))
    prev_h, prev_c = h0, np.zeros_like(h0)
    caches = []
    for t in range(steps):
        prev_h, prev_c, step_cache = lstm_step_forward(x[:, t, :], prev_h, prev_c, Wx, Wh, b)
        h[:, t, :] = prev_h
        caches.append(step_cache)
    return h, caches


def lstm_backward(dh, cache):
    """Back through time, carrying both the hidden and the cell state's gradients."""
    dprev_h = np.zeros_like(dh[:, 0, :])
    dprev_c = np.zeros_like(dprev_h)
    dWx = dWh = db = 0.0
    dx_steps = []
    for t in reversed(range(dh.shape[1])):
        dx_t, dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward(dh[:, t, :] + dprev_h, dprev_c, cache[t])
        dx_steps.append(dx_t)
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return np.stack(dx_steps[::-1], axis=1), dprev_h, dWx, dWh, db


def temporal_affine_forward(x, w, b):
    """out[n, t] = x[n, t] @ w + b: x (N, T, D), w (D, M), b (M,) -> out (N, T, M)."""
    n, steps, d = x.shape
    out = x.reshape(n * steps, d).dot(w).reshape(n, steps, -1) + b
    return out, (x, w)


def temporal_affine_backward(dout, cache):
    """As the affine layer, over the N * T rows."""
    x, w = cache
    n, steps, d = x.shape
    rows = dout.reshape(n * steps, -1)
    dx = rows.dot(w.T).reshape(x.shape)
    dw = x.reshape(n * steps, d).T.dot(rows)
    db = rows.sum(axis=0)
    return dx, dw, db


def temporal_softmax_loss(x, y, mask, verbose=False):
    """Masked cross-entropy: x (N, T, V) scores, y (N, T) labels, mask (N, T) booleans.

    The losses of the unmasked steps are summed and divided by N (not by the mask's count).
    """
    n, steps, vocabulary = x.shape
    flat = x.reshape(n * steps, vocabulary)
    labels = y.reshape(n * steps)
    keep = mask.reshape(n * steps)
    shifted = flat - flat.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    rows = np.arange(n * steps)
    loss = -np.sum(keep * np.log(probs[rows, labels])) / n
    dflat = probs
    dflat[rows, labels] -= 1.0
    dflat *= keep[:, None] / n
    if verbose:
        print("dx_flat:", dflat.shape)
    return loss, dflat.reshape(x.shape)
