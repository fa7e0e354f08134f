"""The harness tests itself: metrics, the numeric oracle, and that wrong gradients are caught."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradmatrix import manual
from gradmatrix.oracles.candidate import Candidate, load_module
from gradmatrix.oracles.cases import Case, draw_inputs, matrix_cases
from gradmatrix.oracles.implementations import oracle
from gradmatrix.runner import Comparison, Runner, default_plan
from gradmatrix.reports.metrics import normwise_rel_error, rel_error, tensor_metrics

MUTANTS = Path(__file__).parent / "mutants"


def test_rel_error_is_cs231n_definition():
    assert rel_error(np.array([1.0]), np.array([1.0])) == 0.0
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 3.0])) == pytest.approx(1 / 5)
    assert rel_error(np.array([0.0]), np.array([1e-9])) == pytest.approx(1e-9 / 1e-8)  # floored denominator


def test_normwise_rel_error_and_worst_index():
    a = np.array([[1.0, 2.0], [3.0, 4.5]])
    b = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert normwise_rel_error(a, b) == pytest.approx(0.5 / 4.0)
    m = tensor_metrics(a, b)
    assert m.worst_index == [1, 1] and m.a_value == 4.5 and m.b_value == 4.0 and m.max_abs_err == 0.5
    assert normwise_rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert normwise_rel_error(np.ones(3), np.zeros(3)) == float("inf")


@pytest.mark.parametrize("a, b", [
    (np.array([[1.0, 2.0], [3.0, 4.5]]), np.array([[1.0, 2.0], [3.0, 4.0]])),
    (np.zeros(3), np.zeros(3)), (np.ones(3), np.zeros(3)), (np.array([1e-9, -2.0]), np.array([0.0, 2.0])),
    (np.array([np.nan, 1.0]), np.array([1.0, 1.0])), (np.array([np.inf, 1.0]), np.array([1.0, 1.0])),
], ids=["values", "zeros", "zero-reference", "tiny", "nan", "inf"])
def test_tensor_metrics_give_the_errors_the_functions_define(a, b):
    m = tensor_metrics(a, b)
    for measured, defined in ((m.normwise_rel_err, normwise_rel_error(a, b)), (m.rel_error, rel_error(a, b))):
        assert measured == defined or np.isnan(measured) and np.isnan(defined)


def test_numeric_oracle_matches_closed_form_affine_gradients():
    # dw = X^T dout and db = sum_rows dout are exact closed forms; central differences are
    # exact on linear functions up to rounding
    case = Case("affine", (("N", 5), ("Dx", (2, 3)), ("M", 4)), 0, "float64")
    inputs = draw_inputs(case)
    result = oracle("numeric").evaluate(inputs)
    x, dout, w = inputs.arrays["x"].reshape(5, 6), inputs.dout, inputs.arrays["w"]
    assert normwise_rel_error(result.grads["w"], x.T @ dout) < 1e-9
    assert normwise_rel_error(result.grads["b"], dout.sum(axis=0)) < 1e-9
    assert normwise_rel_error(result.grads["x"], (dout @ w.T).reshape(5, 2, 3)) < 1e-9
    assert result.grads["w"].dtype == np.float64


def test_numeric_oracle_matches_closed_form_softmax_gradient_with_large_scores():
    # d/ds mean CE = (softmax(s) - onehot) / N, computed here independently in float64
    case = Case("softmax_loss", (("N", 8), ("C", 10), ("scale", 1e4)), 1, "float64")
    inputs = draw_inputs(case)
    s, y = inputs.arrays["scores"], inputs.arrays["y"]
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(8), y] -= 1
    result = oracle("numeric").evaluate(inputs)
    err = np.abs(result.grads["scores"] - p / 8)
    assert err.max() <= 1e-9 * np.abs(p / 8).max() + result.error_bounds["scores"].max()
    assert np.all(err <= result.error_bounds["scores"] + 1e-12)  # the oracle's own bound holds


def test_numeric_oracle_is_float64_for_float32_cases():
    result = oracle("numeric").evaluate(draw_inputs(Case("relu", (("N", 2), ("D", 3)), 0, "float32")))
    assert result.computes_in == "float64" and result.grads["x"].dtype == np.float64


def test_cases_are_reproducible_and_independent_of_order():
    cases = matrix_cases("default", ["affine"], ["float32"], 2)
    first = [draw_inputs(c).arrays["w"] for c in cases]
    again = [draw_inputs(c).arrays["w"] for c in reversed(cases)][::-1]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(draw_inputs(cases[0]).arrays["x"], draw_inputs(cases[1]).arrays["x"])


def test_float32_case_sees_rounded_float64_inputs():
    c64 = Case("relu", (("N", 4), ("D", 5)), 3, "float64")
    c32 = Case("relu", (("N", 4), ("D", 5)), 3, "float32")
    np.testing.assert_array_equal(draw_inputs(c64).arrays["x"].astype(np.float32), draw_inputs(c32).arrays["x"])


def _verdicts(candidate_file: str, ops, dtypes=("float64", "float32"), oracles=("torch", "numeric")):
    candidate = Candidate(load_module(str(MUTANTS / candidate_file)))
    runner = Runner(candidate, oracles)
    # reverse mode: these tests read its messages (forward mode's are in tests/test_modes.py)
    plan = default_plan("default", ops, list(dtypes), 2, oracles, candidate, modes=["reverse"])
    return [runner.run(c, reproduce=f"gradmatrix check {candidate_file} --only {c.id}") for c in plan]


def test_missing_transpose_is_caught_with_a_clear_message():
    records = _verdicts("affine_missing_transpose.py", ["affine"], ["float64"])
    bad = [r for r in records if r["verdict"] == "disagree"]
    assert bad, "a missing transpose in dw went unnoticed"
    # only square weights (D = M) give the right shape; there the values are wrong
    square = [r for r in bad if r["dims"]["Dx"] == r["dims"]["M"]]
    assert square and all("dw (affine_missing_transpose vs" in r["message"] for r in square)
    message = square[0]["message"]
    assert "max rel err" in message and "allowed 1e-10" in message and "reproduce: gradmatrix check" in message
    assert " at [" in message
    nonsquare = [r for r in bad if r["dims"]["Dx"] != r["dims"]["M"]]
    assert nonsquare and all("dw: affine_missing_transpose returned shape" in r["message"] for r in nonsquare)


def test_sum_over_wrong_axis_is_caught_as_a_shape_error():
    records = _verdicts("affine_db_wrong_axis.py", ["affine"], ["float64"])
    shape_errors = [r for r in records if "db: affine_db_wrong_axis returned shape" in r["message"]]
    assert shape_errors
    # N = M = 1 is the one shape where the wrong axis gives the right shape and values
    mine = [r for r in records if r["pair"][0] == "affine_db_wrong_axis"]
    assert all(r["verdict"] == "disagree" for r in mine if (r["dims"]["N"], r["dims"]["M"]) != (1, 1))
    assert all(r["verdict"] == "agree" for r in records if r["pair"] == ["torch", "numeric"])


def test_float64_gradient_computed_in_float32_is_caught():
    records = _verdicts("net_grads_in_float32.py", ["two_layer_net"], ["float64"], ("torch", "jax", "numeric"))
    caught = [r for r in records if r["verdict"] == "disagree" and r["pair"][0] == "net_grads_in_float32"]
    assert len(caught) == len([r for r in records if r["pair"][0] == "net_grads_in_float32"])
    # random cases only: at a kink case's ReLU at 0 the float32 rounding flips the mask
    worst = max(t["metrics"]["normwise_rel_err"] for r in caught if r["case_kind"] == "random"
                for t in r["tensors"] if "metrics" in t)
    assert 1e-9 < worst < 1e-5  # float32-accurate: caught by the float64 tolerance, not by O(1) error


def test_manual_agrees_on_a_slice_of_the_matrix():
    runner = Runner(Candidate(manual, "manual"), ("torch", "jax", "numeric"))
    records = [runner.run(c) for c in default_plan("default", ["two_layer_net"], ["float32"], 1)]
    random = [r for r in records if r["case_kind"] == "random"]
    assert random and all(r["verdict"] == "agree" for r in random), [r["message"] for r in random if r["message"]]
    # kink cases differ from the central difference only at the ReLU's 0, by convention
    assert all(r["verdict"] == "convention" for r in records if r["case_kind"] == "kink" and "numeric" in r["pair"])


def _pytest(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "pytest", "--pyargs",
                           "gradmatrix.matrix_test", "-q", "-p", "no:cacheprovider", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def test_pytest_matrix_fails_on_a_mutant_with_a_readable_message(tmp_path, read_report):
    run = _pytest("--gm-candidate", str(MUTANTS / "affine_missing_transpose.py"), "--gm-ops", "affine",
                  "--gm-dtypes", "float64", "--gm-oracles", "torch", "--gm-seeds", "1", cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "dw (affine_missing_transpose vs torch, float64): max rel err" in run.stdout
    doc = read_report(tmp_path / "gradmatrix-report" / "agreement.json")
    assert doc["summary"]["disagree"] > 0 and not doc["summary"]["passed"]
    md = (tmp_path / "gradmatrix-report" / "agreement.md").read_text()
    assert "## Discrepancies" in md and "worst element" in md and "gradmatrix check" in md


CONTROLLER_PROBE = """
import json, sys


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):  # pytest-xdist's controller
        with open("controller_modules.json", "w") as f:
            json.dump(sorted(m for m in ("torch", "jax") if m in sys.modules), f)
