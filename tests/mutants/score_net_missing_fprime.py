"""score net without f'(z): delta = u instead of u o h o (1 - h), the diagonal Jacobian dh/dz dropped from the chain."""

import numpy as np

from gradmatrix.manual import score_net_forward  # noqa: F401


def score_net_backward(ds, cache):
    x, W, h, u = cache
    delta = ds * u  # should be ds * u * h * (1 - h)
    return W.T @ delta, np.outer(delta, x), delta, ds * h
