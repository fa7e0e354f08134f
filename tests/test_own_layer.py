"""Your own layer: layers gradmatrix has never seen, checked with ``gradmatrix.check_layer``
from Python, from a user's pytest test, and with ``gradmatrix check module.py``.

The layers live in ``tests/layers``: GELU (tanh approximation), scaled dot-product attention
on (N, T, D) inputs and a Huber loss with a ``delta`` parameter, each with a correct backward
and classic mistakes (a wrong sign in one term, a missing transpose, a wrong axis, a missing
1/N).  A failure must name the tensor, the element and the size of the error; the expected
element and size are recomputed here from the case's own inputs.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gradmatrix
from gradmatrix.oracles.candidate import Candidate, load_module
from gradmatrix.oracles.cases import Case, draw_inputs
from gradmatrix.oracles.catalog import spec_of
from gradmatrix.oracles.declared import DeclarationError

LAYERS = Path(__file__).resolve().parent / "layers"
sys.path.insert(0, str(LAYERS))

import attention  # noqa: E402
import gelu  # noqa: E402
import huber  # noqa: E402
from cli_helpers import gradmatrix as gradmatrix_cli  # noqa: E402

QKV = {"q": (2, 3, 4), "k": (2, 3, 4), "v": (2, 3, 4)}
XY = {"x": (4, 3), "y": (4, 3)}


def _case(record: dict, spec) -> Case:
    """The case of a record of a declared layer, whose spec the run's catalog held."""
    dims = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in record["dims"].items())
    return Case(record["op"], dims, record["seed"], record["dtype"], record["case_kind"], entry=spec)


def _first_failure(result, pair=("candidate", "numeric"), dtype="float64") -> dict:
    return next(r for r in result.failures if tuple(r["pair"]) == pair and r["dtype"] == dtype
                and r["case_kind"] == "random")


def _expected_worst(record: dict, spec, grads_of, tensor: str) -> tuple[list, float]:
    """The elements (several where the error ties: Huber's linear piece) and the norm-wise
    size of the error of the wrong gradient of ``tensor`` on the record's case, from the
    correct and the wrong backward in float64."""
    inputs = draw_inputs(_case(record, spec))
    right, wrong = grads_of({k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in inputs.arrays.items()},
                            None if inputs.dout is None else inputs.dout.astype(np.float64))
    diff = np.abs(wrong[tensor] - right[tensor])
    worst = np.argwhere(diff >= diff.max() * (1 - 1e-9))
    return [[int(i) for i in index] for index in worst], float(diff.max() / np.abs(right[tensor]).max())


def _assert_names_the_error(record: dict, spec, tensor: str, grads_of, candidate="candidate"):
    indices, size = _expected_worst(record, spec, grads_of, tensor)
    assert any(record["message"].startswith(f"d{tensor} ({candidate} vs numeric, float64): max rel err {size:.1e} at {index} ")
               for index in indices), (record["message"], indices, size)


# --- without a reference: the float64 numeric differentiation of the layer's own forward ---

def test_gelu_without_reference():
    assert gradmatrix.check_layer(gelu.gelu_forward, gelu.gelu_backward, {"x": (4, 5)}).passed
    bad = gradmatrix.check_layer(gelu.gelu_forward, gelu.gelu_backward_wrong_sign, {"x": (4, 5)})
    assert (bad.passed, bad.status) == (False, 1)

    def grads(a, dout):
        _, cache = gelu.gelu_forward(a["x"])
        return {"x": gelu.gelu_backward(dout, cache)}, {"x": gelu.gelu_backward_wrong_sign(dout, cache)}

    _assert_names_the_error(_first_failure(bad), bad.spec, "x", grads)
    # only the numeric oracle has a forward: no torch or jax pair, and forward mode meets the differences
    assert {tuple(r["pair"]) for r in bad.document["comparisons"]} == {("candidate", "numeric")}
    assert {r["case_kind"] for r in bad.document["comparisons"]} == {"random", "jvp"}


@pytest.mark.parametrize("mistake, tensor", [("missing_transpose", "v"), ("wrong_axis", "q")])
def test_attention_without_reference(mistake, tensor):
    assert gradmatrix.check_layer(attention.attention_forward, attention.attention_backward, QKV, seeds=2).passed
    wrong_backward = getattr(attention, f"attention_backward_{mistake}")
    bad = gradmatrix.check_layer(attention.attention_forward, wrong_backward, QKV, seeds=2)
    assert bad.status == 1

    def grads(a, dout):
        _, cache = attention.attention_forward(a["q"], a["k"], a["v"])
        return (dict(zip("qkv", attention.attention_backward(dout, cache))),
                dict(zip("qkv", wrong_backward(dout, cache))))

    _assert_names_the_error(_first_failure(bad), bad.spec, tensor, grads)


def test_huber_loss_without_reference():
    assert gradmatrix.check_layer(huber.huber_loss, None, XY, params={"delta": 1.0}, wrt=["x"]).passed
    bad = gradmatrix.check_layer(huber.huber_loss_missing_1_over_n, None, XY, params={"delta": 1.0}, wrt=["x"])
    record = _first_failure(bad)
    assert record["id"].startswith("huber_loss_missing_1_over_n-x4x3-y4x3-delta1-seed0-float64")

    def grads(a, dout):
        return ({"x": huber.huber_loss(a["x"], a["y"], 1.0)[1]}, {"x": huber.huber_loss_missing_1_over_n(a["x"], a["y"], 1.0)[1]})

    _assert_names_the_error(record, bad.spec, "x", grads)
    assert "max rel err 3.0e+00" in record["message"]  # N = 4: the gradient is 4 times too large


