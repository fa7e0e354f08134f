"""Assignment 1's TwoLayerNet, written independently for gradmatrix's tests (penalty reg * sum W^2)."""

import numpy as np


class TwoLayerNet(object):
    """input - fully connected - ReLU - fully connected - softmax."""

    def __init__(self, input_size, hidden_size, output_size, std=1e-4):
        self.params = {
            "W1": std * np.random.randn(input_size, hidden_size), "b1": np.zeros(hidden_size),
            "W2": std * np.random.randn(hidden_size, output_size), "b2": np.zeros(output_size),
        }

    def loss(self, X, y=None, reg=0.0):
        W1, b1, W2, b2 = (self.params[k] for k in ("W1", "b1", "W2", "b2"))
        N = X.shape[0]
        z1 = X.dot(W1) + b1
        h = np.maximum(z1, 0)
        scores = h.dot(W2) + b2
        if y is None:
            return scores
        shifted = scores - scores.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=1, keepdims=True)
        loss = -np.log(probs[np.arange(N), y]).mean() + reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
        dscores = probs
        dscores[np.arange(N), y] -= 1
        dscores /= N
        grads = {"W2": h.T.dot(dscores) + 2 * reg * W2, "b2": dscores.sum(axis=0)}
        dz1 = dscores.dot(W2.T) * (z1 > 0)
        grads["W1"] = X.T.dot(dz1) + 2 * reg * W1
        grads["b1"] = dz1.sum(axis=0)
        return loss, grads
