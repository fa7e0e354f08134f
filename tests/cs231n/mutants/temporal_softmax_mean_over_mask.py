"""temporal_softmax_loss divides by the number of unmasked steps instead of by N."""

import numpy as np


def temporal_softmax_loss(x, y, mask, verbose=False):
    n, steps, vocabulary = x.shape
    flat = x.reshape(n * steps, vocabulary)
    labels = y.reshape(n * steps)
    keep = mask.reshape(n * steps)
    shifted = flat - flat.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    rows = np.arange(n * steps)
    count = int(keep.sum())  # BUG: the course divides by N
    loss = -np.sum(keep * np.log(probs[rows, labels])) / count
    dflat = probs
    dflat[rows, labels] -= 1.0
    dflat *= keep[:, None] / count
    return loss, dflat.reshape(x.shape)
