"""The im2col conv numbers output (i, j)'s column i * H_out + j instead of i * W_out + j: right for square outputs only."""

import importlib.util
from pathlib import Path

import numpy as np

# every function of the correct layers.py, then the one this mutant gets wrong
_spec = importlib.util.spec_from_file_location("cs231n_correct_layers", Path(__file__).parents[1] / "layers.py")
_correct = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_correct)
globals().update({name: value for name, value in vars(_correct).items() if not name.startswith("_")})


def _im2col(padded, hh, ww, stride, h_out, w_out):
    """(N, C, Hp, Wp) -> columns (N, H_out * W_out, C * HH * WW)."""
    n = padded.shape[0]
    cols = np.zeros((n, h_out * w_out, padded.shape[1] * hh * ww), dtype=padded.dtype)
    for i in range(h_out):
        for j in range(w_out):
            row = i * h_out + j  # should be i * w_out + j
            cols[:, row] = padded[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww].reshape(n, -1)
    return cols


def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    n, c, h, width = x.shape
    f, _, hh, ww = w.shape
    h_out = 1 + (h + 2 * pad - hh) // stride
    w_out = 1 + (width + 2 * pad - ww) // stride
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = _im2col(padded, hh, ww, stride, h_out, w_out)
    out = (cols @ w.reshape(f, -1).T + b).reshape(n, h_out, w_out, f).transpose(0, 3, 1, 2)
    return out, (x, w, b, conv_param, cols)


def conv_backward_naive(dout, cache):
    x, w, b, conv_param, cols = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    n, c, h, width = x.shape
    f, _, hh, ww = w.shape
    h_out, w_out = dout.shape[2:]
    g = dout.transpose(0, 2, 3, 1).reshape(n, h_out * w_out, f)
    dw = np.einsum("nrf,nrk->fk", g, cols).reshape(w.shape)
    dcols = g @ w.reshape(f, -1)
    dpadded = np.zeros((n, c, h + 2 * pad, width + 2 * pad), dtype=x.dtype)
    for i in range(h_out):
        for j in range(w_out):
            row = i * h_out + j  # the same wrong index
            dpadded[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww] += dcols[:, row].reshape(n, c, hh, ww)
    dx = dpadded[:, :, pad:pad + h, pad:pad + width]
    return dx, dw, dout.sum(axis=(0, 2, 3))
