"""The mutant corpus: wrong implementations the harness must catch, and the ones it must not.

Each file in ``tests/mutants`` is ``manual`` with exactly one function replaced by a classic
mistake (its docstring names it).  ``CORPUS`` says, per file, what ``gradmatrix.check`` with
default settings must conclude: "caught" (status 1 or 2), "equivalent: <reason>" (status 0:
the mutant computes the same gradients, so no check can tell it apart), or
"survives: <reason>" (status 0 on the default matrix although some input would catch it: a
known gap, with the test that shows the input).  A caught mutant may also carry a ``gap``: it
is genuinely wrong but the default matrix has no case exposing it, so its outcome test is a
strict xfail naming the missing case (it turns into a failure the day the matrix catches it),
and a test of its own shows the input that does.

For a caught mutant the table also says why: a fragment of a failing record's message
(``evidence``) and, where the mistake only shows on some cases, a predicate every failing
comparison satisfies (``only``), so the matrix is shown to contain the case exposing it
(N > 1, reg > 0, large logits, multi-dimensional x, float64, ...).

Each mutant is checked on its own op only (``ops=[op]``: the default matrix for that op),
which keeps this file to about eight minutes on one core (conv and max_pool take most); its
other functions are ``manual``'s own, and ``test_a_mutant_fails_only_its_own_op`` shows they
pass.  ``test_catch_rate`` states the corpus's size and catch rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from gradmatrix import manual
import gradmatrix
from gradmatrix.oracles.candidate import Candidate, load_module
from gradmatrix.oracles.catalog import CATALOG
from gradmatrix.oracles.cases import Case, CaseInputs, draw_inputs
from gradmatrix.runner import Comparison, Runner

from cs231n_helpers import course_mutant_ops

MUTANTS = Path(__file__).parent / "mutants"
PREFIXES = {"relu_": "relu", "affine_": "affine", "softmax_": "softmax_loss", "net_": "two_layer_net",
            "sigmoid_": "sigmoid", "tanh_": "tanh", "add_": "add", "multiply_": "multiply", "max_": "max",
            "score_net_": "score_net", "conv_": "conv", "max_pool_": "max_pool", "batchnorm_": "batchnorm",
            "layernorm_": "layernorm", "dropout_": "dropout"}  # the longest matching prefix names the op
PREEXISTING = {"affine_db_wrong_axis.py", "affine_missing_transpose.py", "net_grads_in_float32.py"}


def n_above_1(record: dict) -> bool:
    return record["dims"]["N"] > 1


def reg_positive(record: dict) -> bool:
    return record["dims"]["reg"] > 0


def large_logits(record: dict) -> bool:
    return max(record["dims"].get("scale", 1.0), record["dims"].get("shift", 0.0)) >= 1e4


def multi_dim_x(record: dict) -> bool:
    return isinstance(record["dims"]["Dx"], list)


def float64_case(record: dict) -> bool:
    return record["dtype"] == "float64"


def float64_or_hvp_case(record: dict) -> bool:
    """float64 cases, and every "hvp" case: there the candidate's gradient is differenced in
    float64 whatever the case's dtype, and float32 rounding over the step 1e-5 is noise of 1e-2."""
    return record["dtype"] == "float64" or record["case_kind"] == "hvp"


def float32_case(record: dict) -> bool:
    return record["dtype"] == "float32"


def near_tie_float32(record: dict) -> bool:
    return record["dims"].get("shift", 0.0) >= 1e4 and float32_case(record)


def large_logits_and_n_above_1(record: dict) -> bool:
    return large_logits(record) and n_above_1(record)


def kink_case(record: dict) -> bool:
    return record["case_kind"] == "kink"


def n_above_16(record: dict) -> bool:
    return record["dims"]["N"] > 16


def pad_other_than_1(record: dict) -> bool:
    return record["dims"]["pad"] != 1


def stride_other_than_2(record: dict) -> bool:
    return record["dims"]["stride"] != 2


def strided(record: dict) -> bool:
    return record["dims"]["stride"] > 1


def overlapping_windows(record: dict) -> bool:
    return record["dims"]["stride"] < record["dims"]["pool"]


@dataclass(frozen=True)
class Expect:
    """What checking one mutant must show."""

    outcome: str  # "caught", "warned", "equivalent: <reason>" or "survives: <reason>"
    evidence: str = ""  # caught: a fragment of some failing record's message; warned: the warning's kind
    only: Callable[[dict], bool] | None = None  # caught: true of every failing comparison (the exposing cases)
    gap: str = ""  # caught, but not by the default matrix: the case that would expose it (a strict xfail)


