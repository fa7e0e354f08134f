"""svm_loss counts each positive margin in dx but never pulls the true class's score down by their number."""

import importlib.util
from pathlib import Path

import numpy as np

# every function of the correct layers.py, then the one this mutant gets wrong
_spec = importlib.util.spec_from_file_location("cs231n_correct_layers", Path(__file__).parents[1] / "layers.py")
_correct = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_correct)
globals().update({name: value for name, value in vars(_correct).items() if not name.startswith("_")})


def svm_loss(x, y):
    n = x.shape[0]
    rows = np.arange(n)
    margins = np.maximum(0, x - x[rows, y][:, None] + 1)
    margins[rows, y] = 0
    loss = margins.sum() / n
    positive = (margins > 0).astype(x.dtype)
    return np.asarray(loss, dtype=x.dtype), positive / n
