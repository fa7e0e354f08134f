"""Bad-input tables for the ops added to ``manual`` after the first six functions.

sigmoid/tanh, the add/multiply/max gates, score_net, conv, max_pool, batchnorm/layernorm
and dropout, one table per public function (forward and backward), built with the row
helpers of ``bad_input_helpers.py`` and run by ``test_bad_inputs.py``.  The decisions they
encode beyond ``manual/validation.py``:

* every array argument refuses what the first six functions refuse (not an array, a dtype
  other than float32/float64, mixed float32/float64, an empty axis, NaN or Inf);
* integers (stride, pad, pool) must be ``numbers.Integral`` and not bool: a float ``1.0``,
  a 0-d array or a string is a TypeError, a value out of range a ValueError; a conv ``pad``
  must be smaller than the filter (a window made of padding only is refused);
* ``p`` and ``eps`` must be real numbers (not bool, not arrays) in range, and must stay in
  range in the dtype the computation runs in (``p = 1 - 1e-9`` is 1 in float32);
* ``ds`` of score_net is a Python int or float, or a 0-d array / NumPy scalar of the
  cache's dtype;
* a cache must be the forward's tuple, and hold what that forward can produce: a sigmoid
  output in [0, 1], a tanh output in [-1, 1], a dropout scale of 0 and one 1 / (1 - p),
  a positive std.

``OPS_TABLES`` maps each function's name to (function, rows); ``OPS_GOOD_CALLS`` and
``OPS_ARG_NAMES`` extend the good-input variants, and ``OPS_GOOD_EXTRA`` holds good calls
with non-array arguments given as NumPy or Python scalars.
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from gradmatrix import manual
from bad_input_helpers import (
    DTYPE_MISMATCH,
    Arg,
    cache_rows,
    common_cache_cases,
    dtype_rows,
    empty_rows,
    int_list_rows,
    mixed_rows,
    ndim_rows,
    nonfinite_rows,
    not_array_rows,
    row,
    rx,
    same_dtype_call,
    shape_rows,
    value_rows,
    with_nonfinite,
)

FEW_DTYPES = [np.int64, np.bool_, np.longdouble, np.complex128]
RNG = np.random.default_rng(20240301)


def _mixed(listed):
    return re.escape(DTYPE_MISMATCH) + listed


def int_param_cases(name, least, too_small):
    """An integer parameter (stride, pad, pool) that is not an int >= ``least``."""
    n = re.escape(name)
    return [
        ("too-small", too_small, ValueError, rf"^{n} must be an integer >= {least}, got {too_small}"),
        ("minus-5", -5, ValueError, rf"^{n} must be an integer >= {least}, got -5"),
        ("np-too-small", np.int64(too_small), ValueError, rf"^{n} must be an integer >= {least}, got "),
        ("float", 1.0, TypeError, rf"^{n} must be an integer, got float 1\.0"),
        ("np-float", np.float64(2.0), TypeError, rf"^{n} must be an integer, got float64"),
        ("str", "1", TypeError, rf"^{n} must be an integer, got str"),
        ("None", None, TypeError, rf"^{n} must be an integer, got NoneType"),
        ("bool", True, TypeError, rf"^{n} must be an integer, got bool"),
        ("np-bool", np.bool_(True), TypeError, rf"^{n} must be an integer, got bool"),
        ("array-0d", np.array(1), TypeError, rf"^{n} must be an integer, got ndarray"),
        ("list", [1], TypeError, rf"^{n} must be an integer, got list"),
        ("complex", 1 + 0j, TypeError, rf"^{n} must be an integer, got complex"),
    ]


# ===================================================================== sigmoid and tanh

X_ACT = RNG.standard_normal((2, 3))
DOUT_ACT = RNG.standard_normal((2, 3))
RELU_CACHE = manual.relu_forward(X_ACT)[1]


def unary_forward_rows(fn):
    """``fn(x)``, elementwise on any shape with at least one element (sigmoid, tanh)."""
    base = ((X_ACT,), {})
    x = Arg(0, "x", X_ACT, "x")
    return [
        *not_array_rows(fn, base, x),
        *dtype_rows(fn, base, x),
        *int_list_rows(fn, base, x),
        *ndim_rows(fn, base, x, [()], "at least 1"),
        row(f"{fn}-x-ndim-python-float", (1.0,), ValueError, r"^x must have at least 1 dimension\(s\), got shape \(\)"),
        row(f"{fn}-x-ndim-np-float32", (np.float32(1.0),), ValueError, r"^x must have at least 1 dimension\(s\), got shape \(\)"),
        *empty_rows(fn, base, x, [(0,), (0, 3), (2, 0), (2, 0, 3)]),
        row(f"{fn}-x-empty-list", ([],), ValueError, r"^x must not be empty, got shape \(0,\)"),
        *nonfinite_rows(fn, base, x),
        *[row(f"{fn}-x-{vid}", (v,), TypeError, rf"^x must have a float dtype \(float64, float32, float16, bfloat16\), got {dt}") for vid, v, dt in [
            ("set", {1.0, 2.0}, "object"), ("range", range(1, 3), "int64"),
            ("list-with-None", [[1.0, None]], "object"), ("list-of-complex", [1.0, 2j], "complex128"),
            ("list-of-bool", [True, False], "bool"),
        ]],
        row(f"{fn}-x-nan-in-list", ([[1.0, float("nan")]],), ValueError, r"^x must be finite, found nan at index \(0, 1\)"),
    ]


def unary_backward_rows(fn, forward, lo):
    """``fn(dout, (out,))`` for sigmoid (out in [0, 1]) and tanh (out in [-1, 1])."""
    out, cache = forward(X_ACT)
    base = ((DOUT_ACT, cache), {})
    dout = Arg(0, "dout", DOUT_ACT, "dout")
    want = rf"^dout must have shape {rx(X_ACT.shape)} \(the shape of out in {forward.__name__}\), got "
    c0 = r"^cache\[0\] \(out\) "
    out_of_range = rf"must hold {forward.__name__} outputs in \[{lo}, 1\], found "
    return [
        *not_array_rows(fn, base, dout),
        *dtype_rows(fn, base, dout),
        *int_list_rows(fn, base, dout),
        *shape_rows(fn, base, dout, [(s, want + rx(s)) for s in [(3, 2), (2, 3, 1), (1, 2, 3), (6,), (2, 1), (3,), ()]]),
        *empty_rows(fn, base, dout, [(0, 3), (2, 0)]),
        *nonfinite_rows(fn, base, dout),
        *mixed_rows(fn, base, [[dout]], ["dout: float32, out: float64"]),
        row(f"{fn}-mixed-f64-dout-f32-out", (DOUT_ACT, forward(X_ACT.astype(np.float32))[1]), TypeError,
            _mixed("dout: float64, out: float32")),
        *cache_rows(fn, base, 1, [
            *common_cache_cases(cache, manual.affine_forward(X_ACT, np.ones((3, 2)), np.ones(2))[1],
                                forward(X_ACT), ("out",), forward.__name__),
            ("entry-0d", (np.array(0.5),), ValueError, c0 + r"must have at least 1 dimension\(s\), got shape \(\)"),
            # the input instead of the output (a relu cache): a silently wrong gradient
            ("relu-cache-x", RELU_CACHE, ValueError, c0 + out_of_range),
            ("out-above-1", (np.full((2, 3), 1.5),), ValueError, c0 + out_of_range + r"1\.5 at index \(0, 0\)"),
            ("out-below", (with_nonfinite(out, (1, 2), -2.0),), ValueError, c0 + out_of_range + r"-2\.0 at index \(1, 2\)"),
        ], ("out",), forward.__name__),
    ]


SIGMOID_FORWARD_BAD = unary_forward_rows("sigmoid_forward")
SIGMOID_BACKWARD_BAD = unary_backward_rows("sigmoid_backward", manual.sigmoid_forward, 0)
TANH_FORWARD_BAD = unary_forward_rows("tanh_forward")
TANH_BACKWARD_BAD = unary_backward_rows("tanh_backward", manual.tanh_forward, -1)

# ================================================================ add, multiply, max gates

X_GATE = RNG.standard_normal((2, 3))
Y_GATE = RNG.standard_normal((2, 3))
DOUT_GATE = RNG.standard_normal((2, 3))


def gate_forward_rows(fn):
    """``fn(x, y)``: two arrays of one shape and dtype, never broadcast."""
    base = ((X_GATE, Y_GATE), {})
    x, y = Arg(0, "x", X_GATE, "x"), Arg(1, "y", Y_GATE, "y")
    want = r"^y must have shape {want} \(the shape of x; gates do not broadcast\), got {got}"
    return [
        *[r for a in (x, y) for r in not_array_rows(fn, base, a)],
        *[r for a in (x, y) for r in dtype_rows(fn, base, a, [np.int64, np.bool_, np.longdouble, np.complex128, object])],
        *int_list_rows(fn, base, x),
        *ndim_rows(fn, base, x, [()], "at least 1"),
        *ndim_rows(fn, base, y, [()], "at least 1"),
        # y that would broadcast against x, or a transposed / flattened y
        *shape_rows(fn, base, y, [(s, want.format(want=rx((2, 3)), got=rx(s)))
                                  for s in [(3, 2), (2, 1), (1, 3), (3,), (1,), (6,), (2, 3, 1), (1, 2, 3)]]),
        row(f"{fn}-x-shape-1", (np.ones(1), Y_GATE), ValueError, want.format(want=rx((1,)), got=rx((2, 3)))),
        *empty_rows(fn, base, x, [(0, 3), (2, 0)]),
        *empty_rows(fn, base, y, [(0, 3)]),
        *nonfinite_rows(fn, base, x),
        *nonfinite_rows(fn, base, y, dtypes=(np.float64,)),
        *mixed_rows(fn, base, [[x], [y]], ["x: float32, y: float64", "x: float64, y: float32"]),
    ]


def gate_backward_rows(fn, forward):
    """``fn(dout, (x, y))``."""
    cache = forward(X_GATE, Y_GATE)[1]
    base = ((DOUT_GATE, cache), {})
    dout = Arg(0, "dout", DOUT_GATE, "dout")
    want = rf"^dout must have shape {rx((2, 3))} \(the shape of out in {forward.__name__}\), got "
    c = r"^cache\[{i}\] \({n}\) "
    return [
        *not_array_rows(fn, base, dout),
        *dtype_rows(fn, base, dout, [np.int64, np.bool_, np.longdouble, np.complex128, object]),
        *int_list_rows(fn, base, dout),
        *shape_rows(fn, base, dout, [(s, want + rx(s)) for s in [(3, 2), (2, 1), (1, 3), (6,), (2, 3, 1), ()]]),
        *empty_rows(fn, base, dout, [(0, 3), (2, 0)]),
        *nonfinite_rows(fn, base, dout),
        *mixed_rows(fn, base, [[dout]], ["dout: float32, x: float64"]),
        row(f"{fn}-mixed-f64-dout-f32-cache", (DOUT_GATE, forward(X_GATE.astype(np.float32), Y_GATE.astype(np.float32))[1]),
            TypeError, _mixed("dout: float64, x: float32")),
        *cache_rows(fn, base, 1, [
            *common_cache_cases(cache, RELU_CACHE, forward(X_GATE, Y_GATE), ("x", "y"), forward.__name__,
                                c.format(i=1, n="y") + f"must be the array returned by {forward.__name__}, got tuple"),
            ("entry-y-None", (X_GATE, None), TypeError, c.format(i=1, n="y") + f"must be the array returned by {forward.__name__}, got NoneType"),
            ("entry-mixed", (X_GATE, Y_GATE.astype(np.float32)), TypeError,
             _mixed(r"cache\[0\] \(x\): float64, cache\[1\] \(y\): float32")),
            ("y-shape", (X_GATE, Y_GATE[:, :2]), ValueError,
             c.format(i=1, n="y") + r"must have shape \(2, 3\) \(the shape of cache\[0\] \(x\)\), got \(2, 2\)"),
            ("y-would-broadcast", (X_GATE, Y_GATE[:1]), ValueError,
             c.format(i=1, n="y") + r"must have shape \(2, 3\) \(the shape of cache\[0\] \(x\)\), got \(1, 3\)"),
            ("entry-0d", (np.array(1.0), np.array(2.0)), ValueError,
             c.format(i=0, n="x") + r"must have at least 1 dimension\(s\), got shape \(\)"),
        ], ("x", "y"), forward.__name__),
    ]


ADD_FORWARD_BAD = gate_forward_rows("add_forward")
ADD_BACKWARD_BAD = gate_backward_rows("add_backward", manual.add_forward)
MULTIPLY_FORWARD_BAD = gate_forward_rows("multiply_forward")
MULTIPLY_BACKWARD_BAD = gate_backward_rows("multiply_backward", manual.multiply_forward)
MAX_FORWARD_BAD = gate_forward_rows("max_forward")
MAX_BACKWARD_BAD = gate_backward_rows("max_backward", manual.max_forward)

# ============================================================================ score_net

X_SN = RNG.standard_normal(3)  # D = 3
W_SN = RNG.standard_normal((4, 3))  # H = 4
B_SN = RNG.standard_normal(4)
U_SN = RNG.standard_normal(4)
SN_CACHE = manual.score_net_forward(X_SN, W_SN, B_SN, U_SN)[1]

_fn = "score_net_forward"
_base = ((X_SN, W_SN, B_SN, U_SN), {})
_sx, _sW, _sb, _su = (Arg(0, "x", X_SN, "x"), Arg(1, "W", W_SN, "W"), Arg(2, "b", B_SN, "b"), Arg(3, "u", U_SN, "u"))
_x_cols = r"^x must have shape {want} \(one input per column of W {ws}; one sample, no batch axis\), got {got}"
_b_rows = r"^b must have shape \(4,\) \(one bias per row of W \(4, 3\)\), got {got}"
_u_rows = r"^u must have shape \(4,\) \(one score weight per row of W \(4, 3\)\), got {got}"
SCORE_NET_FORWARD_BAD = [
    *[r for a in (_sx, _sW, _sb, _su) for r in not_array_rows(_fn, _base, a)[:4]],
    *[r for a in (_sx, _sW, _sb, _su) for r in dtype_rows(_fn, _base, a, FEW_DTYPES)],
    *int_list_rows(_fn, _base, _sx),
    *ndim_rows(_fn, _base, _sx, [(), (1, 3), (3, 1)], "1"),  # a batch of one is not one sample
    *ndim_rows(_fn, _base, _sW, [(3,), (4, 3, 1)], "2"),
    *ndim_rows(_fn, _base, _sb, [(), (4, 1)], "1"),
    *ndim_rows(_fn, _base, _su, [(1, 4)], "1"),
    *shape_rows(_fn, _base, _sx, [((4,), _x_cols.format(want=rx((3,)), ws=rx((4, 3)), got=rx((4,)))),
                                  ((1,), _x_cols.format(want=rx((3,)), ws=rx((4, 3)), got=rx((1,))))]),
    # W transposed (the row convention): x no longer matches its columns
    *shape_rows(_fn, _base, _sW, [((3, 4), _x_cols.format(want=rx((4,)), ws=rx((3, 4)), got=rx((3,))))]),
    *shape_rows(_fn, _base, _sb, [((3,), _b_rows.format(got=rx((3,)))), ((1,), _b_rows.format(got=rx((1,))))]),
    *shape_rows(_fn, _base, _su, [((3,), _u_rows.format(got=rx((3,)))), ((1,), _u_rows.format(got=rx((1,))))]),
    *empty_rows(_fn, _base, _sx, [(0,)]),
    *empty_rows(_fn, _base, _sW, [(4, 0), (0, 3)]),
    *empty_rows(_fn, _base, _su, [(0,)]),
    *nonfinite_rows(_fn, _base, _sx),
    *[r for a in (_sW, _sb, _su) for r in nonfinite_rows(_fn, _base, a, dtypes=(np.float64,))[1:3]],
    *mixed_rows(_fn, _base, [[_sx], [_sW], [_sb], [_su]], [
        "x: float32, W: float64, b: float64, u: float64", "x: float64, W: float32, b: float64, u: float64",
        "x: float64, W: float64, b: float32, u: float64", "x: float64, W: float64, b: float64, u: float32",
    ]),
]

_fn = "score_net_backward"
_base = ((1.0, SN_CACHE), {})
_c = r"^cache\[{i}\] \({n}\) "
_SN_CACHE32 = same_dtype_call((SN_CACHE,), {}, np.float32)[0][0]
SCORE_NET_BACKWARD_BAD = [
    *value_rows(_fn, _base, 0, "ds", [
        ("None", None, TypeError, r"^ds must be an array of float32 or float64, got NoneType"),
        ("str", "1.0", TypeError, r"^ds must be an array of float32 or float64, got str"),
        ("bool", True, TypeError, r"^ds must have a float dtype \(float64, float32, float16, bfloat16\), got bool"),
        ("complex", 1j, TypeError, r"^ds must have a float dtype \(float64, float32, float16, bfloat16\), got complex128"),
        ("decimal", Decimal("1.0"), TypeError, r"^ds must have a float dtype \(float64, float32, float16, bfloat16\), got object"),
        ("np-int", np.int64(1), TypeError, r"^ds must have a float dtype \(float64, float32, float16, bfloat16\), got int64"),
        ("np-float32", np.float32(1.0), TypeError, r"^ds must have the dtype of the cache, float64, got float32"),
        ("array-f32-0d", np.array(1.0, dtype=np.float32), TypeError, r"^ds must have the dtype of the cache, float64, got float32"),
        ("list", [1.0], ValueError, r"^ds must have 0 dimension\(s\), got shape \(1,\)"),
        ("array-1", np.ones(1), ValueError, r"^ds must have 0 dimension\(s\), got shape \(1,\)"),
        ("array-H", np.ones(4), ValueError, r"^ds must have 0 dimension\(s\), got shape \(4,\)"),
        ("array-1x1", np.ones((1, 1)), ValueError, r"^ds must have 0 dimension\(s\), got shape \(1, 1\)"),
        ("nan", float("nan"), ValueError, r"^ds must be finite, got nan"),
        ("inf", float("inf"), ValueError, r"^ds must be finite, got inf"),
        ("-inf", -np.inf, ValueError, r"^ds must be finite"),
        ("np-nan", np.float64(np.nan), ValueError, r"^ds must be finite, found nan"),
        ("array-inf-0d", np.array(np.inf), ValueError, r"^ds must be finite, found inf"),
        ("huge-int", 10**400, ValueError, r"^ds must be finite in float64, got 1000"),
    ]),
    # finite as a Python float, but not in the float32 of the cache
    row(f"{_fn}-ds-overflows-float32", (1e300, _SN_CACHE32), ValueError, r"^ds must be finite in float32, got 1e\+300"),
    row(f"{_fn}-ds-f64-array-f32-cache", (np.array(1.0), _SN_CACHE32), TypeError,
        r"^ds must have the dtype of the cache, float32, got float64"),
    *cache_rows(_fn, _base, 1, [
        *common_cache_cases(SN_CACHE, RELU_CACHE, manual.score_net_forward(X_SN, W_SN, B_SN, U_SN),
                            ("x", "W", "h", "u"), "score_net_forward"),
        ("the-inputs", (X_SN, W_SN, B_SN, U_SN), ValueError,  # b instead of h: b is no sigmoid output
         _c.format(i=2, n="h") + r"must hold sigmoid outputs in \[0, 1\], found "),
        ("entry-mixed", (X_SN, W_SN.astype(np.float32), SN_CACHE[2], U_SN), TypeError,
         _mixed(r"cache\[0\] \(x\): float64, cache\[1\] \(W\): float32")),
        ("x-2d", (X_SN[None], W_SN, SN_CACHE[2], U_SN), ValueError, _c.format(i=0, n="x") + r"must have 1 dimension\(s\), got shape \(1, 3\)"),
        ("W-1d", (X_SN, U_SN, SN_CACHE[2], U_SN), ValueError, _c.format(i=1, n="W") + r"must have 2 dimension\(s\), got shape \(4,\)"),
        ("x-short", (X_SN[:2], W_SN, SN_CACHE[2], U_SN), ValueError,
         _c.format(i=0, n="x") + r"must have shape \(3,\) \(one input per column of cache\[1\] \(W\) \(4, 3\); one sample"),
        ("h-short", (X_SN, W_SN, SN_CACHE[2][:3], U_SN), ValueError,
         _c.format(i=2, n="h") + r"must have shape \(4,\) \(one .* per row of cache\[1\] \(W\) \(4, 3\)\), got \(3,\)"),
        ("u-short", (X_SN, W_SN, SN_CACHE[2], U_SN[:1]), ValueError,
         _c.format(i=3, n="u") + r"must have shape \(4,\) \(one score weight per row of cache\[1\] \(W\) \(4, 3\)\), got \(1,\)"),
        ("W-transposed", (X_SN, W_SN.T, SN_CACHE[2], U_SN), ValueError,
         _c.format(i=0, n="x") + r"must have shape \(4,\)"),
        ("h-above-1", (X_SN, W_SN, SN_CACHE[2] + 1.0, U_SN), ValueError,
         _c.format(i=2, n="h") + r"must hold sigmoid outputs in \[0, 1\], found "),
    ], ("x", "W", "h", "u"), "score_net_forward"),
]

# ================================================================================ conv

X_CONV = RNG.standard_normal((2, 2, 4, 4))  # N, C, H, W
W_CONV = RNG.standard_normal((3, 2, 3, 3))  # F, C, HH, WW
B_CONV = RNG.standard_normal(3)
DOUT_CONV = RNG.standard_normal((2, 3, 4, 4))  # stride 1, pad 1
CONV_CACHE = manual.conv_forward(X_CONV, W_CONV, B_CONV, 1, 1)[1]

_fn = "conv_forward"
_base = ((X_CONV, W_CONV, B_CONV, 1, 1), {})
_cx, _cw, _cb = Arg(0, "x", X_CONV, "x"), Arg(1, "w", W_CONV, "w"), Arg(2, "b", B_CONV, "b")
_channels = r"^w must have shape \(F, 2, HH, WW\) to match the channels of x \(2, 2, 4, 4\), got {got}"
_bias = r"^b must have shape \(3,\) \(one bias per filter of w \(3, 2, 3, 3\)\), got {got}"
CONV_FORWARD_BAD = [
    *[r for a in (_cx, _cw, _cb) for r in not_array_rows(_fn, _base, a)[:4]],
    *[r for a in (_cx, _cw, _cb) for r in dtype_rows(_fn, _base, a, FEW_DTYPES)],
    *int_list_rows(_fn, _base, _cx),
    *ndim_rows(_fn, _base, _cx, [(), (2, 4, 4), (2, 2, 4, 4, 1)], "4"),
    *ndim_rows(_fn, _base, _cw, [(3, 2, 3), (3, 2, 3, 3, 1)], "4"),
    *ndim_rows(_fn, _base, _cb, [(), (3, 1)], "1"),
    *shape_rows(_fn, _base, _cw, [((3, 3, 3, 3), _channels.format(got=rx((3, 3, 3, 3)))),
                                  ((3, 1, 3, 3), _channels.format(got=rx((3, 1, 3, 3)))),
                                  ((2, 3, 3, 3), _channels.format(got=rx((2, 3, 3, 3))))]),
    *shape_rows(_fn, _base, _cb, [((2,), _bias.format(got=rx((2,)))), ((1,), _bias.format(got=rx((1,))))]),
    # filters larger than the padded input
    *shape_rows(_fn, _base, _cw, [
        ((3, 2, 7, 3), r"^height of x \(2, 2, 4, 4\) and w \(3, 2, 7, 3\): a window of 7 does not fit in 4 \+ 2 \* 1"),
        ((3, 2, 3, 7), r"^width of x \(2, 2, 4, 4\) and w \(3, 2, 3, 7\): a window of 7 does not fit in 4 \+ 2 \* 1"),
    ]),
    *empty_rows(_fn, _base, _cx, [(0, 2, 4, 4), (2, 0, 4, 4), (2, 2, 0, 4)]),
    *empty_rows(_fn, _base, _cw, [(0, 2, 3, 3)]),
    *nonfinite_rows(_fn, _base, _cx),
    *[r for a in (_cw, _cb) for r in nonfinite_rows(_fn, _base, a, dtypes=(np.float64,))[1:3]],
    *mixed_rows(_fn, _base, [[_cx], [_cw], [_cb]], [
        "x: float32, w: float64, b: float64", "x: float64, w: float32, b: float64", "x: float64, w: float64, b: float32",
    ]),
    *value_rows(_fn, _base, 3, "stride", int_param_cases("stride", 1, 0)),
    *value_rows(_fn, _base, 4, "pad", int_param_cases("pad", 0, -1)[:7]),
    # padding at least the filter size: windows made of padding only (and np.pad of any size)
    *value_rows(_fn, _base, 4, "pad", [
        ("filter-size", 3, ValueError, r"^pad must be smaller than the filter height and width of w \(3, 2, 3, 3\).*got 3"),
        ("huge", 10**12, ValueError, r"^pad must be smaller than the filter height and width of w \(3, 2, 3, 3\)"),
    ]),
    row(f"{_fn}-pad-width-of-filter", (X_CONV, W_CONV[:, :, :, :2], B_CONV, 1, 2), ValueError,
        r"^pad must be smaller than the filter height and width of w \(3, 2, 3, 2\).*got 2"),
]

_fn = "conv_backward"
_base = ((DOUT_CONV, CONV_CACHE), {})
_cdout = Arg(0, "dout", DOUT_CONV, "dout")
_want = r"^dout must have shape \(2, 3, 4, 4\) \(the shape of out in conv_forward\), got "
_names = ("x", "w", "b", "geometry")
_geometry = r"^cache\[3\] \(geometry\) must be the pair returned by conv_forward, got "
CONV_BACKWARD_BAD = [
    *not_array_rows(_fn, _base, _cdout),
    *dtype_rows(_fn, _base, _cdout, FEW_DTYPES),
    *int_list_rows(_fn, _base, _cdout),
    *ndim_rows(_fn, _base, _cdout, [(), (3, 4, 4), (2, 3, 4, 4, 1)], "4"),
    *shape_rows(_fn, _base, _cdout, [(s, _want + rx(s)) for s in
                                     [(2, 3, 4, 3), (2, 2, 4, 4), (1, 3, 4, 4), (3, 2, 4, 4), (2, 3, 2, 2)]]),
    *empty_rows(_fn, _base, _cdout, [(0, 3, 4, 4)]),
    *nonfinite_rows(_fn, _base, _cdout, dtypes=(np.float32,)),
    *mixed_rows(_fn, _base, [[_cdout]], ["dout: float32, x: float64"]),
    *cache_rows(_fn, _base, 1, [
        *common_cache_cases(CONV_CACHE, RELU_CACHE, manual.conv_forward(X_CONV, W_CONV, B_CONV, 1, 1), _names, "conv_forward"),
        ("no-geometry", CONV_CACHE[:3], TypeError, None),
        ("geometry-None", (*CONV_CACHE[:3], None), TypeError, _geometry + "None"),
        ("geometry-list", (*CONV_CACHE[:3], [1, 1]), TypeError, _geometry + re.escape("[1, 1]")),
        ("geometry-short", (*CONV_CACHE[:3], (1,)), TypeError, _geometry + re.escape("(1,)")),
        ("stride-float", (*CONV_CACHE[:3], (1.0, 1)), TypeError, r"^cache\[3\] \(stride\) must be an integer, got float"),
        ("stride-0", (*CONV_CACHE[:3], (0, 1)), ValueError, r"^cache\[3\] \(stride\) must be an integer >= 1, got 0"),
        ("pad-negative", (*CONV_CACHE[:3], (1, -1)), ValueError, r"^cache\[3\] \(pad\) must be an integer >= 0, got -1"),
        ("pad-bool", (*CONV_CACHE[:3], (1, True)), TypeError, r"^cache\[3\] \(pad\) must be an integer, got bool"),
        ("pad-filter-size", (*CONV_CACHE[:3], (1, 3)), ValueError,
         r"^cache\[3\] \(pad\) must be smaller than the filter height and width of cache\[1\] \(w\) \(3, 2, 3, 3\)"),
        # a geometry other than the forward's: dout no longer has the output's shape
        ("stride-2", (*CONV_CACHE[:3], (2, 1)), ValueError,
         r"^dout must have shape \(2, 3, 2, 2\) \(the shape of out in conv_forward\), got \(2, 3, 4, 4\)"),
        ("entry-mixed", (X_CONV, W_CONV.astype(np.float32), B_CONV, (1, 1)), TypeError,
         _mixed(r"cache\[0\] \(x\): float64, cache\[1\] \(w\): float32, cache\[2\] \(b\): float64")),
        ("x-3d", (X_CONV[0], W_CONV, B_CONV, (1, 1)), ValueError, r"^cache\[0\] \(x\) must have 4 dimension\(s\), got shape \(2, 4, 4\)"),
        ("w-3d", (X_CONV, W_CONV[0], B_CONV, (1, 1)), ValueError, r"^cache\[1\] \(w\) must have 4 dimension\(s\), got shape \(2, 3, 3\)"),
        ("w-channels", (X_CONV, W_CONV[:, :1], B_CONV, (1, 1)), ValueError,
         r"^cache\[1\] \(w\) must have shape \(F, 2, HH, WW\) to match the channels of cache\[0\] \(x\) \(2, 2, 4, 4\), got \(3, 1, 3, 3\)"),
        ("b-short", (X_CONV, W_CONV, B_CONV[:2], (1, 1)), ValueError,
         r"^cache\[2\] \(b\) must have shape \(3,\) \(one bias per filter of cache\[1\] \(w\) \(3, 2, 3, 3\)\), got \(2,\)"),
    ], _names, "conv_forward"),
]

# ============================================================================ max_pool

X_POOL = RNG.standard_normal((2, 2, 4, 4))
DOUT_POOL = RNG.standard_normal((2, 2, 2, 2))  # pool 2, stride 2
POOL_CACHE = manual.max_pool_forward(X_POOL, 2, 2)[1]

_fn = "max_pool_forward"
_base = ((X_POOL, 2, 2), {})
_px = Arg(0, "x", X_POOL, "x")
MAX_POOL_FORWARD_BAD = [
    *not_array_rows(_fn, _base, _px),
    *dtype_rows(_fn, _base, _px, [np.int64, np.uint8, np.bool_, np.longdouble, np.complex128, object]),
    *int_list_rows(_fn, _base, _px),
    *ndim_rows(_fn, _base, _px, [(), (4, 4), (2, 4, 4), (2, 2, 4, 4, 1)], "4"),
    *empty_rows(_fn, _base, _px, [(0, 2, 4, 4), (2, 0, 4, 4), (2, 2, 0, 4), (2, 2, 4, 0)]),
    *nonfinite_rows(_fn, _base, _px),
    *value_rows(_fn, _base, 1, "pool", int_param_cases("pool", 1, 0)),
    *value_rows(_fn, _base, 2, "stride", int_param_cases("stride", 1, 0)[:8]),
    # windows larger than the input
    *value_rows(_fn, _base, 1, "pool", [
        ("larger-than-x", 5, ValueError, r"^height of x \(2, 2, 4, 4\): a window of 5 does not fit in 4"),
    ]),
    row(f"{_fn}-pool-wider-than-x", (X_POOL[:, :, :, :3], 4, 1), ValueError,
        r"^height of x \(2, 2, 4, 3\): a window of 4 does not fit in 4|^width of x \(2, 2, 4, 3\): a window of 4 does not fit in 3"),
]

_fn = "max_pool_backward"
_base = ((DOUT_POOL, POOL_CACHE), {})
_pdout = Arg(0, "dout", DOUT_POOL, "dout")
_want = r"^dout must have shape \(2, 2, 2, 2\) \(the shape of out in max_pool_forward\), got "
_names = ("x", "geometry")
_geometry = r"^cache\[1\] \(geometry\) must be the pair returned by max_pool_forward, got "
MAX_POOL_BACKWARD_BAD = [
    *not_array_rows(_fn, _base, _pdout),
    *dtype_rows(_fn, _base, _pdout, FEW_DTYPES),
    *int_list_rows(_fn, _base, _pdout),
    *ndim_rows(_fn, _base, _pdout, [(), (2, 2, 2), (2, 2, 2, 2, 1)], "4"),
    *shape_rows(_fn, _base, _pdout, [(s, _want + rx(s)) for s in [(2, 2, 4, 4), (2, 2, 2, 1), (1, 2, 2, 2), (2, 2, 3, 3)]]),
    *empty_rows(_fn, _base, _pdout, [(0, 2, 2, 2)]),
    *nonfinite_rows(_fn, _base, _pdout),
    *mixed_rows(_fn, _base, [[_pdout]], ["dout: float32, x: float64"]),
    *cache_rows(_fn, _base, 1, [
        *common_cache_cases(POOL_CACHE, CONV_CACHE, manual.max_pool_forward(X_POOL, 2, 2), _names, "max_pool_forward",
                            r"^cache\[1\] \(pool\) must be an integer, got ndarray"),
        ("no-geometry", POOL_CACHE[:1], TypeError, None),
        ("geometry-None", (X_POOL, None), TypeError, _geometry + "None"),
        ("geometry-short", (X_POOL, (2,)), TypeError, _geometry + re.escape("(2,)")),
        ("pool-float", (X_POOL, (2.0, 2)), TypeError, r"^cache\[1\] \(pool\) must be an integer, got float"),
        ("pool-0", (X_POOL, (0, 2)), ValueError, r"^cache\[1\] \(pool\) must be an integer >= 1, got 0"),
        ("stride-0", (X_POOL, (2, 0)), ValueError, r"^cache\[1\] \(stride\) must be an integer >= 1, got 0"),
        ("pool-larger-than-x", (X_POOL, (5, 2)), ValueError, r"^height of cache\[0\] \(x\) \(2, 2, 4, 4\): a window of 5 does not fit"),
        ("stride-1", (X_POOL, (2, 1)), ValueError,
         r"^dout must have shape \(2, 2, 3, 3\) \(the shape of out in max_pool_forward\), got \(2, 2, 2, 2\)"),
        ("x-3d", (X_POOL[0], (2, 2)), ValueError, r"^cache\[0\] \(x\) must have 4 dimension\(s\), got shape \(2, 4, 4\)"),
    ], _names, "max_pool_forward"),
]

# ============================================================== batchnorm and layernorm

X_NORM = RNG.standard_normal((4, 3))
GAMMA = RNG.standard_normal(3)
BETA = RNG.standard_normal(3)
DOUT_NORM = RNG.standard_normal((4, 3))
EPS = 1e-5


def norm_forward_rows(fn):
    """``fn(x, gamma, beta, eps)`` with x (N, D), gamma and beta (D,)."""
    base = ((X_NORM, GAMMA, BETA, EPS), {})
    x, g, b = Arg(0, "x", X_NORM, "x"), Arg(1, "gamma", GAMMA, "gamma"), Arg(2, "beta", BETA, "beta")
    want = r"^{n} must have shape \(3,\) \(one {what} per feature of x \(4, 3\)\), got {got}"
    args32 = same_dtype_call(base[0], {}, np.float32)[0]
    return [
        *[r for a in (x, g, b) for r in not_array_rows(fn, base, a)[:4]],
        *[r for a in (x, g, b) for r in dtype_rows(fn, base, a, FEW_DTYPES)],
        *int_list_rows(fn, base, x),
        *ndim_rows(fn, base, x, [(), (3,), (4, 3, 1)], "2"),
        *ndim_rows(fn, base, g, [(), (1, 3)], "1"),
        *ndim_rows(fn, base, b, [(3, 1)], "1"),
        *shape_rows(fn, base, g, [(s, want.format(n="gamma", what="scale", got=rx(s))) for s in [(4,), (1,), (2,)]]),
        *shape_rows(fn, base, b, [(s, want.format(n="beta", what="shift", got=rx(s))) for s in [(4,), (1,)]]),
        *empty_rows(fn, base, x, [(0, 3), (4, 0)]),
        *empty_rows(fn, base, g, [(0,)]),
        *nonfinite_rows(fn, base, x),
        *[r for a in (g, b) for r in nonfinite_rows(fn, base, a, dtypes=(np.float64,))[1:3]],
        *mixed_rows(fn, base, [[x], [g], [b]], [
            "x: float32, gamma: float64, beta: float64", "x: float64, gamma: float32, beta: float64",
            "x: float64, gamma: float64, beta: float32",
        ]),
        *value_rows(fn, base, 3, "eps", [
            ("zero", 0.0, ValueError, r"^eps must be a finite number > 0"),
            ("negative", -1e-5, ValueError, r"^eps must be a finite number > 0 .*got -1e-05"),
            ("nan", float("nan"), ValueError, r"^eps must be a finite number > 0 .*got nan"),
            ("inf", float("inf"), ValueError, r"^eps must be a finite number > 0 .*got inf"),
            ("-inf", -np.inf, ValueError, r"^eps must be a finite number > 0"),
            ("huge-int", 10**400, ValueError, r"^eps must be a finite number > 0"),
            ("None", None, TypeError, r"^eps must be a real number > 0, got NoneType"),
            ("str", "1e-5", TypeError, r"^eps must be a real number > 0, got str"),
            ("bool", True, TypeError, r"^eps must be a real number > 0, got bool"),
            ("complex", 1e-5 + 0j, TypeError, r"^eps must be a real number > 0, got complex"),
            ("array-0d", np.array(1e-5), TypeError, r"^eps must be a real number > 0, got ndarray"),
            ("list", [1e-5], TypeError, r"^eps must be a real number > 0, got list"),
            ("decimal", Decimal("1e-5"), TypeError, r"^eps must be a real number > 0, got Decimal"),
        ]),
        # positive as a Python float, but 0 or inf in the float32 the computation runs in
        row(f"{fn}-eps-underflows-float32", (*args32[:3], 1e-50), ValueError,
            r"^eps must be representable as a positive float32, got 1e-50"),
        row(f"{fn}-eps-overflows-float32", (*args32[:3], 1e300), ValueError,
            r"^eps must be representable as a positive float32, got 1e\+300"),
    ]


def norm_backward_rows(fn, forward, other_forward, std_shape):
    """``fn(dout, (xhat, gamma, std))``; ``std_shape`` is (N, 1) or (1, D)."""
    out, cache = forward(X_NORM, GAMMA, BETA, EPS)
    xhat, gamma, std = cache
    base = ((DOUT_NORM, cache), {})
    dout = Arg(0, "dout", DOUT_NORM, "dout")
    want = rf"^dout must have shape \(4, 3\) \(the shape of out in {forward.__name__}\), got "
    c = r"^cache\[{i}\] \({n}\) "
    op = forward.__name__.split("_")[0]
    names = ("xhat", "gamma", "std")
    return [
        *not_array_rows(fn, base, dout),
        *dtype_rows(fn, base, dout, FEW_DTYPES),
        *int_list_rows(fn, base, dout),
        *ndim_rows(fn, base, dout, [(), (12,), (4, 3, 1)], "2"),
        *shape_rows(fn, base, dout, [(s, want + rx(s)) for s in [(3, 4), (4, 1), (1, 3), (2, 3)]]),
        *empty_rows(fn, base, dout, [(0, 3)]),
        *nonfinite_rows(fn, base, dout),
        *mixed_rows(fn, base, [[dout]], ["dout: float32, xhat: float64"]),
        *cache_rows(fn, base, 1, [
            *common_cache_cases(cache, RELU_CACHE, (out, cache), names, forward.__name__),
            ("entry-mixed", (xhat, gamma.astype(np.float32), std), TypeError,
             _mixed(r"cache\[0\] \(xhat\): float64, cache\[1\] \(gamma\): float32, cache\[2\] \(std\): float64")),
            ("xhat-1d", (xhat[0], gamma, std), ValueError, c.format(i=0, n="xhat") + r"must have 2 dimension\(s\), got shape \(3,\)"),
            ("gamma-short", (xhat, gamma[:2], std), ValueError,
             c.format(i=1, n="gamma") + r"must have shape \(3,\) \(one scale per feature of xhat \(4, 3\)\), got \(2,\)"),
            ("std-1d", (xhat, gamma, std.ravel()), ValueError,
             c.format(i=2, n="std") + rf"must have shape {rx(std_shape)} \(the statistics of {op}\), got {rx((std.size,))}"),
            # the other norm's cache: statistics along the other axis
            ("other-norm", other_forward(X_NORM, GAMMA, BETA, EPS)[1], ValueError,
             c.format(i=2, n="std") + rf"must have shape {rx(std_shape)} \(the statistics of {op}\), got "),
            ("std-zero", (xhat, gamma, np.zeros(std_shape)), ValueError,
             c.format(i=2, n="std") + r"must hold positive values \(sqrt\(var \+ eps\)\), found 0\.0 at index"),
            ("std-negative", (xhat, gamma, -std), ValueError,
             c.format(i=2, n="std") + r"must hold positive values \(sqrt\(var \+ eps\)\), found -"),
        ], names, forward.__name__),
    ]


BATCHNORM_FORWARD_BAD = norm_forward_rows("batchnorm_forward")
BATCHNORM_BACKWARD_BAD = norm_backward_rows("batchnorm_backward", manual.batchnorm_forward, manual.layernorm_forward, (1, 3))
LAYERNORM_FORWARD_BAD = norm_forward_rows("layernorm_forward")
LAYERNORM_BACKWARD_BAD = norm_backward_rows("layernorm_backward", manual.layernorm_forward, manual.batchnorm_forward, (4, 1))

# ============================================================================= dropout

X_DROP = RNG.standard_normal((2, 3))
MASK = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
DOUT_DROP = RNG.standard_normal((2, 3))
DROP_CACHE = manual.dropout_forward(X_DROP, MASK, 0.5)[1]

_fn = "dropout_forward"
_base = ((X_DROP, MASK, 0.5), {})
_dx, _dm = Arg(0, "x", X_DROP, "x"), Arg(1, "mask", MASK, "mask")
_mask_shape = r"^mask must have shape \(2, 3\) \(one entry per element of x\), got {got}"
_mask_values = r"^mask must hold only 0 and 1, found {v} at index {i}"
_p_range = r"^p must be a drop probability in \[0, 1\), got "
_args32 = same_dtype_call(_base[0], {}, np.float32)[0]
DROPOUT_FORWARD_BAD = [
    *not_array_rows(_fn, _base, _dx),
    *not_array_rows(_fn, _base, _dm)[:4],
    *dtype_rows(_fn, _base, _dx, FEW_DTYPES),
    # a boolean or integer mask is refused like any other non-float argument
    *dtype_rows(_fn, _base, _dm, [np.bool_, np.int64, np.uint8, np.longdouble]),
    *int_list_rows(_fn, _base, _dx),
    *ndim_rows(_fn, _base, _dx, [()], "at least 1"),
    *ndim_rows(_fn, _base, _dm, [()], "at least 1"),
    *shape_rows(_fn, _base, _dm, [(s, _mask_shape.format(got=rx(s))) for s in [(3, 2), (2, 1), (1, 3), (6,), (2, 3, 1)]]),
    *empty_rows(_fn, _base, _dx, [(0, 3), (2, 0)]),
    *nonfinite_rows(_fn, _base, _dx),
    *nonfinite_rows(_fn, _base, _dm, dtypes=(np.float64,))[1:3],
    *mixed_rows(_fn, _base, [[_dx], [_dm]], ["x: float32, mask: float64", "x: float64, mask: float32"]),
    # masks of other than 0 and 1: already scaled, probabilities, negative
    *[row(f"{_fn}-mask-{vid}", (X_DROP, m, 0.5), ValueError, _mask_values.format(v=v, i=i)) for vid, m, v, i in [
        ("scaled", MASK * 2.0, r"2\.0", r"\(0, 0\)"),
        ("half", with_nonfinite(MASK, (1, 2), 0.5), r"0\.5", r"\(1, 2\)"),
        ("minus-1", with_nonfinite(MASK, (0, 1), -1.0), r"-1\.0", r"\(0, 1\)"),
        ("keep-probabilities", np.full((2, 3), 0.5), r"0\.5", r"\(0, 0\)"),
    ]],
    *value_rows(_fn, _base, 2, "p", [
        ("one", 1.0, ValueError, _p_range + "1.0"),
        ("one-int", 1, ValueError, _p_range + "1"),
        ("negative", -0.1, ValueError, _p_range + r"-0\.1"),
        ("above-1", 1.5, ValueError, _p_range + r"1\.5"),
        ("percent", 50, ValueError, _p_range + "50"),
        ("nan", float("nan"), ValueError, _p_range + "nan"),
        ("inf", float("inf"), ValueError, _p_range + "inf"),
        ("huge-int", 10**400, ValueError, r"^p must be a finite number in \[0, 1\), got 1000"),
        ("None", None, TypeError, r"^p must be a real number in \[0, 1\), got NoneType"),
        ("str", "0.5", TypeError, r"^p must be a real number in \[0, 1\), got str"),
        ("bool", False, TypeError, r"^p must be a real number in \[0, 1\), got bool"),
        ("complex", 0.5 + 0j, TypeError, r"^p must be a real number in \[0, 1\), got complex"),
        ("array-0d", np.array(0.5), TypeError, r"^p must be a real number in \[0, 1\), got ndarray"),
        ("decimal", Decimal("0.5"), TypeError, r"^p must be a real number in \[0, 1\), got Decimal"),
    ]),
    # below 1 as a Python float, but 1 in float32: 1 / (1 - p) would be inf
    row(f"{_fn}-p-rounds-to-1-in-float32", (*_args32[:2], 1 - 1e-9), ValueError,
        _p_range + r"0\.999999999 \(1\.0 in float32\)"),
]

_fn = "dropout_backward"
_base = ((DOUT_DROP, DROP_CACHE), {})
_ddout = Arg(0, "dout", DOUT_DROP, "dout")
_want = r"^dout must have shape \(2, 3\) \(the shape of x in dropout_forward\), got "
_keep = r"^cache\[0\] \(keep\) must hold only 0 and one scale 1 / \(1 - p\) >= 1 \(mask / \(1 - p\) from dropout_forward\), found "
DROPOUT_BACKWARD_BAD = [
    *not_array_rows(_fn, _base, _ddout),
    *dtype_rows(_fn, _base, _ddout),
    *int_list_rows(_fn, _base, _ddout),
    *shape_rows(_fn, _base, _ddout, [(s, _want + rx(s)) for s in [(3, 2), (2, 1), (1, 3), (6,), (2, 3, 1), ()]]),
    *empty_rows(_fn, _base, _ddout, [(0, 3), (2, 0)]),
    *nonfinite_rows(_fn, _base, _ddout),
    *mixed_rows(_fn, _base, [[_ddout]], ["dout: float32, keep: float64"]),
    *cache_rows(_fn, _base, 1, [
        *common_cache_cases(DROP_CACHE, CONV_CACHE, manual.dropout_forward(X_DROP, MASK, 0.5), ("keep",), "dropout_forward"),
        ("entry-0d", (np.array(2.0),), ValueError, r"^cache\[0\] \(keep\) must have at least 1 dimension\(s\), got shape \(\)"),
        # the input, a probability map, a negative or uneven scale: not mask / (1 - p)
        ("the-input", (X_DROP,), ValueError, _keep),
        ("keep-probability", (np.full((2, 3), 0.5),), ValueError, _keep + r"0\.5 at index \(0, 0\)"),
        ("negative", (-DROP_CACHE[0],), ValueError, _keep + r"-2\.0 at index \(0, 0\)"),
        ("two-scales", (with_nonfinite(DROP_CACHE[0], (1, 2), 4.0),), ValueError, _keep + r"4\.0 at index \(1, 2\)"),
    ], ("keep",), "dropout_forward"),
]

# ================================================================================ tables

OPS_TABLES = {
    "sigmoid_forward": (manual.sigmoid_forward, SIGMOID_FORWARD_BAD),
    "sigmoid_backward": (manual.sigmoid_backward, SIGMOID_BACKWARD_BAD),
    "tanh_forward": (manual.tanh_forward, TANH_FORWARD_BAD),
    "tanh_backward": (manual.tanh_backward, TANH_BACKWARD_BAD),
    "add_forward": (manual.add_forward, ADD_FORWARD_BAD),
    "add_backward": (manual.add_backward, ADD_BACKWARD_BAD),
    "multiply_forward": (manual.multiply_forward, MULTIPLY_FORWARD_BAD),
    "multiply_backward": (manual.multiply_backward, MULTIPLY_BACKWARD_BAD),
    "max_forward": (manual.max_forward, MAX_FORWARD_BAD),
    "max_backward": (manual.max_backward, MAX_BACKWARD_BAD),
    "score_net_forward": (manual.score_net_forward, SCORE_NET_FORWARD_BAD),
    "score_net_backward": (manual.score_net_backward, SCORE_NET_BACKWARD_BAD),
    "conv_forward": (manual.conv_forward, CONV_FORWARD_BAD),
    "conv_backward": (manual.conv_backward, CONV_BACKWARD_BAD),
    "max_pool_forward": (manual.max_pool_forward, MAX_POOL_FORWARD_BAD),
    "max_pool_backward": (manual.max_pool_backward, MAX_POOL_BACKWARD_BAD),
    "batchnorm_forward": (manual.batchnorm_forward, BATCHNORM_FORWARD_BAD),
    "batchnorm_backward": (manual.batchnorm_backward, BATCHNORM_BACKWARD_BAD),
    "layernorm_forward": (manual.layernorm_forward, LAYERNORM_FORWARD_BAD),
    "layernorm_backward": (manual.layernorm_backward, LAYERNORM_BACKWARD_BAD),
    "dropout_forward": (manual.dropout_forward, DROPOUT_FORWARD_BAD),
    "dropout_backward": (manual.dropout_backward, DROPOUT_BACKWARD_BAD),
}

# ========================================================================== good inputs
# Wrappers take only the float arrays (the ones the variants rewrite); a backward runs
# its forward on the same arguments first, so a variant reaches the cache as well.


def _unary_backward(forward, backward):
    def call(x, dout):
        return backward(dout, forward(x)[1])
    return call


def _gate_backward(forward, backward):
    def call(x, y, dout):
        return backward(dout, forward(x, y)[1])
    return call


def _score_net_backward(x, W, b, u, ds=1.0):
    return manual.score_net_backward(ds, manual.score_net_forward(x, W, b, u)[1])


def _conv_forward(x, w, b, stride=1, pad=1):
    return manual.conv_forward(x, w, b, stride, pad)


def _conv_backward(x, w, b, dout, stride=1, pad=1):
    return manual.conv_backward(dout, manual.conv_forward(x, w, b, stride, pad)[1])


def _max_pool_forward(x, pool=2, stride=2):
    return manual.max_pool_forward(x, pool, stride)


def _max_pool_backward(x, dout, pool=2, stride=2):
    return manual.max_pool_backward(dout, manual.max_pool_forward(x, pool, stride)[1])


def _norm_forward(forward):
    def call(x, gamma, beta, eps=EPS):
        return forward(x, gamma, beta, eps)
    return call


def _norm_backward(forward, backward):
    def call(x, gamma, beta, dout, eps=EPS):
        return backward(dout, forward(x, gamma, beta, eps)[1])
    return call


def _dropout_forward(x, mask, p=0.5):
    return manual.dropout_forward(x, mask, p)


def _dropout_backward(x, mask, dout, p=0.5):
    return manual.dropout_backward(dout, manual.dropout_forward(x, mask, p)[1])


X_CONV2 = RNG.standard_normal((1, 3, 7, 6))
W_CONV2 = RNG.standard_normal((2, 3, 3, 2))
DOUT_CONV2 = RNG.standard_normal((1, 2, 4, 4))  # stride 2, pad 1
X_POOL2 = RNG.standard_normal((1, 2, 7, 7))
DOUT_POOL2 = RNG.standard_normal((1, 2, 3, 3))  # pool 3, stride 2 (overlapping)

# (name, function, float arguments, label arguments by position), as in test_bad_inputs
OPS_GOOD_CALLS = [
    ("sigmoid_forward", manual.sigmoid_forward, [X_ACT], {}),
    ("sigmoid_backward", _unary_backward(manual.sigmoid_forward, manual.sigmoid_backward), [X_ACT, DOUT_ACT], {}),
    ("tanh_forward", manual.tanh_forward, [X_ACT], {}),
    ("tanh_backward", _unary_backward(manual.tanh_forward, manual.tanh_backward), [X_ACT, DOUT_ACT], {}),
    ("add_forward", manual.add_forward, [X_GATE, Y_GATE], {}),
    ("add_backward", _gate_backward(manual.add_forward, manual.add_backward), [X_GATE, Y_GATE, DOUT_GATE], {}),
    ("multiply_forward", manual.multiply_forward, [X_GATE, Y_GATE], {}),
    ("multiply_backward", _gate_backward(manual.multiply_forward, manual.multiply_backward), [X_GATE, Y_GATE, DOUT_GATE], {}),
    ("max_forward", manual.max_forward, [X_GATE, Y_GATE], {}),
    ("max_backward", _gate_backward(manual.max_forward, manual.max_backward), [X_GATE, Y_GATE, DOUT_GATE], {}),
    ("score_net_forward", manual.score_net_forward, [X_SN, W_SN, B_SN, U_SN], {}),
    ("score_net_backward", _score_net_backward, [X_SN, W_SN, B_SN, U_SN], {}),
    ("conv_forward", _conv_forward, [X_CONV, W_CONV, B_CONV], {}),
    ("conv_backward", _conv_backward, [X_CONV, W_CONV, B_CONV, DOUT_CONV], {}),
    ("max_pool_forward", _max_pool_forward, [X_POOL], {}),
    ("max_pool_backward", _max_pool_backward, [X_POOL, DOUT_POOL], {}),
    ("batchnorm_forward", _norm_forward(manual.batchnorm_forward), [X_NORM, GAMMA, BETA], {}),
    ("batchnorm_backward", _norm_backward(manual.batchnorm_forward, manual.batchnorm_backward), [X_NORM, GAMMA, BETA, DOUT_NORM], {}),
    ("layernorm_forward", _norm_forward(manual.layernorm_forward), [X_NORM, GAMMA, BETA], {}),
    ("layernorm_backward", _norm_backward(manual.layernorm_forward, manual.layernorm_backward), [X_NORM, GAMMA, BETA, DOUT_NORM], {}),
    ("dropout_forward", _dropout_forward, [X_DROP, MASK], {}),
    ("dropout_backward", _dropout_backward, [X_DROP, MASK, DOUT_DROP], {}),
]
OPS_ARG_NAMES = {
    "sigmoid_forward": ["x"], "sigmoid_backward": ["x", "dout"], "tanh_forward": ["x"], "tanh_backward": ["x", "dout"],
    **{f"{g}_forward": ["x", "y"] for g in ("add", "multiply", "max")},
    **{f"{g}_backward": ["x", "y", "dout"] for g in ("add", "multiply", "max")},
    "score_net_forward": ["x", "W", "b", "u"], "score_net_backward": ["x", "W", "b", "u"],
    "conv_forward": ["x", "w", "b"], "conv_backward": ["x", "w", "b", "dout"],
    "max_pool_forward": ["x"], "max_pool_backward": ["x", "dout"],
    "batchnorm_forward": ["x", "gamma", "beta"], "batchnorm_backward": ["x", "gamma", "beta", "dout"],
    "layernorm_forward": ["x", "gamma", "beta"], "layernorm_backward": ["x", "gamma", "beta", "dout"],
    "dropout_forward": ["x", "mask"], "dropout_backward": ["x", "mask", "dout"],
}


def _good_extra():
    """Non-array arguments as NumPy or Python scalars (and other geometries), each compared
    with the same call given plain Python values: (fn, args, plain_args, kwargs, plain_kwargs)."""
    rows = []
    for dtype in (np.float32, np.float64):
        t = np.dtype(dtype).name

        def cast(arrays):
            return [a.astype(dtype) for a in arrays]

        sn = cast([X_SN, W_SN, B_SN, U_SN])
        for vid, ds, plain in [("int-1", 1, 1.0), ("int-0", 0, 0.0), ("float-2", 2.0, 2.0), ("np-scalar", dtype(2.0), 2.0),
                               ("array-0d", np.array(-0.5, dtype=dtype), -0.5), ("minus-zero", -0.0, 0.0)]:
            rows.append(pytest.param(_score_net_backward, sn, sn, {"ds": ds}, {"ds": plain}, id=f"score_net_backward-ds-{vid}-{t}"))
        for fn, name, arrays in [(_conv_forward, "conv_forward", [X_CONV2, W_CONV2, B_CONV[:2]]),
                                 (_conv_backward, "conv_backward", [X_CONV2, W_CONV2, B_CONV[:2], DOUT_CONV2])]:
            a = cast(arrays)
            for vid, stride, pad in [("np-int64", np.int64(2), np.int64(1)), ("np-uint8", np.uint8(2), np.int32(1))]:
                rows.append(pytest.param(fn, a, a, {"stride": stride, "pad": pad}, {"stride": 2, "pad": 1},
                                         id=f"{name}-geometry-{vid}-{t}"))
        for fn, name, arrays in [(_max_pool_forward, "max_pool_forward", [X_POOL2]),
                                 (_max_pool_backward, "max_pool_backward", [X_POOL2, DOUT_POOL2])]:
            a = cast(arrays)
            rows.append(pytest.param(fn, a, a, {"pool": np.int64(3), "stride": np.int16(2)}, {"pool": 3, "stride": 2},
                                     id=f"{name}-geometry-np-ints-{t}"))
        for op in ("batchnorm", "layernorm"):
            fwd = getattr(manual, f"{op}_forward")
            for fn, name, arrays in [(_norm_forward(fwd), f"{op}_forward", [X_NORM, GAMMA, BETA]),
                                     (_norm_backward(fwd, getattr(manual, f"{op}_backward")), f"{op}_backward",
                                      [X_NORM, GAMMA, BETA, DOUT_NORM])]:
                a = cast(arrays)
                for vid, eps, plain in [("np-float32", np.float32(1e-3), float(np.float32(1e-3))),
                                        ("np-float64", np.float64(1e-5), 1e-5), ("int-1", 1, 1.0),
                                        ("fraction", Fraction(1, 1000), 1e-3)]:
                    rows.append(pytest.param(fn, a, a, {"eps": eps}, {"eps": plain}, id=f"{name}-eps-{vid}-{t}"))
        for fn, name, arrays in [(_dropout_forward, "dropout_forward", [X_DROP, MASK]),
                                 (_dropout_backward, "dropout_backward", [X_DROP, MASK, DOUT_DROP])]:
            a = cast(arrays)
            for vid, p, plain in [("int-0", 0, 0.0), ("np-float32", np.float32(0.25), 0.25), ("np-float64", np.float64(0.5), 0.5),
                                  ("fraction", Fraction(1, 4), 0.25), ("minus-zero", -0.0, 0.0)]:
                rows.append(pytest.param(fn, a, a, {"p": p}, {"p": plain}, id=f"{name}-p-{vid}-{t}"))
    return rows


OPS_GOOD_EXTRA = _good_extra()
