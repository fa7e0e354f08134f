"""max_pool_forward_naive and max_pool_backward_naive read pool_height for the width too: right on every square window, wrong where pool_width differs."""

import importlib.util
from pathlib import Path

import numpy as np

# every function of the correct layers.py, then the two this mutant gets wrong
_spec = importlib.util.spec_from_file_location("cs231n_correct_layers", Path(__file__).parents[1] / "layers.py")
_correct = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_correct)
globals().update({name: value for name, value in vars(_correct).items() if not name.startswith("_")})


def max_pool_forward_naive(x, pool_param):
    ph, stride = pool_param["pool_height"], pool_param["stride"]
    n, c, h, width = x.shape
    h_out = 1 + (h - ph) // stride
    w_out = 1 + (width - ph) // stride
    out = np.zeros((n, c, h_out, w_out), dtype=x.dtype)
    for i in range(h_out):
        for j in range(w_out):
            out[:, :, i, j] = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + ph].max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, stride = pool_param["pool_height"], pool_param["stride"]
    dx = np.zeros_like(x)
    for n in range(x.shape[0]):
        for ch in range(x.shape[1]):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    window = x[n, ch, i * stride:i * stride + ph, j * stride:j * stride + ph]
                    a, b = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, ch, i * stride + a, j * stride + b] += dout[n, ch, i, j]
    return dx
