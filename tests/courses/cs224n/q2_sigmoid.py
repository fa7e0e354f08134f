import numpy as np


def sigmoid(x):
    s = 1.0 / (1.0 + np.exp(-x))
    return s


def sigmoid_grad(s):
    """Compute the gradient for the sigmoid function here. Note that
    for this implementation, the input s should be the sigmoid
    function value of your original input x."""
    ds = s * (1 - s)
    return ds
