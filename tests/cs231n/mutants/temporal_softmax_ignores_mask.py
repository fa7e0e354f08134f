"""temporal_softmax_loss counts every time step: the mask is never applied."""

import numpy as np


def temporal_softmax_loss(x, y, mask, verbose=False):
    n, steps, vocabulary = x.shape
    flat = x.reshape(n * steps, vocabulary)
    labels = y.reshape(n * steps)
    shifted = flat - flat.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    rows = np.arange(n * steps)
    loss = -np.sum(np.log(probs[rows, labels])) / n  # BUG: no mask
    dflat = probs
    dflat[rows, labels] -= 1.0
    dflat /= n
    return loss, dflat.reshape(x.shape)
