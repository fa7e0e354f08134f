"""Dropout that rescales but never drops a unit: consistent forward and backward, yet no
dropout at the declared rate."""

import numpy as np


class Layer_Dropout:
    def __init__(self, rate):
        self.rate = 1 - rate

    def forward(self, inputs):
        self.binary_mask = np.ones(inputs.shape) / self.rate
        self.output = inputs * self.binary_mask

    def backward(self, dvalues):
        self.dinputs = dvalues * self.binary_mask
