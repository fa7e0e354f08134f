"""A relu whose backward loops forever, inside a bare except that swallows everything."""
import numpy as np

def relu_forward(x):
    return np.maximum(0, x), x

def relu_backward(dout, cache):
    while True:
        try:
            while True:
                pass
        except:  # noqa: E722
            pass
