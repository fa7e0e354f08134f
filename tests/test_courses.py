"""Courses beyond CS231n, checked as their students write them (``oracles/contracts/``).

Correct files in each course's style pass and name every function; one-function mutants
of real bug classes (``tests/courses/<course>/mutants/``) fail naming the function and the
gradient; a function left as the starter's stub fails the file, naming it, while the others
are still checked.  Mutants are checked in float64, on their own op, one seed, reverse mode
only, to stay fast.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import gradmatrix

import gradmatrix as gm

COURSES = Path(__file__).parent / "courses"


@pytest.mark.parametrize("path, functions", [
    pytest.param("cs224n/word2vec.py", ["sigmoid", "naiveSoftmaxLossAndGradient", "negSamplingLossAndGradient",
                                        "skipgram"], id="cs224n-word2vec"),
    pytest.param("cs224n/q3_word2vec.py", ["softmaxCostAndGradient", "negSamplingCostAndGradient", "skipgram",
                                           "cbow"], id="cs224n-2017-q3_word2vec"),
    pytest.param("cs224n/q2_neural.py", ["forward_backward_prop"], id="cs224n-2017-q2_neural"),
    pytest.param("cs224n/q2_sigmoid.py", ["sigmoid", "sigmoid_grad"], id="cs224n-2017-q2_sigmoid"),
    pytest.param("cs224n/q1_softmax.py", ["softmax"], id="cs224n-2017-q1_softmax"),
    pytest.param("dlai/step_by_step.py", ["linear_forward", "linear_backward", "linear_activation_forward",
                                          "linear_activation_backward", "sigmoid", "sigmoid_backward", "relu",
                                          "relu_backward", "L_model_forward", "L_model_backward", "compute_cost"],
                 id="dlai-step_by_step"),
    pytest.param("nnfs/network.py", ["Layer_Dense", "Layer_Dropout", "Activation_ReLU", "Activation_Softmax",
                                     "Activation_Sigmoid", "Activation_Linear", "Loss_CategoricalCrossentropy",
                                     "Loss_BinaryCrossentropy", "Loss_MeanSquaredError", "Loss_MeanAbsoluteError",
                                     "Activation_Softmax_Loss_CategoricalCrossentropy"], id="nnfs-network"),
])
def test_a_correct_course_file_passes_naming_every_function(path, functions, tmp_path):
    run = gradmatrix("check", COURSES / path, "--dtypes", "float64", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    first = run.stdout.splitlines()[0]
    named = {f for group in re.findall(r"\(([^)]*)\)", first) for f in group.split(", ")}
    missing = [f for f in functions if f not in named]
    assert not missing, f"not recognised: {missing}\n{first}"
    assert "PASS" in run.stdout


QUICK = ("--dtypes", "float64", "--seeds", "1", "--modes", "reverse")  # one case per shape: enough for a value bug
MUTANTS = [  # (course, mutant file, the op it breaks, the finding: op and gradient, in the function named)
    ("cs224n", "neg_sampling_fancy_index", "cs224n_negSamplingLossAndGradient", "negSamplingLossAndGradient doutsideVectors"),
    ("cs224n", "sigmoid_wrong_sign", "cs224n_sigmoid", "cs224n_sigmoid out"),
    ("cs224n", "naive_softmax_no_minus", "cs224n_naiveSoftmaxLossAndGradient", "naiveSoftmaxLossAndGradient loss"),
    ("cs224n", "naive_softmax_delta_statement", "cs224n_naiveSoftmaxLossAndGradient",
     "naiveSoftmaxLossAndGradient dcenterWordVec"),
    ("cs224n", "skipgram_skips_center", "cs224n_skipgram", "cs224n_skipgram dcenterWordVectors"),
    ("cs224n", "sigmoid_grad_of_x", "cs224n_sigmoid_grad", "cs224n_sigmoid_grad out"),
    ("dlai", "L_model_backward_dAL_to_every_layer", "dlai_L_model", "dlai_L_model dW1"),
    ("dlai", "sigmoid_backward_for_relu", "dlai_linear_activation_relu", "dlai_linear_activation_relu dA_prev"),
    ("dlai", "linear_backward_no_mean", "dlai_linear", "dlai_linear dW"),
    ("dlai", "L_model_backward_dAL_sign", "dlai_L_model", "dlai_L_model dA0"),
    ("nnfs", "dense_regularizer_unused", "nnfs_Layer_Dense_regularized", "nnfs_Layer_Dense_regularized dweights"),
    ("nnfs", "dense_l2_of_dweights", "nnfs_Layer_Dense_regularized", "nnfs_Layer_Dense_regularized dweights"),
    ("nnfs", "softmax_wrong_attribute", "nnfs_Activation_Softmax", "nnfs_Activation_Softmax dinputs"),
    ("nnfs", "dropout_no_rescale", "nnfs_Layer_Dropout", "nnfs_Layer_Dropout dinputs"),
    ("nnfs", "dropout_fresh_mask_in_backward", "nnfs_Layer_Dropout", "nnfs_Layer_Dropout dinputs"),
]


@pytest.mark.parametrize("course, mutant, op, finding", [pytest.param(*m, id=f"{m[0]}-{m[1]}") for m in MUTANTS])
def test_a_one_function_mutant_fails_naming_the_function_and_the_gradient(course, mutant, op, finding, tmp_path):
    run = gradmatrix("check", COURSES / course / "mutants" / f"{mutant}.py", "--ops", op, *QUICK, cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert any(finding in line for line in run.stdout.splitlines() if line[:1].isdigit()), run.stdout


def test_a_dropout_drawing_its_mask_its_own_way_passes(tmp_path):
    """The mask is the layer's, read from its output: no draw of the book's is assumed."""
    run = gradmatrix("check", COURSES / "nnfs" / "variants" / "dropout_own_mask.py", "--dtypes", "float64",
                     "--seeds", "2", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "nnfs_Layer_Dropout: PASS" in run.stdout


@pytest.mark.parametrize("mutant, kept", [("dropout_keeps_everything", "it kept 4096 of 4096 units"),
                                          ("dropout_rate_as_keep", "where keeping each with probability 0.75"),
                                          ("dropout_keeps_too_many", "keeps 3072 +- 139")])
def test_a_dropout_keeping_the_wrong_fraction_is_not_dropout_at_its_rate(mutant, kept, tmp_path):
    """Its forward and backward agree with each other on its own mask; the fraction it keeps
    does not agree with the rate (4096 units: 1 - rate keeps 3072 +- 139, 0.8 keeps 3277)."""
    run = gradmatrix("check", COURSES / "nnfs" / "mutants" / f"{mutant}.py", *QUICK, cwd=tmp_path)
    assert run.returncode != 0 and "PASS" not in run.stdout, run.stdout + run.stderr
    assert "Layer_Dropout.forward is not inverted dropout at this rate" in run.stdout and kept in run.stdout


def test_a_file_whose_every_function_is_a_stub_fails_naming_it(tmp_path):
    run = gradmatrix("check", COURSES / "cs224n" / "mutants" / "cbow_stub.py", "--dtypes", "float64", cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "cbow (function): FAIL: unimplemented stub: returns zeros" in run.stdout, run.stdout
    assert "PASS" not in run.stdout


def test_one_stub_in_a_correct_file_fails_it_in_the_console_reports_and_gradescope(tmp_path):
    from gradmatrix import classroom as runner
    from gradmatrix.reports import classroom

    stub = COURSES / "dlai" / "mutants" / "compute_cost_stub.py"
    run = gradmatrix("check", stub, *QUICK, "--oracles", "numeric", "--out", tmp_path / "r", "--format", "json", "md",
                     cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "compute_cost (function): FAIL: unimplemented stub: raises NotImplementedError" in run.stdout
    assert "FAIL: compute_cost_stub leaves compute_cost unimplemented" in run.stdout, run.stdout
    assert "dlai_L_model: PASS" in run.stdout  # the other functions are still checked, and named
    document = json.loads((tmp_path / "r" / "agreement.json").read_text())
    assert document["summary"]["stubs"] == ["compute_cost"] and not document["summary"]["passed"]
    assert "compute_cost unimplemented" in (tmp_path / "r" / "agreement.md").read_text()
    row = runner.row_of("s1", str(stub), run.returncode, 1.0, document, "")
    tests = {t["name"]: t for t in classroom.gradescope(row, classroom.class_functions([row]))["tests"]}
    cost = tests["dlai_compute_cost (compute_cost)"]
    assert cost["status"] == "failed" and cost["score"] == 0 and "unimplemented stub" in cost["output"]
    assert tests["dlai_L_model (L_model_forward, L_model_backward)"]["status"] == "passed"


def _flat_loss(x, w, dataset):
    """A loss returning its gradients flat, with a sampler drawn inside: sum over drawn rows."""
    rows = [dataset.sampleTokenIdx() for _ in range(6)]
    loss = np.sum(x[rows] @ w)
    dx = np.zeros_like(x)
    np.add.at(dx, rows, np.broadcast_to(w, (len(rows), w.shape[0])))
    return np.array([loss]), dx, x[rows].sum(axis=0)


@pytest.mark.parametrize("accumulate, passes", [(np.add.at, True), (None, False)], ids=["add-at", "fancy-index"])
def test_check_layer_replays_a_sampler_and_takes_flat_gradients(accumulate, passes):
    from gradmatrix.oracles.contracts.cs224n import Sampler

    def loss(x, w, dataset):
        value, dx, dw = _flat_loss(x, w, dataset)
        if accumulate is None:  # the classic bug: a repeated row gets its gradient once
            rows = [r for r in Sampler().first(6)]
            dx = np.zeros_like(x)
            dx[rows] += w
        return value, dx, dw

    result = gm.check_layer(loss, None, {"x": (5, 3), "w": (3,)}, fixed={"dataset": gm.Fresh(Sampler)},
                            reference=lambda xp, x, w, dataset: xp.sum(xp.matmul(
                                xp.take(x, xp.asarray(dataset.first(6)), axis=0), w)),
                            dtypes="float64", seeds=1)
    assert result.passed is passes, str(result)
