"""Mutant: assignment 1 TwoLayerNet whose L2 penalty leaves out W2 (loss and gradient)."""

import numpy as np

from .neural_net import TwoLayerNet as _Correct


class TwoLayerNet(_Correct):
    def loss(self, X, y=None, reg=0.0):
        W1, W2 = self.params["W1"], self.params["W2"]
        loss, grads = _Correct.loss(self, X, y, reg=0.0)
        loss += reg * np.sum(W1 * W1)  # W2's term forgotten
        grads["W1"] += 2 * reg * W1
        return loss, grads
