"""A correct declared layer whose module changes the working directory and NumPy's print
options at import."""
import os
import tempfile

import numpy as np

import gradmatrix

os.chdir(tempfile.gettempdir())
np.set_printoptions(precision=1)


@gradmatrix.layer(shapes={"x": (3, 4)})
def square_forward(x):
    return x * x, x


def square_backward(dout, cache):
    return 2.0 * cache * dout
