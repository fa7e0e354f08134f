"""svm_loss_vectorized forgets that every active margin also pulls the true class's column down."""

import numpy as np


def svm_loss_vectorized(W, X, y, reg):
    num_train = X.shape[0]
    rows = np.arange(num_train)
    scores = X.dot(W)
    margins = np.maximum(0.0, scores - scores[rows, y][:, None] + 1.0)
    margins[rows, y] = 0.0
    loss = margins.sum() / num_train + 0.5 * reg * np.sum(W * W)
    active = (margins > 0).astype(W.dtype)  # BUG: no active[rows, y] = -active.sum(axis=1)
    dW = X.T.dot(active) / num_train + reg * W
    return loss, dW
