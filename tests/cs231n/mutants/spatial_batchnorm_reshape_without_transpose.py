"""spatial_batchnorm_backward reshapes dout (N, C, H, W) straight to (N H W, C) without moving the channels last, mixing channels."""

import importlib.util
from pathlib import Path

import numpy as np

# every function of the correct layers.py, then the one this mutant gets wrong
_spec = importlib.util.spec_from_file_location("cs231n_correct_layers", Path(__file__).parents[1] / "layers.py")
_correct = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_correct)
globals().update({name: value for name, value in vars(_correct).items() if not name.startswith("_")})


def spatial_batchnorm_backward(dout, cache):
    n, c, h, w = dout.shape
    dx, dgamma, dbeta = batchnorm_backward(dout.reshape(-1, c), cache)
    return dx.reshape(n, c, h, w), dgamma, dbeta
