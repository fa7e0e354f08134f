"""A wrong relu (dx ignores the mask) that loosens every tolerance of the judge at import."""
import numpy as np
from gradmatrix.reports import tolerances
for key, value in list(tolerances.TOLERANCES.items()):
    tolerances.TOLERANCES[key] = tolerances.Tolerance(1e9, "loosened by the candidate")

def relu_forward(x):
    return np.maximum(0, x), x

def relu_backward(dout, cache):
    return dout
