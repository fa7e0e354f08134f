"""conv dx as the full convolution of the stride-dilated dout with the kernel as it is: the 180-degree rotation (w[:, :, ::-1, ::-1]) the full-convolution form needs is forgotten."""

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
    # rows and columns past the last full window get no gradient: pad the far side up to H + 2 pad
    extra_h = h + 2 * pad - ((ho - 1) * stride + hh)
    extra_w = wd + 2 * pad - ((wo - 1) * stride + ww)
    full = np.pad(dilated, ((0, 0), (0, 0), (hh - 1, hh - 1 + extra_h), (ww - 1, ww - 1 + extra_w)))
    windows = sliding_window_view(full, (hh, ww), axis=(2, 3))  # (N, F, H + 2 pad, W + 2 pad, hh, ww)
    dxpad = np.einsum("nfijpq,fcpq->ncij", windows, w)  # should be w[:, :, ::-1, ::-1]
    return dxpad[:, :, pad:pad + h, pad:pad + wd], dw, db
