"""max_pool_backward_naive assigns each window's gradient with = instead of adding it with +=: a pixel that is the maximum of two overlapping windows keeps only the last one's."""

import importlib.util
from pathlib import Path

import numpy as np

# every function of the correct layers.py, then the one this mutant gets wrong
_spec = importlib.util.spec_from_file_location("cs231n_correct_layers", Path(__file__).parents[1] / "layers.py")
_correct = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_correct)
globals().update({name: value for name, value in vars(_correct).items() if not name.startswith("_")})


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    for n in range(x.shape[0]):
        for ch in range(x.shape[1]):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    window = x[n, ch, i * stride:i * stride + ph, j * stride:j * stride + pw]
                    a, b = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, ch, i * stride + a, j * stride + b] = dout[n, ch, i, j]
    return dx