"""


def test_xdist_run_loses_no_result(tmp_path, read_report):
    # the controller runs no test: the environment of the report, frameworks' settings
    # included, comes from a worker, and the controller imports neither framework
    (tmp_path / "controller_probe.py").write_text(CONTROLLER_PROBE)
    run = _pytest("-n", "2", "--dist", "loadgroup", "--gm-ops", "relu,softmax_loss", "--gm-seeds", "1",
                  "-p", "controller_probe", cwd=tmp_path,
                  env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])])})
    assert run.returncode == 0, run.stdout + run.stderr
    doc = read_report(tmp_path / "gradmatrix-report" / "agreement.json")
    assert {"torch", "jax"} <= doc["environment"]["frameworks"].keys()
    assert json.loads((tmp_path / "controller_modules.json").read_text()) == []
    passed = int(run.stdout.strip().splitlines()[-1].split()[0])  # one pytest test per case
    s = doc["summary"]
    assert passed == len({r["case"] for r in doc["comparisons"]}) > 1
    assert s["comparisons"] == s["expected"] == s["agree"] + s["convention"] > passed
    assert s["convention"] > 0 and s["complete"] and s["passed"]


def test_a_confident_softmax_row_is_judged_against_its_rounding_unit():
    # scores of scale 30, N = 1, label on top: loss and dscores are about 4e-18, which every
    # implementation rounds to 0; the numeric oracle (log1p) resolves them, and agreement is
    # judged against 1/N, the size of the terms they are differences of
    case = Case("softmax_loss", (("N", 1), ("C", 10), ("scale", 30.0)), 1, "float64")
    runner = Runner(Candidate(manual, "manual"), ("torch", "numeric"))
    numeric_loss = runner._result(case, "numeric").forward
    assert 0 < float(numeric_loss) < 1e-15
    assert all(runner.run(Comparison(case, (a, "numeric")))["verdict"] == "agree" for a in ("manual", "torch"))


@pytest.mark.parametrize("nodeid", [
    "tests/test_matrix.py::test_agreement[affine-N8-Dx6-M3-seed1-float32]",
    "tests/test_matrix.py::test_agreement[affine-N8-Dx6-M3-seed1-float32]@affine-random-(('N', 8),)-float32",
], ids=["plain", "xdist-group-suffix"])
def test_the_plugin_reads_a_matrix_tests_case_id_with_or_without_its_xdist_group(nodeid):
    # under --dist loadgroup a test's id carries "@group"; a count of 0 selected comparisons
    # would turn a complete pytest matrix into INCOMPLETE
    from gradmatrix.pytest_plugin import _case_id

    assert _case_id(nodeid) == "affine-N8-Dx6-M3-seed1-float32"