CAUGHT = "caught"
# right values, and a warning of the kind named (reports.severity): the check exits 0 and shows
# it, --strict fails it; such a mutant is a robustness or hygiene mistake, not a wrong gradient
WARNED = "warned"

CORPUS: dict[str, Expect] = {
    # --- relu --------------------------------------------------------------------------
    "relu_mask_ge_zero.py": Expect(
        "equivalent: differs only at x = 0 exactly, a kink (1 instead of 0, seed 002's convention); reported as a "
        "convention difference, which passes by default and fails with strict_kinks"),
    "relu_mask_from_dout.py": Expect(CAUGHT, "dx (relu_mask_from_dout vs"),
    "relu_ignores_dout.py": Expect(CAUGHT, "dx (relu_ignores_dout vs"),
    "relu_inplace_dout.py": Expect(WARNED, "wrote-into-argument"),
    "relu_cache_mutation.py": Expect(WARNED, "wrote-into-argument"),
    # a derivative at the kink outside the subdifferential [0, 1] is no convention
    "relu_heaviside_17.py": Expect(CAUGHT, "relu_heaviside_17's derivative lies", kink_case),
    # --- affine ------------------------------------------------------------------------
    "affine_missing_transpose.py": Expect(CAUGHT, "dw (affine_missing_transpose vs"),
    "affine_db_wrong_axis.py": Expect(CAUGHT, "db: affine_db_wrong_axis returned shape"),
    "affine_dx_missing_transpose.py": Expect(CAUGHT, "dx (affine_dx_missing_transpose vs"),
    "affine_dx_flattened.py": Expect(CAUGHT, "dx: affine_dx_flattened returned shape", multi_dim_x),
    "affine_dw_in_float32.py": Expect(CAUGHT, "dw (affine_dw_in_float32 vs", float64_case),
    "affine_db_mean.py": Expect(CAUGHT, "db (affine_db_mean vs", n_above_1),
    # the default matrix's N = 32 case is the one past 16 rows
    "affine_db_first_16_rows.py": Expect(CAUGHT, "db (affine_db_first_16_rows vs", n_above_16),
    "affine_reshape_cache_in_place.py": Expect(WARNED, "wrote-into-argument", multi_dim_x),
    # --- softmax_loss ------------------------------------------------------------------
    # non-finite only at logits of 1e4, beyond where exp overflows: a robustness warning
    "softmax_no_max_shift.py": Expect(WARNED, "non-finite-at-extreme-inputs", large_logits),
    "softmax_global_max_shift.py": Expect(WARNED, "non-finite-at-extreme-inputs", large_logits_and_n_above_1),
    "softmax_log_of_probs.py": Expect(WARNED, "non-finite-at-extreme-inputs", large_logits),
    "softmax_normaliser_axis0.py": Expect(CAUGHT, "(softmax_normaliser_axis0 vs"),
    "softmax_missing_1_over_n.py": Expect(CAUGHT, "dscores (softmax_missing_1_over_n vs", n_above_1),
    "softmax_1_over_n_twice.py": Expect(CAUGHT, "dscores (softmax_1_over_n_twice vs", n_above_1),
    "softmax_onehot_column0.py": Expect(CAUGHT, "dscores (softmax_onehot_column0 vs"),
    "softmax_onehot_y_minus_1.py": Expect(CAUGHT, "dscores (softmax_onehot_y_minus_1 vs"),
    "softmax_labels_as_rows.py": Expect(CAUGHT, "dscores (softmax_labels_as_rows vs"),
    "softmax_divided_by_nc.py": Expect(CAUGHT, "dscores (softmax_divided_by_nc vs"),
    # float64 for float32 scores, every value right: a promoted dtype is a warning
    "softmax_loss_python_float.py": Expect(WARNED, "dtype-promoted", float32_case),
    "softmax_probs_first.py": Expect(
        "equivalent: the same max-shifted softmax, the probabilities divided out instead of exponentiated from "
        "log-probabilities and the loss averaged with mean(); the results differ by rounding only"),
    # m + log(sum) rounds to float32's spacing at 1e4 (~1e-3): seen where large logits nearly tie
    "softmax_lse_on_raw_scores.py": Expect(CAUGHT, "dscores (softmax_lse_on_raw_scores vs", near_tie_float32),
    # --- two_layer_net -----------------------------------------------------------------
    "net_grads_in_float32.py": Expect(CAUGHT, "(net_grads_in_float32 vs", float64_or_hvp_case),
    "net_l2_missing_factor2.py": Expect(CAUGHT, "dW1 (net_l2_missing_factor2 vs", reg_positive),
    "net_l2_wrong_sign.py": Expect(CAUGHT, "dW1 (net_l2_wrong_sign vs", reg_positive),
    "net_l2_squared_weights.py": Expect(CAUGHT, "dW1 (net_l2_squared_weights vs", reg_positive),
    "net_reg_on_biases.py": Expect(CAUGHT, "loss (net_reg_on_biases vs", reg_positive),
    "net_dw2_pre_relu.py": Expect(CAUGHT, "dW2 (net_dw2_pre_relu vs"),
    "net_db2_scalar_broadcast.py": Expect(CAUGHT, "db2 (net_db2_scalar_broadcast vs"),
    "net_relu_backward_skipped.py": Expect(CAUGHT, "(net_relu_backward_skipped vs"),
    "net_relu_mask_from_scores.py": Expect(CAUGHT, "raised ValueError: operands could not be broadcast"),
    "net_relu_mask_from_hidden.py": Expect(
        "equivalent: h1 = max(y1, 0) is > 0 exactly where y1 > 0 (also at y1 = 0 and -0.0), so the mask is the same "
        "set of units"),
    # --- sigmoid, tanh -----------------------------------------------------------------
    "sigmoid_backward_s_only.py": Expect(CAUGHT, "dx (sigmoid_backward_s_only vs"),
    "sigmoid_backward_from_input.py": Expect(CAUGHT, "dx (sigmoid_backward_from_input vs"),
    "tanh_one_minus_x_squared.py": Expect(CAUGHT, "dx (tanh_one_minus_x_squared vs"),
    "tanh_applied_twice.py": Expect(CAUGHT, "dx (tanh_applied_twice vs"),
    # --- gates: add, multiply, max -----------------------------------------------------
    "add_halves_gradient.py": Expect(CAUGHT, "dx (add_halves_gradient vs"),
    "add_returns_dout_itself.py": Expect(
        "equivalent: the values are exactly dout for both inputs; the aliasing (dx is dy is dout) only matters to a "
        "caller that accumulates into one of them in place, and the harness reads the gradients without writing"),
    "multiply_no_swap.py": Expect(CAUGHT, "dx (multiply_no_swap vs"),
    "max_routes_to_both.py": Expect(CAUGHT, "dy (max_routes_to_both vs"),
    "max_routes_to_smaller.py": Expect(CAUGHT, "dx (max_routes_to_smaller vs"),
    "max_ties_to_y.py": Expect(
        "equivalent: differs from gradmatrix.manual only at ties x == y, a kink (all to y instead of all to x; torch, jax and "
        "a central difference split 0.5 / 0.5); reported as a convention difference, which passes by default and "
        "fails with strict_kinks"),
    # both tied inputs get the full gradient: shares adding up to 2 dout, outside the subdifferential
    "max_ties_to_both.py": Expect(CAUGHT, "max_ties_to_both's derivative lies", kink_case),
    # --- score_net ---------------------------------------------------------------------
    "score_net_dw_transposed.py": Expect(CAUGHT, "dW (score_net_dw_transposed vs"),
    "score_net_missing_fprime.py": Expect(CAUGHT, "(score_net_missing_fprime vs"),
    # score_net's s is 0-d with a drawn upstream gradient ds, so ignoring ds shows
    "score_net_ignores_ds.py": Expect(CAUGHT, "(score_net_ignores_ds vs"),
    # --- conv --------------------------------------------------------------------------
    "conv_dx_kernel_not_rotated.py": Expect(CAUGHT, "dx (conv_dx_kernel_not_rotated vs"),
    "conv_stride_ignored_in_backward.py": Expect(CAUGHT, "dx (conv_stride_ignored_in_backward vs", strided),
    "conv_db_last_sample_only.py": Expect(CAUGHT, "db (conv_db_last_sample_only vs", n_above_1),
    # the second default conv shape reads x's last row in no window: (9 + 2 - 3) % 3 = 2 > pad
    "conv_dx_assumes_tiling.py": Expect(CAUGHT, "conv_dx_assumes_tiling returned shape", strided),
    # pad 0: shifted windows, wrong values; pad 2: windows past its padded x, a ValueError
    "conv_pad_hardcoded_1.py": Expect(CAUGHT, "(conv_pad_hardcoded_1 vs", pad_other_than_1),
    # --- max_pool ----------------------------------------------------------------------
    "max_pool_routes_to_window.py": Expect(CAUGHT, "dx (max_pool_routes_to_window vs"),
    "max_pool_overlap_overwrites.py": Expect(CAUGHT, "dx (max_pool_overlap_overwrites vs", overlapping_windows),
    "max_pool_stride_hardcoded_2.py": Expect(CAUGHT, "dx (max_pool_stride_hardcoded_2 vs", stride_other_than_2),
    "max_pool_last_max.py": Expect(
        "equivalent: differs from gradmatrix.manual only in windows with tied maxima, a kink (all to the last maximum instead "
        "of the first); random cases have distinct values, and the tie cases report a convention difference, which "
        "passes by default and fails with strict_kinks"),
    # the common mask = (window == window.max()): every tied maximum gets the full gradient
    "max_pool_mask_all_maxima.py": Expect(CAUGHT, "max_pool_mask_all_maxima's derivative lies", kink_case),
    # --- batchnorm, layernorm ----------------------------------------------------------
    "batchnorm_stats_as_constants.py": Expect(CAUGHT, "dx (batchnorm_stats_as_constants vs"),
    "batchnorm_missing_mean_branch.py": Expect(CAUGHT, "dx (batchnorm_missing_mean_branch vs"),
    "batchnorm_unbiased_variance.py": Expect(CAUGHT, "(batchnorm_unbiased_variance vs"),
    "layernorm_over_batch_axis.py": Expect(CAUGHT, "out (layernorm_over_batch_axis vs"),
    "layernorm_dgamma_over_features.py": Expect(CAUGHT, "dgamma: layernorm_dgamma_over_features returned shape"),
    # --- dropout -----------------------------------------------------------------------
    "dropout_backward_missing_scale.py": Expect(CAUGHT, "dx (dropout_backward_missing_scale vs"),
    "dropout_fresh_mask.py": Expect(CAUGHT, "dx (dropout_fresh_mask vs"),
}