def test_delta_is_passed_to_the_loss():
    # at delta = 0.1 most residuals are on the linear piece; a loss ignoring delta would differ
    assert gradmatrix.check_layer(huber.huber_loss, None, XY, params={"delta": 0.1}, wrt=["x"], seeds=1).passed
    ignores = lambda x, y, delta: huber.huber_loss(x, y)  # noqa: E731
    result = gradmatrix.check_layer(ignores, None, XY, params={"delta": 0.1}, wrt=["x"], seeds=1, reference=huber.huber_reference,
                                    oracles=["numeric"], dtypes=["float64"], modes=["reverse"])
    assert not result.passed and result.failures[0]["message"].startswith("loss (candidate vs numeric, float64)")


# --- with a reference: forward values compared too, torch autograd and jax.vjp as oracles ---

def test_gelu_with_reference():
    result = gradmatrix.check_layer(gelu.gelu_forward, gelu.gelu_backward, {"x": (4, 5)}, reference=gelu.gelu_reference, seeds=1)
    assert result.passed
    pairs = {tuple(r["pair"]) for r in result.document["comparisons"]}
    assert {("candidate", "torch"), ("candidate", "jax"), ("candidate", "numeric"), ("torch", "jax"),
            ("candidate", "jax.jvp"), ("jax.jvp", "numeric"), ("torch", "torch.jvp")} <= pairs
    forward = [t for r in result.document["comparisons"] for t in r["tensors"] if t["tensor"] == "out"]
    assert forward and all("metrics" in t for t in forward)
    bad = gradmatrix.check_layer(gelu.gelu_forward, gelu.gelu_backward_wrong_sign, {"x": (4, 5)}, reference=gelu.gelu_reference, seeds=1)
    assert {tuple(r["pair"]) for r in bad.failures if r["case_kind"] == "random"} == {
        ("candidate", "torch"), ("candidate", "jax"), ("candidate", "numeric")}


def test_a_wrong_forward_is_caught_against_the_reference():
    def gelu_off(x):
        out, cache = gelu.gelu_forward(x)
        return out * 1.001, cache

    result = gradmatrix.check_layer(gelu_off, gelu.gelu_backward, {"x": (4, 5)}, reference=gelu.gelu_reference, seeds=1,
                                    dtypes=["float64"], modes=["reverse"])
    record = next(r for r in result.failures if r["pair"] == ["candidate", "torch"])
    assert record["message"].startswith("out (candidate vs torch, float64): max rel err 1.0e-03 at [")


def test_attention_with_reference():
    result = gradmatrix.check_layer(attention.attention_forward, attention.attention_backward, QKV,
                                    reference=attention.attention_reference, seeds=1)
    assert result.passed, str(result)
    bad = gradmatrix.check_layer(attention.attention_forward, attention.attention_backward_missing_transpose, QKV,
                                 reference=attention.attention_reference, seeds=1)
    messages = [r["message"] for r in bad.failures]
    assert any(m.startswith("dv (candidate vs torch, float64): max rel err") for m in messages)
    assert any(m.startswith("dv (candidate vs jax, float32): max rel err") for m in messages)


def test_huber_loss_with_reference_and_per_framework_forwards():
    import jax.numpy as jnp
    import torch

    result = gradmatrix.check_layer(huber.huber_loss, None, XY, params={"delta": 1.0}, wrt=["x"],
                                    reference=huber.huber_reference, seeds=1)
    assert result.passed, str(result)
    assert {"hvp"} <= {r["case_kind"] for r in result.document["comparisons"]}  # a loss: second order too
    per_framework = {"torch": lambda x, y, delta: huber.huber_reference(torch, x, y, delta),
                     "jax": lambda x, y, delta: huber.huber_reference(jnp, x, y, delta)}
    bad = gradmatrix.check_layer(huber.huber_loss_missing_1_over_n, None, XY, params={"delta": 1.0}, wrt=["x"],
                                 reference=per_framework, seeds=1)
    wrong = {tuple(r["pair"]) for r in bad.failures if r["case_kind"] == "random"}
    assert wrong == {("candidate", "torch"), ("candidate", "jax"), ("candidate", "numeric")}
    # torch and jax agree with each other and with the numeric differences of the layer's own loss
    assert all(r["verdict"] == "agree" for r in bad.document["comparisons"] if r["pair"] == ["torch", "jax"])


def test_two_layers_under_one_name_never_share_compiled_code():
    twice = gradmatrix.check_layer(lambda x: (2 * x, None), lambda dout, cache: 2 * dout, {"x": (3,)}, name="scale",
                                   reference=lambda xp, x: 2 * x, oracles=["jax"], dtypes=["float64"], seeds=1)
    thrice = gradmatrix.check_layer(lambda x: (3 * x, None), lambda dout, cache: 3 * dout, {"x": (3,)}, name="scale",
                                    reference=lambda xp, x: 3 * x, oracles=["jax"], dtypes=["float64"], seeds=1)
    assert twice.passed and thrice.passed, str(thrice)


# --- inputs: integers with their range, a draw of one's own ---

def embedding_forward(w, idx):
    return w[idx], (w.shape, idx)


def embedding_backward(dout, cache):
    shape, idx = cache
    dw = np.zeros(shape, dtype=dout.dtype)
    np.add.at(dw, idx, dout)  # a row used twice gets both gradients
    return dw


def embedding_backward_overwrites(dout, cache):
    shape, idx = cache
    dw = np.zeros(shape, dtype=dout.dtype)
    dw[idx] += dout  # buffered: a repeated index keeps only its last gradient
    return dw


