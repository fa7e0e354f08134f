"""softmax_loss_vectorized averages the loss over the batch but not the gradient (no 1/N in dW)."""

import numpy as np


def softmax_loss_vectorized(W, X, y, reg):
    num_train = X.shape[0]
    scores = X @ W
    scores = scores - scores.max(axis=1, keepdims=True)
    exp_scores = np.exp(scores)
    probs = exp_scores / exp_scores.sum(axis=1, keepdims=True)
    rows = np.arange(num_train)
    loss = np.mean(np.log(exp_scores.sum(axis=1)) - scores[rows, y]) + reg * np.sum(W * W)
    dscores = probs.copy()
    dscores[rows, y] -= 1.0
    dW = X.T @ dscores + 2 * reg * W  # BUG: X.T @ dscores / num_train
    return loss, dW
