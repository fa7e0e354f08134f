"""The course's layers outside the one regime a single training-mode call shows (issue "A
verdict you can trust"): dropout in test mode, batch norm's running averages carried in
``bn_param`` from call to call, and ``max_pool_backward_naive`` at tied maxima.

* ``dropout_test``: the course's inverted dropout leaves x unchanged in test mode and its
  backward returns dout; a test-mode output scaled by p (non-inverted dropout's) fails in
  ``out``, named in ``dropout_forward``.
* ``max_pool_naive`` has kink cases drawn and judged by max_pool's own functions
  (``oracles.kinks``): every tied maximum of a window taking the window's whole gradient
  lies outside the subdifferential, and only the tie cases can show it.
* ``oracles.contract.Stateful`` calls a forward as a network does, one dict shared by a
  run of training-mode calls and the test-mode call after them: what a test-mode check of
  the course's batch norm is made of.

The checks of whole files run with the default options on the ops they are about: every
oracle, every seed and mode of the default matrix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gradmatrix
from gradmatrix.oracles.candidate import load_module
from gradmatrix.oracles.cases import Case, draw_inputs
from gradmatrix.oracles.catalog import CATALOG
from gradmatrix.oracles.contract import Const, ContractError, Packed, Stateful, signature_score
from gradmatrix.oracles.kinks import max_pool_subgradient
from gradmatrix.reports import console
from gradmatrix.reports.compare import AGREE, CONVENTION
from gradmatrix.reports.tolerances import tolerance_for

COURSE = Path(__file__).parent / "cs231n"
LAYERS = COURSE / "layers.py"
MUTANTS = COURSE / "mutants"


def _findings(result) -> list:
    """(op, tensor, the function the console names) of each finding of a check."""
    document = result.document
    functions = document["run"].get("candidate_functions", {})
    return [(f["op"], f["tensor"], console.at_fault(f, document["findings"], functions))
            for f in document["findings"]]


# --- dropout in test mode ---------------------------------------------------------------


def test_the_courses_dropout_in_test_mode_passes_its_output_and_gradient_compared():
    result = gradmatrix.check(str(LAYERS), ops=["dropout_test"])
    assert result.status == 0, [r["message"] for r in result.failures[:3]]
    reverse = [r for r in result.document["comparisons"] if r["case_kind"] == "random"]
    assert reverse and all(r["verdict"] == AGREE for r in reverse)
    # both the output and dx were measured, not only looked at
    for record in reverse:
        assert [t["tensor"] for t in record["tensors"]] == ["out", "dx"]
        assert all("metrics" in t for t in record["tensors"]), record["id"]


@pytest.mark.parametrize("early", [False, True], ids=["p-keeps", "p-drops"])
def test_a_test_mode_scaled_by_p_is_caught_in_dropout_forwards_output(tmp_path, early):
    # the same mistake under either meaning of p: the course's later one (the mutant file)
    # and its early one (p drops a unit, the kept ones scaled by 1 / (1 - p), test mode * (1 - p))
    path = MUTANTS / "dropout_test_scales_by_p.py"
    if early:
        path = tmp_path / "early_dropout_test_scaled.py"
        path.write_text(
            "import importlib.util\nfrom pathlib import Path\n\nimport numpy as np\n\n"
            f"_spec = importlib.util.spec_from_file_location('early', {str(COURSE / 'dropout_drop_probability.py')!r})\n"
            "_early = importlib.util.module_from_spec(_spec)\n_spec.loader.exec_module(_early)\n"
            "globals().update({k: v for k, v in vars(_early).items() if not k.startswith('_')})\n\n"
            "def dropout_forward(x, dropout_param):\n"
            "    if dropout_param['mode'] == 'train':\n"
            "        return _early.dropout_forward(x, dropout_param)\n"
            "    return x * (1 - dropout_param['p']), (dropout_param, None)\n")
    result = gradmatrix.check(str(path), ops=["dropout_test", "dropout_train"])
    assert result.status == 1
    assert _findings(result)[0] == ("dropout_test", "out", "in dropout_forward (its output)")
    assert result.wrong_tensors("dropout_test") == ["out"]  # its backward returns dout, as it should
    assert result.per_op()["dropout_train"]["verdict"] == AGREE  # training mode is right


# --- max_pool_backward_naive at ties ------------------------------------------------------


def test_max_pool_naive_has_max_pools_tie_cases_on_the_courses_layout():
    spec, ours = CATALOG["max_pool_naive"], CATALOG["max_pool"]
    assert (spec.kink_inputs, spec.kink_convention, spec.kink_subgradient) == (
        ours.kink_inputs, ours.kink_convention, ours.kink_subgradient)
    layers = load_module(str(LAYERS))
    every_tie = load_module(str(MUTANTS / "max_pool_backward_every_tie.py"))
    for dims in spec.kink_shapes:
        inputs = draw_inputs(Case("max_pool_naive", tuple(dims.items()), 0, "float64", kind="kink"))
        x, ties = inputs.arrays["x"], inputs.kink_masks["x"]
        assert ties.sum() >= 2 and ties.shape == x.shape
        pool_param = {"pool_height": dims["pool"], "pool_width": dims["pool"], "stride": dims["stride"]}
        judged = {}
        for name, module in (("first maximum", layers), ("every tie", every_tie)):
            out, cache = module.max_pool_forward_naive(x, pool_param)
            dx = module.max_pool_backward_naive(inputs.dout, cache)
            judged[name] = max_pool_subgradient({"x": dx}, inputs.arrays, inputs.dout)["x"]
        assert not judged["first maximum"].any()  # all of a window's gradient to one maximum: inside
        # twice the window's gradient: outside at every tie whose upstream gradient is not 0, nowhere else
        outside = judged["every tie"] > 0
        assert outside.any() and not (outside & ~ties).any()


def test_the_courses_max_pool_passes_at_ties_by_the_first_maximum_convention():
    result = gradmatrix.check(str(LAYERS), ops=["max_pool_naive"])
    assert result.status == 0, [r["message"] for r in result.failures[:3]]
    kinks = [r for r in result.document["comparisons"] if r["case_kind"] == "kink"]
    assert kinks
    for record in kinks:
        # torch and jax route a tie to its first maximum, as the course's code does; the
        # numeric oracle splits it: a convention, inside the subdifferential
        expected = CONVENTION if "numeric" in record["pair"] else AGREE
        assert record["verdict"] == expected, record["id"]
        if "numeric" in record["pair"] and "cs231n.layers" in record["pair"]:
            assert record["conventions"] == {"cs231n.layers": 1.0, "numeric": 0.5}


def test_every_tie_given_the_full_gradient_is_caught_at_the_ties_and_nowhere_else():
    result = gradmatrix.check(str(MUTANTS / "max_pool_backward_every_tie.py"), ops=["max_pool_naive"])
    assert result.status == 1
    assert _findings(result) == [("max_pool_naive", "dx", "in max_pool_backward_naive (max_pool_forward_naive's "
                                                          "output agrees)")]
    failed = result.failures
    assert failed and all(r["case_kind"] == "kink" for r in failed)
    assert all("outside the subdifferential" in r["message"] for r in failed)
    # without ties it is the course's backward: random cases agree
    random = [r for r in result.document["comparisons"] if r["case_kind"] == "random"]
    assert random and all(r["verdict"] == AGREE for r in random)


# --- a forward that keeps state in its dict argument (batch norm's running averages) ------


def _course_test_mode(batches: np.ndarray, x, gamma, beta, eps: float, momentum: float) -> np.ndarray:
    """The course's definition, written out: running averages from 0, one update per batch,
    then x normalised with them."""
    mean = var = np.zeros(x.shape[1])
    for batch in batches:
        mean = momentum * mean + (1 - momentum) * batch.mean(axis=0)
        var = momentum * var + (1 - momentum) * batch.var(axis=0)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


_BN = Stateful("batchnorm_forward", ("x", "gamma", "beta"),
               Packed("bn_param", mode=Const("train"), eps="eps", momentum="momentum"),
               history="batches", replaces="x", mode=Const("test"))


def _bn_case(rng: np.random.Generator) -> tuple[dict, dict]:
    inputs = {"batches": rng.normal(2.0, 3.0, (3, 8, 4)), "x": rng.standard_normal((5, 4)),
              "gamma": rng.standard_normal(4), "beta": rng.standard_normal(4)}
    return inputs, {"eps": 1e-5, "momentum": 0.9}


def test_stateful_makes_the_calls_a_network_makes_with_one_dict():
    calls = []

    def batchnorm_forward(x, gamma, beta, bn_param):
        calls.append((x, bn_param, dict(bn_param)))
        return x * 2.0, None

    inputs, dims = _bn_case(np.random.default_rng(0))
    out, grads = _BN.call({"batchnorm_forward": batchnorm_forward}.__getitem__, inputs, None, dims)
    assert grads == {} and _BN.grads == () and _BN.functions == ("batchnorm_forward",)
    np.testing.assert_array_equal(out, inputs["x"] * 2.0)  # the last call's output
    assert [seen["mode"] for _, _, seen in calls] == ["train", "train", "train", "test"]
    assert all(shared is calls[0][1] for _, shared, _ in calls)  # one dict for every call
    assert all(seen["eps"] == 1e-5 and seen["momentum"] == 0.9 for _, _, seen in calls)
    for (x, _, _), expected in zip(calls, [*inputs["batches"], inputs["x"]]):
        np.testing.assert_array_equal(x, expected)
    with pytest.raises(ContractError, match=r"batchnorm_forward must return \(out, cache\), got ndarray"):
        _BN.call({"batchnorm_forward": lambda x, gamma, beta, bn_param: x}.__getitem__, inputs, None, dims)


def test_stateful_fits_only_a_forward_that_takes_the_shared_dict_by_its_name():
    # gradmatrix's own batchnorm_forward(x, gamma, beta, eps) keeps no state: not the course's
    manual = load_module("gradmatrix.manual")
    assert signature_score(_BN, lambda name: getattr(manual, name)) is None
    layers = load_module(str(LAYERS))
    assert signature_score(_BN, lambda name: getattr(layers, name)) is not None


def test_stateful_gives_the_courses_test_mode_and_tells_swapped_momentum_weights_apart():
    layers = load_module(str(LAYERS))

    def swapped(x, gamma, beta, bn_param):
        """The course's batchnorm_forward with momentum and 1 - momentum swapped in the running averages."""
        mean, var = bn_param.get("running_mean", 0.0), bn_param.get("running_var", 0.0)
        out, cache = layers.batchnorm_forward(x, gamma, beta, bn_param)
        if bn_param["mode"] == "train":
            m = bn_param["momentum"]
            bn_param["running_mean"] = (1 - m) * mean + m * x.mean(axis=0)
            bn_param["running_var"] = (1 - m) * var + m * x.var(axis=0)
        return out, cache

    inputs, dims = _bn_case(np.random.default_rng(1))
    expected = _course_test_mode(inputs["batches"], inputs["x"], inputs["gamma"], inputs["beta"], **dims)
    right, _ = _BN.call(lambda name: getattr(layers, name), inputs, None, dims)
    # two float64 computations of the same values: the table's float64 allowance between implementations
    allowed = tolerance_for("float64", "autodiff").rtol * np.max(np.abs(expected))
    assert np.max(np.abs(right - expected)) <= allowed
    wrong, _ = _BN.call({"batchnorm_forward": swapped}.__getitem__, inputs, None, dims)
    assert np.max(np.abs(wrong - expected)) > 0.1 * np.max(np.abs(expected))


def test_the_courses_batchnorm_in_test_mode_passes_and_swapped_momentum_weights_are_caught():
    right = gradmatrix.check(str(LAYERS), ops=["batchnorm_test"])
    assert right.status == 0, [r["message"] for r in right.failures[:3]]
    records = right.document["comparisons"]
    assert records and all([t["tensor"] for t in r["tensors"]] == ["out"] for r in records)  # forward only
    wrong = gradmatrix.check(str(MUTANTS / "batchnorm_running_momentum_swapped.py"), ops=["batchnorm_test"])
    assert wrong.status == 1
    assert _findings(wrong) == [("batchnorm_test", "out", "in batchnorm_forward")]
