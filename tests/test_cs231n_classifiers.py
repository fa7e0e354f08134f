"""CS231n assignment 1's classifier losses, softmax.py and linear_svm.py, checked as students write them.

``softmax_loss_naive/vectorized(W, X, y, reg)`` and ``svm_loss_naive/vectorized`` return
``(loss, dW)``.  The correct fixtures pass (``linear_svm.py`` with the older
``0.5 * reg * sum(W^2)``, reported as a convention); each mutant fails on its function.
"""

from __future__ import annotations

import numpy as np
import pytest

from cs231n_helpers import FIXTURES, Mutant, assert_caught, check_mutant, cli, finding_lines, reported
import gradmatrix
from gradmatrix.oracles.contracts.cs231n import classifiers as course_classifiers
from gradmatrix.oracles.candidate import Candidate, load_module
from gradmatrix.oracles.catalog import CATALOG
from gradmatrix.oracles.cases import Case, draw_inputs

MUTANTS = [
    Mutant("softmax_naive_reg_not_in_loss.py", "softmax_loss_naive", "softmax_loss_naive", ("loss",)),
    Mutant("softmax_vectorized_missing_1_over_n.py", "softmax_loss_vectorized", "softmax_loss_vectorized", ("dW",)),
    Mutant("svm_vectorized_no_true_class_pull.py", "svm_loss_vectorized", "svm_loss_vectorized", ("dW",)),
    Mutant("svm_naive_reg_gradient_halved.py", "svm_loss_naive", "svm_loss_naive", ("dW",)),
]
HALF = "adds the L2 term as 0.5 * reg * sum(W^2) (a convention of the course), compared as 1 * reg * sum(W^2)"


def test_both_versions_of_both_losses_are_recognised():
    assert Candidate(load_module(str(FIXTURES / "softmax.py"))).ops == ["softmax_loss_naive", "softmax_loss_vectorized"]
    assert Candidate(load_module(str(FIXTURES / "linear_svm.py"))).ops == ["svm_loss_naive", "svm_loss_vectorized"]


def _passes_naming(run, out, module: str, ops: list) -> None:
    """A passing check: the header names each op's function, the verdict is a PASS with no
    finding, and every op agrees by the report."""
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert f"{module} provides {'; '.join(f'{op} ({op})' for op in ops)}" in run.stdout
    assert f"\nPASS: {module} agrees in all " in run.stdout and not finding_lines(run.stdout)
    assert {op: v["verdict"] for op, v in reported(out).per_op().items()} == {op: "agree" for op in ops}


def test_the_correct_softmax_passes_and_names_its_functions(tmp_path):
    run = cli("check", "softmax.py", "--seeds", "1", out=tmp_path)
    _passes_naming(run, tmp_path, "cs231n.softmax", ["softmax_loss_naive", "softmax_loss_vectorized"])
    assert "convention:" not in run.stdout  # reg * sum(W^2): the reference's own convention


def test_the_older_l2_convention_passes_and_is_reported_as_one(tmp_path):
    run = cli("check", "linear_svm.py", "--seeds", "1", out=tmp_path)
    _passes_naming(run, tmp_path, "cs231n.linear_svm", ["svm_loss_naive", "svm_loss_vectorized"])
    assert f"convention: svm_loss_naive {HALF}" in run.stdout
    assert f"convention: svm_loss_vectorized {HALF}" in run.stdout


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.file.removesuffix(".py") for m in MUTANTS])
def test_each_mutant_is_caught_on_its_function_and_gradient(mutant):
    assert_caught(mutant)


def test_reg_left_out_of_the_loss_is_not_taken_for_a_convention():
    # its L2 term reads as 0 in the loss: no convention, the loss fails, dW agrees, and the
    # note gives the factor measured
    result = check_mutant(MUTANTS[0])
    assert result.wrong_tensors("softmax_loss_naive") == ["loss"]
    notes = result.per_op()["softmax_loss_naive"]["notes"]
    assert notes and all("measured as 0 * reg * sum(W^2), none of the conventions 1, 0.5" in n for n in notes)


def test_the_command_names_the_function_and_the_gradient(tmp_path):
    run = cli("check", "mutants/softmax_vectorized_missing_1_over_n.py", "--seeds", "1", "--dtypes", "float64",
              "--oracles", "torch", "numeric", out=tmp_path)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]
    assert "\nFAIL: softmax_vectorized_missing_1_over_n disagrees with the references in " in run.stdout
    shown = finding_lines(run.stdout)
    assert shown and shown[0].startswith("1. softmax_loss_vectorized dW: wrong values in "), run.stdout
    assert all(line.endswith(", in softmax_loss_vectorized") for line in shown), shown
    wrong = reported(tmp_path).wrong_tensors("softmax_loss_vectorized")  # dW, and dW seen in forward mode
    assert "dW" in wrong and "loss" not in wrong, wrong


def test_catch_rate():
    caught = sum(check_mutant(m).status in (1, 2) for m in MUTANTS)
    assert (len(MUTANTS), caught) == (4, 4)


# --- the L2 convention, at the contract --------------------------------------------------------


def _svm_inputs():
    case = Case("svm_loss_naive", (("N", 8), ("D", 6), ("C", 4), ("reg", 0.25)), 0, "float64")
    return case, draw_inputs(case)