def test_integer_inputs_with_their_range():
    shapes = {"w": (4, 3), "idx": gradmatrix.Integers((6,), 0, 4)}  # six indices into four rows: some repeat
    assert gradmatrix.check_layer(embedding_forward, embedding_backward, shapes).passed
    bad = gradmatrix.check_layer(embedding_forward, embedding_backward_overwrites, shapes)
    assert bad.failures[0]["message"].startswith("dw (candidate vs numeric")
    inputs = draw_inputs(_case(bad.failures[0], bad.spec))
    assert inputs.arrays["idx"].dtype == np.int64 and set(inputs.arrays["idx"]) <= {0, 1, 2, 3}


def test_a_draw_of_ones_own_keeps_an_input_in_its_domain():
    log_forward = lambda x: (np.log(x), x)  # noqa: E731
    log_backward = lambda dout, x: dout / x  # noqa: E731
    positive = gradmatrix.Floats((3, 4), draw=lambda rng, shape: rng.uniform(0.5, 2.0, shape))
    assert gradmatrix.check_layer(log_forward, log_backward, {"x": positive}).passed
    # normal draws leave log's domain: non-finite values, never a pass
    with np.errstate(invalid="ignore", divide="ignore"):
        assert gradmatrix.check_layer(log_forward, log_backward, {"x": (3, 4)}).status in (1, 2)


def test_several_shapes_and_argument_order_from_the_signature():
    result = gradmatrix.check_layer(attention.attention_forward, attention.attention_backward,
                                    [{"v": (1, 2, 3), "k": (1, 2, 3), "q": (1, 2, 3)}, QKV], seeds=1, dtypes=["float64"])
    assert result.passed
    assert {r["case"] for r in result.document["comparisons"] if r["case_kind"] == "random"} == {
        "attention-q1x2x3-k1x2x3-v1x2x3-seed0-float64", "attention-q2x3x4-k2x3x4-v2x3x4-seed0-float64"}


# --- clear errors, naming the argument ---

@pytest.mark.parametrize("kwargs, fragment", [
    ({}, "shapes is required"),
    ({"shapes": {"x": (4, -1)}}, "shapes['x']: a shape is a tuple of positive ints"),
    ({"shapes": {"x": (4, 5)}, "params": {"w": np.ones(3)}}, "params['w'] is a ndarray"),
    ({"shapes": {"x": (4, 5)}, "name": "affine"}, "name 'affine' is an op of gradmatrix's catalog"),
    ({"shapes": {"x": (4, 5)}, "wrt": ["y"]}, "wrt: ['y']"),
    ({"shapes": {"x": (4, 5)}, "oracles": ["torch"]}, "oracles: ['torch'] have no forward for 'gelu'"),
    ({"shapes": {"x": (4, 5)}, "reference": {"tensorflow": len}}, "reference: keys are"),
])
def test_declaration_errors_name_the_argument(kwargs, fragment):
    with pytest.raises(DeclarationError) as info:
        gradmatrix.check_layer(gelu.gelu_forward, gelu.gelu_backward, **kwargs)
    assert fragment in str(info.value)


def test_a_backward_that_raises_or_returns_too_few_gradients_cannot_pass():
    def attention_backward(dout, cache):
        return attention.attention_backward(dout, cache)[:2]

    short = gradmatrix.check_layer(attention.attention_forward, attention_backward, QKV, seeds=1, dtypes=["float64"])
    assert short.status == 2
    assert short.failures[0]["message"].startswith(
        "candidate failed: attention_backward must return (dq, dk, dv), got a sequence of 2")

    def gelu_backward(dout, cache):
        raise ZeroDivisionError("oops")

    raising = gradmatrix.check_layer(gelu.gelu_forward, gelu_backward, {"x": (4, 5)}, seeds=1)
    assert raising.status == 2 and not raising.passed
    assert raising.failures[0]["message"].startswith(
        "candidate failed: gelu_backward raised ZeroDivisionError: oops (at test_own_layer.py:")


def test_a_decorated_forward_is_checked_as_declared():
    result = gradmatrix.check_layer(huber.huber_loss, seeds=1, dtypes=["float64"])  # reference, delta and wrt as declared
    assert result.passed and result.layer == "huber_loss"
    assert {"candidate~torch", "candidate~numeric"} <= {"~".join(r["pair"]) for r in result.document["comparisons"]}
    assert gradmatrix.check_layer(gelu.gelu_forward, seeds=1, dtypes=["float64"]).passed  # gelu_backward found by name


def test_a_layer_without_its_backward_is_told_how_a_loss_looks():
    with pytest.raises(DeclarationError, match="a function without a backward is a loss"):
        gradmatrix.check_layer(gelu.gelu_forward, None, {"x": (4, 5)})


def test_a_derived_name_never_shadows_a_catalog_op():
    def affine_forward(x, w, b):
        return x @ w + b, (x, w)

    def affine_backward(dout, cache):
        x, w = cache
        return dout @ w.T, x.T @ dout, dout.sum(axis=0)

    result = gradmatrix.check_layer(affine_forward, affine_backward, {"x": (3, 2), "w": (2, 4), "b": (4,)}, seeds=1)
    assert result.passed and result.layer == "affine_layer"
    assert spec_of("affine").name == "affine"  # the catalog's own is untouched


# --- named dims, matrices and kinks: a layer declared as the catalog's ops are ---


def rectify_forward(x, floor):
    return np.maximum(x, floor), x


def rectify_backward(dout, cache):
    return dout * (cache > 0)


def rectify_backward_negative_at_zero(dout, cache):
    """Right everywhere but at x = 0, where it gives -dout: outside ReLU's subdifferential
    (t * dout, t in [0, 1]); random normal draws never land there."""
    return np.where(cache == 0, -dout, dout * (cache > 0))


