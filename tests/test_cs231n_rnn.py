"""CS231n assignment 3's rnn_layers.py, checked exactly as students write it.

A correct, independent ``tests/cs231n/rnn_layers.py`` with the course's signatures passes
``gradmatrix check`` with every function named; each one-function mutant in ``MUTANTS``
(a classic mistake) fails, naming the function at fault and the wrong gradients.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from cs231n_helpers import FIXTURES, Mutant, assert_caught, check_mutant, cli, finding_lines, reported
from gradmatrix.reports.console import at_fault
from gradmatrix.oracles.contracts.cs231n import rnn as course_rnn
from gradmatrix.oracles.candidate import Candidate, load_module
from gradmatrix.oracles.catalog import CATALOG
from gradmatrix.oracles.cases import Case, draw_inputs
from gradmatrix.oracles.contract import ContractError, Layer

RNN_OPS = ["affine", "rnn_step", "rnn", "word_embedding", "temporal_affine", "temporal_softmax_loss", "lstm_step", "lstm"]
RNN_FUNCTIONS = ["affine_forward", "affine_backward", "rnn_step_forward", "rnn_step_backward", "rnn_forward",
                 "rnn_backward", "word_embedding_forward", "word_embedding_backward", "temporal_affine_forward",
                 "temporal_affine_backward", "temporal_softmax_loss", "lstm_step_forward", "lstm_step_backward",
                 "lstm_forward", "lstm_backward"]

MUTANTS = [
    Mutant("rnn_backward_no_carry.py", "rnn", "rnn_backward", ("dx", "dh0", "dWx", "dWh", "db")),
    Mutant("rnn_step_backward_tanh_of_output.py", "rnn_step", "rnn_step_backward", ("dx", "dprev_h", "dWx", "dWh", "db")),
    Mutant("word_embedding_assign_not_add_at.py", "word_embedding", "word_embedding_backward", ("dW",)),
    Mutant("temporal_affine_db_per_step.py", "temporal_affine", "temporal_affine_backward", ("db",)),
    Mutant("temporal_softmax_ignores_mask.py", "temporal_softmax_loss", "temporal_softmax_loss", ("loss", "dx")),
    Mutant("temporal_softmax_mean_over_mask.py", "temporal_softmax_loss", "temporal_softmax_loss", ("loss", "dx")),
    Mutant("lstm_step_forward_gate_order.py", "lstm_step", "lstm_step_forward", ("next_h|next_c", "dx", "dWx")),
    Mutant("lstm_step_backward_gate_order.py", "lstm_step", "lstm_step_backward", ("dx", "dprev_h", "dWx", "dWh", "db")),
    Mutant("lstm_step_backward_no_tanh_prime.py", "lstm_step", "lstm_step_backward",
           ("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db")),
    Mutant("lstm_backward_drops_cell_gradient.py", "lstm", "lstm_backward", ("dx", "dh0", "dWx", "dWh", "db")),
]


def _fixture():
    spec = importlib.util.spec_from_file_location("cs231n_rnn_layers_fixture", FIXTURES / "rnn_layers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_course_contract_is_recognised_for_every_function():
    candidate = Candidate(load_module(str(FIXTURES / "rnn_layers.py")))
    assert candidate.ops == RNN_OPS
    covered = [f for op in candidate.ops for f in candidate.contracts[op].functions]
    assert covered == RNN_FUNCTIONS


def test_the_correct_rnn_layers_passes_and_every_op_is_named(tmp_path):
    run = cli("check", "rnn_layers.py", "--seeds", "1", out=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    contracts = Candidate(load_module(str(FIXTURES / "rnn_layers.py"))).contracts
    provided = "; ".join(f"{op} ({', '.join(contracts[op].functions)})" for op in RNN_OPS)
    assert f"rnn_layers provides {provided}" in run.stdout
    assert "\nPASS: cs231n.rnn_layers agrees in all " in run.stdout and not finding_lines(run.stdout)
    verdicts = {op: v["verdict"] for op, v in reported(tmp_path).per_op().items()}
    assert verdicts == {op: "agree" for op in RNN_OPS}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.file.removesuffix(".py") for m in MUTANTS])
def test_each_mutant_is_caught_on_its_function_and_gradients(mutant):
    assert_caught(mutant)


def test_the_command_names_the_function_and_the_gradient(tmp_path):
    run = cli("check", "mutants/rnn_backward_no_carry.py", "--seeds", "1", "--dtypes", "float64",
              "--oracles", "torch", "numeric", out=tmp_path)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]
    assert "\nFAIL: rnn_backward_no_carry disagrees with the references in " in run.stdout
    # every finding shown is one of rnn's gradients, at fault in rnn_backward; rnn_step has none
    shown = finding_lines(run.stdout)
    assert shown, run.stdout
    for line in shown:
        tensor = line.split(". ", 1)[1].split(":", 1)[0]
        assert tensor in {f"rnn {t}" for t in MUTANTS[0].wrong}, line
        assert line.endswith(", in rnn_backward (rnn_forward's output agrees)"), line
    result = reported(tmp_path)
    verdicts = result.per_op()
    assert verdicts["rnn_step"]["verdict"] == "agree" and verdicts["rnn"]["verdict"] == "disagree"
    assert set(MUTANTS[0].wrong) <= set(result.wrong_tensors("rnn"))


@pytest.mark.parametrize("mutant", [m for m in MUTANTS if m.file in ("lstm_step_forward_gate_order.py",
                                                                     "lstm_step_backward_gate_order.py")],
                         ids=lambda m: m.function)
def test_the_function_at_fault_is_the_forward_when_its_output_is_wrong(mutant):
    document = check_mutant(mutant).document
    found = document["findings"]
    mine = [f for f in found if f["op"] == mutant.op and f["impl"] == document["run"]["candidate"]]
    assert mine
    forward, backward = document["run"]["candidate_functions"][mutant.op]
    places = {at_fault(f, found, document["run"]["candidate_functions"]) for f in mine if f["family"] == "reverse"}
    if mutant.function == forward:  # its output is wrong: that finding points at the forward
        assert f"in {forward} (its output)" in places, places
    else:  # the output agrees: every finding points at the backward
        assert places == {f"in {backward} ({forward}'s output agrees)"}, places


def test_catch_rate():
    caught = sum(check_mutant(m).status in (1, 2) for m in MUTANTS)
    assert (len(MUTANTS), caught) == (10, 10)


# --- the inputs expose the mistakes they are meant to ------------------------------------------


@pytest.mark.parametrize("op", ["rnn_step", "rnn", "word_embedding", "temporal_affine", "temporal_softmax_loss",
                                "lstm_step", "lstm"])
def test_default_shapes_have_one_and_several_samples_and_several_steps(op):
    shapes = CATALOG[op].shapes["default"]
    assert sorted(s["N"] for s in shapes)[0] == 1 and max(s["N"] for s in shapes) > 1
    assert all(s.get("T", 2) > 1 for s in shapes)
    assert all(s.get("D") != s.get("H", s.get("M")) for s in shapes if "D" in s and ("H" in s or "M" in s))


@pytest.mark.parametrize("n", [1, 3])
def test_word_indices_repeat_and_the_mask_has_zeros(n):
    spec = CATALOG["word_embedding"]
    dims = {"N": n, "T": 4, "V": 6, "D": 3}
    for seed in range(5):
        x = draw_inputs(Case("word_embedding", tuple(dims.items()), seed, "float32")).arrays["x"]
        assert x.dtype == np.int64 and x.min() >= 0 and x.max() < 6
        assert x[0, 1] == x[0, 0] and (n == 1 or x[-1, -1] == x[0, 0])
        assert spec.inputs[0].is_label
    dims = {"N": n, "T": 3, "V": 6}
    for seed in range(5):
        arrays = draw_inputs(Case("temporal_softmax_loss", tuple(dims.items()), seed, "float64")).arrays
        assert arrays["mask"].dtype == bool and not arrays["mask"][:, -1].any() and arrays["mask"][0, 0]


# --- references at known values ----------------------------------------------------------------


def test_temporal_softmax_reference_counts_unmasked_steps_and_divides_by_n():
    # equal scores: every unmasked step costs log V; 3 unmasked steps, N = 2 -> 3 log(4) / 2
    mask = np.array([[True, True, False], [True, False, False]])
    a = {"x": np.zeros((2, 3, 4)), "y": np.array([[0, 3, 1], [2, 2, 0]]), "mask": mask}
    assert course_rnn.temporal_softmax(np, a, {}) == pytest.approx(1.5 * np.log(4.0), rel=1e-15)


def test_lstm_step_reference_at_zero_weights():
    # a = b only: i = f = o = sigmoid(0) = 1/2, g = tanh(0) = 0 -> next_c = prev_c / 2,
    # next_h = tanh(prev_c / 2) / 2
    prev_c = np.array([[1.0, -2.0]])
    a = {"x": np.ones((1, 3)), "prev_h": np.ones((1, 2)), "prev_c": prev_c,
         "Wx": np.zeros((3, 8)), "Wh": np.zeros((2, 8)), "b": np.zeros(8)}
    out = course_rnn.lstm_step(np, a, {})
    np.testing.assert_allclose(out, [[np.tanh(0.5) / 2, np.tanh(-1.0) / 2, 0.5, -1.0]], rtol=1e-15)


def test_word_embedding_backward_accumulates_repeated_words():
    layers = _fixture()
    x = np.array([[1, 1, 0]])
    _, cache = layers.word_embedding_forward(x, np.zeros((3, 2)))
    dW = layers.word_embedding_backward(np.array([[[1.0, 2.0], [10.0, 20.0], [5.0, 5.0]]]), cache)
    np.testing.assert_array_equal(dW, [[5.0, 5.0], [11.0, 22.0], [0.0, 0.0]])


# --- the contract of a layer with two outputs ------------------------------------------------------


def test_two_outputs_are_joined_and_the_upstream_gradient_split_back():
    seen = {}

    def forward(x):
        return x, 2 * x[:, :1], "cache"

    def backward(dfirst, dsecond, cache):
        seen.update(first=dfirst, second=dsecond, cache=cache)
        return dfirst

    contract = Layer("forward", "backward", ("x",), ("x",), outputs=("first", "second"))
    x = np.arange(6.0).reshape(2, 3)
    dout = np.arange(8.0).reshape(2, 4) + 100
    out, grads = contract.call({"forward": forward, "backward": backward}.__getitem__, {"x": x}, dout, {})
    np.testing.assert_array_equal(out, [[0, 1, 2, 0], [3, 4, 5, 6]])
    np.testing.assert_array_equal(seen["first"], dout[:, :3])
    np.testing.assert_array_equal(seen["second"], dout[:, 3:])
    assert seen["cache"] == "cache" and grads["x"] is seen["first"]


def test_a_two_output_forward_returning_two_values_is_named():
    contract = CATALOG["lstm_step"].contracts[0]
    with pytest.raises(ContractError, match=r"lstm_step_forward must return \(next_h, next_c, cache\), got a sequence of 2"):
        contract.call({"lstm_step_forward": lambda *args: (args[0], None)}.__getitem__,
                      {k: np.zeros((1, 1)) for k in ("x", "prev_h", "prev_c", "Wx", "Wh", "b")}, np.zeros((1, 2)), {})
