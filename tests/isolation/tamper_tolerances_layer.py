"""A wrong declared layer (the backward drops the 2 of x**2) whose module loosens every
tolerance of the judge at import."""
import numpy as np

import gradmatrix
from gradmatrix.reports import tolerances

for key, value in list(tolerances.TOLERANCES.items()):
    tolerances.TOLERANCES[key] = tolerances.Tolerance(1e9, "loosened by the candidate")


@gradmatrix.layer(shapes={"x": (3, 4)})
def square_forward(x):
    return x ** 2, x


def square_backward(dout, cache):
    return dout * cache
