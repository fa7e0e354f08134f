"""Custom backward passes in PyTorch and JAX: ``check_layer(..., framework=...)``.

The functions live in ``tests/layers/custom_backward.py``; each right one must pass and each
wrong one be caught by the check that sees its mistake: first-order gradients (a missing
transpose, a saved tensor changed in place, a wrong sign, a missing 1/N), the double backward
(a saved intermediate), low precision (a bfloat16 kernel with a wrong formula, an all-zeros
gradient at every dtype, a vacuous allowance) and runs that differ (a nondeterministic sum).
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import gradmatrix
from gradmatrix.oracles.declared import DeclarationError
from gradmatrix.reports.compare import AGREE, DISAGREE, ERROR
from gradmatrix.reports.framework_checks import LOW_PRECISION, RERUN, SECOND_ORDER

sys.path.insert(0, str(Path(__file__).resolve().parent / "layers"))
import custom_backward as cb  # noqa: E402

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                reason="no CUDA device"))]


def records(result, kind=None):
    return [r for r in result.document["comparisons"] if kind is None or r["case_kind"] == kind]


def failing_tensors(result) -> set:
    return {t["tensor"] for r in result.failures for t in r["tensors"] if not t.get("agree", True)}


@pytest.mark.parametrize("device", DEVICES)
def test_a_right_torch_function_passes_to_second_order(device):
    result = gradmatrix.check_layer(cb.Gelu.apply, None, {"x": (4, 5)}, framework="torch",
                                    reference=cb.gelu_reference, seeds=1, device=device)
    assert result.passed, str(result)
    assert result.status == 0
    kinds = {r["case_kind"] for r in records(result)}
    assert {"random", "jvp", RERUN, SECOND_ORDER} <= kinds
    assert {tuple(r["pair"]) for r in records(result, "random")} == {
        ("candidate", "torch"), ("candidate", "numeric"), ("torch", "numeric")}


def test_a_wrong_double_backward_is_caught_while_the_first_is_right():
    result = gradmatrix.check_layer(cb.GeluSavedTanh.apply, None, {"x": (4, 5)}, framework="torch",
                                    reference=cb.gelu_reference, seeds=1)
    assert not result.passed
    assert all(r["verdict"] == AGREE for r in records(result, "random"))  # the first backward is right
    second = records(result, SECOND_ORDER)
    assert second and all(r["verdict"] == DISAGREE for r in second)
    assert failing_tensors(result) == {"d<grad,v>/dx"}  # wrong in x; linear in dout, so right there
    assert "double backward is wrong" in result.failures[0]["message"]


def test_a_backward_missing_a_transpose_is_caught_in_dx_only():
    result = gradmatrix.check_layer(cb.LinearNoTranspose.apply, None, {"x": (3, 4), "w": (4, 4)},
                                    framework="torch", reference=cb.linear_reference, seeds=1, dtypes="float64")
    assert not result.passed and result.status == 1
    first = result.failures[0]
    assert first["pair"][0] == "candidate" and first["message"].startswith("dx (candidate vs ")
    reverse = [t for r in records(result, "random") if "candidate" in r["pair"] for t in r["tensors"]]
    assert all(t["agree"] for t in reverse if t["tensor"] == "dw")
    assert not any(t["agree"] for t in reverse if t["tensor"] == "dx")


def test_a_saved_tensor_changed_in_place_is_caught():
    result = gradmatrix.check_layer(cb.SwishInPlace.apply, None, {"x": (4, 5)}, framework="torch",
                                    reference=cb.swish_reference, seeds=1, dtypes="float64")
    assert not result.passed
    assert "dx" in failing_tensors(result)
    assert all(r["verdict"] == AGREE for r in records(result, "random") if r["pair"] == ["torch", "numeric"])


@pytest.mark.parametrize("rule, right", [(cb.centre, True), (cb.centre_wrong_sign, False),
                                         (cb.centre_missing_1_over_n, False)],
                         ids=["right", "wrong-sign", "missing-1-over-N"])
def test_jax_custom_vjp_rules_are_judged(rule, right):
    result = gradmatrix.check_layer(rule, None, {"x": (6, 3)}, framework="jax", reference=cb.centre_reference,
                                    seeds=1)
    assert result.passed is right, str(result)
    if not right:
        caught = {tuple(r["pair"]) for r in result.failures if r["case_kind"] == "random"}
        assert caught == {("candidate", "jax"), ("candidate", "numeric")}  # the oracles agree among themselves


@pytest.mark.parametrize("device", DEVICES)
def test_a_bfloat16_kernel_passes_at_bfloat16_with_its_bound_printed(device):
    result = gradmatrix.check_layer(cb.SoftmaxBf16.apply, None, {"x": (4, 16)}, framework="torch",
                                    reference=cb.softmax_reference, dtypes="bfloat16", device=device)
    assert result.passed, str(result)
    low = records(result, LOW_PRECISION)
    assert len(low) == 3 and all(r["dtype"] == "bfloat16" for r in low)
    text = str(result)
    assert "dx at bfloat16" in text and "the reference's own bfloat16 error" in text
    for entry in (t for r in low for t in r["tensors"]):
        allowance = entry["allowance"]
        assert not allowance["vacuous"]
        assert entry["metrics"]["max_abs_err"] <= allowance["allowed"] < 0.1 * allowance["size"]


@pytest.mark.parametrize("device", DEVICES)
def test_the_same_kernel_with_a_wrong_formula_fails_at_bfloat16(device):
    result = gradmatrix.check_layer(cb.SoftmaxBf16WrongFormula.apply, None, {"x": (4, 16)}, framework="torch",
                                    reference=cb.softmax_reference, dtypes="bfloat16", device=device)
    assert not result.passed
    assert all(r["verdict"] == DISAGREE for r in records(result, LOW_PRECISION))
    assert failing_tensors(result) == {"dx"}  # its forward is the right one
    assert result.failures[0]["message"].startswith("dx (candidate vs torch, bfloat16): max abs err")


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_an_all_zeros_gradient_never_passes(dtype):
    result = gradmatrix.check_layer(cb.GeluZeroGrad.apply, None, {"x": (4, 5)}, framework="torch",
                                    reference=cb.gelu_reference, dtypes=dtype, seeds=2)
    assert not result.passed
    measured = [t for r in records(result) if r["pair"][0] == "candidate" for t in r["tensors"] if t["tensor"] == "dx"]
    assert measured and not any(t["agree"] for t in measured)


def shifted_square_reference(x):
    """(x + B)^2 / 2 - B x, whose gradient x + B - B cancels to x in half precision."""
    b = 256.0
    return (x + b) ** 2 / 2 - b * x


class ShiftedSquare(torch.autograd.Function):
    """The same function with its gradient x written directly (right at any dtype)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return shifted_square_reference(x)

    @staticmethod
    def backward(ctx, dout):
        (x,) = ctx.saved_tensors
        return dout * x


