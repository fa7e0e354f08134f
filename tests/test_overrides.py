"""Tolerance overrides (rtol=/atol= with a reason, per call and per layer) and checks at the
user's own inputs (check_layer(inputs=...)): what the README's "Tolerance overrides" and
"Your own inputs" say, on layers written as people write them."""

from __future__ import annotations

import json

import numpy as np
import pytest

import gradmatrix
from gradmatrix.reports.tolerances import VACUOUS_FRACTION
from tests.cli_helpers import gradmatrix as run_command


def scale_forward(x, w):
    """out = x * w (elementwise), cache (x, w)."""
    return x * w, (x, w)


def scale_backward(dout, cache):
    x, w = cache
    return dout * w, dout * x


def scale_backward_off(dout, cache):
    # a gradient 0.1% off: wrong by the table (float32 allows 1e-4), what an override may accept
    x, w = cache
    return dout * w * 1.001, dout * x


def scale_backward_zeros(dout, cache):
    x, w = cache
    return np.zeros_like(x), dout * x


SHAPES = {"x": (4, 3), "w": (4, 3)}
REASON = "the course's reference uses an approximation good to 0.1%"


def check(backward, **options):
    return gradmatrix.check_layer(scale_forward, backward, SHAPES, name="scale_layer", seeds=1, modes="reverse",
                                  **options)


def test_a_gradient_off_by_a_thousandth_fails_by_the_table():
    result = check(scale_backward_off)
    assert not result.passed
    assert "allowed 1e-04" in result.failures[0]["message"] or "allowed 1e-10" in result.failures[0]["message"]


def test_a_call_override_passes_it_and_records_its_reason():
    result = check(scale_backward_off, rtol=2e-3, reason=REASON)
    assert result.passed, str(result)
    run = result.document["run"]["tolerance_override"]
    assert run == {"rtol": 2e-3, "atol": None, "reason": REASON, "scope": "call"}
    for record in result.document["comparisons"]:
        assert record["tolerance"]["rtol"] == 2e-3
        assert record["tolerance"]["overrides"][0]["reason"] == REASON
        assert REASON in record["tolerance"]["why"]


def test_an_override_merges_by_the_larger_bound_it_never_tightens():
    result = check(scale_backward_off, rtol=1e-12, reason="tighter than the table")
    assert not result.passed  # 1e-12 < the table's: the table's stands, the wrong gradient still fails
    assert all(r["tolerance"]["rtol"] >= 1e-10 for r in result.document["comparisons"])


def test_a_per_dtype_override_touches_only_its_dtype():
    result = check(scale_backward_off, rtol={"float32": 2e-3}, reason=REASON)
    failing = {r["dtype"] for r in result.failures}
    assert failing == {"float64"}  # float32 loosened and passing, float64 judged by the table
    f64 = [r for r in result.document["comparisons"] if r["dtype"] == "float64"]
    assert all("overrides" not in r["tolerance"] for r in f64)


def test_an_all_zeros_gradient_never_passes_with_a_loose_atol():
    result = check(scale_backward_zeros, atol=100.0, reason="far too loose")
    assert not result.passed
    problems = [e["problem"] for r in result.failures for e in r["tensors"] if "problem" in e]
    assert problems and all(f"at least {VACUOUS_FRACTION:.0%}" in p for p in problems)
    # the right gradient with the same override is not a pass either: the check is vacuous,
    # and says so (it does not disagree with anything)
    right = check(scale_backward, atol=100.0, reason="far too loose")
    assert not right.passed and right.status == 1
    from gradmatrix.reports.console import verdict_text

    assert verdict_text(right.document).startswith("NOT A PASS: the tolerance override (far too loose) is too loose "
                                                   "to judge 2 of 2 comparisons: ")
    assert str(right).startswith("layer scale_layer: NOT A PASS: the tolerance override (far too loose) is too loose")


def scale_backward_huge(dout, cache):
    x, w = cache
    return dout * w * 1000.0, dout * x


def test_a_gradient_off_by_more_than_even_a_vacuous_override_allows_is_a_disagreement():
    from gradmatrix.reports.console import verdict_text

    result = check(scale_backward_huge, atol=1.0, reason="too loose")
    assert result.status == 1
    assert verdict_text(result.document).startswith("FAIL: "), verdict_text(result.document)
    dx = [e for r in result.failures for e in r["tensors"] if e["tensor"] == "dx" and not e["agree"]]
    assert dx and all("problem" not in e and e["of_allowed"] > 1 for e in dx)


def test_an_atol_below_the_vacuous_share_catches_the_all_zeros_gradient():
    result = check(scale_backward_zeros, atol=1e-3, reason="small absolute rounding")
    assert not result.passed
    assert any(e["tensor"] == "dx" and e.get("metrics") for r in result.failures for e in r["tensors"])
    assert check(scale_backward, atol=1e-3, reason="small absolute rounding").passed


@pytest.mark.parametrize("options, error, words", [
    ({"rtol": 1e-3}, TypeError, "reason must be given"),
    ({"rtol": 0.5, "reason": "x"}, ValueError, "cannot tell a wrong gradient"),
    ({"rtol": {"float16": 1e-2}, "reason": "x"}, ValueError, "unknown dtype"),
    ({"atol": -1.0, "reason": "x"}, ValueError, "atol must be a finite number"),
    ({"rtol": "1e-3", "reason": "x"}, TypeError, "rtol must be a number"),
    ({"reason": "x"}, ValueError, "without rtol or atol"),
])
def test_a_bad_override_is_refused_naming_it(options, error, words):
    with pytest.raises(error, match=words):
        check(scale_backward, **options)
    with pytest.raises(error, match=words):
        gradmatrix.check("gradmatrix.manual", ops="relu", **options)


