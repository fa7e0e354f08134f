import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def sigmoid_grad(s):
    ds = sigmoid(s) * (1 - sigmoid(s))
    return ds
