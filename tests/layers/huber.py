"""A Huber loss with a ``delta`` parameter, loss-style ``(loss, grads)``: a loss gradmatrix's
catalog does not have.

``gradmatrix check tests/layers/huber.py`` checks the declared loss; the tests also check
``huber_loss_missing_1_over_n`` (the gradient of a mean without the 1/N).
"""

import numpy as np

import gradmatrix


def huber_reference(xp, x, y, delta):
    """The loss once more, against the Python array API (torch, JAX and NumPy run it)."""
    r = xp.abs(x - y)
    return xp.sum(xp.where(r <= delta, 0.5 * r ** 2, delta * (r - 0.5 * delta))) / x.shape[0]


@gradmatrix.layer(shapes={"x": (4, 3), "y": (4, 3)}, params={"delta": 1.0}, wrt=["x"], reference=huber_reference)
def huber_loss(x, y, delta=1.0):
    """Huber loss of predictions x against targets y, summed over features, mean over the N rows.

    Inputs:
    - x: (N, D) predictions
    - y: (N, D) targets (no gradient)
    Returns (loss, dx), dx (N, D).
    """
    n = x.shape[0]
    r = x - y
    small = np.abs(r) <= delta
    loss = np.sum(np.where(small, 0.5 * r ** 2, delta * (np.abs(r) - 0.5 * delta))) / n
    dx = np.where(small, r, delta * np.sign(r)) / n  # quadratic inside delta, linear outside
    return loss, dx


def huber_loss_missing_1_over_n(x, y, delta=1.0):
    """The loss is a mean over the rows, but its gradient misses the 1/N."""
    n = x.shape[0]
    r = x - y
    small = np.abs(r) <= delta
    loss = np.sum(np.where(small, 0.5 * r ** 2, delta * (np.abs(r) - 0.5 * delta))) / n
    return loss, np.where(small, r, delta * np.sign(r))
