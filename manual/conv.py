"""2-D convolution and max pooling, NCHW: forward and backward side by side.

Both are vectorized over windows: ``numpy.lib.stride_tricks.sliding_window_view`` gives
every (HH, WW) window of the (padded) input as a view, (N, C, H', W', HH, WW), and a
stride is a slice of that view.  The backward passes loop only over the HH * WW offsets
inside a window (9 for a 3x3 kernel), never over samples or positions.

An input pixel lies in up to HH * WW windows (fewer at the borders, more than one only
where windows overlap), so its gradient is a sum over the windows that read it: the
backward passes accumulate into dx with ``+=``, one window offset at a time.
Computation stays in the input's floating dtype.

The sums over channels and window offsets are BLAS calls (``tensordot``), and BLAS picks
its kernel, and with it the order of the sums, by the memory layout of its operands (and
by the CPU).  So every array the convolution computes with is C-ordered first (no copy
when it already is): a strided, Fortran-ordered or negatively strided argument gives the
operands, the kernel and the bits of its C-contiguous copy.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .validation import as_float_array, check_cache, same_dtype, same_shape


def _check_int(value, name: str, least: int) -> int:
    """Return ``value`` as an int >= ``least``, or raise naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    return int(value)


def _out_size(size: int, window: int, stride: int, pad: int, what: str) -> int:
    """Number of windows along one axis: 1 + (size + 2 pad - window) // stride."""
    if window > size + 2 * pad:
        raise ValueError(f"{what}: a window of {window} does not fit in {size} + 2 * {pad} (padding)")
    return 1 + (size + 2 * pad - window) // stride


def _windows(x: np.ndarray, hh: int, ww: int, stride: int) -> np.ndarray:
    """(N, C, H, W) -> the strided windows, a view (N, C, H', W', hh, ww)."""
    return sliding_window_view(x, (hh, ww), axis=(2, 3))[:, :, ::stride, ::stride]


def _unpack(cache, names: tuple[str, ...], fn: str):
    """Split a cache ``(*arrays, (ints...))`` into checked arrays and its geometry tuple."""
    if not isinstance(cache, tuple) or len(cache) != len(names) + 1:
        got = f"a tuple of length {len(cache)}" if isinstance(cache, tuple) else type(cache).__name__
        raise TypeError(f"cache must be the tuple {(*names, 'geometry')} returned by {fn}, got {got}")
    arrays = check_cache(cache[:-1], names, fn)
    geometry = cache[-1]
    if not isinstance(geometry, tuple) or len(geometry) != 2:
        raise TypeError(f"cache[{len(names)}] (geometry) must be the pair returned by {fn}, got {geometry!r}")
    return arrays, geometry


