"""The course's assignment-2 ``layers.py`` checked exactly as students write it.

``tests/cs231n/layers.py`` is a correct implementation of every function of the assignment
with the course's names and signatures; ``gradmatrix check`` must recognise each of them,
name them and pass.  Each file in ``tests/cs231n/mutants`` replaces one function with a
mistake found in real student code; ``MUTANTS`` says which op and gradient must fail.

The checks here run on a slice of the default matrix (one seed, and for the mutants the
torch and numeric oracles only, no JAX compilation): a mutant caught on a slice is caught
by the default ``gradmatrix check``, which contains it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cs231n_helpers import Mutant, course_mutants, finding_lines, reported
import gradmatrix
from gradmatrix.oracles.candidate import Candidate, load_module
from gradmatrix.oracles.catalog import CATALOG
from gradmatrix.oracles.contract import ContractError, Packed
from gradmatrix.oracles.contracts.cs231n.layers import recover_dropout_mask
from gradmatrix.reports.compare import PASSING
from cli_helpers import gradmatrix as gradmatrix_cli

COURSE = Path(__file__).parent / "cs231n"
LAYERS = COURSE / "layers.py"
FAST = {"seeds": 1, "oracles": ("torch", "numeric")}

# op -> the course's functions that gradmatrix calls for it
RECOGNISED = {
    "relu": ("relu_forward", "relu_backward"),
    "affine": ("affine_forward", "affine_backward"),
    "softmax_loss": ("softmax_loss",),
    "layernorm": ("layernorm_forward", "layernorm_backward"),
    "batchnorm": ("batchnorm_forward", "batchnorm_backward"),
    "svm_loss": ("svm_loss",),
    "batchnorm_alt": ("batchnorm_forward", "batchnorm_backward_alt"),
    "batchnorm_test": ("batchnorm_forward",),
    "spatial_batchnorm": ("spatial_batchnorm_forward", "spatial_batchnorm_backward"),
    "spatial_groupnorm": ("spatial_groupnorm_forward", "spatial_groupnorm_backward"),
    "dropout_train": ("dropout_forward", "dropout_backward"),
    "dropout_test": ("dropout_forward", "dropout_backward"),
    "conv_naive": ("conv_forward_naive", "conv_backward_naive"),
    "max_pool_naive": ("max_pool_forward_naive", "max_pool_backward_naive"),
}
COURSE_OPS = [op for op in RECOGNISED if op not in ("relu", "affine", "softmax_loss")]

# each mutant: its file, the op, the function carrying the mistake, and a tensor that must
# disagree or the fault its contract reports
MUTANTS = [
    Mutant("layernorm_backward_wrong_axis.py", "layernorm", "layernorm_backward", ("dx",)),
    Mutant("layernorm_over_batch_axis.py", "layernorm", "layernorm_forward", ("out",)),
    Mutant("max_pool_backward_assigns.py", "max_pool_naive", "max_pool_backward_naive", ("dx",)),
    Mutant("max_pool_backward_every_tie.py", "max_pool_naive", "max_pool_backward_naive", ("dx",)),
    Mutant("max_pool_height_for_width.py", "max_pool_naive", "max_pool_forward_naive", ("out",)),
    Mutant("conv_unpad_slice.py", "conv_naive", "conv_backward_naive", ("dx",)),
    Mutant("conv_backward_ignores_stride.py", "conv_naive", "conv_backward_naive", ("dx",)),
    Mutant("conv_backward_dw_zero.py", "conv_naive", "conv_backward_naive", ("dw",)),
    Mutant("conv_im2col_row_index.py", "conv_naive", "conv_forward_naive", ("out",)),
    Mutant("dropout_missing_rescale.py", "dropout_train", "dropout_forward", ("dx",)),
    Mutant("dropout_keeps_with_1_minus_p.py", "dropout_train", "dropout_forward", ("not inverted dropout",)),
    Mutant("dropout_test_scales_by_p.py", "dropout_test", "dropout_forward", ("out",)),
    Mutant("batchnorm_alt_drops_variance_term.py", "batchnorm_alt", "batchnorm_backward_alt", ("dx",)),
    Mutant("batchnorm_running_momentum_swapped.py", "batchnorm_test", "batchnorm_forward", ("out",)),
    Mutant("spatial_batchnorm_reshape_without_transpose.py", "spatial_batchnorm", "spatial_batchnorm_backward",
           ("dx",)),
    Mutant("spatial_groupnorm_drops_mean_term.py", "spatial_groupnorm", "spatial_groupnorm_backward", ("dx",)),
    Mutant("svm_loss_no_true_class_pull.py", "svm_loss", "svm_loss", ("dx",)),
]


def test_every_course_function_is_recognised_with_the_courses_contract():
    candidate = Candidate(load_module(str(LAYERS)))
    assert {op: c.functions for op, c in candidate.contracts.items()} == RECOGNISED
    # the course's dict arguments, not our eps, for the ops that have both contracts
    for op, packed in (("batchnorm", "bn_param"), ("layernorm", "ln_param")):
        assert any(isinstance(a, Packed) and a.name == packed for a in candidate.contracts[op].args), op
    # gradmatrix's own implementation keeps its own contracts and gains none of the course's ops
    manual = Candidate(load_module("gradmatrix.manual"))
    assert not (set(COURSE_OPS) - {"batchnorm", "layernorm"}) & set(manual.ops)
    assert manual.contracts["batchnorm"] is CATALOG["batchnorm"].contracts[0]


def test_the_correct_layers_pass_with_every_oracle():
    result = gradmatrix.check(str(LAYERS), ops=COURSE_OPS, seeds=1)
    assert result.status == 0, [r["message"] for r in result.failures[:5]]
    assert result.document["summary"]["complete"]
    verdicts = {op: v["verdict"] for op, v in result.per_op().items() if v["comparisons"]}
    assert verdicts == {op: "agree" for op in COURSE_OPS}
    notes = {n for r in result.document["comparisons"] if r["op"] == "dropout_train" for n in r.get("notes", ())}
    assert notes == {"dropout_forward reads p as the probability of keeping a unit (the course's later convention)"}


def test_check_command_names_every_function_and_passes(tmp_path):
    run = gradmatrix_cli("check", LAYERS, "--seeds", "1", "--oracles", "torch", "numeric", "--progress", "lines",
                         "--out", tmp_path / "out")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    provides = next(line for line in run.stdout.splitlines() if " provides " in line)
    for functions in RECOGNISED.values():
        for function in functions:
            assert function in provides
    assert "\nPASS: cs231n.layers agrees in all " in run.stdout and not finding_lines(run.stdout)
    verdicts = {op: v["verdict"] for op, v in reported(tmp_path / "out").per_op().items()}
    assert verdicts == {op: "agree" for op in RECOGNISED}
    assert "convention: dropout_forward reads p as the probability of keeping a unit" in run.stdout


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.file.removesuffix(".py") for m in MUTANTS])
def test_a_mutant_is_caught_naming_its_function_and_gradient(mutant):
    name, op, function, (evidence,) = mutant.file, mutant.op, mutant.function, mutant.wrong
    path = COURSE / "mutants" / name
    assert (load_module(str(path)).__doc__ or "").strip().endswith("."), "the docstring states the mistake"
    candidate = Candidate(load_module(str(path)))
    assert function in candidate.contracts[op].functions
    result = gradmatrix.check(str(path), ops=[op], **FAST)
    assert result.status in (1, 2), f"{name} was not caught"
    stem = path.stem
    mine = [r for r in result.failures if stem in r["pair"]]
    assert mine and all(r["op"] == op for r in result.failures)
    named = {e["tensor"] for r in mine for e in r["tensors"] if not e.get("agree", True)}
    assert evidence in named or any(evidence in r["message"] for r in mine), [r["message"] for r in mine[:3]]
    others = [r for r in result.document["comparisons"] if stem not in r["pair"]]
    # at a tie of max_pool_naive torch routes to the first maximum and the numeric oracle
    # splits: both inside the subdifferential, a convention difference, not a disagreement
    assert others and all(r["verdict"] in PASSING for r in others), "the oracles disagreed among themselves"


def test_a_height_read_for_the_width_is_caught_on_the_windows_that_are_not_square():
    # pool_param has pool_height and pool_width: on square windows only, reading the height
    # for both would pass
    result = gradmatrix.check(str(COURSE / "mutants" / "max_pool_height_for_width.py"), ops=["max_pool_naive"], **FAST)
    assert result.status == 2  # its output has the wrong shape there
    assert {r["dims"]["pool"] == [3, 2] for r in result.failures} == {True}
    assert "likely cause: fails only where windows are not square (pool_height != pool_width)" in str(result)


def test_catch_rate():
    caught = [m.file for m in MUTANTS if (COURSE / "mutants" / m.file).is_file()]
    assert len(caught) == len(set(caught)) == 17  # each caught by test_a_mutant_is_caught_naming_its_function_and_gradient
    # every file of the shared mutants folder is in one table (this one, the RNN's, the classifiers')
    listed = [m.file for m in course_mutants()]
    assert sorted(listed) == sorted(p.name for p in (COURSE / "mutants").glob("*.py"))


def test_the_early_courses_dropout_passes_and_is_named_as_such():
    result = gradmatrix.check(str(COURSE / "dropout_drop_probability.py"), ops=["dropout_train"], **FAST)
    assert result.status == 0, [r["message"] for r in result.failures[:3]]
    notes = {n for r in result.document["comparisons"] for n in r.get("notes", ())}
    assert notes == {"dropout_forward reads p as the probability of dropping a unit (the course's early convention)"}


def test_the_oracles_use_the_candidates_own_unseeded_mask(tmp_path):
    # a mask drawn afresh on every call, seed or not: only the mask recovered from this very
    # forward can agree with its own backward
    path = tmp_path / "unseeded.py"
    path.write_text(
        "import numpy as np\n\n"
        "def dropout_forward(x, dropout_param):\n"
        "    p = dropout_param['p']\n"
        "    if dropout_param['mode'] == 'test':\n"
        "        return x, None\n"
        "    mask = ((np.random.default_rng().random(x.shape) < p) / p).astype(x.dtype)\n"
        "    return x * mask, mask\n\n"
        "def dropout_backward(dout, cache):\n"
        "    return dout if cache is None else dout * cache\n")
    result = gradmatrix.check(str(path), **FAST)
    assert result.document["run"]["candidate_ops"] == ["dropout_train", "dropout_test"]
    assert result.status == 0, [r["message"] for r in result.failures[:3]]


X = np.array([[1.0, -2.0, 4.0, 0.5], [3.0, -1.0, 2.0, -4.0]])


@pytest.mark.parametrize("scale, meaning", [(1 / 0.25, "keeping"), (1 / 0.75, "dropping")])
def test_the_rescale_tells_the_meaning_of_p(scale, meaning):
    kept = np.array([[1, 0, 0, 0], [0, 0, 1, 0]], dtype=bool) if meaning == "keeping" else ~np.eye(2, 4, dtype=bool)
    drawn, notes = recover_dropout_mask(X * kept * scale, {"x": X}, {"p": 0.25})
    np.testing.assert_array_equal(drawn, kept * scale)
    assert meaning in notes[0]


def test_no_rescale_reads_p_from_the_kept_fraction_and_leaves_the_forward_to_fail():
    kept = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=bool)  # 7 of 8 kept at p = 0.8
    drawn, notes = recover_dropout_mask(X * kept, {"x": X}, {"p": 0.8})
    np.testing.assert_array_equal(drawn, kept / 0.8)  # the oracles' out differs from x * kept
    assert "keeping" in notes[0]


def test_a_kept_fraction_far_from_the_rescales_is_no_inverted_dropout():
    x = np.ones((20, 30))
    kept = np.zeros(x.shape, dtype=bool)
    kept[:14] = True  # 70 % kept, rescaled by 1/p for p = 0.3
    with pytest.raises(ContractError, match=r"not inverted dropout at this rate: it kept 420 of 600 units, where "
                                            r"keeping each with probability 0.3 \(its rescale reads p = 0.3 as the "
                                            r"probability of keeping a unit\) keeps 180"):
        recover_dropout_mask(x * kept / 0.3, {"x": x}, {"p": 0.3})


def _spatial(op: str, dims: dict) -> tuple[tuple, tuple, tuple]:
    """(H, W), the window (HH, WW) and the output size of a conv or pooling shape."""
    spec = CATALOG[op]
    full = spec.resolve_dims(dims)
    window = full["K"] if "K" in full else (full["PH"], full["PW"])
    return full["HW"], window, full["HWo"]


@pytest.mark.parametrize("op", ["conv_naive", "max_pool_naive"])
def test_conv_and_pooling_shapes_stay_within_what_the_course_promises(op):
    spec = CATALOG[op]
    for matrix in ("default", "full"):
        for dims in spec.shapes[matrix]:
            size, window, _ = _spatial(op, dims)
            pad = dims.get("pad", 0)
            assert all((s + 2 * pad - k) % dims["stride"] == 0 for s, k in zip(size, window)), (matrix, dims)
    default = spec.shapes["default"]
    assert any(_spatial(op, d)[2][0] != _spatial(op, d)[2][1] for d in default)  # a non-square output
    if op == "conv_naive":
        assert {d["stride"] for d in default} == {1, 2}
        assert {d["pad"] > 0 for d in default} == {True, False}
    else:
        windows = [_spatial(op, d)[1] for d in default]
        assert {max(w) > d["stride"] for w, d in zip(windows, default)} == {True, False}  # overlapping windows, and not
        assert {w[0] == w[1] for w in windows} == {True, False}  # square windows, and not


def test_a_plan_without_a_candidate_keeps_to_manuals_ops():
    from gradmatrix.runner import default_plan

    planned = {c.case.op for c in default_plan("default", seeds=1, dtypes=["float64"], modes=["reverse"])}
    assert planned == set(Candidate(load_module("gradmatrix.manual")).ops)
    assert not planned & {"svm_loss", "dropout_train", "conv_naive"}
