"""A correct declared layer (softsign) whose module makes NumPy raise on every floating-point
warning, at import."""
import numpy as np

import gradmatrix

np.seterr(all="raise")


def softsign_reference(xp, x):
    return x / (1.0 + xp.abs(x))


@gradmatrix.layer(shapes={"x": (3, 4)}, reference=softsign_reference)
def softsign_forward(x):
    return x / (1.0 + np.abs(x)), x


def softsign_backward(dout, cache):
    return dout / (1.0 + np.abs(cache)) ** 2
