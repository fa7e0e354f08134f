"""Mutant: assignment 2 TwoLayerNet with penalty 0.5 * reg * sum W^2 but gradient 2 * reg * W
(mixing the two conventions: no valid convention)."""

import numpy as np

from .fc_net import TwoLayerNet as _Correct


class TwoLayerNet(_Correct):
    def loss(self, X, y=None):
        reg, self.reg = self.reg, 0.0
        loss, grads = _Correct.loss(self, X, y)
        self.reg = reg
        for k in ("W1", "W2"):
            loss += 0.5 * reg * np.sum(self.params[k] ** 2)
            grads[k] += 2 * reg * self.params[k]
        return loss, grads