# The likely cause the first reverse-mode finding must state for a caught mutant (a fragment of
# its text), where the numbers show one (reports.findings).  The other caught mutants get no
# cause, or one that is true but not the mistake: softmax_normaliser_axis0 is first reported
# by its non-finite loss at large logits ("fails only at scale = 10000").
CAUSES: dict[str, str] = {
    "affine_db_first_16_rows.py": "fails only at N = 32",
    "affine_missing_transpose.py": "a missing transpose: dw is the reference transposed",
    "affine_db_wrong_axis.py": "a sum or mean over the wrong axis: db",
    "affine_dx_missing_transpose.py": "probably needs a transpose",
    "affine_dx_flattened.py": "reshape dx to",
    "affine_dw_in_float32.py": "float32 arithmetic inside a float64 computation",
    "affine_db_mean.py": "an extra 1/N",
    "softmax_missing_1_over_n.py": "a missing 1/N: dscores is N times the reference",
    "softmax_1_over_n_twice.py": "an extra 1/N",
    "softmax_divided_by_nc.py": "an extra 1/C",
    "softmax_lse_on_raw_scores.py": "a loss of precision in float32",
    "net_grads_in_float32.py": "float32 arithmetic inside a float64 computation",
    "net_l2_missing_factor2.py": "agrees only where reg = 0",
    "net_l2_wrong_sign.py": "agrees only where reg = 0",
    "net_l2_squared_weights.py": "agrees only where reg = 0",
    "net_reg_on_biases.py": "agrees only where reg = 0",
    "add_halves_gradient.py": "is 0.5 times the reference",
    "score_net_dw_transposed.py": "a missing transpose: dW is the reference transposed",
    "conv_stride_ignored_in_backward.py": "stride = 1",
    "conv_db_last_sample_only.py": "N = 1",
    "conv_dx_assumes_tiling.py": "stride = 1",
    "conv_pad_hardcoded_1.py": "pad = 1",  # named beside N = 1: the one case with pad 1 is the one with N = 1
    "max_pool_overlap_overwrites.py": "fails only where pooling windows overlap",
    "max_pool_stride_hardcoded_2.py": "agrees only at stride = 2",
    "layernorm_dgamma_over_features.py": "a sum or mean over the wrong axis: dgamma",
    "batchnorm_missing_mean_branch.py": "a missing term that is the same in every row of dx",
    "dropout_backward_missing_scale.py": "a missing 1/(1 - p)",
    # a derivative outside the subdifferential, and only there: the kink cases fail, random ones agree
    "relu_heaviside_17.py": "differs only at kinks",
    "max_ties_to_both.py": "differs only at kinks",
    "max_pool_mask_all_maxima.py": "differs only at kinks",
}
# a cause is stated, true of its failures but not its mistake (see above); affine_db_first_16_rows
# fails on the one affine case with N = 32, which also has Dx = 5 and M = 5: the cause names N
# first and the others beside it ("fails only at N = 32 (and Dx = 5, M = 5)")
MISLEADING = {"softmax_normaliser_axis0.py"}


