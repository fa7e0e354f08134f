"""add gate splitting the upstream gradient between its inputs (dx = dy = dout / 2) instead of distributing it whole to each."""

from gradmatrix.manual import add_forward  # noqa: F401


def add_backward(dout, cache):
    return dout / 2, dout / 2  # should be dout, dout
