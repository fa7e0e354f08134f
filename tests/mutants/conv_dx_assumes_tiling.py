"""conv dx as the full convolution of the stride-dilated dout with the rotated kernel, cropped by pad: short by the rows and columns past the last full window when (H + 2 pad - HH) % stride != 0."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from gradmatrix import manual
from gradmatrix.manual import conv_forward  # noqa: F401


def conv_backward(dout, cache):
    x, w, b, (stride, pad) = cache
    _, dw, db = manual.conv_backward(dout, cache)
    n, f, ho, wo = dout.shape
    hh, ww = w.shape[2:]
    h, wd = x.shape[2:]
    dilated = np.zeros((n, f, (ho - 1) * stride + 1, (wo - 1) * stride + 1), dtype=dout.dtype)
    dilated[:, :, ::stride, ::stride] = dout
    full = np.pad(dilated, ((0, 0), (0, 0), (hh - 1, hh - 1), (ww - 1, ww - 1)))
    windows = sliding_window_view(full, (hh, ww), axis=(2, 3))  # (N, F, (ho-1)s + hh, (wo-1)s + ww, hh, ww)
    # (ho - 1) * stride + hh rows: H + 2 pad only when the windows tile the padded input exactly
    dxpad = np.einsum("nfijpq,fcpq->ncij", windows, w[:, :, ::-1, ::-1])
    return dxpad[:, :, pad:pad + h, pad:pad + wd], dw, db