def _rectify(backward, **extra):
    from gradmatrix.oracles.kinks import relu_convention, relu_kink_inputs, relu_subgradient

    kinks = gradmatrix.Kinks(inputs=relu_kink_inputs, shapes=({"N": 4, "D": 6, "floor": 0.0},), convention=relu_convention,
                             subgradient=relu_subgradient)
    return gradmatrix.check_layer(
        rectify_forward, backward, {"x": ("N", "D")}, matrices=[{"D": 3, "floor": 0.0}, {"N": 2, "D": 5, "floor": 0.0}],
        positional=("x", "floor"), output=("out", ("N", "D")), kinks=kinks,
        reference=lambda xp, a, dims: xp.maximum(a["x"], xp.zeros_like(a["x"]) + dims["floor"]),
        seeds=1, dtypes=["float64"], modes="reverse", oracles=["torch", "numeric"], **extra)


def test_a_layer_with_named_dims_is_checked_on_its_matrices_and_its_kinks():
    right = _rectify(rectify_backward)
    assert right.passed and right.layer == "rectify"
    cases = {r["case"] for r in right.document["comparisons"]}
    # a dims dict without N is crossed with the batch sizes; every dim is in the id
    assert cases == {"rectify-N1-D3-floor0-seed0-float64", "rectify-N8-D3-floor0-seed0-float64",
                     "rectify-N32-D3-floor0-seed0-float64", "rectify-N2-D5-floor0-seed0-float64",
                     "rectify-kink-N4-D6-floor0-seed0-float64"}
    wrong = _rectify(rectify_backward_negative_at_zero)
    assert not wrong.passed
    assert {r["case_kind"] for r in wrong.failures} == {"kink"}  # the random cases cannot see it


def centered_forward(x):
    return x - x.mean(axis=0, keepdims=True), None


def centered_backward(dout, cache):
    return dout - dout.mean(axis=0, keepdims=True)


def _centered(vectorized: bool):
    # right as a reference of (N, D); on (K, N, D) copies its mean over axis 0 mixes them
    return gradmatrix.check_layer(
        centered_forward, centered_backward, {"x": ("N", "D")}, matrices=[{"N": 4, "D": 3}],
        output=("out", ("N", "D")), reference=lambda xp, a, dims: a["x"] - xp.mean(a["x"], axis=0, keepdims=True),
        vectorized=vectorized, seeds=1, dtypes=["float64"], modes="reverse", oracles=["numeric"])


def scaled_by_n_forward(x):
    return x * x.shape[0], x.shape[0]


def scaled_by_n_backward(dout, n):
    return dout * n


def _scaled_by_n(vectorized: bool):
    # right as a reference of (N, 1), where the K copies of x are as many as N = its size: on
    # (K, N, 1) copies x.shape[0] is K, which a check on the run's own batch could not tell from N
    return gradmatrix.check_layer(
        scaled_by_n_forward, scaled_by_n_backward, {"x": ("N", "D")}, matrices=[{"N": 4, "D": 1}],
        output=("out", ("N", "D")), reference=lambda xp, a, dims: a["x"] * a["x"].shape[0],
        vectorized=vectorized, seeds=1, dtypes=["float64"], modes="reverse", oracles=["numeric"])


@pytest.mark.parametrize("layer", [_centered, _scaled_by_n])
def test_a_false_vectorized_claim_is_an_error_never_a_value(layer):
    assert layer(vectorized=False).passed
    claimed = layer(vectorized=True)
    assert not claimed.passed
    errors = [r for r in claimed.document["comparisons"] if r["verdict"] == "error"]
    assert errors and all(r["error"]["impl"] == "numeric" and r["error"]["exception"] == "ValueError" for r in errors)
    assert all("declare it without vectorized=True" in r["message"] for r in errors)


@pytest.mark.parametrize("op", ["svm_loss", "spatial_batchnorm", "spatial_groupnorm", "dropout_train", "dropout_test"])
def test_a_vectorized_reference_gives_the_numeric_oracle_the_values_of_each_copy_alone(op):
    from dataclasses import replace

    from gradmatrix.oracles import numeric

    spec = spec_of(op)
    assert spec.vectorized
    for dims in spec.shapes["default"]:
        dims = {"N": 2, **dims}
        case = Case(op, tuple(dims.items()), 0, "float64", entry=spec)
        inputs = draw_inputs(case)
        at_once = numeric.evaluate(inputs)
        one_by_one = numeric.evaluate(replace(inputs, case=replace(case, entry=replace(spec, vectorized=False))))
        np.testing.assert_allclose(at_once.forward, one_by_one.forward, rtol=1e-14, atol=0)
        for name in spec.differentiable:
            np.testing.assert_allclose(at_once.grads[name], one_by_one.grads[name], rtol=1e-12, atol=1e-15)


def test_kinks_avoid_redraws_the_random_inputs():
    def off_zero(arrays, dims, rng):
        arrays["x"] = np.where(np.abs(arrays["x"]) < 0.5, 1.0, arrays["x"])
        return arrays

    declaration = gradmatrix.layer(rectify_forward, rectify_backward, shapes={"x": ("N", "D")},
                                   matrices={"default": [{"N": 64, "D": 8, "floor": 0.0}]}, positional=("x", "floor"),
                                   output=("out", ("N", "D")), kinks=gradmatrix.Kinks(avoid=off_zero),
                                   reference=lambda xp, a, dims: xp.maximum(a["x"], xp.zeros_like(a["x"])))
    from gradmatrix.oracles.declared import build

    spec, functions = build(declaration)
    assert set(functions) == {"rectify_forward", "rectify_backward"} and spec.shapes == {
        "default": ({"N": 64, "D": 8, "floor": 0.0},)}
    x = draw_inputs(Case("rectify", (("N", 64), ("D", 8), ("floor", 0.0)), 0, "float64", entry=spec)).arrays["x"]
    assert x.shape == (64, 8) and np.abs(x).min() >= 0.5


