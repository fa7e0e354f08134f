"""spatial_groupnorm_backward leaves out the - mean(dxhat) term: the gradient through each group's mean is lost."""

import importlib.util
from pathlib import Path

import numpy as np

# every function of the correct layers.py, then the one this mutant gets wrong
_spec = importlib.util.spec_from_file_location("cs231n_correct_layers", Path(__file__).parents[1] / "layers.py")
_correct = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_correct)
globals().update({name: value for name, value in vars(_correct).items() if not name.startswith("_")})


def spatial_groupnorm_backward(dout, cache):
    xhat, inv_std, gamma, G = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)
    dgamma = (dout * xhat).sum(axis=(0, 2, 3), keepdims=True)
    dxhat = (dout * gamma).reshape(n * G, -1)
    xhat_rows = xhat.reshape(n * G, -1)
    dx = inv_std * (dxhat - xhat_rows * (dxhat * xhat_rows).mean(axis=1, keepdims=True))
    return dx.reshape(dout.shape), dgamma, dbeta
