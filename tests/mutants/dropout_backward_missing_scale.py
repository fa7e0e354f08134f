"""inverted dropout backward that forgets the 1 / (1 - p) scale: dx = dout * mask, though the forward pass scaled the kept units."""

from gradmatrix.manual import dropout_forward  # noqa: F401


def dropout_backward(dout, cache):
    (keep,) = cache
    mask = (keep != 0).astype(dout.dtype)
    return dout * mask  # should be dout * mask / (1 - p)
