"""A correct relu that makes NumPy raise on every floating-point warning, at import."""
import numpy as np
np.seterr(all="raise")

def relu_forward(x):
    return np.maximum(0, x), x

def relu_backward(dout, cache):
    return dout * (cache > 0)
