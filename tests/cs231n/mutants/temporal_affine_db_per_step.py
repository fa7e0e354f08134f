"""temporal_affine_backward sums db over the batch only, leaving one bias gradient per time step."""

import numpy as np


def temporal_affine_forward(x, w, b):
    n, steps, d = x.shape
    return x.reshape(n * steps, d).dot(w).reshape(n, steps, -1) + b, (x, w)


def temporal_affine_backward(dout, cache):
    x, w = cache
    n, steps, d = x.shape
    rows = dout.reshape(n * steps, -1)
    dx = rows.dot(w.T).reshape(x.shape)
    dw = x.reshape(n * steps, d).T.dot(rows)
    db = dout.sum(axis=0)  # BUG: axis=(0, 1); shape (T, M) instead of (M,)
    return dx, dw, db
