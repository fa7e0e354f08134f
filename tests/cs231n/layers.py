"""A correct assignment-2 ``layers.py`` with the course's names and signatures.

Written for gradmatrix's tests, independently of the course's solutions: every function a
student of CS231n writes in assignment 2's ``layers.py``, with the course's arguments
(``bn_param``, ``ln_param``, ``dropout_param``, ``conv_param``, ``pool_param``,
``gn_param``) and return structures (``out, cache`` and a tuple of gradients; losses
``loss, dx``).  Results keep the dtype of the input.  The mutants in ``mutants/`` each
replace one function of this file with a mistake students make.
"""

import numpy as np


def affine_forward(x, w, b):
    """out = x.reshape(N, D) @ w + b.

    Inputs: x (N, d_1, ..., d_k), w (D, M) with D = d_1 * ... * d_k, b (M,).
    Returns: out (N, M), cache.
    """
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w)


def affine_backward(dout, cache):
    """dx = dout @ w.T (reshaped like x), dw = x_rows.T @ dout, db = sum of dout over N."""
    x, w = cache
    rows = x.reshape(x.shape[0], -1)
    dx = (dout @ w.T).reshape(x.shape)
    dw = rows.T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    """out = max(0, x), any shape."""
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """dx = dout where x > 0, else 0."""
    x = cache
    return dout * (x > 0)


def _normalize_rows(x, eps):
    """Standardize each row of x (R, S) over its S entries: (xhat, inverse std (R, 1))."""
    centered = x - x.mean(axis=1, keepdims=True)
    inv_std = 1.0 / np.sqrt((centered ** 2).mean(axis=1, keepdims=True) + eps)
    return centered * inv_std, inv_std


def _normalize_rows_backward(dxhat, xhat, inv_std):
    """Backward of ``_normalize_rows``: with m entries per row,
    dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), row by row."""
    return inv_std * (dxhat - dxhat.mean(axis=1, keepdims=True)
                      - xhat * (dxhat * xhat).mean(axis=1, keepdims=True))


def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch norm: each column of x (N, D) standardized over the batch; gamma, beta (D,).

    Training mode uses the batch's mean and biased variance and updates the running
    averages in bn_param; test mode uses the running averages.
    """
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    n, d = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(d, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(d, dtype=x.dtype))
    if mode == "train":
        xhat_t, inv_std_t = _normalize_rows(x.T, eps)  # columns as rows
        xhat = xhat_t.T
        running_mean = momentum * running_mean + (1 - momentum) * x.mean(axis=0)
        running_var = momentum * running_var + (1 - momentum) * x.var(axis=0)
        cache = (xhat, inv_std_t.T, gamma)
    elif mode == "test":
        xhat = (x - running_mean) / np.sqrt(running_var + eps)
        cache = None
    else:
        raise ValueError(f"invalid batchnorm mode {mode!r}")
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return gamma * xhat + beta, cache


def batchnorm_backward(dout, cache):
    """Step by step through the graph: out = gamma * xhat + beta, xhat = (x - mu) * inv_std.

    dbeta = sum dout, dgamma = sum dout * xhat (over N); dxhat = dout * gamma; then the
    centering and scaling branches, each of which sees x, add up in dx.
    """
    xhat, inv_std, gamma = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    centered = xhat / inv_std
    dinv_std = (dxhat * centered).sum(axis=0)
    dvar = dinv_std * -0.5 * inv_std ** 3
    dcentered = dxhat * inv_std
    dcentered += dvar * 2.0 * centered / n  # var = mean(centered^2)
    dx = dcentered - dcentered.mean(axis=0)  # centered = x - mean(x)
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    """The simplified batch norm backward: dx from the closed form in one line."""
    xhat, inv_std, gamma = cache
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dx = _normalize_rows_backward((dout * gamma).T, xhat.T, inv_std.T).T
    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, ln_param):
    """Layer norm: each row of x (N, D) standardized over its D features; gamma, beta (D,)."""
    eps = ln_param.get("eps", 1e-5)
    xhat, inv_std = _normalize_rows(x, eps)
    return gamma * xhat + beta, (xhat, inv_std, gamma)


def layernorm_backward(dout, cache):
    """dgamma, dbeta sum over the batch; dx through each row's own statistics."""
    xhat, inv_std, gamma = cache
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dx = _normalize_rows_backward(dout * gamma, xhat, inv_std)
    return dx, dgamma, dbeta


def dropout_forward(x, dropout_param):
    """Inverted dropout: in training mode each unit is kept with probability p and scaled
    by 1/p, so that the expected output is x; in test mode out = x."""
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])
    mask = None
    if mode == "train":
        mask = ((np.random.rand(*x.shape) < p) / p).astype(x.dtype)
        out = x * mask
    elif mode == "test":
        out = x
    else:
        raise ValueError(f"invalid dropout mode {mode!r}")
    return out.astype(x.dtype, copy=False), (dropout_param, mask)


def dropout_backward(dout, cache):
    """dx = dout * mask in training mode (the mask carries the 1/p), dout in test mode."""
    dropout_param, mask = cache
    if dropout_param["mode"] == "train":
        return dout * mask
    return dout


