"""score net backward that never multiplies by the upstream gradient ds: ds/d. computed as if ds were always 1."""

import numpy as np

from gradmatrix.manual import score_net_forward  # noqa: F401


def score_net_backward(ds, cache):
    x, W, h, u = cache
    delta = u * h * (1 - h)  # should be ds * u * h * (1 - h)
    return W.T @ delta, np.outer(delta, x), delta, h.copy()  # du should be ds * h
