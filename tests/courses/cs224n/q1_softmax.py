import numpy as np


def softmax(x):
    """Compute the softmax function for each row of the input x."""
    orig_shape = x.shape

    if len(x.shape) > 1:
        # Matrix
        x = x - np.max(x, axis=1, keepdims=True)
        x = np.exp(x)
        x = x / np.sum(x, axis=1, keepdims=True)
    else:
        # Vector
        x = x - np.max(x)
        x = np.exp(x) / np.sum(np.exp(x))

    assert x.shape == orig_shape
    return x
