"""CS231n assignment 1's linear classifier losses, as students write them.

``softmax.py`` and ``linear_svm.py`` each hold a naive (loops) and a vectorized version of
one loss with the course's signature ``loss, dW = f(W, X, y, reg)``: W (D, C) weights,
X (N, D) data, y (N,) labels in [0, C), reg the L2 strength.  Both versions are ops of
their own, so a module providing both gets both checked.

The L2 term is a convention of the course's years: ``0.5 * reg * np.sum(W * W)`` (gradient
``reg * W``) in the older starter code, ``reg * np.sum(W * W)`` (gradient ``2 * reg * W``)
in the newer.  The reference uses ``reg * sum(W^2)``; the contract's ``L2Penalty`` accepts a
term that is exactly the other convention and reports it as such (``oracles.contract``).

The ops are this module's declarations; ``oracles.catalog`` joins them with the other families'.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from array_api_compat import device as device_of

from gradmatrix.oracles.contract import L2Penalty, Loss
from gradmatrix.oracles.declared import Floats, Integers, Kinks, declare
from gradmatrix.oracles.draws import KINK_MARGIN, scaled_weights


def _one_hot(xp, y, classes: int, dtype):
    """(N,) labels -> (N, C) one-hot rows in ``dtype`` (array API: no fancy indexing)."""
    columns = xp.arange(classes, device=device_of(y))
    return xp.astype(xp.reshape(y, (-1, 1)) == xp.reshape(columns, (1, -1)), dtype)


def _l2(xp, a, dims):
    """The reference's L2 term, reg * sum(W^2)."""
    return dims["reg"] * xp.sum(a["W"] * a["W"])


def softmax_classifier(xp, a: dict, dims: Mapping):
    """Mean softmax cross-entropy of the scores X W, plus reg * sum(W^2).

    loss = (1/N) sum_i [log sum_j exp(s_ij) - s_i,y_i] + reg sum(W^2), with s = X W (N, C),
    the row maximum subtracted first so that exp cannot overflow.
    """
    scores = xp.matmul(a["X"], a["W"])
    shifted = scores - xp.max(scores, axis=1, keepdims=True)
    log_norm = xp.log(xp.sum(xp.exp(shifted), axis=1))
    picked = xp.sum(shifted * _one_hot(xp, a["y"], scores.shape[1], scores.dtype), axis=1)
    return xp.mean(log_norm - picked) + _l2(xp, a, dims)


def svm_classifier(xp, a: dict, dims: Mapping):
    """Mean multiclass hinge loss (margin delta = 1) of the scores X W, plus reg * sum(W^2).

    loss = (1/N) sum_i sum_{j != y_i} max(0, s_ij - s_i,y_i + 1) + reg sum(W^2).
    """
    scores = xp.matmul(a["X"], a["W"])
    onehot = _one_hot(xp, a["y"], scores.shape[1], scores.dtype)
    correct = xp.sum(scores * onehot, axis=1, keepdims=True)
    margins = scores - correct + 1.0
    hinge = xp.where(margins > 0, margins, xp.zeros_like(margins)) * (1.0 - onehot)
    return xp.sum(hinge) / scores.shape[0] + _l2(xp, a, dims)


def _margins_off_kinks(inputs: dict, dims: Mapping, rng: np.random.Generator) -> dict:
    """Redraw rows of X until no hinge margin s_ij - s_i,y_i + 1 (j != y_i) lies within
    KINK_MARGIN of 0, so every oracle differentiates the same linear piece."""
    for _ in range(1000):
        scores = inputs["X"] @ inputs["W"]
        rows = np.arange(scores.shape[0])
        margins = scores - scores[rows, inputs["y"]][:, None] + 1.0
        margins[rows, inputs["y"]] = 1.0  # the label's own column is no hinge
        close = np.any(np.abs(margins) < KINK_MARGIN, axis=1)
        if not close.any():
            return inputs
        inputs["X"][close] = rng.standard_normal((int(close.sum()), inputs["X"].shape[1]))
    raise RuntimeError("could not draw SVM inputs away from the hinge")


_SHAPES = {
    "W": Floats(("D", "C"), scaled_weights),
    "X": ("N", "D"),
    "y": Integers(("N",), 0, "C"),  # labels in [0, C)
}
# N = 1 and N = 32 (a missing 1/N; a sum over only part of a batch), reg > 0 in both (reg
# left out of the loss or the gradient), D != C (a transposed dW has the wrong shape)
_MATRICES = {
    "default": ({"N": 1, "D": 5, "C": 3, "reg": 0.1}, {"N": 32, "D": 6, "C": 4, "reg": 0.25}),
    "full": ({"N": 1, "D": 5, "C": 3, "reg": 0.1}, {"N": 8, "D": 6, "C": 4, "reg": 0.25},
             {"N": 16, "D": 10, "C": 10, "reg": 0.0}, {"N": 32, "D": 20, "C": 10, "reg": 2.5e-2}),
}
_ARGS = ("W", "X", "y", "reg")  # the course's order: f(W, X, y, reg)
_PENALTY = L2Penalty("reg", ("W",))


def _classifier(name: str, doc: str, reference, kinks: Kinks | None = None):
    """One loss ``loss, dW = name(W, X, y, reg)``; its L2 term's factor is a convention
    (``L2Penalty``), so its contract is given whole."""
    return declare(name, None, _SHAPES, matrices=_MATRICES, reference=reference, wrt=("W",), output="loss",
                   second_order=False,
                   contracts=(Loss(name, _ARGS, ("W",), penalty=_PENALTY),), kinks=kinks, name=name,
                   doc=doc + "; L2 term reg * sum(W^2) (0.5 * reg * sum(W^2) reported as a convention)")


_HINGE = Kinks(avoid=_margins_off_kinks)
softmax_loss_naive = _classifier("softmax_loss_naive", "softmax classifier loss f(W, X, y, reg), loops",
                                 softmax_classifier)
softmax_loss_vectorized = _classifier("softmax_loss_vectorized", "softmax classifier loss f(W, X, y, reg), vectorized",
                                      softmax_classifier)
svm_loss_naive = _classifier("svm_loss_naive", "multiclass SVM loss f(W, X, y, reg), loops", svm_classifier, _HINGE)
svm_loss_vectorized = _classifier("svm_loss_vectorized", "multiclass SVM loss f(W, X, y, reg), vectorized",
                                  svm_classifier, _HINGE)
