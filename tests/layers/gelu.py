"""GELU with the tanh approximation: a layer gradmatrix's catalog does not have.

``gradmatrix check tests/layers/gelu.py`` checks the declared layer; the tests also check
``gelu_backward_wrong_sign`` (a wrong sign in one term of the product rule).
"""

import math

import numpy as np

import gradmatrix

C = math.sqrt(2.0 / math.pi)
A = 0.044715


def gelu_reference(xp, x):
    """The forward once more, against the Python array API (torch, JAX and NumPy run it)."""
    return 0.5 * x * (1.0 + xp.tanh(C * (x + A * x ** 3)))


@gradmatrix.layer(shapes={"x": (4, 5)}, reference=gelu_reference)
def gelu_forward(x):
    """GELU, tanh approximation: 0.5 x (1 + tanh(c (x + a x^3))).

    Inputs:
    - x: (N, D)
    Returns (out, cache), out (N, D).
    """
    t = np.tanh(C * (x + A * x ** 3))
    return 0.5 * x * (1.0 + t), (x, t)


def gelu_backward(dout, cache):
    """dx = dout * (0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2)): the product rule on x * (1 + t)."""
    x, t = cache
    du = C * (1.0 + 3.0 * A * x ** 2)  # d(c (x + a x^3)) / dx
    return dout * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t ** 2) * du)


def gelu_backward_wrong_sign(dout, cache):
    """A wrong sign in one term: the tanh branch of the product rule subtracted."""
    x, t = cache
    du = C * (1.0 + 3.0 * A * x ** 2)
    return dout * (0.5 * (1.0 + t) - 0.5 * x * (1.0 - t ** 2) * du)
