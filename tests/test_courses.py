"""Courses beyond CS231n, checked as their students write them (``oracles/contracts/``).

Correct files in each course's style pass and name every function; one-function mutants
of real bug classes (``tests/courses/<course>/mutants/``) fail naming the function and the
gradient; a stub is reported as one.  Mutants are checked in float64 only, to stay fast.
"""

from __future__ import annotations

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
    pytest.param("nnfs/network.py", ["Layer_Dense", "Layer_Dropout", "Activation_ReLU", "Activation_Softmax",
                                     "Activation_Sigmoid", "Activation_Linear", "Loss_CategoricalCrossentropy",
                                     "Loss_BinaryCrossentropy", "Loss_MeanSquaredError", "Loss_MeanAbsoluteError",
                                     "Activation_Softmax_Loss_CategoricalCrossentropy"], id="nnfs-network"),
])
def test_a_correct_course_file_passes_naming_every_function(path, functions, tmp_path):
    run = gradmatrix("check", COURSES / path, "--dtypes", "float64", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    first = run.stdout.splitlines()[0]
    missing = [f for f in functions if f"({f})" not in first]
    assert not missing, f"not recognised: {missing}\n{first}"
    assert "PASS" in run.stdout


MUTANTS = [
    ("cs224n", "neg_sampling_fancy_index", "negSamplingLossAndGradient doutsideVectors"),
    ("cs224n", "sigmoid_wrong_sign", "cs224n_sigmoid out"),
    ("cs224n", "naive_softmax_no_minus", "naiveSoftmaxLossAndGradient loss"),
    ("cs224n", "naive_softmax_delta_statement", "naiveSoftmaxLossAndGradient dcenterWordVec"),
    ("cs224n", "skipgram_skips_center", "cs224n_skipgram dcenterWordVectors"),
    ("cs224n", "sigmoid_grad_of_x", "cs224n_sigmoid_grad out"),
    ("nnfs", "dense_regularizer_unused", "nnfs_Layer_Dense_regularized dweights"),
    ("nnfs", "dense_l2_of_dweights", "nnfs_Layer_Dense_regularized dweights"),
    ("nnfs", "softmax_wrong_attribute", "nnfs_Activation_Softmax dinputs"),
    ("nnfs", "dropout_no_rescale", "nnfs_Layer_Dropout dinputs"),
]


@pytest.mark.parametrize("course, mutant, finding", [pytest.param(*m, id=f"{m[0]}-{m[1]}") for m in MUTANTS])
def test_a_one_function_mutant_fails_naming_the_function_and_the_gradient(course, mutant, finding, tmp_path):
    run = gradmatrix("check", COURSES / course / "mutants" / f"{mutant}.py", "--dtypes", "float64", cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert any(finding in line for line in run.stdout.splitlines() if line[:1].isdigit()), run.stdout


def test_a_stub_returning_zeros_is_reported_as_a_stub(tmp_path):
    run = gradmatrix("check", COURSES / "cs224n" / "mutants" / "cbow_stub.py", "--dtypes", "float64", cwd=tmp_path)
    assert run.returncode != 0
    assert "cbow (function): NOT CHECKED: unimplemented stub: returns zeros" in run.stdout, run.stdout


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
