"""The two-layer net's float64 gradients computed in float32, then cast back: right to ~1e-7 only."""

import numpy as np

from gradmatrix import manual


def two_layer_net_loss(params, X, y=None, reg=0.0):
    dtype = X.dtype
    low = {k: v.astype(np.float32) for k, v in params.items()}
    result = manual.two_layer_net_loss(low, X.astype(np.float32), y, reg)
    if y is None:
        return result.astype(dtype)
    loss, grads = result
    return dtype.type(loss), {k: g.astype(dtype) for k, g in grads.items()}
