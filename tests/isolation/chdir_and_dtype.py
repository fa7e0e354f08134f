"""A correct relu whose module changes the working directory and NumPy's print options at import."""
import os
import tempfile

import numpy as np

os.chdir(tempfile.gettempdir())
np.set_printoptions(precision=1)


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    return dout * (cache > 0)
