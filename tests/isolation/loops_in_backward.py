"""A relu whose backward loops forever on the cases of more than 8 rows, swallowing every interrupt."""
import numpy as np


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    if cache.shape[0] > 8:
        while True:
            try:
                while True:
                    pass
            except BaseException:  # the KeyboardInterrupt raised for SIGTERM, a time limit raised as an exception
                pass
    return dout * (cache > 0)
