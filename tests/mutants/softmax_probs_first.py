"""Probabilities first (exp(shifted) / sum), the loss from the log of the normaliser: a reformulation of the same stable computation."""

import numpy as np

from gradmatrix.manual import (  # noqa: F401  (the rest of the candidate is correct)
    affine_backward, affine_forward, relu_backward, relu_forward, two_layer_net_loss,
)


def softmax_loss(scores, y):
    n = scores.shape[0]
    rows = np.arange(n)
    shifted = scores - scores.max(axis=1, keepdims=True)
    exps = np.exp(shifted)
    total = exps.sum(axis=1, keepdims=True)
    loss = -(shifted[rows, y] - np.log(total[:, 0])).mean()
    dscores = exps / total
    dscores[rows, y] -= 1
    dscores /= n
    return scores.dtype.type(loss), dscores
