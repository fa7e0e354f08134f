"""score net dW = outer(x, delta), (D, H): x delta^T where the lecture's delta^T x^T, (H, D), is due; same shape only when H = D."""

import numpy as np

from gradmatrix.manual import score_net_forward  # noqa: F401


def score_net_backward(ds, cache):
    x, W, h, u = cache
    delta = ds * u * h * (1 - h)
    dW = np.outer(x, delta)  # should be np.outer(delta, x)
    return W.T @ delta, dW, delta, ds * h
