"""A gradient of the wrong structure at a kink case is a finding, never a crash.

The kink judgements (the convention an implementation takes, how far it lies outside the
subdifferential) index gradients with the input's masks; a gradient of another shape, or a
scalar, used to raise there and take the case's comparisons down with it, the references'
own included (issue "Reports that never crash", scenario 4)."""

import numpy as np
import pytest

import gradmatrix
from gradmatrix.oracles.cases import matrix_cases
from gradmatrix.oracles.result import Result
from gradmatrix.reports.compare import gradients_readable

RELU_FORWARD = ("import numpy as np\n\n"
                "def relu_forward(x):\n"
                "    return np.maximum(0, x), x\n\n")
POOL_FORWARD = ("import numpy as np\n"
                "from gradmatrix.manual import max_pool_forward\n\n")
WRONG_STRUCTURE = {
    "relu-dx-1xD": RELU_FORWARD + "def relu_backward(dout, cache):\n"
                                  "    return (dout * (cache > 0)).sum(axis=0, keepdims=True)\n",
    "relu-dx-scalar": RELU_FORWARD + "def relu_backward(dout, cache):\n"
                                     "    return float((dout * (cache > 0)).sum())\n",
    "max-pool-dx-wrong-shape": POOL_FORWARD + "def max_pool_backward(dout, cache):\n"
                                              "    x, _ = cache\n"
                                              "    return np.zeros(x.shape[:2] + (1,) + x.shape[3:])\n",
}


@pytest.mark.parametrize("name", list(WRONG_STRUCTURE))
def test_a_wrong_gradient_structure_at_kinks_is_a_finding_and_the_run_completes(tmp_path, name):
    path = tmp_path / f"{name.replace('-', '_')}.py"
    path.write_text(WRONG_STRUCTURE[name])
    result = gradmatrix.check(str(path), dtypes=["float64"], modes=["reverse"], oracles=("torch", "numeric"))
    document = result.document
    summary = document["summary"]
    assert summary["complete"] and summary["error"] == 0, summary
    assert not result.passed
    candidate = document["run"]["candidate"]
    kinks = [r for r in document["comparisons"] if r["case_kind"] == "kink"]
    assert kinks, "the matrix has kink cases for this op"
    mine = [r for r in kinks if r["pair"][0] == candidate]
    assert mine and all(r["verdict"] == "disagree" for r in mine)
    assert all("returned shape" in r["message"] and "dx" in r["message"] for r in mine)
    # the references' own comparisons on the same cases are kept, and pass (as a convention)
    theirs = [r for r in kinks if candidate not in r["pair"]]
    assert theirs and all(r["verdict"] in ("agree", "convention") for r in theirs)


def test_gradients_readable_names_what_a_kink_judgement_can_index():
    case = next(c for c in matrix_cases("default", ["relu"], ["float64"], 1, ["reverse"]) if c.kind == "kink")
    shape = (case.dim_map["N"], case.dim_map["D"])
    good = Result("x", np.zeros(shape), {"x": np.zeros(shape)})
    assert gradients_readable(case, good)
    for bad in (np.zeros((1, shape[1])), np.float64(1.0), np.zeros(shape, dtype=object), None):
        assert not gradients_readable(case, Result("x", np.zeros(shape), {"x": bad}))
    assert not gradients_readable(case, Result("x", np.zeros(shape), {}))
