"""db summed over the wrong axis (over the columns, one value per sample)."""

from gradmatrix.manual import affine_forward  # noqa: F401


def affine_backward(dout, cache):
    x, w, b = cache
    rows = x.reshape(x.shape[0], -1)
    return (dout @ w.T).reshape(x.shape), rows.T @ dout, dout.sum(axis=1)
