"""Bad inputs to every public function in ``manual``, and array-likes that must work.

Each bad input fails with exactly the exception class its row names (``ValueError`` or
``TypeError``: never an ``IndexError``, an ``AttributeError`` or an error raised from deep
inside NumPy, and no subclass either), and with a message that names the argument and, for
shape errors, the shapes involved.  The tables are built one category of bad input at a
time by the small ``*_rows`` helpers in ``bad_input_helpers.py``; the tables of the ops
added later (activations, gates, score_net, conv, pooling, norms, dropout) are in
``bad_input_tables_ops.py``; the decisions they encode are documented in
``manual/validation.py``:

* only float64/float32/float16/bfloat16 arrays (longdouble, complex, integer, bool, object, str: TypeError),
  all of one dtype within a call (mixing float32 and float64: TypeError);
* no empty axis, no NaN or Inf (ValueError);
* labels: an integer, non-bool array of shape (N,) with values in [0, C) (TypeError for the
  dtype, ValueError for the shape and the range);
* ``params``: a dict with exactly W1, b1, W2, b2; ``reg``: a finite real number >= 0
  (bool, complex, strings, arrays: TypeError);
* a ``cache`` is the tuple the matching forward returned, or a TypeError/ValueError.

The good inputs (Python lists, non-contiguous, negatively strided, Fortran-ordered and
read-only arrays, integer label dtypes other than int64, reg as a NumPy or Python scalar)
must give the result of the same call on plain C-contiguous arrays, and must not be
modified.  "The result" is exact where the function is made of correctly rounded
elementwise operations; where it sums, the order of the sums may follow the memory layout
(NumPy's reductions, BLAS kernels chosen by layout and CPU), so the result must lie within
the rounding those sums allow (``ROUNDING``): never a comparison whose outcome depends on
the CPU.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Callable

import numpy as np
import pytest

from gradmatrix import manual
from gradmatrix.reports.metrics import normwise_rel_error
from gradmatrix.reports.tolerances import tolerance_for
from bad_input_helpers import (
    DTYPE_MISMATCH,
    FLOATS,
    Arg,
    cache_rows,
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
    with_nonfinite,
)
from bad_input_tables_ops import OPS_ARG_NAMES, OPS_GOOD_CALLS, OPS_GOOD_EXTRA, OPS_TABLES

# A warning on the way to an error (ComplexWarning, overflow in a cast) means an argument
# got further than it should have; a warning on a good input is a bug as well.
pytestmark = pytest.mark.filterwarnings("error")

# ------------------------------------------------------------------------ good values

RNG = np.random.default_rng(20240229)
X_RELU = np.array([[-2.0, -0.0, 0.0], [0.5, 3.0, -1.25]])
DOUT_RELU = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
X_AFF = RNG.standard_normal((2, 3))
W_AFF = RNG.standard_normal((3, 4))
B_AFF = RNG.standard_normal(4)
DOUT_AFF = RNG.standard_normal((2, 4))
X_AFF3 = RNG.standard_normal((2, 3, 2))
W_AFF3 = RNG.standard_normal((6, 4))
SCORES = RNG.standard_normal((3, 4))
Y_SOFT = np.array([0, 3, 1])
PARAMS = {"W1": RNG.standard_normal((3, 4)), "b1": RNG.standard_normal(4),
          "W2": RNG.standard_normal((4, 2)), "b2": RNG.standard_normal(2)}
X_NET = RNG.standard_normal((5, 3))
Y_NET = np.array([0, 1, 1, 0, 1])
_, RELU_CACHE = manual.relu_forward(X_RELU)
_, AFF_CACHE = manual.affine_forward(X_AFF, W_AFF, B_AFF)

# ---------------------------------------------------------------------- relu_forward

_fn = "relu_forward"
_base = ((X_RELU,), {})
_x = Arg(0, "x", X_RELU, "x")
RELU_FORWARD_BAD = [
    *not_array_rows(_fn, _base, _x),
    *dtype_rows(_fn, _base, _x),
    *int_list_rows(_fn, _base, _x),
    *ndim_rows(_fn, _base, _x, [()], "at least 1"),
    row(f"{_fn}-x-ndim-python-float", (1.0,), ValueError, r"^x must have at least 1 dimension\(s\), got shape \(\)"),
    row(f"{_fn}-x-ndim-np-float64", (np.float64(1.0),), ValueError, r"^x must have at least 1 dimension\(s\), got shape \(\)"),
    *empty_rows(_fn, _base, _x, [(0,), (0, 3), (2, 0), (2, 0, 3), (2, 3, 0)]),
    row(f"{_fn}-x-empty-list", ([],), ValueError, r"^x must not be empty, got shape \(0,\)"),
    *nonfinite_rows(_fn, _base, _x),
    # array-likes NumPy turns into object, str or complex arrays
    *[row(f"{_fn}-x-{vid}", (v,), TypeError, rf"^x must have a float dtype \(float64, float32, float16, bfloat16\), got {dt}") for vid, v, dt in [
        ("set", {1.0, 2.0}, "object"), ("range", range(1, 3), "int64"),
        ("list-with-None", [[1.0, None]], "object"), ("list-with-str", [1.0, "2"], "<U32"),
        ("list-of-complex", [1.0, 2j], "complex128"), ("list-of-bool", [True, False], "bool"),
    ]],
    row(f"{_fn}-x-nan-in-list", ([[1.0, float("nan")]],), ValueError, r"^x must be finite, found nan at index \(0, 1\)"),
    row(f"{_fn}-x-inf-3d", (with_nonfinite(np.ones((2, 2, 2)), (1, 0, 1), np.inf),), ValueError,
        r"^x must be finite, found inf at index \(1, 0, 1\)"),
]

# ---------------------------------------------------------------------- relu_backward

_fn = "relu_backward"
_base = ((DOUT_RELU, RELU_CACHE), {})
_dout = Arg(0, "dout", DOUT_RELU, "dout")
_relu_shape = rf"^dout must have shape {rx(X_RELU.shape)} \(the shape of x in relu_forward\), got "
RELU_BACKWARD_BAD = [
    *not_array_rows(_fn, _base, _dout),
    *dtype_rows(_fn, _base, _dout),
    *int_list_rows(_fn, _base, _dout),
    *shape_rows(_fn, _base, _dout, [(s, _relu_shape + rx(s)) for s in
                                    [(3, 2), (2, 3, 1), (1, 2, 3), (6,), (1, 3), (2, 1), (3,), (2, 4), ()]]),
    *empty_rows(_fn, _base, _dout, [(0, 3), (2, 0)]),
    *nonfinite_rows(_fn, _base, _dout),
    *mixed_rows(_fn, _base, [[_dout]], ["dout: float32, x: float64"]),
    row(f"{_fn}-mixed-f64-dout-f32-x", (DOUT_RELU, manual.relu_forward(X_RELU.astype(np.float32))[1]), TypeError,
        re.escape(DTYPE_MISMATCH) + "dout: float64, x: float32"),
    *cache_rows(_fn, _base, 1, [
        ("None", None, TypeError, None),
        ("list", [X_RELU], TypeError, None),
        ("bare-array", X_RELU, TypeError, None),
        ("empty-tuple", (), TypeError, None),
        ("two-arrays", (X_RELU, X_RELU), TypeError, None),
        ("affine-cache", AFF_CACHE, TypeError, None),
        ("dict", {"x": X_RELU}, TypeError, None),
        ("forward-output", manual.relu_forward(X_RELU), TypeError, None),
        ("entry-None", (None,), TypeError, r"^cache\[0\] \(x\) must be the array returned by relu_forward, got NoneType"),
        ("entry-list", (X_RELU.tolist(),), TypeError, r"^cache\[0\] \(x\) must be the array returned by relu_forward, got list"),
        ("entry-int", (X_RELU.astype(int),), TypeError, r"^cache\[0\] \(x\) must have a float dtype \(float64, float32, float16, bfloat16\), got int64"),
        ("entry-longdouble", (X_RELU.astype(np.longdouble),), TypeError, r"^cache\[0\] \(x\) must have a float dtype \(float64, float32, float16, bfloat16\), got float128"),
        ("entry-0d", (np.array(1.0),), ValueError, r"^cache\[0\] \(x\) must have at least 1 dimension\(s\), got shape \(\)"),
        ("entry-nan", (with_nonfinite(X_RELU, (1, 1), np.nan),), ValueError, r"^cache\[0\] \(x\) must be finite, found nan at index \(1, 1\)"),
    ], ("x",), "relu_forward"),
]

# --------------------------------------------------------------------- affine_forward

_fn = "affine_forward"
_base = ((X_AFF, W_AFF, B_AFF), {})
_ax, _aw, _ab = Arg(0, "x", X_AFF, "x"), Arg(1, "w", W_AFF, "w"), Arg(2, "b", B_AFF, "b")
_w_rows = r"^w must have shape \({d}, M\) to match x of shape {xs} \(D = {d}\), got {ws}"
_b_cols = r"^b must have shape {bs} \(one bias per column of w {ws}\), got {got}"
AFFINE_FORWARD_BAD = [
    *[r for a in (_ax, _aw, _ab) for r in not_array_rows(_fn, _base, a)],
    *[r for a in (_ax, _aw, _ab) for r in dtype_rows(_fn, _base, a, [np.int64, np.bool_, np.longdouble, np.complex128, object])],
    *int_list_rows(_fn, _base, _ax),
    *ndim_rows(_fn, _base, _ax, [(), (3,)], "at least 2"),
    *ndim_rows(_fn, _base, _aw, [(), (3,), (3, 4, 1)], "2"),
    *ndim_rows(_fn, _base, _ab, [(), (1, 4), (4, 1)], "1"),
    *shape_rows(_fn, _base, _aw, [
        ((4, 4), _w_rows.format(d=3, xs=rx((2, 3)), ws=rx((4, 4)))),
        ((2, 4), _w_rows.format(d=3, xs=rx((2, 3)), ws=rx((2, 4)))),
        ((4, 3), _w_rows.format(d=3, xs=rx((2, 3)), ws=rx((4, 3)))),
    ]),
    *shape_rows(_fn, _base, _ab, [
        ((3,), _b_cols.format(bs=rx((4,)), ws=rx((3, 4)), got=rx((3,)))),
        ((5,), _b_cols.format(bs=rx((4,)), ws=rx((3, 4)), got=rx((5,)))),
        ((1,), _b_cols.format(bs=rx((4,)), ws=rx((3, 4)), got=rx((1,)))),  # would broadcast
    ]),
    # multi-dimensional x: D is the product of the feature axes, not the first one
    row(f"{_fn}-w-shape-3d-x-first-axis-only", (X_AFF3, np.ones((3, 4)), B_AFF), ValueError,
        _w_rows.format(d=6, xs=rx((2, 3, 2)), ws=rx((3, 4)))),
    row(f"{_fn}-w-shape-3d-x-last-axis-only", (X_AFF3, np.ones((2, 4)), B_AFF), ValueError,
        _w_rows.format(d=6, xs=rx((2, 3, 2)), ws=rx((2, 4)))),
    *empty_rows(_fn, _base, _ax, [(0, 3), (2, 0), (0, 0), (2, 0, 3)]),
    *empty_rows(_fn, _base, _aw, [(3, 0), (0, 4)]),
    *empty_rows(_fn, _base, _ab, [(0,)]),
    *[r for a in (_ax, _aw, _ab) for r in nonfinite_rows(_fn, _base, a)],
    *mixed_rows(_fn, _base, [[_ax], [_aw], [_ab], [_ax, _aw]], [
        "x: float32, w: float64, b: float64", "x: float64, w: float32, b: float64",
        "x: float64, w: float64, b: float32", "x: float32, w: float32, b: float64",
    ]),
]

# -------------------------------------------------------------------- affine_backward

_fn = "affine_backward"
_base = ((DOUT_AFF, AFF_CACHE), {})
_adout = Arg(0, "dout", DOUT_AFF, "dout")
_aff_shape = rf"^dout must have shape {rx(DOUT_AFF.shape)} \(the shape of out in affine_forward\), got "
_c = r"^cache\[{i}\] \({n}\) "
AFFINE_BACKWARD_BAD = [
    *not_array_rows(_fn, _base, _adout),
    *dtype_rows(_fn, _base, _adout),
    *int_list_rows(_fn, _base, _adout),
    *ndim_rows(_fn, _base, _adout, [(), (4,), (8,), (2, 4, 1), (1, 2, 4)], "2"),
    *shape_rows(_fn, _base, _adout, [(s, _aff_shape + rx(s)) for s in [(4, 2), (1, 4), (2, 1), (3, 4), (2, 3), (2, 5)]]),
    *empty_rows(_fn, _base, _adout, [(0, 4), (2, 0)]),
    *nonfinite_rows(_fn, _base, _adout),
    *mixed_rows(_fn, _base, [[_adout]], ["dout: float32, x: float64"]),
    *cache_rows(_fn, _base, 1, [
        ("None", None, TypeError, None),
        ("list", list(AFF_CACHE), TypeError, None),
        ("relu-cache", RELU_CACHE, TypeError, None),
        ("two-arrays", AFF_CACHE[:2], TypeError, None),
        ("four-arrays", AFF_CACHE + (B_AFF,), TypeError, None),
        ("forward-output", manual.affine_forward(X_AFF, W_AFF, B_AFF), TypeError, None),
        ("dict", dict(zip("xwb", AFF_CACHE)), TypeError, None),
        ("entry-None", (None, W_AFF, B_AFF), TypeError, _c.format(i=0, n="x") + "must be the array returned by affine_forward, got NoneType"),
        ("entry-list", (X_AFF, W_AFF.tolist(), B_AFF), TypeError, _c.format(i=1, n="w") + "must be the array returned by affine_forward, got list"),
        ("entry-int", (X_AFF, W_AFF, B_AFF.astype(int)), TypeError, _c.format(i=2, n="b") + r"must have a float dtype \(float64, float32, float16, bfloat16\), got int64"),
        ("entry-mixed", (X_AFF, W_AFF.astype(np.float32), B_AFF), TypeError,
         re.escape(DTYPE_MISMATCH) + r"cache\[0\] \(x\): float64, cache\[1\] \(w\): float32, cache\[2\] \(b\): float64"),
        ("entry-nan", (X_AFF, W_AFF, with_nonfinite(B_AFF, (2,), np.nan)), ValueError, _c.format(i=2, n="b") + r"must be finite, found nan at index \(2,\)"),
        ("entry-empty", (X_AFF, W_AFF, np.ones(0)), ValueError, _c.format(i=2, n="b") + r"must not be empty, got shape \(0,\)"),
        ("swapped-x-w", (W_AFF, X_AFF, B_AFF), ValueError,
         _c.format(i=1, n="w") + rf"must have shape \(4, M\) to match cache\[0\] \(x\) of shape {rx((3, 4))} \(D = 4\), got {rx((2, 3))}"),
        ("x-1d", (X_AFF[0], W_AFF, B_AFF), ValueError, _c.format(i=0, n="x") + rf"must have at least 2 dimension\(s\), got shape {rx((3,))}"),
        ("w-1d", (X_AFF, B_AFF, B_AFF), ValueError, _c.format(i=1, n="w") + rf"must have 2 dimension\(s\), got shape {rx((4,))}"),
        ("b-2d", (X_AFF, W_AFF, B_AFF[None]), ValueError, _c.format(i=2, n="b") + rf"must have 1 dimension\(s\), got shape {rx((1, 4))}"),
        ("b-short", (X_AFF, W_AFF, B_AFF[:3]), ValueError,
         _c.format(i=2, n="b") + rf"must have shape {rx((4,))} \(one bias per column of cache\[1\] \(w\) {rx((3, 4))}\), got {rx((3,))}"),
    ], ("x", "w", "b"), "affine_forward"),
]

# ----------------------------------------------------------------------- softmax_loss

_fn = "softmax_loss"
_base = ((SCORES, Y_SOFT), {})
_s = Arg(0, "scores", SCORES, "scores")
_y_shape = r"^y must have shape \(3,\) \(one label per row of scores\), got "
_y_range = r"^y must hold labels in \[0, 4\), got {v} at index {i}"
_y_type = r"^y must be an integer array of labels"
SOFTMAX_LOSS_BAD = [
    *not_array_rows(_fn, _base, _s),
    *dtype_rows(_fn, _base, _s),
    *int_list_rows(_fn, _base, _s),
    *ndim_rows(_fn, _base, _s, [(), (3,), (3, 4, 1), (1, 3, 4)], "2"),
    *empty_rows(_fn, _base, _s, [(0, 4), (3, 0), (0, 0)]),
    *nonfinite_rows(_fn, _base, _s),
    # labels: not integer arrays -> TypeError
    *[row(f"{_fn}-y-{vid}", (SCORES, v), TypeError, _y_type) for vid, v in [
        ("None", None), ("str", "013"), ("bytes", b"\x00\x03\x01"), ("dict", {0: 0, 1: 3, 2: 1}),
        ("ragged-list", [[0, 1], [2]]), ("object", np.array([0, 3, 1], dtype=object)),
        ("float64", Y_SOFT.astype(np.float64)), ("float32", Y_SOFT.astype(np.float32)),
        ("float-list", [0.0, 3.0, 1.0]), ("nan", np.array([0.0, np.nan, 1.0])),
        ("bool", np.array([True, False, True])), ("bool-list", [True, False, True]),
        ("complex", Y_SOFT.astype(np.complex128)), ("str-array", np.array(["0", "3", "1"])),
        ("list-with-None", [0, None, 1]),
    ]],
    # labels: wrong shape -> ValueError with both shapes
    *[row(f"{_fn}-y-shape-{vid}", (SCORES, v), ValueError, _y_shape + rx(np.shape(v))) for vid, v in [
        ("short", Y_SOFT[:2]), ("long", np.array([0, 3, 1, 2])), ("column", Y_SOFT[:, None]),
        ("row", Y_SOFT[None, :]), ("0d", np.int64(1)), ("python-int", 1), ("empty", np.array([], dtype=int)),
        ("one-hot", np.eye(4, dtype=int)[Y_SOFT]),
    ]],
    # labels out of [0, C): NumPy would take -1 as the last class and raise IndexError for 4
    *[row(f"{_fn}-y-range-{vid}", (SCORES, np.array(v, dtype=dt)), ValueError, _y_range.format(v=bad, i=i))
      for vid, v, dt, bad, i in [
          ("minus-1", [-1, 0, 1], np.int64, -1, 0), ("minus-1-last", [0, 1, -1], np.int64, -1, 2),
          ("minus-4", [0, -4, 1], np.int64, -4, 1), ("int8-minus-1", [0, 1, -1], np.int8, -1, 2),
          ("equal-C", [0, 4, 1], np.int64, 4, 1), ("C-plus-1", [5, 0, 1], np.int64, 5, 0),
          ("huge", [0, 1, 2**40], np.int64, 2**40, 2), ("uint64-huge", [0, 2**63, 1], np.uint64, 2**63, 1),
          ("int32-min", [0, 1, -2**31], np.int32, -2**31, 2),
      ]],
]

# ------------------------------------------------------------------ two_layer_net_loss

_fn = "two_layer_net_loss"
_base = ((PARAMS, X_NET, Y_NET), {"reg": 0.1})
_X = Arg(1, "X", X_NET, "X")
_p = {k: Arg(f"params.{k}", rf"params\['{k}'\]", v) for k, v in PARAMS.items()}
_keys = r"^params must have exactly the keys \('W1', 'b1', 'W2', 'b2'\); missing {m}, unexpected {u}"
_y_net_range = r"^y must hold labels in \[0, 2\), got {v} at index {i}"


def _params_without(key):
    return {k: v for k, v in PARAMS.items() if k != key}


NET_BAD = [
    # params not a dict
    *[row(f"{_fn}-params-{vid}", (v, X_NET, Y_NET), TypeError, r"^params must be a dict with keys .*, got " + tn)
      for vid, v, tn in [("None", None, "NoneType"), ("list", list(PARAMS.values()), "list"),
                         ("tuple", tuple(PARAMS.values()), "tuple"), ("str", "W1", "str"),
                         ("array", np.ones(4), "ndarray"), ("items", list(PARAMS.items()), "list")]],
    # missing or extra keys
    *[row(f"{_fn}-params-missing-{k}", (_params_without(k), X_NET, Y_NET), ValueError,
          _keys.format(m=re.escape(str([k])), u=re.escape("[]"))) for k in PARAMS],
    row(f"{_fn}-params-empty-dict", ({}, X_NET, Y_NET), ValueError,
        _keys.format(m=re.escape(str(list(PARAMS))), u=re.escape("[]"))),
    row(f"{_fn}-params-extra-W3", ({**PARAMS, "W3": np.ones((2, 2))}, X_NET, Y_NET), ValueError,
        _keys.format(m=re.escape("[]"), u=re.escape("['W3']"))),
    row(f"{_fn}-params-extra-int-key", ({**PARAMS, 0: np.ones(2)}, X_NET, Y_NET), ValueError,
        _keys.format(m=re.escape("[]"), u=re.escape("['0']"))),
    row(f"{_fn}-params-lowercase-w1", ({**_params_without("W1"), "w1": PARAMS["W1"]}, X_NET, Y_NET), ValueError,
        _keys.format(m=re.escape("['W1']"), u=re.escape("['w1']"))),
    # each parameter: not an array, bad dtypes, wrong ndim, empty, non-finite
    *[r for k, a in _p.items() for r in not_array_rows(_fn, _base, a)[:4]],
    *[r for a in _p.values() for r in dtype_rows(_fn, _base, a, [np.int64, np.bool_, np.longdouble, np.complex128])],
    *ndim_rows(_fn, _base, _p["W1"], [(3,), (3, 4, 1)], "2"),
    *ndim_rows(_fn, _base, _p["b1"], [(1, 4)], "1"),
    *ndim_rows(_fn, _base, _p["W2"], [(4,)], "2"),
    *ndim_rows(_fn, _base, _p["b2"], [()], "1"),
    *empty_rows(_fn, _base, _p["W1"], [(3, 0)]),
    *empty_rows(_fn, _base, _p["b2"], [(0,)]),
    *[r for a in _p.values() for r in nonfinite_rows(_fn, _base, a, dtypes=(np.float64,))[1:3]],
    # parameters whose shapes disagree
    *shape_rows(_fn, _base, _p["b1"], [((3,), r"^params\['b1'\] must have shape \(4,\) to match W1 \(3, 4\), got \(3,\)"),
                                       ((1,), r"^params\['b1'\] must have shape \(4,\) to match W1 \(3, 4\), got \(1,\)")]),
    *shape_rows(_fn, _base, _p["W2"], [((3, 2), r"^params\['W2'\] must have shape \(4, C\) to match W1 \(3, 4\), got \(3, 2\)")]),
    *shape_rows(_fn, _base, _p["b2"], [((4,), r"^params\['b2'\] must have shape \(2,\) to match W2 \(4, 2\), got \(4,\)")]),
    # X
    *not_array_rows(_fn, _base, _X)[:5],
    *dtype_rows(_fn, _base, _X, [np.int64, np.bool_, np.longdouble, np.complex128, object]),
    *ndim_rows(_fn, _base, _X, [(3,), (5, 3, 1)], "2"),
    *shape_rows(_fn, _base, _X, [((5, 2), r"^X must have shape \(N, 3\) to match W1 \(3, 4\), got \(5, 2\)"),
                                 ((5, 4), r"^X must have shape \(N, 3\) to match W1 \(3, 4\), got \(5, 4\)"),
                                 ((3, 5), r"^X must have shape \(N, 3\) to match W1 \(3, 4\), got \(3, 5\)")]),
    *empty_rows(_fn, _base, _X, [(0, 3), (5, 0)]),
    *nonfinite_rows(_fn, _base, _X, dtypes=(np.float32,)),
    # mixed float32/float64
    *mixed_rows(_fn, _base, [[_X], [_p["W1"]], [_p["b2"]], [_X, _p["W1"], _p["b1"], _p["W2"]]], [
        r"X: float32, params\['W1'\]: float64", r"X: float64, params\['W1'\]: float32",
        r"params\['W2'\]: float64, params\['b2'\]: float32", r"params\['W2'\]: float32, params\['b2'\]: float64",
    ]),
    # labels
    *[row(f"{_fn}-y-{vid}", (PARAMS, X_NET, v), exc, match) for vid, v, exc, match in [
        ("minus-1", np.array([0, 1, -1, 0, 1]), ValueError, _y_net_range.format(v=-1, i=2)),
        ("equal-C", np.array([0, 1, 2, 0, 1]), ValueError, _y_net_range.format(v=2, i=2)),
        ("float", Y_NET.astype(float), TypeError, _y_type),
        ("bool", Y_NET.astype(bool), TypeError, _y_type),
        ("ragged", [[0, 1], [1, 0, 1]], TypeError, _y_type),
        ("short", Y_NET[:4], ValueError, r"^y must have shape \(5,\) .*got \(4,\)"),
        ("2d", Y_NET[:, None], ValueError, r"^y must have shape \(5,\) .*got \(5, 1\)"),
    ]],
    # reg
    *[row(f"{_fn}-reg-{vid}", (PARAMS, X_NET, Y_NET), exc, r"^reg must be a " + match, {"reg": v})
      for vid, v, exc, match in [
          ("negative", -0.1, ValueError, r"finite number >= 0, got -0\.1"),
          ("negative-int", -1, ValueError, r"finite number >= 0, got -1"),
          ("nan", float("nan"), ValueError, r"finite number >= 0, got nan"),
          ("np-nan", np.float64(np.nan), ValueError, r"finite number >= 0"),
          ("inf", float("inf"), ValueError, r"finite number >= 0, got inf"),
          ("-inf", -np.inf, ValueError, r"finite number >= 0"),
          ("too-large-int", 10**400, ValueError, r"finite number >= 0"),
          ("None", None, TypeError, r"real number"),
          ("str", "0.1", TypeError, r"real number"),
          ("bool", True, TypeError, r"real number"),
          ("np-bool", np.bool_(False), TypeError, r"real number"),
          ("complex", 0.1 + 0j, TypeError, r"real number"),
          ("complex-imag", 1j, TypeError, r"real number"),
          ("np-complex", np.complex128(0), TypeError, r"real number"),
          ("list", [0.1], TypeError, r"real number"),
          ("array-1", np.array([0.1]), TypeError, r"real number"),
          ("array-0d", np.array(0.1), TypeError, r"real number"),
          ("decimal", Decimal("0.1"), TypeError, r"real number"),
      ]],
]
# finite as a Python float, but not in the float32 the computation runs in
_args32, _kwargs32 = same_dtype_call(_base[0], {"reg": 1e300}, np.float32)
NET_BAD.append(row(f"{_fn}-reg-overflows-float32", _args32, ValueError,
                   r"^reg must be a finite number >= 0 representable in float32, got 1e\+300", _kwargs32))

TABLES = {
    "relu_forward": (manual.relu_forward, RELU_FORWARD_BAD),
    "relu_backward": (manual.relu_backward, RELU_BACKWARD_BAD),
    "affine_forward": (manual.affine_forward, AFFINE_FORWARD_BAD),
    "affine_backward": (manual.affine_backward, AFFINE_BACKWARD_BAD),
    "softmax_loss": (manual.softmax_loss, SOFTMAX_LOSS_BAD),
    "two_layer_net_loss": (manual.two_layer_net_loss, NET_BAD),
    **OPS_TABLES,  # sigmoid, tanh, gates, score_net, conv, max_pool, norms, dropout
}


def check_raises(fn, args, kwargs, exc, match):
    args, kwargs = copy.deepcopy(args), copy.deepcopy(kwargs)
    with pytest.raises((ValueError, TypeError)) as info:
        fn(*args, **kwargs)
    # the exact class: TypeError is not a ValueError, and no subclass (nor a NumPy error
    # that happens to derive from one of them) stands in for the one the row names
    assert type(info.value) is exc, f"expected {exc.__name__}, got {type(info.value).__name__}: {info.value}"
    assert re.search(match, str(info.value)), f"message {str(info.value)!r} does not match {match!r}"


@pytest.mark.parametrize("args, kwargs, exc, match", RELU_FORWARD_BAD)
def test_relu_forward_bad_input(args, kwargs, exc, match):
    check_raises(manual.relu_forward, args, kwargs, exc, match)


@pytest.mark.parametrize("args, kwargs, exc, match", RELU_BACKWARD_BAD)
def test_relu_backward_bad_input(args, kwargs, exc, match):
    check_raises(manual.relu_backward, args, kwargs, exc, match)


@pytest.mark.parametrize("args, kwargs, exc, match", AFFINE_FORWARD_BAD)
def test_affine_forward_bad_input(args, kwargs, exc, match):
    check_raises(manual.affine_forward, args, kwargs, exc, match)


@pytest.mark.parametrize("args, kwargs, exc, match", AFFINE_BACKWARD_BAD)
def test_affine_backward_bad_input(args, kwargs, exc, match):
    check_raises(manual.affine_backward, args, kwargs, exc, match)


@pytest.mark.parametrize("args, kwargs, exc, match", SOFTMAX_LOSS_BAD)
def test_softmax_loss_bad_input(args, kwargs, exc, match):
    check_raises(manual.softmax_loss, args, kwargs, exc, match)


@pytest.mark.parametrize("args, kwargs, exc, match", NET_BAD)
def test_two_layer_net_loss_bad_input(args, kwargs, exc, match):
    check_raises(manual.two_layer_net_loss, args, kwargs, exc, match)


@pytest.mark.parametrize("fn, args, kwargs, exc, match", [
    pytest.param(fn, *r.values, id=r.id) for fn, rows in OPS_TABLES.values() for r in rows])
def test_op_bad_input(fn, args, kwargs, exc, match):
    check_raises(fn, args, kwargs, exc, match)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_each_table_has_at_least_40_rows_with_unique_ids(name):
    rows = TABLES[name][1]
    assert len(rows) >= 40, f"{name}: only {len(rows)} bad inputs"
    ids = [r.id for r in rows]
    assert len(ids) == len(set(ids)), f"{name}: duplicate ids"
    assert all(r.values[2] in (ValueError, TypeError) for r in rows)


def test_every_public_function_has_a_table():
    assert sorted(manual.__all__) == sorted(TABLES)


# ------------------------------------------------------------------ inputs that work


def strided(a):
    """The same values in a non-contiguous view (every other element on each axis)."""
    a = np.asarray(a)
    big = np.zeros(tuple(2 * s for s in a.shape), dtype=a.dtype)
    view = big[tuple(slice(None, None, 2) for _ in a.shape)]
    view[...] = a
    assert a.size <= 1 or not view.flags.c_contiguous
    return view


def reversed_strides(a):
    """The same values in a view with negative strides."""
    a = np.asarray(a)
    view = a[tuple(slice(None, None, -1) for _ in a.shape)].copy()[tuple(slice(None, None, -1) for _ in a.shape)]
    return view


def fortran(a):
    out = np.asfortranarray(a)
    assert out.ndim < 2 or not out.flags.c_contiguous
    return out


def readonly(a):
    out = np.array(a)
    out.setflags(write=False)
    return out


def as_list(a):
    return np.asarray(a).tolist()


VARIANTS = {"list": as_list, "strided": strided, "negative-strides": reversed_strides,
            "fortran": fortran, "readonly": readonly}
LABEL_VARIANTS = {"list": as_list, "strided": strided, "readonly": readonly,
                  "int32": lambda y: np.asarray(y, dtype=np.int32), "uint8": lambda y: np.asarray(y, dtype=np.uint8),
                  "int16-strided": lambda y: strided(np.asarray(y, dtype=np.int16))}


def _relu_backward(x, dout):
    _, cache = manual.relu_forward(x)
    return manual.relu_backward(dout, cache)


def _affine_backward(x, w, b, dout):
    _, cache = manual.affine_forward(x, w, b)
    return manual.affine_backward(dout, cache)


def _net(W1, b1, W2, b2, X, y=None, reg=0.0):
    return manual.two_layer_net_loss({"W1": W1, "b1": b1, "W2": W2, "b2": b2}, X, y, reg=reg)


def _net_params_dict(params, X, y=None, reg=0.0):
    return manual.two_layer_net_loss(params, X, y, reg=reg)


# (name, function, float arguments, label arguments by position)
GOOD_CALLS = [
    ("relu_forward", manual.relu_forward, [X_RELU], {}),
    ("relu_backward", _relu_backward, [X_RELU, DOUT_RELU], {}),
    ("affine_forward", manual.affine_forward, [X_AFF, W_AFF, B_AFF], {}),
    ("affine_forward-3d", manual.affine_forward, [X_AFF3, W_AFF3, B_AFF], {}),
    ("affine_backward", _affine_backward, [X_AFF, W_AFF, B_AFF, DOUT_AFF], {}),
    ("affine_backward-3d", _affine_backward, [X_AFF3, W_AFF3, B_AFF, DOUT_AFF], {}),
    ("softmax_loss", manual.softmax_loss, [SCORES], {1: Y_SOFT}),
    ("two_layer_net_loss", _net, [*PARAMS.values(), X_NET], {5: Y_NET}),
    ("two_layer_net_loss-scores", _net, [*PARAMS.values(), X_NET], {}),
    *OPS_GOOD_CALLS,
]
ARG_NAMES = {"relu_forward": ["x"], "relu_backward": ["x", "dout"], "affine_forward": ["x", "w", "b"],
             "affine_backward": ["x", "w", "b", "dout"], "softmax_loss": ["scores", "y"],
             "two_layer_net_loss": ["W1", "b1", "W2", "b2", "X", "y"], **OPS_ARG_NAMES}


# ------------------------------------------------- how close a result from another layout is


def gamma(k: int, dtype) -> float:
    """Higham's gamma_k = k u / (1 - k u), u the unit roundoff (eps / 2) of ``dtype``: a sum
    of k products computed in ``dtype``, in any order and with or without FMA, is within
    gamma_k * (the sum of the |products|) of the exact sum (Accuracy and Stability of
    Numerical Algorithms, section 3.1)."""
    ku = k * float(np.finfo(dtype).eps) / 2
    assert ku < 1, f"gamma_{k} of {np.dtype(dtype).name} is no bound"
    return ku / (1 - ku)


@dataclass(frozen=True)
class Rounding:
    """How far a function's result on another memory layout of the same values may be
    from its result on C-contiguous arrays.

    kind:
        "exact": only correctly rounded elementwise operations, selections and sums in an
            order the code fixes (not the layout): the same bits on every layout and CPU.
        "summed": a multilinear function, every output a sum of at most ``terms`` products
            of the arguments (a BLAS call, a reduction): two evaluations in different
            orders differ by at most 2 gamma_K times the sum of the |products|, elementwise,
            and that sum is the function itself on the arguments' absolute values.
        "formula": nonlinear, with reductions and elementary functions (exp, tanh, sqrt)
            whose order and SIMD path may follow the layout: within the project's tolerance
            for one formula computed twice in one dtype, differing only by rounding and
            summation order (``tolerance_for(dtype, "autodiff")``, norm-wise).
    why: the reason, for a reader.
    terms: for "summed", the length K of the longest sum, from the plain call's float arguments.
    """

    kind: str
    why: str
    terms: Callable | None = None


EXACT = Rounding("exact", "elementwise, correctly rounded, or selections")
FORMULA = Rounding("formula", "reductions and elementary functions in a layout-dependent order")
ROUNDING = {
    **{name: EXACT for name in ("relu_forward", "relu_backward", "add_forward", "add_backward", "multiply_forward",
                                "multiply_backward", "max_forward", "max_backward", "max_pool_forward",
                                "max_pool_backward", "dropout_forward", "dropout_backward")},
    # out = x.reshape(N, D) @ w + b: D products and the bias
    "affine_forward": Rounding("summed", "x @ w + b", lambda x, w, b: w.shape[0] + 1),
    # dx = dout @ w.T sums M products, dw = X.T @ dout and db = sum(dout) sum N
    "affine_backward": Rounding("summed", "dout @ w.T, x.T @ dout, sum(dout)",
                                lambda x, w, b, dout: max(w.shape[1], x.shape[0])),
    # out[n, f, i, j] = b[f] + C * HH * WW products
    "conv_forward": Rounding("summed", "tensordot of windows and w, plus b", lambda x, w, b: w[0].size + 1),
    # dx: F products at each of HH * WW offsets; dw and db: one per position, N * H' * W'
    "conv_backward": Rounding("summed", "tensordots of dout with w and with the windows",
                              lambda x, w, b, dout: max(w.shape[0] * w.shape[2] * w.shape[3], dout[:, 0].size)),
    **{name: FORMULA for name in ("softmax_loss", "two_layer_net_loss", "sigmoid_forward", "sigmoid_backward",
                                  "tanh_forward", "tanh_backward", "score_net_forward", "score_net_backward",
                                  "batchnorm_forward", "batchnorm_backward", "layernorm_forward",
                                  "layernorm_backward")},
}


def magnitude(fn, plain_args, plain_kwargs):
    """The sum of the |products| behind each output of a multilinear ``fn``: ``fn`` itself
    on the absolute values of its float arguments, in float64."""
    absolute = [np.abs(a).astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                for a in plain_args]
    return fn(*absolute, **plain_kwargs)


def good_rows():
    rows = []
    for name, fn, floats, labels in GOOD_CALLS:
        names = ARG_NAMES[name.split("-")[0]]
        for dtype in FLOATS:
            plain = [a.astype(dtype) for a in floats]
            plain_args = plain + [labels[i] for i in sorted(labels)]
            for vid, variant in VARIANTS.items():
                if vid == "list" and dtype is np.float32:
                    continue  # a list of Python floats is float64
                for i in range(len(plain)):
                    args = list(plain_args)
                    args[i] = variant(plain[i])
                    rows.append(pytest.param(fn, args, plain_args, {}, {},
                                             id=f"{name}-{names[i]}-{vid}-{np.dtype(dtype).name}"))
                if len(plain) > 1:
                    args = [variant(a) for a in plain] + [labels[i] for i in sorted(labels)]
                    rows.append(pytest.param(fn, args, plain_args, {}, {}, id=f"{name}-all-{vid}-{np.dtype(dtype).name}"))
            for vid, variant in LABEL_VARIANTS.items():
                for i in labels:
                    args = list(plain_args)
                    args[i] = variant(labels[i])
                    rows.append(pytest.param(fn, args, plain_args, {}, {},
                                             id=f"{name}-{names[i]}-{vid}-{np.dtype(dtype).name}"))
    # reg: NumPy and Python scalars, 0-d NumPy scalars, compared with the plain float
    net_args = [*PARAMS.values(), X_NET, Y_NET]
    for vid, reg, plain_reg in [
        ("np-float64", np.float64(0.25), 0.25), ("np-float32", np.float32(0.25), 0.25),
        ("int-0", 0, 0.0), ("np-int64-0", np.int64(0), 0.0), ("int-1", 1, 1.0), ("np-uint8-2", np.uint8(2), 2.0),
        ("fraction", Fraction(1, 4), 0.25), ("minus-zero", -0.0, 0.0),
    ]:
        for dtype in FLOATS:
            args = [a.astype(dtype) if a.dtype.kind == "f" else a for a in net_args]
            rows.append(pytest.param(_net, args, args, {"reg": reg}, {"reg": plain_reg},
                                     id=f"two_layer_net_loss-reg-{vid}-{np.dtype(dtype).name}"))
    # params values as lists, and params as a dict subclass, through the public signature
    rows.append(pytest.param(_net_params_dict, [{k: v.tolist() for k, v in PARAMS.items()}, X_NET.tolist(), Y_NET.tolist()],
                             [PARAMS, X_NET, Y_NET], {"reg": 0.5}, {"reg": 0.5}, id="two_layer_net_loss-all-lists-reg-0.5"))
    # stride, pad, pool, eps, p and ds as NumPy or Python scalars
    rows.extend(OPS_GOOD_EXTRA)
    # every row's id begins with its function's name, which says how close its result must be
    return [pytest.param(*r.values, ROUNDING[r.id.split("-")[0]], id=r.id) for r in rows]


def assert_unchanged(before, after, what):
    if isinstance(before, np.ndarray):
        assert isinstance(after, np.ndarray), what
        assert after.dtype == before.dtype and after.shape == before.shape, what
        np.testing.assert_array_equal(after, before, err_msg=what)
    elif isinstance(before, dict):
        assert list(after) == list(before), what
        for k in before:
            assert_unchanged(before[k], after[k], f"{what}[{k!r}]")
    else:
        assert type(after) is type(before) and after == before, what


def allowed_difference(rounding: Rounding, fn, plain_args, plain_kwargs):
    """For a "summed" function, the elementwise bound on |got - want|, shaped like the
    result: 2 gamma_K of the computation's dtype times the sum of the |products| (itself
    computed in float64, rounded down by at most gamma_K of float64, hence the division).
    None for the other kinds."""
    if rounding.kind != "summed":
        return None
    floats = [a for a in plain_args if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    k = rounding.terms(*floats)
    factor = 2 * gamma(k, floats[0].dtype) / (1 - gamma(k, np.float64))

    def scaled(value):
        if isinstance(value, tuple):
            return tuple(scaled(v) for v in value)
        if isinstance(value, dict):
            return {key: scaled(v) for key, v in value.items()}
        return np.asarray(value) * factor if np.asarray(value).dtype.kind == "f" else value

    return scaled(magnitude(fn, plain_args, plain_kwargs))


def assert_same_result(got, want, rounding: Rounding = EXACT, allowed=None, what="result"):
    """Shape, then dtype, then values: exact, or within ``allowed`` ("summed", elementwise) or
    the autodiff tolerance ("formula", norm-wise).  Integer and other non-float values are
    always exact."""
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), what
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same_result(g, w, rounding, None if allowed is None else allowed[i], f"{what}[{i}]")
    elif isinstance(want, dict):
        assert list(got) == list(want), what
        for k in want:
            assert_same_result(got[k], want[k], rounding, None if allowed is None else allowed[k], f"{what}[{k!r}]")
    else:
        g, w = np.asarray(got), np.asarray(want)
        assert g.shape == w.shape, f"{what}: shape {g.shape} != {w.shape}"
        assert g.dtype == w.dtype, f"{what}: dtype {g.dtype} != {w.dtype}"
        if w.dtype.kind != "f" or rounding.kind == "exact":
            np.testing.assert_array_equal(g, w, err_msg=what)
        elif rounding.kind == "summed":
            diff = np.abs(g.astype(np.float64) - w.astype(np.float64))
            limit = np.asarray(allowed, dtype=np.float64)
            worst = np.unravel_index(np.argmax(diff - limit), diff.shape)
            assert np.all(diff <= limit), (
                f"{what} ({w.dtype}): |got - want| {diff[worst]:.3g} at {list(map(int, worst))}, allowed there "
                f"{limit[worst]:.3g} (2 gamma_K x the sum of |products|: {rounding.why})")
        else:
            rtol = tolerance_for(w.dtype.name, "autodiff").rtol
            error = normwise_rel_error(g, w)
            assert error <= rtol, (f"{what} ({w.dtype}): norm-wise relative difference {error:.3g}, allowed {rtol:g} "
                                   f"(the {w.dtype} autodiff tolerance: {rounding.why})")


@pytest.mark.parametrize("fn, args, plain_args, kwargs, plain_kwargs, rounding", good_rows())
def test_good_input_matches_plain_c_contiguous_call(fn, args, plain_args, kwargs, plain_kwargs, rounding):
    # the reference call on plain C-contiguous copies
    plain_args = [np.ascontiguousarray(a) if isinstance(a, np.ndarray) else a for a in plain_args]
    before = copy.deepcopy((args, kwargs))
    flags = [a.flags.writeable for a in args if isinstance(a, np.ndarray)]
    got = fn(*args, **kwargs)
    want = fn(*plain_args, **plain_kwargs)
    assert_same_result(got, want, rounding, allowed_difference(rounding, fn, plain_args, plain_kwargs))
    # nothing was written into the arguments (a read-only one would have raised)
    for i, (b, a) in enumerate(zip(before[0], args)):
        assert_unchanged(b, a, f"argument {i}")
    for k in kwargs:
        assert_unchanged(before[1][k], kwargs[k], f"argument {k}")
    assert flags == [a.flags.writeable for a in args if isinstance(a, np.ndarray)]


# ------------------------------------------------ the comparison itself (it can fail, and how)


def _good_call(name):
    """(fn, arguments) of the good call ``name`` in float64, C-contiguous, labels last."""
    fn, floats, labels = next((fn, floats, labels) for n, fn, floats, labels in GOOD_CALLS if n == name)
    return fn, [a.astype(np.float64) for a in floats] + [labels[i] for i in sorted(labels)]


def _read_in_the_wrong_order(a):
    """The values of ``a`` as a layout bug would see them: a Fortran-ordered buffer read as
    if it were C-ordered."""
    return np.asfortranarray(a).ravel(order="K").reshape(a.shape)


def test_every_good_call_says_how_close_its_result_must_be():
    assert set(ROUNDING) == {name.split("-")[0] for name, *_ in GOOD_CALLS}


@pytest.mark.parametrize("name, position", [("relu_forward", 0), ("conv_forward", 1), ("affine_backward", 3),
                                            ("batchnorm_forward", 0)])
def test_values_read_in_the_wrong_order_are_caught(name, position):
    fn, plain = _good_call(name)
    rounding = ROUNDING[name]
    wrong = list(plain)
    wrong[position] = _read_in_the_wrong_order(plain[position])
    assert not np.array_equal(wrong[position], plain[position])
    with pytest.raises(AssertionError):
        assert_same_result(fn(*wrong), fn(*plain), rounding, allowed_difference(rounding, fn, plain, {}))


@pytest.mark.parametrize("name", [n for n, rounding in ROUNDING.items() if rounding.kind != "exact"])
def test_the_rounding_allowed_in_float64_is_below_float32_accuracy(name):
    """A float64 result that is only float32-accurate (computed in float32 somewhere) fails:
    the allowance is a few float64 ulps of what was summed, not a loose tolerance."""
    fn, plain = _good_call(name)
    rounding = ROUNDING[name]
    want = fn(*plain)

    def float32_accurate(value):
        if isinstance(value, tuple):
            return tuple(float32_accurate(v) for v in value)
        if isinstance(value, dict):
            return {k: float32_accurate(v) for k, v in value.items()}
        value = np.asarray(value)
        return value.astype(np.float32).astype(np.float64) if value.dtype == np.float64 else value

    with pytest.raises(AssertionError):
        assert_same_result(float32_accurate(want), want, rounding, allowed_difference(rounding, fn, plain, {}))


@pytest.mark.parametrize("dtype", FLOATS)
def test_the_rounding_allowed_admits_the_sums_in_any_order(dtype):
    """out = x @ w + b summed front to back and back to front (elementwise NumPy, the same
    bits on every CPU) rounds differently, and both lie within the bound around the BLAS
    result, whatever order the CPU's BLAS kernel took."""
    rng = np.random.default_rng(7)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((8, 64), (64, 5), (5,)))
    orders = []
    for ks in (range(64), reversed(range(64))):
        acc = np.zeros((8, 5), dtype=dtype)
        for k in ks:
            acc += x[:, k, None] * w[k]
        orders.append(acc + b)
    assert not np.array_equal(*orders)  # the two orders do round differently
    rounding = ROUNDING["affine_forward"]
    allowed = allowed_difference(rounding, manual.affine_forward, [x, w, b], {})
    want = manual.affine_forward(x, w, b)
    for out in orders:
        assert_same_result((out, (x, w, b)), want, rounding, allowed)


def test_conv_hands_tensordot_the_same_operands_for_every_layout(monkeypatch):
    """The convolution's sums are BLAS calls through tensordot, whose kernel (and order of
    summation) follows its operands' layout: every layout of x, w and dout must reach it as
    the C-contiguous call's operands do, so the result is the same bits on any CPU."""
    seen: list = []
    tensordot = np.tensordot

    def spy(a, b, axes):
        seen.append([(np.shape(v), np.asarray(v).strides, np.asarray(v).dtype) for v in (a, b)])
        return tensordot(a, b, axes)

    monkeypatch.setattr(np, "tensordot", spy)
    fn, plain = _good_call("conv_backward")

    def operands(arrays):
        seen.clear()
        fn(*arrays)
        return list(seen)

    want = operands(plain)
    assert len(want) == 2 + 3 * 3  # conv_forward's one, dw's one, one per 3x3 offset for dx
    for vid in ("strided", "negative-strides", "fortran"):
        for i in range(len(plain)):
            arrays = list(plain)
            arrays[i] = VARIANTS[vid](plain[i])
            assert operands(arrays) == want, f"{vid} {['x', 'w', 'b', 'dout'][i]}"
