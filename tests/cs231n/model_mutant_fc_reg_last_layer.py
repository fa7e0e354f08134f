"""Mutant: a FullyConnectedNet whose L2 penalty leaves out the last layer's weights."""

import numpy as np

from .fc_net import FullyConnectedNet as _Correct


class FullyConnectedNet(_Correct):
    def loss(self, X, y=None):
        reg, self.reg = self.reg, 0.0
        loss, grads = _Correct.loss(self, X, y)
        self.reg = reg
        for i in range(1, self.num_layers):  # the last layer, W{num_layers}, forgotten
            W = self.params[f"W{i}"]
            loss += 0.5 * reg * np.sum(W * W)
            grads[f"W{i}"] += reg * W
        return loss, grads