def test_a_vacuous_allowance_cannot_decide_and_never_passes():
    result = gradmatrix.check_layer(ShiftedSquare.apply, None, {"x": (4, 5)}, framework="torch",
                                    reference=shifted_square_reference, dtypes="bfloat16", seeds=1, runs=1)
    assert not result.passed and result.status == 1
    (record,) = records(result, LOW_PRECISION)
    assert record["verdict"] == ERROR and record["error"]["undecided"]
    assert "cannot decide at bfloat16" in record["message"]
    assert result.document["verdict"]["verdict"] == "incomplete"


class NondeterministicLinear(cb.LinearNoTranspose):
    """out = x w; dw sums the rows of x^T dout in a random order, as atomics on a GPU do."""

    @staticmethod
    def backward(ctx, dout):
        x, w = ctx.saved_tensors
        dw = torch.zeros_like(w)
        for i in torch.randperm(x.shape[0]).tolist():  # rows added in an order that changes per run
            dw += torch.outer(x[i], dout[i])
        return dout @ w.t(), dw


def test_runs_that_differ_are_a_finding_unless_within_nondet_tol():
    shapes = {"x": (64, 3), "w": (3, 2)}
    strict = gradmatrix.check_layer(NondeterministicLinear.apply, None, shapes, framework="torch",
                                    reference=cb.linear_reference, dtypes="float32", seeds=1, runs=5,
                                    modes="reverse")
    (rerun,) = records(strict, RERUN)
    assert rerun["verdict"] == DISAGREE and "not deterministic" in rerun["message"]
    assert [t["agree"] for t in rerun["tensors"]] == [True, False]  # dx is exact, dw's sum order varies
    assert all(r["verdict"] == AGREE for r in records(strict, "random"))
    allowed = gradmatrix.check_layer(NondeterministicLinear.apply, None, shapes, framework="torch",
                                     reference=cb.linear_reference, dtypes="float32", seeds=1, runs=5,
                                     modes="reverse", nondet_tol=1e-4)
    assert allowed.passed, str(allowed)