@pytest.mark.parametrize("kwargs, fragment", [
    ({"output": ("out", ("N", "D"))}, "output: an argument of a layer whose shapes name dims; give matrices="),
    ({"vectorized": True}, "vectorized: an argument of a layer whose shapes name dims; give matrices="),
    ({"matrices": [{"D": 3}], "output": ("out", ("N", "D")), "vectorized": "yes"},
     "vectorized must be True or False, and True only with a reference"),
    ({"matrices": {"huge": [{"D": 3}]}}, "matrices: 'huge' is no matrix"),
    ({"matrices": [{"D": 3}], "shapes": {"x": ("N", "E")}}, "shapes['x']: ['E'] are neither dims"),
    ({"matrices": [{"D": 3}]}, "output is required for a layer"),
    ({"matrices": [{"D": 3}], "output": ("out", ("N", "D")), "derived": {"E": 3}}, "derived: ['E']"),
    ({"matrices": [{"D": 3}], "output": ("out", ("N", "D")), "positional": ("x", "slope")},
     "positional: ['slope'] are neither arguments"),
    ({"matrices": [{"D": 3}], "output": ("out", ("N", "D")), "params": {"delta": 1.0}},
     "params: not an argument of a layer whose shapes name dims"),
    ({"kinks": gradmatrix.Kinks(shapes=({"N": 2, "D": 3},))}, "kinks.shapes and kinks.inputs go together"),
    ({"matrices": [{"D": 3}], "output": ("out", ("N", "D")), "kinks": gradmatrix.Kinks(inputs=len, shapes=({"D": 3},))},
     "kinks.shapes[0]: misses the dims ['N']"),
    ({"kinks": "relu"}, "kinks must be gradmatrix.Kinks(...)"),
    ({"second_order": "yes"}, "second_order must be True, False or None"),
    ({"conditions": {"wide": lambda d: d["D"] > 4}}, "conditions: an argument of a layer whose shapes name dims"),
    ({"matrices": [{"D": 3}], "output": ("out", ("N", "D")), "conditions": {"wide": "D > 4"}},
     "conditions: ['wide']: each is a name"),
    ({"matrices": [{"D": 3}], "output": ("out", ("N", "D")), "conditions": [("wide", len)]},
     "conditions must be {name: function dims -> bool}, got list"),
    ({"matrices": [{"D": 3}], "output": ("out", ("N", "D")), "conditions": {"wide": lambda d: d["E"] > 4}},
     "conditions['wide'] raised KeyError: 'E' on the dims"),
    ({"matrices": [{"D": 3}], "output": ("out", ("N", "D")), "conditions": {"wide": lambda d: d["D"]}},
     "conditions['wide'] gave 3 on the dims"),
])
def test_named_dims_declaration_errors_name_the_argument(kwargs, fragment):
    arguments = {"shapes": {"x": ("N", "D")}, "reference": lambda xp, a, dims: a["x"], **kwargs}
    if "matrices" not in kwargs and "output" not in kwargs:
        arguments["shapes"] = {"x": (4, 5)}
        arguments.pop("reference")
    with pytest.raises(DeclarationError) as info:
        gradmatrix.check_layer(gelu.gelu_forward, gelu.gelu_backward, **arguments)
    assert fragment in str(info.value)