def test_a_layer_declares_its_own_override_scoped_to_it():
    declared = gradmatrix.layer(scale_forward, scale_backward_off, shapes=SHAPES, name="scale_declared",
                                rtol=2e-3, reason=REASON)
    assert declared.tolerance["scope"] == "layer"

    @gradmatrix.layer(shapes=SHAPES, rtol=2e-3, reason=REASON)
    def loosened_forward(x, w):
        return scale_forward(x, w)

    import sys
    sys.modules[__name__].loosened_backward = scale_backward_off  # its backward, found by name in the module
    result = gradmatrix.check_layer(loosened_forward, seeds=1, modes="reverse")
    assert result.passed, str(result)
    overrides = result.document["comparisons"][0]["tolerance"]["overrides"]
    assert overrides == [{"rtol": 2e-3, "atol": None, "reason": REASON, "scope": "layer"}]


def test_the_command_takes_the_override_and_the_report_says_why(tmp_path):
    module = tmp_path / "my_relu.py"
    module.write_text("import numpy as np\n\n\ndef relu_forward(x):\n    return np.maximum(x, 0), x\n\n\n"
                      "def relu_backward(dout, x):\n    return dout * (x > 0) * 1.001\n")
    common = [module, "--seeds", "1", "--modes", "reverse", "--oracles", "numeric", "--format", "json", "md"]
    failing = run_command("check", *common, "--out", tmp_path / "a")
    assert failing.returncode == 1, failing.stdout + failing.stderr
    passing = run_command("check", *common, "--rtol", "float32=2e-3", "float64=2e-3", "--reason", REASON,
                          "--out", tmp_path / "b")
    assert passing.returncode == 0, passing.stdout + passing.stderr
    line = f"tolerance override (call, on relu): rtol float32 2e-03, float64 2e-03 ({REASON})"
    assert line in passing.stdout
    document = json.loads((tmp_path / "b" / "agreement.json").read_text())
    assert document["run"]["tolerance_override"]["reason"] == REASON
    assert REASON in (tmp_path / "b" / "agreement.md").read_text()
    refused = run_command("check", *common, "--rtol", "1e-3", "--out", tmp_path / "c")
    assert refused.returncode == 2 and "reason must be given" in refused.stderr


# --- check_layer(inputs=...): the user's own arrays instead of drawn ones


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, x):
    return dout * (x > 0)


def leaky_backward_wrong(dout, x):
    return dout * np.where(x > 0, 1.0, 0.1)  # a leaky slope where relu has none


def test_inputs_are_checked_as_given_with_their_dtype_and_an_id_that_says_so():
    x = np.array([[-1.5, 0.25, 2.0], [3.0, -0.5, 0.75]])
    result = gradmatrix.check_layer(relu_forward, relu_backward, inputs={"x": x}, name="my_relu")
    assert result.passed, str(result)
    ids = [r["id"] for r in result.document["comparisons"]]
    assert ids and all("-inputs0-x2x3-seed0-float64-" in i for i in ids)  # float64 arrays: float64 only
    assert result.document["run"]["inputs"] == {"given_by": "user", "dicts": [{"x": {"shape": [2, 3],
                                                                                   "dtype": "float64"}}]}
    again = gradmatrix.check_layer(relu_forward, relu_backward, inputs={"x": x}, name="my_relu")
    assert [r["id"] for r in again.document["comparisons"]] == ids  # reproducible


def test_a_wrong_gradient_is_caught_only_at_inputs_that_show_it():
    positive = np.array([[0.5, 1.0, 2.0]], dtype=np.float32)
    mixed = np.array([[-0.5, 1.0, -2.0]], dtype=np.float32)
    only_positive = gradmatrix.check_layer(relu_forward, leaky_backward_wrong, inputs={"x": positive}, name="my_relu")
    assert only_positive.passed  # the leak is never seen where every x > 0
    result = gradmatrix.check_layer(relu_forward, leaky_backward_wrong, inputs=[{"x": positive}, {"x": mixed}],
                                    name="my_relu")
    assert not result.passed
    assert all("-inputs1-" in r["case"] for r in result.failures)  # two dicts of one shape: two cases
    assert {r["dtype"] for r in result.document["comparisons"]} == {"float32"}


def test_inputs_are_cast_per_dtypes_and_the_caller_s_array_is_left_alone():
    x = np.array([[-1.0, 0.5], [2.0, -3.0]])
    kept = x.copy()
    result = gradmatrix.check_layer(relu_forward, relu_backward, inputs={"x": x}, name="my_relu",
                                    dtypes=["float64", "float32"])
    assert result.passed
    assert {r["dtype"] for r in result.document["comparisons"]} == {"float64", "float32"}
    assert np.array_equal(x, kept)


@pytest.mark.parametrize("inputs, shapes, words", [
    ({"x": np.zeros((2, 2))}, {"x": (2, 2)}, "inputs and shapes"),
    ({"x": np.array(["a", "b"])}, None, "non-empty array of numbers"),
    ({"x": np.zeros((2, 2), dtype=np.float16)}, None, "float64 or float32"),
    ([], None, "non-empty list"),
])
def test_bad_inputs_are_refused_naming_them(inputs, shapes, words):
    with pytest.raises(gradmatrix.DeclarationError, match=words):
        gradmatrix.check_layer(relu_forward, relu_backward, shapes, inputs=inputs, name="my_relu")