def _with_l2(factor: float, grad_factor: float):
    """An SVM whose L2 term is factor * reg * sum(W^2) in the loss and grad_factor * 2 reg W in dW."""
    def svm_loss_naive(W, X, y, reg):
        loss, dW = _svm_data_part(W, X, y)
        return loss + factor * reg * np.sum(W * W), dW + grad_factor * 2 * reg * W
    return svm_loss_naive


def _svm_data_part(W, X, y):
    """The data part of the SVM loss and its gradient, by the fixture (reg = 0)."""
    module = load_module(str(FIXTURES / "linear_svm.py"))
    return module.svm_loss_vectorized(W, X, y, 0.0)


@pytest.mark.parametrize("factor, grad_factor, converted", [
    (1.0, 1.0, False),  # the reference's convention
    (0.5, 0.5, True),  # the older convention, consistently
    (0.5, 1.0, True),  # the loss's convention is 0.5; dW, rescaled with it to 4 reg W, fails
    (0.0, 1.0, False),  # reg left out of the loss: no convention, the loss fails
    (0.6, 0.6, False),  # no convention: left as returned, the comparison fails it
])
def test_an_l2_term_is_rescaled_only_when_it_reads_as_the_other_convention(factor, grad_factor, converted):
    case, inputs = _svm_inputs()
    contract = CATALOG["svm_loss_naive"].contracts[0]
    notes = []
    loss, grads = contract.call({"svm_loss_naive": _with_l2(factor, grad_factor)}.__getitem__, inputs.arrays,
                                None, case.dim_map, notes=notes)
    a = inputs.arrays
    data_loss, data_dW = _svm_data_part(a["W"], a["X"], a["y"])
    reg, squares = 0.25, np.sum(a["W"] ** 2)
    scale = 2.0 if converted else 1.0
    assert loss == pytest.approx(data_loss + scale * factor * reg * squares, rel=1e-14)
    np.testing.assert_allclose(grads["W"], data_dW + scale * grad_factor * 2 * reg * a["W"], rtol=1e-13)
    said = {"none" if "none of the conventions" in n else "convention" if "a convention of the course" in n else n
            for n in notes}
    assert said == ({"convention"} if converted else set() if factor == 1.0 else {"none"})


def test_a_rescaled_l2_term_keeps_the_candidates_dtype():
    case = Case("svm_loss_naive", (("N", 8), ("D", 6), ("C", 4), ("reg", 0.25)), 0, "float32")
    inputs = draw_inputs(case)
    module = load_module(str(FIXTURES / "linear_svm.py"))
    loss, grads = CATALOG["svm_loss_naive"].contracts[0].call(lambda fn: getattr(module, fn), inputs.arrays, None,
                                                              case.dim_map, notes=[])
    assert np.asarray(loss).dtype == np.float32 and grads["W"].dtype == np.float32


# --- references at known values, and inputs that expose the mistakes ----------------------------


def test_references_at_zero_weights():
    # W = 0: every score is 0; softmax: log C per sample; SVM: C - 1 margins of 1 per sample
    a = {"W": np.zeros((5, 4)), "X": np.ones((3, 5)), "y": np.array([0, 3, 1])}
    assert course_classifiers.softmax_classifier(np, a, {"reg": 0.3}) == pytest.approx(np.log(4.0), rel=1e-15)
    assert course_classifiers.svm_classifier(np, a, {"reg": 0.3}) == 3.0
    a["W"] = np.full((5, 4), 0.5)  # all scores equal again (2.5): the L2 term alone moves, 0.3 * 20 * 0.25
    assert course_classifiers.svm_classifier(np, a, {"reg": 0.3}) == pytest.approx(3.0 + 1.5, rel=1e-15)


@pytest.mark.parametrize("op", ["softmax_loss_naive", "softmax_loss_vectorized", "svm_loss_naive", "svm_loss_vectorized"])
def test_default_shapes_expose_a_missing_1_over_n_and_a_missing_reg(op):
    shapes = CATALOG[op].shapes["default"]
    assert {s["N"] == 1 for s in shapes} == {True, False}
    assert all(s["reg"] > 0 and s["D"] != s["C"] for s in shapes)


def test_svm_margins_are_drawn_away_from_the_hinge_and_on_both_sides():
    active = inactive = 0
    for seed in range(4):
        case = Case("svm_loss_naive", (("N", 8), ("D", 6), ("C", 4), ("reg", 0.25)), seed, "float64")
        a = draw_inputs(case).arrays
        scores = a["X"] @ a["W"]
        margins = scores - scores[np.arange(8), a["y"]][:, None] + 1
        margins[np.arange(8), a["y"]] = 1.0
        assert np.abs(margins).min() >= 1e-3
        active += int((margins > 0).sum()) - 8
        inactive += int((margins < 0).sum())
    assert active > 0 and inactive > 0


def test_check_from_python_reports_the_convention():
    result = gradmatrix.check(str(FIXTURES / "linear_svm.py"), ops=["svm_loss_vectorized"], seeds=1,
                              dtypes=["float64"], oracles=("torch",))
    assert result.status == 0
    assert result.per_op()["svm_loss_vectorized"]["notes"] == [f"svm_loss_vectorized {HALF}"]
