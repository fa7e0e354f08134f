"""word_embedding_backward writes dW[x] += dout: with a word repeated, fancy-index assignment
keeps only one of its gradients (np.add.at accumulates them all)."""

import numpy as np


def word_embedding_forward(x, W):
    return W[x], (x, W)


def word_embedding_backward(dout, cache):
    x, W = cache
    dW = np.zeros_like(W)
    dW[x] += dout  # BUG: np.add.at(dW, x, dout)
    return dW
