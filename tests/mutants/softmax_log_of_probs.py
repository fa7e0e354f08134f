"""Loss as -log(probs[y]) of the shifted softmax: the probability of the label underflows to 0 for large logits (loss inf)."""

import numpy as np

from gradmatrix.manual import (  # noqa: F401  (the rest of the candidate is correct)
    affine_backward, affine_forward, relu_backward, relu_forward, two_layer_net_loss,
)


def softmax_loss(scores, y):
    n = scores.shape[0]
    rows = np.arange(n)
    shifted = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    loss = -np.log(probs[rows, y]).sum() / scores.dtype.type(n)  # log(0) when probs underflow
    dscores = probs
    dscores[rows, y] -= 1
    dscores /= n
    return scores.dtype.type(loss), dscores
