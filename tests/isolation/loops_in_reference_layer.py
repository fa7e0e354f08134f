"""A correct declared layer whose reference (the forward the oracles run) loops forever,
swallowing every interrupt."""
from forever import forever

import gradmatrix


def square_reference(xp, x):
    forever()


@gradmatrix.layer(shapes={"x": (3, 4)}, reference=square_reference)
def square_forward(x):
    return x * x, x


def square_backward(dout, cache):
    return 2.0 * cache * dout