def conv_forward(x, w, b, stride, pad):
    """2-D convolution (cross-correlation, as in torch and CS231n) with zero padding.

    out[n, f, i, j] = b[f] + sum_{c, p, q} xpad[n, c, i*stride + p, j*stride + q] w[f, c, p, q]

    Rows or columns past the last full window are not read (as in torch); their gradient
    is 0.

    Inputs:
        x: (N, C, H, W) float32/float64.
        w: (F, C, HH, WW) filters, dtype of ``x``.
        b: (F,) biases.
        stride: int >= 1, the step between windows, both axes.
        pad: int >= 0, zeros added on each side of both spatial axes; smaller than the
            filter's height and width (a larger pad only adds windows that read no pixel
            of x, and would have np.pad allocate it, however large).

    Returns:
        out: (N, F, H', W') with H' = 1 + (H + 2 pad - HH) // stride, W' likewise.
        cache: ``(x, w, b, (stride, pad))``.
    """
    x = as_float_array(x, "x", ndim=4)
    w = as_float_array(w, "w", ndim=4)
    b = as_float_array(b, "b", ndim=1)
    same_dtype(x=x, w=w, b=b)
    stride = _check_int(stride, "stride", 1)
    pad = _check_int(pad, "pad", 0)
    _check_conv_shapes(x, w, b, stride, pad)
    # C order (see the module's docstring): np.pad keeps a Fortran-ordered x Fortran, and
    # tensordot hands w to BLAS transposed or not by its layout
    xpad = np.pad(np.ascontiguousarray(x), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = _windows(xpad, w.shape[2], w.shape[3], stride)  # (N, C, H', W', HH, WW)
    out = np.tensordot(windows, np.ascontiguousarray(w), axes=([1, 4, 5], [1, 2, 3]))  # (N, H', W', F)
    out = out.transpose(0, 3, 1, 2) + b[:, None, None]
    return out, (x, w, b, (stride, pad))


def _check_conv_shapes(x, w, b, stride, pad, names=("x", "w", "b"), pad_name="pad"):
    xn, wn, bn = names
    f, c, hh, ww = w.shape
    if x.shape[1] != c:
        raise ValueError(f"{wn} must have shape (F, {x.shape[1]}, HH, WW) to match the channels of {xn} {x.shape}, got {w.shape}")
    same_shape(bn, b, (f,), f"one bias per filter of {wn} {w.shape}")
    if pad >= min(hh, ww):
        raise ValueError(f"{pad_name} must be smaller than the filter height and width of {wn} {w.shape} "
                         f"(else some windows read only padding), got {pad}")
    ho = _out_size(x.shape[2], hh, stride, pad, f"height of {xn} {x.shape} and {wn} {w.shape}")
    wo = _out_size(x.shape[3], ww, stride, pad, f"width of {xn} {x.shape} and {wn} {w.shape}")
    return ho, wo


def conv_backward(dout, cache):
    """Gradients of the convolution with respect to x, w and b.

    Derivation (chain rule through the sum above; windows[n, c, i, j, p, q] is
    xpad[n, c, i*stride + p, j*stride + q]):

    * db[f] = sum_{n, i, j} dout[n, f, i, j]: (F,).  b[f] feeds every output of filter f
      with local gradient 1.
    * dw[f, c, p, q] = sum_{n, i, j} dout[n, f, i, j] windows[n, c, i, j, p, q]:
      (F, C, HH, WW).  Each weight is shared by every window, and its gradient sums over
      them (a tensordot over n, i, j).
    * dxpad[n, c, i*stride + p, j*stride + q] += sum_f dout[n, f, i, j] w[f, c, p, q] for
      each offset (p, q): (N, C, H', W') added into a strided slice of (N, C, H+2pad, W+2pad).
      A pixel read by several windows gets the sum of their contributions (the ``+=``);
      this is the "full convolution of dout with the 180-degree-rotated kernel", written
      without the rotation.  dx is dxpad without the padding.

    Inputs:
        dout: (N, F, H', W') upstream gradient.
        cache: ``(x, w, b, (stride, pad))`` from ``conv_forward``.

    Returns:
        dx: (N, C, H, W).
        dw: (F, C, HH, WW).
        db: (F,).
    """
    (x, w, b), (stride, pad) = _unpack(cache, ("x", "w", "b"), "conv_forward")
    for name, array in (("cache[0] (x)", x), ("cache[1] (w)", w)):
        if array.ndim != 4:
            raise ValueError(f"{name} must have 4 dimension(s), got shape {array.shape}")
    stride = _check_int(stride, "cache[3] (stride)", 1)
    pad = _check_int(pad, "cache[3] (pad)", 0)
    ho, wo = _check_conv_shapes(x, w, b, stride, pad, names=("cache[0] (x)", "cache[1] (w)", "cache[2] (b)"),
                                pad_name="cache[3] (pad)")
    n, _, h, wd = x.shape
    f, c, hh, ww = w.shape
    dout = as_float_array(dout, "dout", ndim=4)
    same_shape("dout", dout, (n, f, ho, wo), "the shape of out in conv_forward")
    same_dtype(dout=dout, x=x)
    # tensordot's BLAS calls sum in an order that depends on their operands' memory layout;
    # C order (no copy when it already is) gives the same gradients for every layout
    dout, x, w = np.ascontiguousarray(dout), np.ascontiguousarray(x), np.ascontiguousarray(w)

    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = _windows(xpad, hh, ww, stride)
    db = dout.sum(axis=(0, 2, 3))
    dw = np.tensordot(dout, windows, axes=([0, 2, 3], [0, 2, 3]))  # (F, C, HH, WW)
    dxpad = np.zeros_like(xpad)
    for p in range(hh):
        for q in range(ww):
            # every window's pixel at offset (p, q): (N, H', W', C) -> (N, C, H', W')
            contribution = np.tensordot(dout, w[:, :, p, q], axes=([1], [0])).transpose(0, 3, 1, 2)
            dxpad[:, :, p:p + stride * ho:stride, q:q + stride * wo:stride] += contribution
    dx = dxpad[:, :, pad:pad + h, pad:pad + wd]
    return dx, dw, db


def max_pool_forward(x, pool, stride):
    """Max pooling over square windows, no padding.

    out[n, c, i, j] = max_{p, q < pool} x[n, c, i*stride + p, j*stride + q]

    Inputs:
        x: (N, C, H, W) float32/float64.
        pool: int >= 1, the window's height and width.
        stride: int >= 1, the step between windows; windows overlap when stride < pool.

    Returns:
        out: (N, C, H', W') with H' = 1 + (H - pool) // stride, W' likewise.
        cache: ``(x, (pool, stride))``.
    """
    x = as_float_array(x, "x", ndim=4)
    pool = _check_int(pool, "pool", 1)
    stride = _check_int(stride, "stride", 1)
    _out_size(x.shape[2], pool, stride, 0, f"height of x {x.shape}")
    _out_size(x.shape[3], pool, stride, 0, f"width of x {x.shape}")
    out = _windows(x, pool, pool, stride).max(axis=(4, 5))
    return out, (x, (pool, stride))


def max_pool_backward(dout, cache):
    """Gradient of max pooling: each window routes its upstream gradient to its maximum.

    Derivation (chain rule): out[n, c, i, j] is one element of its window, the maximum,
    so its local gradient is 1 there and 0 elsewhere in the window ("max routes").  A
    pixel in several overlapping windows gets the sum over the windows in which it is the
    maximum (the ``+=``): (N, C, H', W') added into strided slices of (N, C, H, W).

    At a tie (two or more maxima in one window) max has no derivative.  Convention here:
    the whole gradient goes to the FIRST maximum in row-major order within the window
    (``argmax``), as ``F.max_pool2d`` on the CPU and ``jax.lax.reduce_window`` do; a
    central difference splits it among the tied elements.

    Inputs:
        dout: (N, C, H', W') upstream gradient.
        cache: ``(x, (pool, stride))`` from ``max_pool_forward``.

    Returns:
        dx: (N, C, H, W).
    """
    (x,), (pool, stride) = _unpack(cache, ("x",), "max_pool_forward")
    if x.ndim != 4:
        raise ValueError(f"cache[0] (x) must have 4 dimension(s), got shape {x.shape}")
    pool = _check_int(pool, "cache[1] (pool)", 1)
    stride = _check_int(stride, "cache[1] (stride)", 1)
    n, c, h, w = x.shape
    ho = _out_size(h, pool, stride, 0, f"height of cache[0] (x) {x.shape}")
    wo = _out_size(w, pool, stride, 0, f"width of cache[0] (x) {x.shape}")
    dout = as_float_array(dout, "dout", ndim=4)
    same_shape("dout", dout, (n, c, ho, wo), "the shape of out in max_pool_forward")
    same_dtype(dout=dout, x=x)

    windows = _windows(x, pool, pool, stride).reshape(n, c, ho, wo, pool * pool)
    first_max = windows.argmax(axis=-1)  # row-major offset p * pool + q of the first maximum
    zero = np.zeros((), dtype=dout.dtype)
    dx = np.zeros_like(x)
    for p in range(pool):
        for q in range(pool):
            routed = np.where(first_max == p * pool + q, dout, zero)
            dx[:, :, p:p + stride * ho:stride, q:q + stride * wo:stride] += routed
    return dx