def conv_forward_naive(x, w, b, conv_param):
    """Cross-correlation of x (N, C, H, W) with filters w (F, C, HH, WW), bias b (F,).

    conv_param: 'stride', 'pad' (zeros on every side).  Out (N, F, H', W') with
    H' = 1 + (H + 2 pad - HH) // stride, W' likewise.
    """
    stride, pad = conv_param["stride"], conv_param["pad"]
    n, c, h, width = x.shape
    f, _, hh, ww = w.shape
    h_out = 1 + (h + 2 * pad - hh) // stride
    w_out = 1 + (width + 2 * pad - ww) // stride
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((n, f, h_out, w_out), dtype=np.result_type(x, w, b))
    for i in range(h_out):
        for j in range(w_out):
            window = padded[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww]  # (N, C, HH, WW)
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    """Each output (i, j) read a window of the padded x: the window gets dout[:, :, i, j]
    times the filters (summed over F), the filters get it times the window (summed over N);
    overlapping windows add up.  db sums dout over N, H', W'."""
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, hh, ww = w.shape
    h, width = x.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dpadded = np.zeros_like(padded)
    dw = np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows, cols = slice(i * stride, i * stride + hh), slice(j * stride, j * stride + ww)
            g = dout[:, :, i, j]  # (N, F)
            dpadded[:, :, rows, cols] += np.tensordot(g, w, axes=(1, 0))
            dw += np.tensordot(g, padded[:, :, rows, cols], axes=(0, 0))
    dx = dpadded[:, :, pad:pad + h, pad:pad + width]
    db = dout.sum(axis=(0, 2, 3))
    return dx, dw, db


def max_pool_forward_naive(x, pool_param):
    """Max over pool_height x pool_width windows of x (N, C, H, W) at the given stride."""
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    n, c, h, width = x.shape
    h_out = 1 + (h - ph) // stride
    w_out = 1 + (width - pw) // stride
    out = np.zeros((n, c, h_out, w_out), dtype=x.dtype)
    for i in range(h_out):
        for j in range(w_out):
            out[:, :, i, j] = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw].max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    """Each window routes its upstream gradient to its (first) maximum; a pixel that is the
    maximum of several overlapping windows collects all of them (+=)."""
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    for n in range(x.shape[0]):
        for ch in range(x.shape[1]):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    window = x[n, ch, i * stride:i * stride + ph, j * stride:j * stride + pw]
                    a, b = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, ch, i * stride + a, j * stride + b] += dout[n, ch, i, j]
    return dx


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Batch norm of each channel of x (N, C, H, W) over N, H and W; gamma, beta (C,)."""
    n, c, h, w = x.shape
    columns = x.transpose(0, 2, 3, 1).reshape(-1, c)
    out, cache = batchnorm_forward(columns, gamma, beta, bn_param)
    return out.reshape(n, h, w, c).transpose(0, 3, 1, 2), cache


def spatial_batchnorm_backward(dout, cache):
    """Batch norm's backward on the (N H W, C) view of dout."""
    n, c, h, w = dout.shape
    dx, dgamma, dbeta = batchnorm_backward(dout.transpose(0, 2, 3, 1).reshape(-1, c), cache)
    return dx.reshape(n, h, w, c).transpose(0, 3, 1, 2), dgamma, dbeta


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    """Group norm: x (N, C, H, W) split into G groups of C // G contiguous channels, each
    standardized over its channels, H and W; gamma, beta (1, C, 1, 1)."""
    eps = gn_param.get("eps", 1e-5)
    n, c, h, w = x.shape
    xhat, inv_std = _normalize_rows(x.reshape(n * G, -1), eps)
    xhat = xhat.reshape(n, c, h, w)
    return gamma * xhat + beta, (xhat, inv_std, gamma, G)


def spatial_groupnorm_backward(dout, cache):
    """dgamma, dbeta sum over N, H, W (shape (1, C, 1, 1)); dx through each group's statistics."""
    xhat, inv_std, gamma, G = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)
    dgamma = (dout * xhat).sum(axis=(0, 2, 3), keepdims=True)
    dxhat = (dout * gamma).reshape(n * G, -1)
    dx = _normalize_rows_backward(dxhat, xhat.reshape(n * G, -1), inv_std)
    return dx.reshape(dout.shape), dgamma, dbeta


def svm_loss(x, y):
    """Mean multiclass hinge loss of scores x (N, C), labels y (N,), and its gradient dx.

    loss = sum_{j != y_i} max(0, x_ij - x_iy + 1) / N; each positive margin adds 1/N to
    dx_ij and takes 1/N from dx_iy.
    """
    n = x.shape[0]
    rows = np.arange(n)
    margins = np.maximum(0, x - x[rows, y][:, None] + 1)
    margins[rows, y] = 0
    loss = margins.sum() / n
    positive = (margins > 0).astype(x.dtype)
    positive[rows, y] -= positive.sum(axis=1)
    return np.asarray(loss, dtype=x.dtype), positive / n


def softmax_loss(x, y):
    """Mean cross-entropy of the softmax of scores x (N, C) with labels y (N,), and dx."""
    n = x.shape[0]
    rows = np.arange(n)
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[rows, y].sum() / n
    dx = np.exp(log_probs)
    dx[rows, y] -= 1
    return np.asarray(loss, dtype=x.dtype), dx / n