def first_cause(result) -> str:
    """The cause the console states first: that of the first reverse-mode finding."""
    first = next((f for f in result.document["findings"] if f["family"] == "reverse"), None)
    return first["cause"]["text"] if first and first["cause"] else ""


def test_diagnosis_accuracy():
    caught = [n for n, e in CORPUS.items() if e.outcome == CAUGHT and not e.gap]
    assert set(CAUSES) <= set(caught) and not MISLEADING & set(CAUSES)
    # 30 of the 55 caught mutants get their cause stated, 1 more a true but misleading one
    assert (len(caught), len(CAUSES), len(MISLEADING)) == (55, 30, 1)


def op_of(name: str) -> str:
    """The op a mutant file belongs to: its longest matching prefix ("max_pool_..." is max_pool, not max)."""
    return PREFIXES[max((p for p in PREFIXES if name.startswith(p)), key=len)]


def candidate_records(result, name: str) -> list:
    """The records of comparisons the mutant itself takes part in (its gradient differenced,
    ``<name>.fd``, in the Hessian-vector cases included)."""
    return [r for r in result.document["comparisons"] if name in r["pair"] or f"{name}.fd" in r["pair"]]


def test_corpus_table_lists_every_mutant_of_these_ops():
    files = {p.name for p in MUTANTS.glob("*.py") if p.name.startswith(tuple(PREFIXES))}
    assert files == set(CORPUS), f"not in CORPUS: {sorted(files - set(CORPUS))}; no such file: {sorted(set(CORPUS) - files)}"
    assert len(set(CORPUS) - PREEXISTING) >= 20
    for name, expect in CORPUS.items():
        assert expect.outcome in (CAUGHT, WARNED) or expect.outcome.startswith(("equivalent: ", "survives: ")), name
        assert (expect.outcome in (CAUGHT, WARNED)) == bool(expect.evidence), \
            f"{name}: evidence is for caught and warned mutants"
        assert not expect.gap or expect.outcome == CAUGHT, f"{name}: a gap is a caught mutant the matrix misses"
        doc = load_module(str(MUTANTS / name)).__doc__ or ""
        assert doc.strip() and doc.strip().endswith("."), f"{name}: the docstring must state the mistake in a sentence"
    assert any(e.outcome.startswith("equivalent: ") for e in CORPUS.values())
    # every op of the catalog has a classic mistake that the default matrix catches: in this
    # corpus, among the course-style mutants of tests/cs231n (held to it by their own tables),
    # or the course's models and sandwich layers (tests/test_cs231n_models.py)
    from gradmatrix.oracles.contracts.cs231n import models
    from gradmatrix.oracles.declared import declarations_in

    OPS_OF_MODELS = [declaration.name for declaration in declarations_in(models)]

    caught_here = {op_of(n) for n, e in CORPUS.items() if e.outcome == CAUGHT and not e.gap}
    assert caught_here | course_mutant_ops() | set(OPS_OF_MODELS) == set(CATALOG)


