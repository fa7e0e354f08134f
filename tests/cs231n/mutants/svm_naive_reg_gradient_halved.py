"""svm_loss_naive adds reg * sum(W^2) to the loss (the newer convention) but only reg * W to dW
(the older one's gradient): loss and gradient follow different conventions."""

import numpy as np


def svm_loss_naive(W, X, y, reg):
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
                dW[:, j] += X[i]
                dW[:, y[i]] -= X[i]
    loss = loss / num_train + reg * np.sum(W * W)
    dW = dW / num_train + reg * W  # BUG: the gradient of reg * sum(W^2) is 2 * reg * W
    return loss, dW
