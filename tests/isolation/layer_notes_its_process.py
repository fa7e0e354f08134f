"""Two correct declared layers whose every function notes the process it runs in (its id,
appended to the file named by $GRADMATRIX_TEST_NOTES): the build, the draws, a
sampler made per call (``Fresh``), the reference the oracles run, the forward the numeric
oracle differentiates and the backward."""
import os

import numpy as np

import gradmatrix


def note(what):
    with open(os.environ["GRADMATRIX_TEST_NOTES"], "a") as notes:
        notes.write(f"{what} {os.getpid()}\n")


def positive(rng, shape):
    note("draw")
    return rng.uniform(0.5, 2.0, size=shape)


def softplus_reference(xp, x):
    note("reference")
    return xp.log(1.0 + xp.exp(x))


@gradmatrix.layer(shapes={"x": gradmatrix.Floats((3, 4), draw=positive)}, reference=softplus_reference)
def softplus_forward(x):
    note("forward")
    return np.log1p(np.exp(x)), x


def softplus_backward(dout, cache):
    note("backward")
    return dout / (1.0 + np.exp(-cache))


class Scale:
    """A sampler made anew for each call (its draw replays from the start)."""

    def __init__(self):
        note("sampler")
        self.value = 3.0


@gradmatrix.layer(shapes={"x": (2, 3)}, fixed={"scale": gradmatrix.Fresh(Scale)})
def scaled_forward(x, scale):
    note("forward")
    return scale.value * x ** 2, (x, scale.value)


def scaled_backward(dout, cache):
    x, value = cache
    return 2.0 * value * x * dout