def catch_rate() -> tuple[int, int, int]:
    """(corpus size, genuinely wrong mutants, those the default matrix catches) by the table.

    Equivalent mutants are not wrong and count in neither, nor do warned ones (right values, a
    warning shown); "survives" and gap entries are wrong but not caught.
    test_mutant_outcome_with_default_settings holds every entry to its outcome.
    """
    wrong = [e for e in CORPUS.values() if not e.outcome.startswith("equivalent: ") and e.outcome != WARNED]
    caught = [e for e in wrong if e.outcome == CAUGHT and not e.gap]
    return len(CORPUS), len(wrong), len(caught)


def test_catch_rate():
    size, wrong, caught = catch_rate()
    assert (size, wrong, caught) == (68, 55, 55)  # every wrong mutant is caught; 7 more are warned
    assert caught / wrong > 0.9


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow in the mutants' own exp/log
@pytest.mark.parametrize("name", [
    pytest.param(n, id=n.removesuffix(".py"),
                 marks=[pytest.mark.xfail(strict=True, reason=f"not caught by the default matrix: {e.gap}")] if e.gap else [])
    for n, e in CORPUS.items()])
def test_mutant_outcome_with_default_settings(name):
    expect = CORPUS[name]
    result = gradmatrix.check(str(MUTANTS / name), ops=[op_of(name)])
    stem = name.removesuffix(".py")
    mine = candidate_records(result, stem)
    assert mine
    others = [r for r in result.document["comparisons"] if r not in mine]
    assert all(r["verdict"] in ("agree", "convention") for r in others), "oracles disagreed among themselves"
    if expect.outcome == WARNED:
        assert result.status == 0, f"{name} (warned) failed: {[r['message'] for r in result.failures[:3]]}"
        warned = [r for r in mine if any(w["kind"] == expect.evidence for w in r.get("warnings", ()))]
        assert warned, f"{name}: no {expect.evidence} warning"
        if expect.only is not None:
            stray = [r["id"] for r in warned if not expect.only(r)]
            assert not stray, f"{name} warned outside the cases that expose its mistake: {stray[:3]}"
        assert not gradmatrix.check(str(MUTANTS / name), ops=[op_of(name)], strict=True).passed
        return
    if expect.outcome != CAUGHT:
        assert result.status == 0, f"{name} ({expect.outcome}) was flagged: {[r['message'] for r in result.failures[:3]]}"
        return
    assert result.status in (1, 2), f"{name} was not caught"
    failing = [r for r in mine if r["verdict"] in ("disagree", "error")]
    messages = [r["message"] for r in failing]
    assert any(expect.evidence in m for m in messages), f"{name}: no failure mentions {expect.evidence!r}: {messages[:3]}"
    if expect.only is not None:
        stray = [r["id"] for r in failing if not expect.only(r)]
        assert not stray, f"{name} failed outside the cases that expose its mistake: {stray[:3]}"
    cause = first_cause(result)
    if name in CAUSES:
        assert CAUSES[name] in cause, f"{name}: the stated cause is {cause!r}"
    elif name not in MISLEADING:
        assert not cause, f"{name}: a cause is stated where the numbers show none: {cause!r}"


