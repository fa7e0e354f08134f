"""manual's ops at float16 and bfloat16: ``gradmatrix check --dtypes float16 bfloat16``.

Low-precision cases are never in a matrix's default dtypes; asked for, each op's random cases
run at the dtype and the candidate (NumPy, rounding every step in the dtype) is judged by the
frameworks' own error at that dtype against float64 on the same rounded inputs
(``reports.framework_checks``).  Right code passes, a wrong formula and an all-zeros gradient
fail.
"""

from pathlib import Path

import numpy as np
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


def test_manual_networks_run_at_bfloat16():
    """NumPy multiplies bfloat16 matrices in float32; manual rounds the product back, so a
    layer's output feeds the next one in the case's dtype (was: TypeError in two_layer_net)."""
    result = gradmatrix.check("gradmatrix.manual", ops="two_layer_net", dtypes="bfloat16", seeds=2,
                              oracles=["torch", "jax"])
    assert result.passed, str(result.failures[:2])


MAX_GIVING_TIES_TO_BOTH = '''
import numpy as np

def max_forward(x, y):
    return np.maximum(x, y), (x, y)

def max_backward(dout, cache):
    x, y = cache
    return dout * (x >= y), dout * (y >= x)  # a tie's gradient given twice
'''


def test_a_tie_made_by_rounding_is_judged_by_the_derivatives_set(tmp_path):
    """seed 3's max case ties x[20, 1] and y[20, 1] once rounded to bfloat16: manual (the tie's
    gradient to x) passes with a note; a backward giving it to both fails there only."""
    seeds = dict(ops="max", dtypes="bfloat16", seeds=4, oracles=["torch", "jax"])
    right = gradmatrix.check("gradmatrix.manual", **seeds)
    assert right.passed, str(right.failures[:2])
    noted = [r for r in right.document["comparisons"] if any("on a kink of the bfloat16-rounded" in n
                                                                 for n in r.get("notes", ()))]
    assert noted and {r["seed"] for r in noted} == {3}
    (tmp_path / "max_ties.py").write_text(MAX_GIVING_TIES_TO_BOTH)
    wrong = gradmatrix.check(str(tmp_path / "max_ties.py"), **seeds)
    assert not wrong.passed and {r["seed"] for r in wrong.failures} == {3}


def _tanh_forward(x):
    return np.tanh(x), x


def _tanh_backward(dout, x):
    return dout * (1 - np.tanh(x) ** 2)


def _tanh_backward_wrong(dout, x):
    return dout * (1 - np.tanh(x))


@pytest.mark.parametrize("backward, passes", [(_tanh_backward, True), (_tanh_backward_wrong, False)])
def test_check_layer_takes_low_precision_dtypes_for_numpy_code(backward, passes):
    result = gradmatrix.check_layer(_tanh_forward, backward, {"x": (4, 5)}, reference=lambda xp, x: xp.tanh(x),
                                    dtypes=("float64", "bfloat16"), seeds=1)
    assert result.passed is passes, str(result.failures[:1])
    assert "bfloat16" in {r["dtype"] for r in result.document["comparisons"]}


def test_check_layer_at_low_precision_needs_a_reference():
    with pytest.raises(gradmatrix.DeclarationError, match=r"dtypes \['float16'\]: .* give reference="):
        gradmatrix.check_layer(_tanh_forward, _tanh_backward, {"x": (4, 5)}, dtypes="float16")


def test_a_low_precision_dtype_no_oracle_chosen_can_judge_is_refused_not_left_out():
    """float16 is judged against torch or JAX: with numeric alone, asking for it is an error
    naming why (was: its cases silently left out, and a PASS for float64 alone)."""
    with pytest.raises(ValueError, match=r"dtypes \['float16'\]: no comparison is made at float16: .* the oracles "
                                         r"chosen are numeric"):
        gradmatrix.check_layer(_tanh_forward, _tanh_backward, {"x": (4, 5)}, reference=lambda xp, x: xp.tanh(x),
                               dtypes=("float64", "float16"), oracles="numeric")
    with pytest.raises(ValueError, match=r"dtypes \['bfloat16'\]: no comparison is made at bfloat16"):
        gradmatrix.check("gradmatrix.manual", ops="sigmoid", dtypes=["float64", "bfloat16"], oracles="numeric")
