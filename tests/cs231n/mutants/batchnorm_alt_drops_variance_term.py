"""batchnorm_backward_alt drops the xhat * mean(dxhat * xhat) term of the closed form: the variance's path to dx is lost."""

import importlib.util
from pathlib import Path

import numpy as np

# every function of the correct layers.py, then the one this mutant gets wrong
_spec = importlib.util.spec_from_file_location("cs231n_correct_layers", Path(__file__).parents[1] / "layers.py")
_correct = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_correct)
globals().update({name: value for name, value in vars(_correct).items() if not name.startswith("_")})


def batchnorm_backward_alt(dout, cache):
    xhat, inv_std, gamma = cache
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    dx = inv_std * (dxhat - dxhat.mean(axis=0))
    return dx, dgamma, dbeta
