"""Softmax cross-entropy loss, forward and backward in one function (CS231n style)."""

from __future__ import annotations

import numpy as np

from .validation import as_float_array, as_labels


def softmax_loss(scores, y):
    """Mean softmax cross-entropy over the rows and its gradient with respect to the scores.

    Forward, stable for any finite scores: shift each row by its maximum (softmax is
    invariant to a constant per row), then

        log p[i, k] = shifted[i, k] - log(sum_j exp(shifted[i, j]))
        loss = -(1/N) sum_i log p[i, y_i]

    The largest shifted score is 0, so ``exp`` never overflows and the sum is at least 1,
    so the log never sees 0: float32 scores of magnitude 1e4 give a finite loss.

    Backward: for one row, dL_i/ds[i, k] = p[i, k] - 1(k = y_i) (the softmax Jacobian
    contracted with the one-hot target); the mean over N rows scales each row by 1/N.

    Inputs:
        scores: (N, C) float32/float64, unnormalised class scores.
        y: (N,) integer labels, 0 <= y[i] < C.

    Returns:
        loss: scalar of the dtype of ``scores``.
        dscores: (N, C), gradient of ``loss`` with respect to ``scores``.
    """
    scores = as_float_array(scores, "scores", ndim=2)
    n, c = scores.shape
    y = as_labels(y, n, c)
    rows = np.arange(n)
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_norm
    loss = -log_probs[rows, y].sum() / scores.dtype.type(n)

    # dL/dscores = (softmax - onehot(y)) / N, one row per sample
    dscores = np.exp(log_probs)
    dscores[rows, y] -= 1
    dscores /= n
    return scores.dtype.type(loss), dscores
