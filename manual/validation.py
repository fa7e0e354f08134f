"""Argument checks shared by the layers in ``manual``.

Every public function in ``manual`` validates its arguments before computing, so that bad
input fails loudly with a message naming the argument, rather than producing a silently
wrong gradient (NumPy broadcasting and negative indexing make that easy).

Decisions, documented once here:

* Array-likes (lists, tuples, NumPy scalars) are converted with ``np.asarray``; a list of
  Python floats becomes float64.  Non-contiguous, Fortran-ordered and read-only arrays are
  accepted as they are; nothing in ``manual`` writes into its arguments.
* Floating arguments must be float64, float32, float16 or bfloat16 (the ``ml_dtypes`` type
  JAX brings; recognised by its name, so ``manual`` needs no import of it), all of one dtype
  within a call: mixing float32 and float64 would silently promote, so it is a ``TypeError``.
  Each layer computes in its inputs' dtype, so a float16 call rounds as a float16 kernel does.
* Labels must be an integer array (not bool) of shape ``(N,)`` with values in ``[0, C)``.
* Values must be finite: a NaN or Inf in the input makes every gradient meaningless.
* A ``cache`` must be the tuple the matching forward returned: a tuple of the right length
  holding NumPy arrays (not lists) of one floating dtype, with consistent shapes, and with
  values that forward can produce (a sigmoid output in [0, 1], a positive std, ...: a
  cache of the wrong values would give a silently wrong gradient).  Anything else is a
  ``TypeError`` (or a ``ValueError`` for inconsistent shapes or impossible values), never
  an ``AttributeError`` or ``IndexError`` from deep inside NumPy.
* Scalars that the computation casts to the arrays' dtype (``eps``, ``p``, ``ds``, ``reg``)
  must stay finite and in range after the cast: ``1e300`` is no float32, and a Python int
  too large for a float is a ``ValueError``, not an ``OverflowError``.
"""

from __future__ import annotations

import numbers

import numpy as np

FLOAT_NAMES = ("float64", "float32", "float16", "bfloat16")  # dtype names a float argument may have