def test_kink_convention_mutant_is_caught_with_strict_kinks():
    name = "relu_mask_ge_zero.py"
    default = gradmatrix.check(str(MUTANTS / name), ops=["relu"])
    conventions = [r for r in candidate_records(default, "relu_mask_ge_zero") if r["verdict"] == "convention"]
    assert default.status == 0 and conventions and all(r["case_kind"] == "kink" for r in conventions)
    assert {r["conventions"]["relu_mask_ge_zero"] for r in conventions} == {1.0}  # seed 002's derivative at 0
    strict = gradmatrix.check(str(MUTANTS / name), ops=["relu"], strict_kinks=True)
    failing = [r for r in strict.failures if "relu_mask_ge_zero" in r["pair"]]
    assert strict.status == 1 and failing and all(r["case_kind"] == "kink" for r in failing)


def test_lse_on_raw_scores_is_caught_by_a_near_tie():
    # float32 logits of 1e4 within 0.5 of each other: m + log(sum) = 10000.97 is rounded to
    # float32's spacing there (~1e-3), so log-probabilities, loss and gradient lose ~5e-4
    case = Case("softmax_loss", (("N", 1), ("C", 2), ("scale", 1e4)), 0, "float32")
    inputs = CaseInputs(case, {"scores": np.array([[1e4, 1e4 + 0.5]], np.float32), "y": np.array([0])}, None)
    for module in (load_module(str(MUTANTS / "softmax_lse_on_raw_scores.py")), manual):
        runner = Runner(Candidate(module, "candidate"), ("torch", "numeric"))
        verdicts = {runner.run(Comparison(case, ("candidate", ref)), inputs=inputs)["verdict"] for ref in ("torch", "numeric")}
        assert verdicts == ({"agree"} if module is manual else {"disagree"})


