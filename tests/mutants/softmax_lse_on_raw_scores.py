"""The log-sum-exp trick applied to the raw scores, log_probs = scores - (m + log sum exp(scores - m)): float32 loses digits when large logits nearly tie."""

import numpy as np

from gradmatrix.manual import (  # noqa: F401  (the rest of the candidate is correct)
    affine_backward, affine_forward, relu_backward, relu_forward, two_layer_net_loss,
)


def softmax_loss(scores, y):
    n = scores.shape[0]
    rows = np.arange(n)
    m = scores.max(axis=1, keepdims=True)
    log_probs = scores - (m + np.log(np.exp(scores - m).sum(axis=1, keepdims=True)))
    loss = -log_probs[rows, y].sum() / scores.dtype.type(n)
    dscores = np.exp(log_probs)
    dscores[rows, y] -= 1
    dscores /= n
    return scores.dtype.type(loss), dscores
