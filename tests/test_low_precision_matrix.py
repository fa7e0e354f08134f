"""manual's ops at float16 and bfloat16: ``gradmatrix check --dtypes float16 bfloat16``.

Low-precision cases are never in a matrix's default dtypes; asked for, each op's random cases
run at the dtype and the candidate (NumPy, rounding every step in the dtype) is judged by the
frameworks' own error at that dtype against float64 on the same rounded inputs
(``reports.framework_checks``).  Right code passes, a wrong formula and an all-zeros gradient
fail.
"""

from pathlib import Path

import pytest

import gradmatrix
from gradmatrix.oracles.cases import LOW_PRECISION_KIND, matrix_cases
from gradmatrix.reports.compare import AGREE, DISAGREE

LOW = ["float16", "bfloat16"]
MUTANTS = Path(__file__).resolve().parent / "mutants"


def test_low_precision_cases_are_never_in_the_default_matrix():
    assert all(c.dtype in ("float64", "float32") for c in matrix_cases("default", ["affine"]))
    low = matrix_cases("default", ["affine"], LOW, 1)
    assert low and {c.kind for c in low} == {LOW_PRECISION_KIND} and {c.dtype for c in low} == set(LOW)


@pytest.mark.parametrize("op", ["affine", "relu", "tanh", "layernorm", "conv"])
def test_manual_passes_at_float16_and_bfloat16(op):
    result = gradmatrix.check("gradmatrix.manual", ops=op, dtypes=LOW, seeds=2, oracles=["torch", "jax"])
    assert result.passed, str(result.failures[:2])
    records = result.document["comparisons"]
    assert {r["dtype"] for r in records} == set(LOW) and {r["case_kind"] for r in records} == {LOW_PRECISION_KIND}
    for entry in (t for r in records for t in r["tensors"]):
        allowance = entry["allowance"]
        assert not allowance["vacuous"] and entry["metrics"]["max_abs_err"] <= allowance["allowed"]


@pytest.mark.parametrize("dtype", LOW)
def test_a_wrong_formula_fails_at_low_precision(dtype):
    result = gradmatrix.check(MUTANTS / "affine_dx_missing_transpose.py", ops="affine", dtypes=dtype, seeds=1,
                              oracles=["torch", "jax"])
    assert not result.passed
    wrong = [r for r in result.document["comparisons"] if r["verdict"] == DISAGREE]
    assert wrong and result.wrong_tensors("affine") == ["dx"]


ZEROS = '''
import numpy as np
from gradmatrix.manual import affine_forward


def affine_backward(dout, cache):
    x, w, b = cache
    return np.zeros_like(x), np.zeros_like(w), np.zeros_like(b)
'''


@pytest.mark.parametrize("dtype", LOW)
def test_an_all_zeros_gradient_never_passes_at_low_precision(tmp_path, dtype):
    module = tmp_path / "affine_zeros.py"
    module.write_text(ZEROS)
    result = gradmatrix.check(module, ops="affine", dtypes=dtype, seeds=2, oracles=["torch", "jax"])
    assert not result.passed
    for record in result.document["comparisons"]:
        grads = [t for t in record["tensors"] if t["tensor"] != "out"]
        assert grads and not any(t["agree"] for t in grads)
        assert record["verdict"] != AGREE
