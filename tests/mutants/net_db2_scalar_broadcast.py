"""db2 as the sum of dscores over all entries, one scalar broadcast to every class."""

import numpy as np

from gradmatrix.manual import (  # noqa: F401  (the rest of the candidate is correct)
    affine_backward, affine_forward, relu_backward, relu_forward, softmax_loss,
)


def two_layer_net_loss(params, X, y=None, reg=0.0):
    W1, b1, W2, b2 = (params[k] for k in ("W1", "b1", "W2", "b2"))
    y1, affine1_cache = affine_forward(X, W1, b1)
    h1, relu_cache = relu_forward(y1)
    scores, affine2_cache = affine_forward(h1, W2, b2)
    if y is None:
        return scores
    data_loss, dscores = softmax_loss(scores, y)
    loss = data_loss + reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2))

    dh1, dW2, db2 = affine_backward(dscores, affine2_cache)
    db2 = np.zeros_like(b2) + dscores.sum()  # should be dscores.sum(axis=0)
    dy1 = relu_backward(dh1, relu_cache)
    _, dW1, db1 = affine_backward(dy1, affine1_cache)
    dW1 += 2 * reg * W1
    dW2 += 2 * reg * W2
    return X.dtype.type(loss), {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
