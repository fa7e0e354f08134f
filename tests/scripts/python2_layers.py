import numpy as np


def affine_forward(x, w, b):
    N = x.shape[0]
    out = x.reshape(N, -1).dot(w) + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    x, w, b = cache
    N = x.shape[0]
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(N, -1).T.dot(dout)
    db = np.zeros_like(b)
    for i in xrange(N):
        db += dout[i]
    return dx, dw, db


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    try:
        dx = dout * (cache > 0)
    except ValueError, e:
        print "relu_backward failed:", e
        raise
    return dx


if __name__ == '__main__':
    x = np.random.randn(3, 4)
    print affine_forward(x, np.random.randn(4, 2), np.zeros(2))[0]