@pytest.mark.parametrize("name, op, share", [
    pytest.param("max_ties_to_y.py", "max", 0.0, id="max-ties-to-y"),  # manual routes a tie all to x (share 1)
    pytest.param("max_pool_last_max.py", "max_pool", 0.0, id="max-pool-last-max"),  # manual: all to the first max
])
def test_tie_convention_mutants_are_caught_with_strict_kinks(name, op, share):
    stem = name.removesuffix(".py")
    default = gradmatrix.check(str(MUTANTS / name), ops=[op])
    conventions = [r for r in candidate_records(default, stem) if r["verdict"] == "convention"]
    assert default.status == 0 and conventions and all(r["case_kind"] == "kink" for r in conventions)
    assert {r["conventions"][stem] for r in conventions} == {share}
    strict = gradmatrix.check(str(MUTANTS / name), ops=[op], strict_kinks=True)
    failing = [r for r in strict.failures if stem in r["pair"]]
    assert strict.status == 1 and failing and all(r["case_kind"] == "kink" for r in failing)


@pytest.fixture(scope="module")
def manual_result():
    # correct code on the ops whose mutants write into their arguments; that correct code
    # agrees on the whole default matrix is tests/test_matrix.py's to show, run once
    return gradmatrix.check(manual, ops=["relu", "affine"])


def test_a_mutant_fails_only_its_own_op():
    # relu_mask_from_dout provides all four ops, three of them manual's own
    result = gradmatrix.check(str(MUTANTS / "relu_mask_from_dout.py"))
    per_op = result.per_op()
    assert set(per_op) == {"relu", "affine", "softmax_loss", "two_layer_net"}
    # the lines per op count the candidate's comparisons, as the verdict line does
    own = result.document["verdict"]["candidate"]
    assert sum(v["comparisons"] for v in per_op.values()) == own["comparisons"]
    assert sum(v["failures"] for v in per_op.values()) == own["disagree"] + own["error"]
    assert per_op["relu"]["verdict"] == "disagree"
    assert all(v["verdict"] == "agree" for op, v in per_op.items() if op != "relu")


def test_a_failing_ops_line_names_what_is_wrong_never_a_tensor_that_agrees(tmp_path):
    # dx in float32 for a float64 case: a wrong dtype, nothing to measure; dw and db agree
    module = tmp_path / "demoted.py"
    module.write_text("import numpy as np\n\nfrom gradmatrix.manual import affine_forward, affine_backward as _right\n\n\n"
                      "def affine_backward(dout, cache):\n    dx, dw, db = _right(dout, cache)\n"
                      "    return dx.astype(np.float32), dw, db\n")
    line = gradmatrix.check(str(module), ops=["affine"], seeds=1, dtypes=["float64"], oracles=["torch"]).per_op()[
        "affine"]["line"]
    assert line.startswith("affine: FAIL, ") and "closest to its limit" not in line, line
    assert line.endswith("(dx: demoted returned dtype float32 for a float64 case, expected float64)"), line


@pytest.mark.parametrize("name, function, parameter, case", [
    pytest.param("relu_inplace_dout.py", "relu_backward", "dout", Case("relu", (("N", 8), ("D", 7)), 0, "float64"),
                 id="relu-dout"),
    pytest.param("relu_cache_mutation.py", "relu_backward", "x (through its cache)",
                 Case("relu", (("N", 8), ("D", 7)), 0, "float32"), id="relu-x"),
    pytest.param("affine_reshape_cache_in_place.py", "affine_backward", "x (through its cache)",
                 Case("affine", (("N", 8), ("Dx", (2, 3, 4)), ("M", 5)), 0, "float64"), id="affine-x-shape"),
])
def test_writing_into_arguments_is_a_warning_and_corrupts_nothing_else(name, function, parameter, case, manual_result):
    stem = name.removesuffix(".py")
    op = case.op
    result = gradmatrix.check(str(MUTANTS / name), ops=[op])
    assert result.status == 0  # the values it returns are right: a warning, shown, not a failure
    warned = [w for r in candidate_records(result, stem) for w in r.get("warnings", ())]
    assert {(w["kind"], w["function"], w["parameter"]) for w in warned} == {("wrote-into-argument", function, parameter)}
    # the oracles, evaluated in the same run after the candidate, saw the original inputs:
    # their pairs agree and their metrics equal those of the run that checked manual
    reference = {r["id"]: r for r in manual_result.document["comparisons"]}
    oracle_pairs = [r for r in result.document["comparisons"] if r not in candidate_records(result, stem)]
    assert oracle_pairs
    for record in oracle_pairs:
        assert record["verdict"] in ("agree", "convention")
        assert record["tensors"] == reference[record["id"]]["tensors"], record["id"]
    # and the inputs a runner is handed stay as they were
    inputs = draw_inputs(case)
    before = inputs.copy()
    runner = Runner(Candidate(load_module(str(MUTANTS / name)), stem), ("torch",))
    record = runner.run(Comparison(case, (stem, "torch")), inputs=inputs)
    assert record["verdict"] == "agree" and [w["parameter"] for w in record["warnings"]] == [parameter]
    assert np.array_equal(inputs.dout, before.dout)
    for key, value in before.arrays.items():
        assert inputs.arrays[key].shape == value.shape and np.array_equal(inputs.arrays[key], value), key


