"""A correct declared layer whose reference raises in float32 (a problem of the oracles'
forward, not of the layer's functions)."""
import gradmatrix


def square_reference(xp, x):
    if "32" in str(x.dtype):
        raise ValueError("this reference is written for float64 only")
    return x * x


@gradmatrix.layer(shapes={"x": (3, 4)}, reference=square_reference)
def square_forward(x):
    return x * x, x


def square_backward(dout, cache):
    return 2.0 * cache * dout
