"""Row builders shared by the bad-input tables (``test_bad_inputs.py`` and
``bad_input_tables_ops.py``): each helper turns one category of bad input for one argument
of a good call into ``pytest.param`` rows of (args, kwargs, exception class, message regex).
"""

from __future__ import annotations

import re

import numpy as np
import pytest


FLOATS = (np.float32, np.float64)
# dtypes that are not float64/float32/float16/bfloat16; longdouble only where it differs from float64
BAD_DTYPES = [np.int8, np.int32, np.int64, np.uint8, np.bool_, np.complex64, np.complex128, object, "U8"]
if np.dtype(np.longdouble) != np.dtype(np.float64):
    BAD_DTYPES.append(np.longdouble)
NOT_ARRAYS = [
    ("None", None),
    ("str", "abc"),
    ("bytes", b"abc"),
    ("dict", {"a": 1.0}),
    ("ragged-list", [[1.0, 2.0], [3.0]]),
    ("object", object()),
    ("list-of-str", ["a", "b"]),
]
NOT_ARRAY_MSG = r"must (be an array of float32 or float64|have a float dtype \(float64, float32, float16, bfloat16\))"
DTYPE_MISMATCH = "arguments must share one floating dtype, got "


# ---------------------------------------------------------------------------- helpers


def sh(shape) -> str:
    """A shape for an id: (2, 3) -> 2x3, () -> 0d."""
    return "x".join(map(str, shape)) if len(shape) else "0d"


def rx(shape) -> str:
    """A regex for a shape as Python prints it: (2, 3) -> \\(2,\\ 3\\)."""
    return re.escape(str(tuple(shape)))


def row(id_, args, exc, match, kwargs=None):
    """One bad input: the call's arguments, the exact exception class, a message regex."""
    return pytest.param(args, kwargs or {}, exc, match, id=id_)


class Arg:
    """One argument of a call: where it goes (a position, a keyword or ``params.KEY``), its
    name in messages (a regex) and a good value."""

    def __init__(self, where, name_rx, value, id_=None):
        self.where, self.name_rx, self.value = where, name_rx, value
        self.id = id_ or (where.replace("params.", "") if isinstance(where, str) else name_rx)


def put(base_args, base_kwargs, where, value):
    """Return (args, kwargs): the good call with the argument at ``where`` replaced."""
    args, kwargs = list(base_args), dict(base_kwargs)
    if isinstance(where, int):
        args[where] = value
    elif where.startswith("params."):
        params = dict(args[0])
        params[where.split(".", 1)[1]] = value
        args[0] = params
    else:
        kwargs[where] = value
    return tuple(args), kwargs


def with_nonfinite(a, index, value):
    a = a.copy()
    a[index] = value
    return a


def not_array_rows(fn, base, arg):
    """None, strings, dicts, ragged lists, objects: TypeError naming the argument."""
    rows = []
    for vid, v in NOT_ARRAYS:
        args, kwargs = put(*base, arg.where, v)
        rows.append(row(f"{fn}-{arg.id}-not-array-{vid}", args, TypeError, rf"^{arg.name_rx} {NOT_ARRAY_MSG}", kwargs))
    return rows


def dtype_rows(fn, base, arg, dtypes=BAD_DTYPES):
    """Integer, bool, complex, object, str, longdouble arrays: TypeError."""
    rows = []
    for dtype in dtypes:
        bad = arg.value.astype(dtype)
        args, kwargs = put(*base, arg.where, bad)
        rows.append(row(f"{fn}-{arg.id}-dtype-{bad.dtype.name}", args, TypeError,
                        rf"^{arg.name_rx} must have a float dtype \(float64, float32, float16, bfloat16\), got {re.escape(str(bad.dtype))}", kwargs))
    return rows


def int_list_rows(fn, base, arg):
    """A list of Python ints becomes int64: TypeError (no silent conversion to float)."""
    args, kwargs = put(*base, arg.where, np.rint(arg.value).astype(int).tolist())
    return [row(f"{fn}-{arg.id}-list-of-int", args, TypeError,
                rf"^{arg.name_rx} must have a float dtype \(float64, float32, float16, bfloat16\), got int64", kwargs)]


def nonfinite_rows(fn, base, arg, dtypes=FLOATS):
    """NaN, +Inf, -Inf at the first and the last element, in each float dtype: ValueError."""
    rows = []
    first, last = (0,) * arg.value.ndim, tuple(s - 1 for s in arg.value.shape)
    for dtype in dtypes:
        for vid, v, index in [("nan-first", np.nan, first), ("nan-last", np.nan, last),
                              ("inf", np.inf, last), ("-inf", -np.inf, first)]:
            bad = with_nonfinite(arg.value, index, v).astype(dtype)
            args, kwargs = put(*base, arg.where, bad)
            # the other arguments take the same dtype, so the finiteness check is what fails
            args, kwargs = same_dtype_call(args, kwargs, dtype)
            rows.append(row(f"{fn}-{arg.id}-{vid}-{np.dtype(dtype).name}", args, ValueError,
                            rf"^{arg.name_rx} must be finite, found {re.escape(str(v))} at index {rx(index)}", kwargs))
    return rows