def as_float_array(value, name: str, ndim: int | None = None, min_ndim: int | None = None) -> np.ndarray:
    """Return ``value`` as a float64/float32/float16/bfloat16 array, or raise naming ``name``.

    Args:
        value: the argument as passed by the caller.
        name: the argument's name, used in error messages.
        ndim: the exact number of dimensions required, if any.
        min_ndim: the least number of dimensions required, if any.

    Returns:
        The argument as an ``np.ndarray`` (the same object when it already is one).

    Raises:
        TypeError: not array-like, or not of a floating dtype (``FLOAT_NAMES``).
        ValueError: wrong number of dimensions, an empty axis, or a non-finite value.
    """
    if isinstance(value, dict) or value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an array of float32 or float64, got {type(value).__name__}")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of float32 or float64: {exc}") from None
    if array.dtype.kind not in "fV" or array.dtype.name not in FLOAT_NAMES:  # bfloat16's kind is "V"
        raise TypeError(f"{name} must have a float dtype (float64, float32, float16, bfloat16), got {array.dtype} "
                        f"with shape {array.shape}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    if min_ndim is not None and array.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(f"{name} must be finite, found {array[tuple(bad)]} at index {tuple(int(i) for i in bad)}")
    return array


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in a's dtype.  NumPy multiplies float16 and bfloat16 matrices in float32
    (``ml_dtypes`` registers no low-precision matmul), so the product is rounded back, as a
    low-precision kernel that accumulates in float32 rounds its output; for float32 and
    float64 it is ``a @ b`` itself (no copy)."""
    return (a @ b).astype(a.dtype, copy=False)


def same_dtype(**arrays: np.ndarray) -> np.dtype:
    """Return the one dtype shared by ``arrays``, or raise a ``TypeError`` listing them."""
    dtypes = {name: array.dtype for name, array in arrays.items()}
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{name}: {dtype}" for name, dtype in dtypes.items())
        raise TypeError(f"arguments must share one floating dtype, got {listed}")
    return next(iter(dtypes.values()))


def same_shape(name: str, array: np.ndarray, expected: tuple[int, ...], what: str) -> None:
    """Raise a ``ValueError`` unless ``array.shape == expected`` (``what`` names the source)."""
    if array.shape != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)} ({what}), got {array.shape}")


def as_labels(y, n: int, num_classes: int, name: str = "y") -> np.ndarray:
    """Return ``y`` as an integer array of shape ``(n,)`` with values in ``[0, num_classes)``.

    Raises:
        TypeError: ``y`` is not an integer array (floats, bools, objects and ragged lists
            are refused; ``3.0`` is not a label).
        ValueError: wrong shape, or a label outside ``[0, num_classes)`` (NumPy would
            silently accept -1 as "the last class").
    """
    if isinstance(y, dict) or y is None or isinstance(y, (str, bytes)):
        raise TypeError(f"{name} must be an integer array of labels, got {type(y).__name__}")
    try:
        labels = np.asarray(y)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise TypeError(f"{name} must be an integer array of labels: {exc}") from None
    if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array of labels, got dtype {labels.dtype} with shape {labels.shape}")
    if labels.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) (one label per row of scores), got {labels.shape}")
    out_of_range = (labels < 0) | (labels >= num_classes)
    if np.any(out_of_range):
        i = int(np.argmax(out_of_range))
        raise ValueError(f"{name} must hold labels in [0, {num_classes}), got {int(labels[i])} at index {i}")
    return labels


def check_cache(cache, names: tuple[str, ...], fn: str) -> tuple[np.ndarray, ...]:
    """Unpack a cache tuple produced by the matching forward, or raise naming ``cache``.

    Each element must be a NumPy array (the forward only ever caches arrays) of dtype
    float32/float64, finite and non-empty, all of one dtype.  Shapes are checked by the
    caller, which knows how they relate.

    Raises:
        TypeError: not a tuple, the wrong length, an element that is not a float32/float64
            ``np.ndarray``, or elements of different dtypes.
        ValueError: an element that is empty or holds a non-finite value.
    """
    if not isinstance(cache, tuple) or len(cache) != len(names):
        got = f"a tuple of length {len(cache)}" if isinstance(cache, tuple) else type(cache).__name__
        raise TypeError(f"cache must be the tuple {names} returned by {fn}, got {got}")
    arrays = {}
    for i, (name, value) in enumerate(zip(names, cache)):
        label = f"cache[{i}] ({name})"
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{label} must be the array returned by {fn}, got {type(value).__name__}")
        arrays[label] = as_float_array(value, label)
    same_dtype(**arrays)
    return tuple(arrays.values())


def check_min_ndim(name: str, array: np.ndarray, least: int) -> None:
    """Raise a ``ValueError`` unless ``array`` has at least ``least`` dimensions."""
    if array.ndim < least:
        raise ValueError(f"{name} must have at least {least} dimension(s), got shape {array.shape}")


def check_values(name: str, array: np.ndarray, ok: np.ndarray, what: str) -> None:
    """Raise a ``ValueError`` naming the first element of ``array`` where ``ok`` is False.

    ``what`` says what was expected, e.g. "sigmoid_forward outputs in [0, 1]".
    """
    if not np.all(ok):
        bad = tuple(int(i) for i in np.argwhere(~ok)[0])
        raise ValueError(f"{name} must hold {what}, found {array[bad]} at index {bad}")


def real_scalar(value, name: str, expected: str) -> float:
    """Return a real number (int, float, Fraction, NumPy scalar; not bool) as a Python float.

    Raises:
        TypeError: not a real number (bool, complex, str, arrays, None, Decimal).
        ValueError: too large for a float (a Python int beyond 1e308).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number {expected}, got {type(value).__name__} {value!r}")
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{name} must be a finite number {expected}, got {value!r}") from None


def fits_dtype(value: float, dtype: np.dtype) -> bool:
    """Whether the finite float ``value`` stays finite when cast to ``dtype``."""
    with np.errstate(over="ignore"):
        return bool(np.isfinite(value)) and bool(np.isfinite(np.asarray(value).astype(dtype)))
