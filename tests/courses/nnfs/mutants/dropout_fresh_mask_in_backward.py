"""Dropout whose backward draws a new mask instead of using the forward's."""

import numpy as np


class Layer_Dropout:
    def __init__(self, rate):
        self.rate = 1 - rate

    def forward(self, inputs):
        self.binary_mask = np.random.binomial(1, self.rate, size=inputs.shape) / self.rate
        self.output = inputs * self.binary_mask

    def backward(self, dvalues):
        self.dinputs = dvalues * np.random.binomial(1, self.rate, size=dvalues.shape) / self.rate
