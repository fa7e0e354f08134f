"""Severity: what fails a check (an error) and what is shown but passes (a warning), decided here.

An **error** is a wrong value (forward or gradient), an exception, a structure that cannot be
compared, or a non-finite result on ordinary inputs.  A **warning** is a difference that
leaves every value right:

* ``dtype-promoted``: a float dtype more precise than the case's (float64 out for a float32
  case: NumPy 2 promotes ``float32_array * np.float64(c)``, and ``(rand < p) / p`` is float64);
  the values are compared as returned, at the case's tolerance;
* ``shape-size-1``: a shape that differs from the expected one only by axes of size 1
  (``dgamma`` of shape ``(1, D)`` for ``(D,)``); the values are compared reshaped;
* ``wrote-into-argument``: a function wrote into one of its arguments, the upstream gradient
  or (through its cache) an input (``dout[x <= 0] = 0``, ``dnext_c += ...``).  Every
  implementation gets its own copies of the inputs, so the values it returns are still
  judged; the warning names the function and its own parameter;
* ``non-finite-at-extreme-inputs``: a non-finite result where the reference is finite, on
  inputs beyond the range where ``exp`` overflows in the case's dtype (logits of 1e4): a
  robustness observation, not a wrong gradient.  On ordinary inputs it stays an error.

A check exits 0 with its warnings shown, as a compiler does; ``--strict`` (``strict=True``)
makes warnings fail.  Warnings never stand in for a value check: values are always compared,
cast or reshaped where compatible.
"""

from __future__ import annotations

import math

import numpy as np

from gradmatrix.oracles.result import WROTE_INTO_ARGUMENT, differs_by_size_1_axes  # noqa: F401 (the rule's home)

DTYPE_PROMOTED = "dtype-promoted"
SHAPE_SIZE_1 = "shape-size-1"
NON_FINITE_AT_EXTREME = "non-finite-at-extreme-inputs"

# what each kind of warning means, for the console's one line per kind and the reports
WARNINGS = {
    DTYPE_PROMOTED: "returned a more precise dtype than the case's (the values are compared as returned)",
    SHAPE_SIZE_1: "returned a shape that differs only by axes of size 1 (the values are compared reshaped)",
    WROTE_INTO_ARGUMENT: "wrote into an argument (each implementation gets its own copies: the values are still judged)",
    NON_FINITE_AT_EXTREME: "returned non-finite values only at extreme inputs, where exp overflows (the reference is "
                           "finite there): not a wrong gradient, but the function is not robust",
}


def promoted(dtype, expected) -> bool:
    """Whether ``dtype`` is a float dtype more precise than ``expected`` (a warning, not an error)."""
    dtype, expected = np.dtype(dtype), np.dtype(expected)
    return dtype.kind == "f" and expected.kind == "f" and dtype.itemsize > expected.itemsize


def extreme_inputs(arrays: dict, dtype: str) -> bool:
    """Whether a case's float inputs reach beyond log(max) of its dtype (88.7 in float32, 709.8
    in float64), where ``exp`` of an input overflows: a non-finite result there is an
    overflow the reference avoids, a warning; below it, an error."""
    limit = math.log(float(np.finfo(np.dtype(dtype)).max))
    for value in arrays.values():
        value = np.asarray(value)
        if value.dtype.kind == "f" and value.size and float(np.max(np.abs(value))) > limit:
            return True
    return False


def warning_key(warning: dict) -> tuple:
    """What makes two warnings the same one (across cases and references): the kind, the
    implementation, and the tensor or function and parameter it is about."""
    return (warning["kind"], warning["impl"], warning.get("tensor"), warning.get("function"),
            warning.get("parameter"))


def collect(records: list) -> list[dict]:
    """The run's warnings, each once per op: its fields (kind, implementation, tensor or
    function and parameter), the op, how many comparisons carry it, the cases and dtypes;
    in order of kind, then op."""
    found: dict = {}
    for record in records:
        for warning in record.get("warnings", ()):
            key = (record["op"],) + warning_key(warning)
            entry = found.setdefault(key, {**warning, "op": record["op"], "comparisons": 0, "cases": set(),
                                           "dtypes": set()})
            entry["comparisons"] += 1
            entry["cases"].add(record["case"])
            entry["dtypes"].add(record["dtype"])
    order = list(WARNINGS) + [WROTE_INTO_ARGUMENT]
    kept = sorted(found.values(), key=lambda w: (order.index(w["kind"]) if w["kind"] in order else len(order),
                                                 w["op"], str(w.get("tensor") or w.get("parameter"))))
    return [{**w, "cases": sorted(w["cases"]), "dtypes": sorted(w["dtypes"])} for w in kept]


def describe(warning: dict) -> str:
    """One warning in words: ``relu_backward wrote into its parameter dout``."""
    kind = warning["kind"]
    if kind == WROTE_INTO_ARGUMENT:
        return f"{warning.get('function') or warning['impl']} wrote into {_parameter(warning.get('parameter'))}"
    tensor = warning.get("tensor", "")
    if kind == DTYPE_PROMOTED:
        return f"{tensor}: {warning['got']} for a {warning['expected']} case"
    if kind == SHAPE_SIZE_1:
        return f"{tensor}: shape {tuple(warning['got'])} for {tuple(warning['expected'])}"
    if kind == NON_FINITE_AT_EXTREME:
        return f"{tensor}: non-finite at extreme inputs"
    return f"{kind}: {tensor}"


def _parameter(parameter) -> str:
    if not parameter:
        return "an argument"
    return parameter if " " in parameter else f"its parameter {parameter}"
