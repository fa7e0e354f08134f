"""A correct dropout layer that draws its mask otherwise than the book (uniform draws
compared with the keep probability, and its own generator): it must pass."""

import numpy as np


class Layer_Dropout:
    def __init__(self, rate):
        self.rate = rate
        self.rng = np.random.default_rng(7)

    def forward(self, inputs, training=True):
        keep = 1.0 - self.rate
        self.mask = (self.rng.random(inputs.shape) < keep) / keep
        self.output = inputs * self.mask

    def backward(self, dvalues):
        self.dinputs = dvalues * self.mask
