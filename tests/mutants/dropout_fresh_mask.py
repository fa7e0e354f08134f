"""dropout backward that draws a fresh mask (with the right p and scale) instead of reusing the forward pass's mask."""

import numpy as np

from gradmatrix.manual import dropout_forward as _dropout_forward


def dropout_forward(x, mask, p):
    out, (keep,) = _dropout_forward(x, mask, p)
    return out, (keep, p)


def dropout_backward(dout, cache):
    keep, p = cache
    rng = np.random.default_rng(0)  # seeded so the run is reproducible; a new draw all the same
    fresh = (rng.random(dout.shape) >= p).astype(dout.dtype)
    return dout * fresh / dout.dtype.type(1 - p)  # should be dout * keep
