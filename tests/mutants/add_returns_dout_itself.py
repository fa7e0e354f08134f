"""add gate returning the upstream gradient object itself for both inputs (dx is dy is dout), aliased instead of copied."""

from gradmatrix.manual import add_forward  # noqa: F401


def add_backward(dout, cache):
    return dout, dout  # right values, but one array three times: a caller's dx += ... changes dy and dout
