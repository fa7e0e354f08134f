"""Mutant: a ThreeLayerConvNet returning gradients for the weights only."""

from .cnn import ThreeLayerConvNet as _Correct


class ThreeLayerConvNet(_Correct):
    def loss(self, X, y=None):
        loss, grads = _Correct.loss(self, X, y)
        return loss, {k: grads[k] for k in ("W1", "W2", "W3")}
