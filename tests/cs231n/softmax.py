"""A correct softmax classifier loss with CS231n assignment 1's signatures (softmax.py).

Written for gradmatrix's tests: ``gradmatrix check`` must pass it.  W (D, C) weights,
X (N, D) data, y (N,) labels in [0, C), reg the L2 strength; the L2 term is
``reg * sum(W^2)``, the newer course years' convention.
"""

import numpy as np


def softmax_loss_naive(W, X, y, reg):
    """Softmax loss with explicit loops over samples and classes.

    Returns:
        (loss, dW): the mean cross-entropy plus reg * sum(W^2), and its gradient (D, C).
    """
    num_train, num_classes = X.shape[0], W.shape[1]
    loss = 0.0
    dW = np.zeros_like(W)
    for i in range(num_train):
        scores = X[i].dot(W)
        scores = scores - np.max(scores)  # exp of non-positive numbers only
        total = 0.0
        for j in range(num_classes):
            total += np.exp(scores[j])
        loss += np.log(total) - scores[y[i]]
        for j in range(num_classes):
            # d loss_i / d s_j = p_j - [j == y_i]; d s_j / d W[:, j] = X[i]
            p_j = np.exp(scores[j]) / total
            dW[:, j] += (p_j - (j == y[i])) * X[i]
    loss = loss / num_train + reg * np.sum(W * W)
    dW = dW / num_train + 2 * reg * W
    return loss, dW


def softmax_loss_vectorized(W, X, y, reg):
    """Softmax loss without loops; the same result as ``softmax_loss_naive``."""
    num_train = X.shape[0]
    scores = X @ W
    scores = scores - scores.max(axis=1, keepdims=True)
    exp_scores = np.exp(scores)
    probs = exp_scores / exp_scores.sum(axis=1, keepdims=True)
    rows = np.arange(num_train)
    loss = np.mean(np.log(exp_scores.sum(axis=1)) - scores[rows, y]) + reg * np.sum(W * W)
    dscores = probs.copy()
    dscores[rows, y] -= 1.0
    dW = X.T @ dscores / num_train + 2 * reg * W
    return loss, dW
