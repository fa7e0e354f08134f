"""A correct multiclass SVM loss with CS231n assignment 1's signatures (linear_svm.py).

Written for gradmatrix's tests: ``gradmatrix check`` must pass it.  Margin delta = 1; the
L2 term is ``0.5 * reg * sum(W^2)``, the older course years' convention (its gradient
``reg * W``), which gradmatrix reports as a convention, not a bug.
"""

import numpy as np


def svm_loss_naive(W, X, y, reg):
    """Hinge loss with loops: sum over j != y_i of max(0, s_j - s_{y_i} + 1), averaged.

    Returns:
        (loss, dW) with dW of shape (D, C).
    """
    num_train, num_classes = X.shape[0], W.shape[1]
    loss = 0.0
    dW = np.zeros_like(W)
    for i in range(num_train):
        scores = X[i].dot(W)
        for j in range(num_classes):
            if j == y[i]:
                continue
            margin = scores[j] - scores[y[i]] + 1
            if margin > 0:
                loss += margin
                # an active margin pulls class j up and the true class down
                dW[:, j] += X[i]
                dW[:, y[i]] -= X[i]
    loss = loss / num_train + 0.5 * reg * np.sum(W * W)
    dW = dW / num_train + reg * W
    return loss, dW


def svm_loss_vectorized(W, X, y, reg):
    """Hinge loss without loops; the same result as ``svm_loss_naive``."""
    num_train = X.shape[0]
    rows = np.arange(num_train)
    scores = X.dot(W)
    margins = np.maximum(0.0, scores - scores[rows, y][:, None] + 1.0)
    margins[rows, y] = 0.0
    loss = margins.sum() / num_train + 0.5 * reg * np.sum(W * W)
    active = (margins > 0).astype(W.dtype)
    active[rows, y] = -active.sum(axis=1)
    dW = X.T.dot(active) / num_train + reg * W
    return loss, dW
