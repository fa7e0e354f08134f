"""Dropout that keeps each unit with probability ``rate`` (the dropped fraction) while
rescaling by 1 / (1 - rate): its output and gradient agree with each other, its kept
fraction does not with the rate."""

import numpy as np


class Layer_Dropout:
    def __init__(self, rate):
        self.rate = rate

    def forward(self, inputs):
        self.binary_mask = np.random.binomial(1, self.rate, size=inputs.shape) / (1 - self.rate)
        self.output = inputs * self.binary_mask

    def backward(self, dvalues):
        self.dinputs = dvalues * self.binary_mask
