"""conv backward that ignores the stride when scattering into dx: window (i, j) is taken to start at (i, j), not (i * stride, j * stride)."""

import numpy as np

from gradmatrix import manual
from gradmatrix.manual import conv_forward  # noqa: F401


def conv_backward(dout, cache):
    x, w, b, (stride, pad) = cache
    _, dw, db = manual.conv_backward(dout, cache)
    n, c, h, wd = x.shape
    hh, ww = w.shape[2:]
    ho, wo = dout.shape[2:]
    dxpad = np.zeros((n, c, h + 2 * pad, wd + 2 * pad), dtype=x.dtype)
    for p in range(hh):
        for q in range(ww):
            contribution = np.tensordot(dout, w[:, :, p, q], axes=([1], [0])).transpose(0, 3, 1, 2)
            dxpad[:, :, p:p + ho, q:q + wo] += contribution  # should step by the stride
    return dxpad[:, :, pad:pad + h, pad:pad + wd], dw, db