def same_dtype_call(args, kwargs, dtype):
    """Cast every float array in the call (params values and cache entries included)."""

    def cast(v):
        if isinstance(v, np.ndarray) and v.dtype in (np.float32, np.float64):
            return v.astype(dtype)
        if isinstance(v, tuple):
            return tuple(cast(u) for u in v)
        if isinstance(v, dict):
            return {k: cast(u) for k, u in v.items()}
        return v

    return tuple(cast(a) for a in args), {k: cast(v) for k, v in kwargs.items()}


def ndim_rows(fn, base, arg, shapes, rule):
    """Wrong number of dimensions: ValueError naming the argument and the shape."""
    rows = []
    for shape in shapes:
        bad = np.ones(shape)
        args, kwargs = put(*base, arg.where, bad)
        rows.append(row(f"{fn}-{arg.id}-ndim-{sh(shape)}", args, ValueError,
                        rf"^{arg.name_rx} must have {rule} dimension\(s\), got shape {rx(shape)}", kwargs))
    return rows


def empty_rows(fn, base, arg, shapes):
    """An empty axis (N=0, or an empty feature axis): ValueError with the shape."""
    rows = []
    for shape in shapes:
        args, kwargs = put(*base, arg.where, np.ones(shape))
        rows.append(row(f"{fn}-{arg.id}-empty-{sh(shape)}", args, ValueError,
                        rf"^{arg.name_rx} must not be empty, got shape {rx(shape)}", kwargs))
    return rows


def shape_rows(fn, base, arg, cases):
    """Mismatched shapes between arguments: ``cases`` is [(shape, message regex)]."""
    rows = []
    for shape, match in cases:
        args, kwargs = put(*base, arg.where, np.ones(shape))
        rows.append(row(f"{fn}-{arg.id}-shape-{sh(shape)}", args, ValueError, match, kwargs))
    return rows


def mixed_rows(fn, base, args_to_f32, expected):
    """float32 for some arguments, float64 for the rest: TypeError listing the dtypes."""
    rows = []
    for names, listed in zip(args_to_f32, expected):
        args, kwargs = base
        for arg in names:
            args, kwargs = put(args, kwargs, arg.where, arg.value.astype(np.float32))
        rows.append(row(f"{fn}-mixed-f32-{'+'.join(a.id for a in names)}", args, TypeError,
                        re.escape(DTYPE_MISMATCH) + ".*" + listed, kwargs))
    return rows


def cache_rows(fn, base, where, cases, names, forward):
    """Caches that are not the tuple the forward returned."""
    names_rx = re.escape(str(names))
    rows = []
    for cid, cache, exc, match in cases:
        args, kwargs = put(*base, where, cache)
        if match is None:  # the cache itself is of the wrong type or length
            match = rf"^cache must be the tuple {names_rx} returned by {forward}, got "
        rows.append(row(f"{fn}-cache-{cid}", args, exc, match, kwargs))
    return rows


def value_rows(fn, base, where, id_, cases):
    """A non-array argument (stride, pad, pool, p, eps, ds): ``cases`` is
    [(value id, value, exception class, message regex)]."""
    rows = []
    for vid, value, exc, match in cases:
        args, kwargs = put(*base, where, value)
        rows.append(row(f"{fn}-{id_}-{vid}", args, exc, match, kwargs))
    return rows


def common_cache_cases(good, other, forward_output, entry_names, forward, forward_output_match=None):
    """The cache cases every backward shares: not a tuple, the wrong length, another
    forward's cache, and entries that are not finite float32/float64 arrays.

    ``good`` is the forward's cache (arrays only), ``other`` a cache of another op of a
    different length, ``forward_output`` the forward's whole (out, cache) return value (a
    TypeError: the generic message, or ``forward_output_match`` where its length happens
    to be the cache's).
    """
    first, name0 = good[0], entry_names[0]
    c0 = rf"^cache\[0\] \({name0}\) "
    return [
        ("None", None, TypeError, None),
        ("list", list(good), TypeError, None),
        ("bare-array", first, TypeError, None),
        ("empty-tuple", (), TypeError, None),
        ("one-more", tuple(good) + (first,), TypeError, None),
        ("other-op", other, TypeError, None),
        ("dict", dict(zip(entry_names, good)), TypeError, None),
        ("forward-output", forward_output, TypeError, forward_output_match),
        ("entry-None", (None, *good[1:]), TypeError, c0 + f"must be the array returned by {forward}, got NoneType"),
        ("entry-list", (first.tolist(), *good[1:]), TypeError, c0 + f"must be the array returned by {forward}, got list"),
        ("entry-int", (first.astype(int), *good[1:]), TypeError, c0 + r"must have a float dtype \(float64, float32, float16, bfloat16\), got int64"),
        ("entry-longdouble", (first.astype(np.longdouble), *good[1:]), TypeError, c0 + r"must have a float dtype \(float64, float32, float16, bfloat16\), got float128"),
        ("entry-nan", (with_nonfinite(first, (0,) * first.ndim, np.nan), *good[1:]), ValueError,
         c0 + rf"must be finite, found nan at index {rx((0,) * first.ndim)}"),
        ("entry-empty", (np.ones((0,) * first.ndim), *good[1:]), ValueError, c0 + r"must not be empty, got shape"),
    ]
