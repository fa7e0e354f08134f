"""softmax_loss_naive adds reg's gradient to dW but leaves reg * sum(W^2) out of the loss."""

import numpy as np


def softmax_loss_naive(W, X, y, reg):
    num_train, num_classes = X.shape[0], W.shape[1]
    loss = 0.0
    dW = np.zeros_like(W)
    for i in range(num_train):
        scores = X[i].dot(W)
        scores = scores - np.max(scores)
        total = np.sum(np.exp(scores))
        loss += np.log(total) - scores[y[i]]
        for j in range(num_classes):
            dW[:, j] += (np.exp(scores[j]) / total - (j == y[i])) * X[i]
    loss = loss / num_train  # BUG: no + reg * np.sum(W * W)
    dW = dW / num_train + 2 * reg * W
    return loss, dW