def test_a_decorated_framework_function_is_checked_as_declared():
    result = gradmatrix.check_layer(cb.gelu)
    assert result.layer == "gelu" and result.passed, str(result)
    assert records(result, SECOND_ORDER)


@pytest.mark.parametrize("call, error, words", [
    (dict(framework="mxnet"), ValueError, "framework must be one of"),
    (dict(framework="torch", dtypes="bfloat16"), DeclarationError, "dtypes: ['bfloat16'] need reference="),
    (dict(framework="torch", reference=cb.gelu_reference, nondet_tol=-1), TypeError, "nondet_tol"),
    (dict(framework="torch", reference=cb.gelu_reference, dtypes="float8"), ValueError, "dtypes: unknown dtype"),
    (dict(nondet_tol=0.1), TypeError, "give framework='torch' or 'jax'"),
])
def test_declarations_that_cannot_be_used_name_the_argument(call, error, words):
    with pytest.raises(error) as raised:
        gradmatrix.check_layer(cb.Gelu.apply, None, {"x": (4, 5)}, **call)
    assert words in str(raised.value)


def test_low_precision_records_render_in_every_report(tmp_path):
    from gradmatrix.reports.writers import write_reports

    result = gradmatrix.check_layer(cb.SoftmaxBf16WrongFormula.apply, None, {"x": (4, 16)}, framework="torch",
                                    reference=cb.softmax_reference, dtypes="bfloat16", seeds=1)
    write_reports(result.document, tmp_path)
    assert "bfloat16" in (tmp_path / "agreement.md").read_text()
    finding = result.document["findings"][0]
    assert finding["dtypes"] == ["bfloat16"]
    assert np.isfinite(result.failures[0]["tensors"][1]["metrics"]["max_abs_err"])


def test_the_command_checks_a_module_declaring_framework_functions():
    result = gradmatrix.check(str(Path(cb.__file__)))
    assert result.passed, str(result)
    assert sorted(result.document["run"]["candidate_ops"]) == ["centring", "gelu"]
    checked = {e["name"] for e in result.document["run"]["accounting"] if e["checked"]}
    assert "gelu" in checked


LAYERS = Path(__file__).resolve().parent / "layers"


@pytest.mark.xdist_group("framework_functions")
def test_the_command_runs_a_declared_function_s_own_checks_and_passes_a_right_module(framework_functions_checked):
    run, document, _ = framework_functions_checked("framework_functions_right.py")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS: framework_functions_right agrees in all" in run.stdout
    kinds = {(r["op"], r["case_kind"], r["dtype"]) for r in document["comparisons"]}
    assert {("gelu", LOW_PRECISION, "bfloat16"), ("gelu", SECOND_ORDER, "float64"), ("gelu", RERUN, "float32"),
            ("centring", LOW_PRECISION, "bfloat16"), ("softmax_kernel", LOW_PRECISION, "bfloat16")} <= kinds
    # the bfloat16 kernel is declared for bfloat16 only: no float64 case judges it as a float64 function
    assert {d for op, _, d in kinds if op == "softmax_kernel"} == {"bfloat16"}
    assert document["summary"]["complete"] and document["run"]["framework_checks"]["gelu"]["framework"] == "torch"


