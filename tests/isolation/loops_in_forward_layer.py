"""A declared layer whose forward loops forever, swallowing every interrupt: its build (the
forward run once per declared shape, for the output's shape) never ends."""
from forever import forever

import gradmatrix


@gradmatrix.layer(shapes={"x": (3, 4)})
def stuck_forward(x):
    forever()


def stuck_backward(dout, cache):
    return dout
