"""The softmax gradient divides by N twice: dscores is N times too small."""

import numpy as np

from gradmatrix.manual import (  # noqa: F401  (the rest of the candidate is correct)
    affine_backward, affine_forward, relu_backward, relu_forward, two_layer_net_loss,
)


def softmax_loss(scores, y):
    n = scores.shape[0]
    rows = np.arange(n)
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[rows, y].sum() / scores.dtype.type(n)
    dscores = np.exp(log_probs)
    dscores[rows, y] -= 1
    dscores /= n
    dscores /= n  # once too often
    return scores.dtype.type(loss), dscores