def test_a_low_precision_dtype_asked_for_is_judged_once_by_the_function_s_own_check(tmp_path):
    # --dtypes bfloat16: the matrix's own low-precision cases would run a torch function on
    # NumPy bfloat16 arrays, under the same ids as its own checks
    from cli_helpers import gradmatrix as command

    run = command("check", LAYERS / "framework_functions_right.py", "--dtypes", "bfloat16", "--seeds", "1",
                  "--progress", "none", "--format", "json", "--out", tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    records = json.loads((tmp_path / "agreement.json").read_text())["comparisons"]
    assert len({r["id"] for r in records}) == len(records) > 0
    assert {r["dtype"] for r in records} == {"bfloat16"} and not [r for r in records if r["verdict"] == ERROR]
    # a dtype none of them declares: nothing is checked at it, and the command says why
    none = command("check", LAYERS / "framework_functions_right.py", "--dtypes", "float16", "--seeds", "1",
                   "--progress", "none", "--out", tmp_path / "none")
    assert none.returncode == 2 and "checked only at the dtypes they declare (gelu: float64 float32 bfloat16; " \
        "softmax_kernel: bfloat16;" in none.stderr, none.stdout + none.stderr


@pytest.mark.xdist_group("framework_functions")
def test_the_command_fails_a_wrong_double_backward_and_a_wrong_bfloat16_kernel(framework_functions_checked, tmp_path):
    from cli_helpers import gradmatrix as command

    run, _, _ = framework_functions_checked("framework_functions_wrong.py")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAIL: framework_functions_wrong disagrees with the references" in run.stdout
    assert "gelu_saved_tanh d<grad,v>/dx: wrong values" in run.stdout
    assert "softmax_wrong dx: wrong values in 1 case (1 comparison, bfloat16)" in run.stdout
    # the reproduce line quoted reruns that one check
    only = "softmax_wrong-low-precision-x4x16-seed0-bfloat16-framework_functions_wrong~torch"
    assert f"--only '{only}'" in run.stdout
    again = command("check", LAYERS / "framework_functions_wrong.py", "--only", only, "--progress", "none",
                    "--out", tmp_path / "again")
    assert again.returncode == 1, again.stdout + again.stderr
    (record,) = json.loads((tmp_path / "again" / "agreement.json").read_text())["comparisons"]
    assert record["id"] == only and record["verdict"] == DISAGREE


def raising_reference(x):
    raise RuntimeError("the reference's own bug")


def test_a_reference_that_raises_in_a_check_of_its_own_is_blamed_not_the_candidate():
    result = gradmatrix.check_layer(cb.Gelu.apply, None, {"x": (4, 5)}, framework="torch",
                                    reference=raising_reference,
                                    dtypes="bfloat16", seeds=1, runs=1)
    (record,) = records(result, LOW_PRECISION)
    assert record["verdict"] == ERROR and record["error"]["impl"] == "torch"
    assert record["message"].startswith("the reference torch failed: RuntimeError: the reference's own bug")


# --- check_layer's arguments with framework=: each is used, or refused naming it ---

def test_second_order_false_is_passed_to_a_framework_function_s_own_checks():
    # it was taken by check_layer's own argument and dropped: the second-order check ran anyway
    kinds = {}
    for second_order in (None, False):
        result = gradmatrix.check_layer(torch.nn.functional.silu, None, {"x": (3, 4)}, framework="torch", seeds=1,
                                        dtypes="float64", second_order=second_order,
                                        reference=lambda x: x * torch.sigmoid(x))
        assert result.passed
        kinds[second_order] = {r["case_kind"] for r in result.document["comparisons"]}
    assert SECOND_ORDER in kinds[None] and SECOND_ORDER not in kinds[False]
    assert kinds[None] - {SECOND_ORDER} == kinds[False]


@pytest.mark.parametrize("option", [{"positional": ("x",)}, {"fixed": {"eps": 1e-5}}, {"doc": "mine"},
                                    {"numpy_seed": 0}])
def test_an_option_a_framework_function_s_check_does_not_use_is_refused_naming_it(option):
    with pytest.raises(TypeError, match=rf"^check_layer got \['{next(iter(option))}'\]: not options of a torch "):
        gradmatrix.check_layer(torch.nn.functional.relu, None, {"x": (3, 4)}, framework="torch", **option)


def test_a_framework_function_s_parameter_between_its_arrays_is_named():
    # layer_norm(input, normalized_shape, weight, ...): its weight would land on normalized_shape
    with pytest.raises(DeclarationError) as info:
        gradmatrix.check_layer(torch.nn.functional.layer_norm, None, {"input": (3, 4), "weight": (4,), "bias": (4,)},
                               params={"normalized_shape": (4,)}, framework="torch")
    assert str(info.value) == ("shapes: layer_norm would receive the array 'weight' as its argument "
                               "'normalized_shape': the arrays are passed by position, in the order (input, weight, "
                               "bias); name and order them as layer_norm takes them, with its parameters after them "
                               "(params= passes those by name)")