# --- the numeric oracle's projected mode (large inputs): what it catches ----------------------
# An input above oracles.numeric.PER_ELEMENT_BUDGET (its size times the case's) is differentiated along random
# directions; here every input is, whatever its size, on each mutant's own random cases.
PROJECTION_BLIND = {
    "softmax_lse_on_raw_scores": "a float32 precision loss of 1.7x the allowance at one element of 80: the projected "
                                 "allowance sums 80 elements' (reports.tolerances); small inputs keep per-element "
                                 "differences, and torch and JAX compare every element",
}


def _numeric_verdicts(candidate, op: str, limit: int, monkeypatch) -> bool:
    """Whether any candidate~numeric comparison on the op's random cases (seeds 0, 1) fails."""
    from gradmatrix.oracles import numeric
    from gradmatrix.runner import default_plan

    monkeypatch.setattr(numeric, "PER_ELEMENT_BUDGET", limit)
    # the store keys results on the oracles' source, not on a value patched at run time
    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", "off")
    runner = Runner(candidate, ("numeric",))
    plan = default_plan("default", [op], None, 2, ("numeric",), candidate, modes=["reverse"])
    return any(runner.run(c)["verdict"] in ("disagree", "error") for c in plan if c.case.kind == "random")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", sorted(n.removesuffix(".py") for n in CORPUS))
def test_the_projected_numeric_oracle_catches_what_the_per_element_one_does(name, monkeypatch):
    from gradmatrix.oracles import numeric

    candidate = Candidate(load_module(str(MUTANTS / f"{name}.py")))
    op = op_of(name)
    caught_per_element = _numeric_verdicts(candidate, op, numeric.PER_ELEMENT_BUDGET, monkeypatch)
    caught_projected = _numeric_verdicts(candidate, op, 0, monkeypatch)
    assert caught_projected == (caught_per_element and name not in PROJECTION_BLIND), PROJECTION_BLIND.get(name, "")


@pytest.mark.parametrize("op", sorted(PREFIXES.values()))
def test_the_projected_numeric_oracle_passes_manual(op, monkeypatch):
    assert not _numeric_verdicts(Candidate(manual, "manual"), op, 0, monkeypatch)


@pytest.mark.parametrize("name", ["affine_dx_missing_transpose.py", "affine_missing_transpose.py",
                                  "softmax_missing_1_over_n.py"])
def test_findings_read_the_records_fields_never_their_messages(name):
    # a finding's grouping, cause and evidence come from the records' data (problems, metrics,
    # what an exception said); rewording every message changes no finding but its quoted text
    from gradmatrix.reports import findings

    result = gradmatrix.check(str(MUTANTS / name), ops=[op_of(name)], seeds=1, dtypes=["float64"], modes=["reverse"])
    records = result.document["comparisons"]
    found = findings.build(records, result.document["run"]["candidate"])
    assert found and found[0]["cause"], found[:1]
    reworded = [{**r, "message": "reworded: " + r["message"][::-1]} for r in records]

    def without_text(finding):
        return {**finding, "worst": {k: v for k, v in finding["worst"].items() if k != "message"}}

    again = findings.build(reworded, result.document["run"]["candidate"])
    assert [without_text(f) for f in again] == [without_text(f) for f in found]
