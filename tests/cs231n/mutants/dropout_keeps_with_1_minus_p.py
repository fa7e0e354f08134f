"""dropout_forward keeps a unit where rand > p (with probability 1 - p) but rescales by 1/p, the keep probability's inverse: the expected output is no longer x."""

import importlib.util
from pathlib import Path

import numpy as np

# every function of the correct layers.py, then the one this file changes
_spec = importlib.util.spec_from_file_location("cs231n_correct_layers", Path(__file__).parents[1] / "layers.py")
_correct = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_correct)
globals().update({name: value for name, value in vars(_correct).items() if not name.startswith("_")})


def dropout_forward(x, dropout_param):
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])
    mask = None
    if mode == "train":
        mask = ((np.random.rand(*x.shape) > p) / p).astype(x.dtype)
        out = x * mask
    else:
        out = x
    return out, (dropout_param, mask)
