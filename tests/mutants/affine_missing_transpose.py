"""dw = dout.T @ x, transposed: (M, D) where (D, M) is due; same shape only when D = M."""

from gradmatrix.manual import relu_backward, relu_forward, softmax_loss  # noqa: F401  (correct ops, checked too)
from gradmatrix.manual import affine_forward  # noqa: F401


def affine_backward(dout, cache):
    x, w, b = cache
    rows = x.reshape(x.shape[0], -1)
    dx = (dout @ w.T).reshape(x.shape)
    dw = dout.T @ rows  # should be rows.T @ dout
    return dx, dw, dout.sum(axis=0)