def test_declared_imports_no_catalog():
    """The catalog's own ops are declarations: ``declared`` must not need the catalog."""
    code = ("import sys, gradmatrix.oracles.declared\n"
            "print('gradmatrix.oracles.catalog' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# --- from a user's pytest test: one line, and the findings without gradmatrix's frames ---

USER_TEST = '''
import sys
sys.path.insert(0, {layers!r})
import gradmatrix
from attention import attention_forward, attention_backward, attention_backward_missing_transpose

QKV = {{"q": (2, 3, 4), "k": (2, 3, 4), "v": (2, 3, 4)}}


def test_attention():
    gradmatrix.check_layer(attention_forward, attention_backward, QKV).raise_for_failures()


def test_attention_missing_transpose():
    gradmatrix.check_layer(attention_forward, attention_backward_missing_transpose, QKV).raise_for_failures()
'''


def test_one_line_in_a_users_pytest_test(tmp_path):
    (tmp_path / "test_user_layer.py").write_text(USER_TEST.format(layers=str(LAYERS)))
    run = subprocess.run([sys.executable, "-m", "pytest", "test_user_layer.py", "-q", "-p", "no:cacheprovider"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "1 failed, 1 passed" in out
    assert "layer attention: 8 disagreeing and 0 failing of 8 comparisons:" in out
    assert "dv (candidate vs numeric, float64): max rel err 1.4e+00 at [1, 0, 3]" in out
    # the user's line is shown, gradmatrix's own frames are not
    assert "attention_backward_missing_transpose, QKV).raise_for_failures()" in out
    assert "own_layers.py" not in out and "def raise_for_failures" not in out


# --- from the command: layers declared in a module ---

WIDE_ROWS = '''
import numpy as np

import gradmatrix


def doubled_forward(x):
    return 2 * x, None


def doubled_backward(dout, cache):
    dx = 2 * dout
    dx[:, 4:] = dout[:, 4:]  # the factor 2 forgotten past the fourth column
    return dx


LONG = {"longer than 4 (D > 4)": lambda dims: dims["D"] > 4}
doubled = gradmatrix.layer(
    doubled_forward, doubled_backward, shapes={"x": ("N", "D")}, output=("out", ("N", "D")),
    matrices=[{"D": 3}, {"D": 6}, {"N": 2, "D": 4}], reference=lambda xp, a, dims: 2 * a["x"], conditions=LONG)
# a vector: its cases have no N at all
vector = gradmatrix.layer(
    lambda x: (2 * x, None), lambda dout, cache: 2 * dout, shapes={"x": ("D",)}, output=("out", ("D",)),
    matrices=[{"N": None, "D": 3}, {"N": None, "D": 6}], reference=lambda xp, a, dims: 2 * a["x"], conditions=LONG,
    name="vector")
'''


def test_a_condition_a_module_declares_is_named_as_the_cause_from_its_worker(tmp_path, read_report):
    # the conditions are the user's functions: the worker evaluates them on every dims the
    # layer's cases can have, and the judge's records and findings read the values
    (tmp_path / "wide_rows.py").write_text(WIDE_ROWS)
    run = _gradmatrix("wide_rows.py", "--seeds", "1", "--dtypes", "float64", "--modes", "reverse", "--format", "json",
                      cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    doc = read_report(tmp_path / "gradmatrix-report" / "agreement.json")
    assert doc["run"]["isolated"] is True
    held = {r["case"]: r["conditions"] for r in doc["comparisons"]}
    assert {r["op"] for r in doc["comparisons"]} == {"doubled", "vector"}
    assert all(c == {"longer than 4 (D > 4)": "-D6-" in case} for case, c in held.items())
    assert "   likely cause: fails only where longer than 4 (D > 4)" in run.stdout.splitlines(), run.stdout
    assert {r["op"] for r in doc["comparisons"] if r["verdict"] in ("disagree", "error")} == {"doubled"}

def _gradmatrix(*args, cwd) -> subprocess.CompletedProcess:
    return gradmatrix_cli("check", *args, cwd=cwd)


def test_gradmatrix_check_a_declared_module(tmp_path, read_report):
    run = _gradmatrix(str(LAYERS / "huber.py"), "--seeds", "1", "--format", "json", "md", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "gradmatrix check: huber provides huber_loss" in run.stdout
    assert any(line.startswith("PASS: huber agrees in all ") for line in run.stdout.splitlines()), run.stdout
    doc = read_report(tmp_path / "gradmatrix-report" / "agreement.json")
    assert doc["run"]["candidate_ops"] == ["huber_loss"]
    assert {r["op"] for r in doc["comparisons"]} == {"huber_loss"}
    # a name with an underscore inside a word is shown as written (Markdown makes no emphasis of it)
    assert "- huber_loss (float32, float64): " in (tmp_path / "gradmatrix-report" / "agreement.md").read_text()


def test_gradmatrix_check_names_a_mistake(tmp_path, read_report):
    # a user's module: the GELU layer and, declared at module level, its wrong-sign backward
    module = tmp_path / "my_layers.py"
    module.write_text((LAYERS / "gelu.py").read_text() + textwrap.dedent('''
        gelu_broken = gradmatrix.layer(gelu_forward, gelu_backward_wrong_sign, shapes={"x": (4, 5)}, name="gelu_broken")
    '''))
    run = _gradmatrix(str(module), "--seeds", "1", "--dtypes", "float64", "--format", "json", cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    doc = read_report(tmp_path / "gradmatrix-report" / "agreement.json")
    pairs = {op: {tuple(r["pair"]) for r in doc["comparisons"] if r["op"] == op} for op in ("gelu", "gelu_broken")}
    assert ("my_layers", "torch") in pairs["gelu"]  # declared with a reference: every oracle
    assert pairs["gelu_broken"] == {("my_layers", "numeric")}  # without: the numeric one only, no errors
    assert doc["summary"]["error"] == 0
    assert ("gradmatrix check: my_layers provides gelu (gelu_forward, gelu_backward); "
            "gelu_broken (gelu_forward, gelu_backward_wrong_sign)") in run.stdout
    lines = run.stdout.splitlines()
    assert any(line.startswith("FAIL: my_layers disagrees with the references in ") for line in lines), run.stdout
    # one finding, gelu_broken's dx, put on its backward; gelu itself agrees and has none
    assert ("1. gelu_broken dx: wrong values in 1 case (1 comparison, float64), "
            "in gelu_backward_wrong_sign (gelu_forward's output agrees)") in lines, run.stdout
    assert not any(line.lstrip().startswith(("1. gelu ", "2. gelu ", "also: gelu ")) for line in lines), run.stdout
    assert any(line.startswith("   reproduce: gradmatrix check ") and line.endswith(
        "my_layers.py --matrix default --only 'gelu_broken-x4x5-seed0-float64-my_layers~numeric'") for line in lines), run.stdout
    failing = [r for r in doc["comparisons"] if r["verdict"] == "disagree" and r["case_kind"] == "random"]
    assert [r["op"] for r in failing] == ["gelu_broken"]
    worst = failing[0]["message"]
    assert worst.endswith("--only 'gelu_broken-x4x5-seed0-float64-my_layers~numeric'")
    record = {"op": "gelu_broken", "dims": {"x": [4, 5]}, "seed": 0, "dtype": "float64", "case_kind": "random",
              "message": worst}
    catalog = Candidate(load_module(str(module))).catalog  # gelu_broken's spec, to draw its case's inputs

    def grads(a, dout):
        _, cache = gelu.gelu_forward(a["x"])
        return {"x": gelu.gelu_backward(dout, cache)}, {"x": gelu.gelu_backward_wrong_sign(dout, cache)}

    _assert_names_the_error(record, catalog["gelu_broken"], "x", grads, candidate="my_layers")


def test_gradmatrix_check_a_layer_that_cannot_be_checked(tmp_path):
    module = tmp_path / "raising.py"
    module.write_text(textwrap.dedent('''
        import gradmatrix

        @gradmatrix.layer(shapes={"x": (2, 3)})
        def shaky_forward(x):
            raise RuntimeError("not yet written")

        def shaky_backward(dout, cache):
            return dout
    '''))
    run = _gradmatrix(str(module), cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip() == ("gradmatrix: error: " + str(module) + ": shaky_forward raised RuntimeError: not yet "
                                  "written (on float64 inputs x (2, 3))")


def test_a_stub_among_a_declared_layers_functions_defined_elsewhere_is_named(tmp_path):
    # the stub probe calls a layer's functions as the run does (by the declaration, not by
    # the module's names), and the account lists them though another module defines them
    (tmp_path / "lib_layers.py").write_text(textwrap.dedent('''
        def scale_forward(x):
            return 2 * x, x

        def scale_backward(dout, cache):
            raise NotImplementedError

        def triple_forward(x):
            return 3 * x, x

        def triple_backward(dout, cache):
            return 3 * dout
    '''))
    (tmp_path / "uses_lib.py").write_text(textwrap.dedent('''
        import lib_layers

        import gradmatrix

        scale = gradmatrix.layer(lib_layers.scale_forward, lib_layers.scale_backward, shapes={"x": (3, 4)})
    '''))
    run = _gradmatrix("uses_lib.py", cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "scale_backward (function): FAIL: unimplemented stub: raises NotImplementedError" in run.stdout
    assert "nothing in uses_lib was checked; FAIL: scale_backward unimplemented" in run.stdout, run.stdout
    # beside a checked layer of the library's, counted as checked: the rest is said to agree
    with open(tmp_path / "uses_lib.py", "a") as module:
        module.write("triple = gradmatrix.layer(lib_layers.triple_forward, lib_layers.triple_backward, "
                     "shapes={'x': (3, 4)})\n")
    run = _gradmatrix("uses_lib.py", "--seeds", "1", cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "4 functions and classes in uses_lib: 2 checked, 2 not checked" in run.stdout, run.stdout
    assert "FAIL: uses_lib leaves scale_backward unimplemented (the starter's stub); the rest agrees" in run.stdout


def test_a_module_of_stubs_only_is_named_so_by_the_python_api(tmp_path):
    # gradmatrix.check raises NothingToCheck for it (the command exits 1 on it, a failing
    # file): its message names the stub, never "provides no op of the catalog"
    (tmp_path / "starter.py").write_text(textwrap.dedent('''
        def relu_forward(x):
            out = None
            cache = x
            return out, cache

        def relu_backward(dout, cache):
            dx = None
            return dx
    '''))
    from gradmatrix.engine import NothingToCheck

    with pytest.raises(NothingToCheck) as raised:
        gradmatrix.check(str(tmp_path / "starter.py"))
    assert str(raised.value) == "starter: nothing to check yet: unimplemented stub: relu_forward returns None"
    assert raised.value.stubs == ["unimplemented stub: relu_forward returns None"]
    (tmp_path / "other.py").write_text("def helper(x):\n    return x\n")
    with pytest.raises(NothingToCheck, match="other provides no op of the catalog and declares no layer"):
        gradmatrix.check(str(tmp_path / "other.py"))


def test_a_layer_declared_by_its_functions_names_is_checked_and_its_stub_named(tmp_path):
    # gradmatrix.layer("scale_forward", "scale_backward", ...): the module's functions of those names
    body = textwrap.dedent('''
        import gradmatrix

        def scale_forward(x):
            return 2 * x, x

        def scale_backward(dout, cache):
            BODY

        scale = gradmatrix.layer("scale_forward", "scale_backward", shapes={"x": (3, 4)},
                                 reference=lambda xp, x: 2 * x, name="scale")
    ''')
    (tmp_path / "named.py").write_text(body.replace("BODY", "return 2 * dout"))
    run = _gradmatrix("named.py", "--seeds", "1", cwd=tmp_path)
    assert run.returncode == 0 and "scale: PASS" in run.stdout, run.stdout + run.stderr
    (tmp_path / "named.py").write_text(body.replace("BODY", "raise NotImplementedError"))
    run = _gradmatrix("named.py", "--seeds", "1", cwd=tmp_path)
    assert run.returncode == 1 and "FAIL: scale_backward unimplemented" in run.stdout, run.stdout + run.stderr


@pytest.mark.xdist_group("framework_functions")
def test_a_framework_function_s_stub_backward_is_named_not_its_forward(tmp_path):
    (tmp_path / "stub_function.py").write_text(textwrap.dedent('''
        import torch

        import gradmatrix

        class Doubling(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return 2 * x

            @staticmethod
            def backward(ctx, dout):
                raise NotImplementedError

        def doubling_reference(x):
            return 2 * x

        doubling = gradmatrix.layer(Doubling.apply, shapes={"x": (3, 4)}, reference=doubling_reference,
                                    framework="torch", name="doubling")
    '''))
    run = _gradmatrix("stub_function.py", "--seeds", "1", cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Doubling (class): NOT CHECKED: its partner Doubling.backward is the starter's stub" in run.stdout
    assert "doubling_reference (function): NOT CHECKED: used by layer 'doubling', not checked: " in run.stdout
    assert "FAIL: Doubling.backward unimplemented" in run.stdout, run.stdout


@pytest.mark.xdist_group("framework_functions")
def test_the_stub_probe_calls_a_framework_function_never_its_class(recwarn):
    # gradmatrix.layer(Gelu.apply, ...): the probe runs what the declaration runs, never
    # Gelu(x), which builds the autograd Function (deprecated by torch, an error to come)
    result = gradmatrix.check(load_module(str(LAYERS / "framework_functions_right.py")), seeds=1,
                              ops=["gelu"], dtypes=["float64"])
    assert result.status == 0
    assert not [w for w in recwarn if "should not be instantiated" in str(w.message)]


def _away_from_zero(rng, shape):
    x = rng.standard_normal(shape)
    return x + np.where(x >= 0, 0.1, -0.1)


def _mask_of(out, arrays, params):
    from gradmatrix.oracles.contract import inverted_dropout_mask

    return inverted_dropout_mask(out, arrays["x"], params["keep"], "dropout_forward")


def _dropout_forward(x, keep):
    mask = (np.random.rand(*x.shape) < keep) / keep  # the layer's own draw, no seed
    return x * mask, mask


def _dropout_backward(dout, mask):
    return dout * mask


def _dropout_backward_unscaled(dout, mask):
    return dout * (mask != 0)


@pytest.mark.parametrize("backward, passes", [(_dropout_backward, True), (_dropout_backward_unscaled, False)])
def test_a_layer_drawing_its_own_mask_is_checked_on_its_own_draw(backward, passes):
    shapes = {"x": gradmatrix.Floats((32, 16), _away_from_zero), "mask": gradmatrix.Recovered((32, 16), _mask_of)}
    result = gradmatrix.check_layer(_dropout_forward, backward, shapes, params={"keep": 0.7}, wrt=["x"],
                                    reference=lambda xp, x, mask, keep: x * mask, dtypes="float64", seeds=2)
    assert result.passed is passes, [r["message"] for r in result.failures[:2]]
    if not passes:  # the forward is right on its own mask: only the gradient is wrong
        failing = {t["tensor"] for r in result.failures for t in r["tensors"] if not t.get("agree", True)}
        assert "dx" in failing and "out" not in failing, failing


def test_a_recovered_array_needs_a_reference():
    shapes = {"x": (4, 3), "mask": gradmatrix.Recovered((4, 3), _mask_of)}
    with pytest.raises(DeclarationError, match=r"\['mask'\] are drawn by the layer itself \(Recovered\): a reference="):
        gradmatrix.check_layer(_dropout_forward, _dropout_backward, shapes, params={"keep": 0.7}, wrt=["x"])


# --- a module's named-dims layer with kinks: its kink cases run in its worker ---


@pytest.mark.parametrize("setting, kink_verdicts, status", [
    ({}, {"agree", "convention"}, 0),  # rectify's 0 at x = 0 is a subgradient: a convention
    ({"RECTIFY_NEGATIVE_AT_ZERO": "1"}, {"agree", "disagree"}, 1),  # -dout there is none
    ({"RECTIFY_RULE_RAISES": "1"}, {"error"}, 1),  # the declaration's own rule fails: no pass
])
def test_a_modules_layer_gets_its_kink_cases_judged_by_its_own_rules_in_its_worker(monkeypatch, setting,
                                                                                  kink_verdicts, status):
    for name in ("RECTIFY_NEGATIVE_AT_ZERO", "RECTIFY_RULE_RAISES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in setting.items():
        monkeypatch.setenv(name, value)  # read by the module, in the worker the check starts
    result = gradmatrix.check(str(LAYERS / "rectify.py"), seeds=1, dtypes=["float64"], modes=["reverse"])
    records = result.document["comparisons"]
    assert result.document["run"]["isolated"] and result.status == status
    kinks = [r for r in records if r["case_kind"] == "kink"]
    assert {r["case"] for r in kinks} == {"rectify-kink-N4-D6-floor0-seed0-float64"}
    assert {r["verdict"] for r in kinks} == kink_verdicts
    assert all(r["verdict"] == "agree" for r in records if r["case_kind"] == "random")
    mine = [r for r in kinks if r["pair"][0] == "rectify"]
    if not setting:  # the convention each side took at 0, from the module's own rule
        assert all(r["conventions"]["rectify"] == 0.0 for r in mine)
    if "RECTIFY_RULE_RAISES" in setting:  # blamed on the declaration, never on the layer
        assert all(r["error"] == {"impl": r["pair"][1], "exception": "ValueError",
                                  "said": "this subgradient cannot read these inputs"} for r in mine)
        assert "cannot read these inputs" in mine[0]["message"]


def test_a_reference_that_raises_is_named_as_what_failed_never_the_layer(tmp_path):
    module = tmp_path / "bad_reference.py"
    module.write_text(textwrap.dedent('''
        import gradmatrix

        def square_reference(xp, x):
            raise RuntimeError("the reference's own bug")

        @gradmatrix.layer(shapes={"x": (4, 5)}, reference=square_reference)
        def square_forward(x):
            return x * x, x

        def square_backward(dout, x):
            return 2 * dout * x
    '''))
    run = _gradmatrix(str(module), "--seeds", "1", "--progress", "none", cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr  # not a pass, and not the layer's error (2)
    lines = run.stdout.splitlines()
    assert any(line.startswith("NOT A PASS: bad_reference could not be checked in ") and line.endswith(
        "comparisons: the reference failed there, not bad_reference (below)") for line in lines), run.stdout
    assert any(line.startswith("WARNING: the references fail (raise, or give no result) in ") for line in lines)
    assert not any("disagree among themselves" in line for line in lines), run.stdout
