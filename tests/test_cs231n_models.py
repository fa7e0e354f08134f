"""The course's models and sandwich layers, checked as students write them (tests/cs231n/).

Correct, independent implementations with the course's signatures must agree; one-bug
mutants must be caught, naming the function and the gradient; shape-only and dtype-only
differences are findings that do not fail; every function and class of a module is
accounted for; import problems get a hint.  Kept fast: one seed, reverse mode, torch and the
numeric oracle (JAX runs the same array-API reference, covered by tests/test_catalog.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import gradmatrix
from gradmatrix.cli import main
from gradmatrix.oracles.candidate import Candidate, account, load_module

HERE = Path(__file__).parent / "cs231n"
FAST = {"seeds": 1, "modes": ["reverse"], "oracles": ("torch", "numeric")}


def _check(name: str, **options):
    return gradmatrix.check(str(HERE / f"{name}.py"), **{**FAST, **options})


@pytest.mark.parametrize("name, ops", [
    ("neural_net", ["TwoLayerNet"]),
    ("fc_net", ["TwoLayerNet", "fc_net", "fc_net_batchnorm", "fc_net_layernorm"]),
    ("cnn", ["ThreeLayerConvNet"]),
    ("layer_utils", ["affine_relu", "conv_relu", "conv_relu_pool", "affine_bn_relu", "conv_bn_relu"]),
])
def test_correct_course_files_agree_and_every_definition_is_checked(name, ops):
    result = _check(name)
    assert result.status == 0, [r["message"] for r in result.failures][:3]
    assert result.document["run"]["candidate_ops"] == ops
    entries = account(Candidate(load_module(str(HERE / f"{name}.py"))))
    assert entries and all(e["checked"] for e in entries), entries


def test_l2_conventions_are_reported_not_failed():
    old = _check("neural_net")  # reg * sum(W^2)
    new = _check("fc_net", ops=["TwoLayerNet"])  # 0.5 * reg * sum(W^2)
    notes = lambda r: {n for rec in r.document["comparisons"] for n in rec.get("notes", [])}  # noqa: E731
    assert notes(old) == set()  # the reference's own convention: nothing to say
    assert notes(new) == {"TwoLayerNet.loss adds the L2 term as 0.5 * reg * sum(W^2) (a convention of the course), "
                          "compared as 1 * reg * sum(W^2)"}
    assert old.status == new.status == 0


# file -> (exit status, op, text the op's worst message contains)
MUTANTS = {
    "model_mutant_reg_missing_w2": (1, "TwoLayerNet", "loss (cs231n.model_mutant_reg_missing_w2 vs"),
    "model_mutant_reg_grad_factor": (1, "TwoLayerNet", "dW"),
    "model_mutant_grads_partial": (2, "ThreeLayerConvNet", "missing ['b1', 'b2', 'b3']"),
    "model_mutant_utils": (1, "affine_relu", "dx (cs231n.model_mutant_utils vs"),
    "model_mutant_fc_reg_last_layer": (1, "fc_net", "(cs231n.model_mutant_fc_reg_last_layer vs"),
    "model_mutant_utils_values": (1, "conv_relu", "dx (cs231n.model_mutant_utils_values vs"),
}
# the other ops a mutant file breaks: file -> {op: text its worst message contains}
ALSO_CAUGHT = {
    "model_mutant_fc_reg_last_layer": {"fc_net_batchnorm": "(cs231n.model_mutant_fc_reg_last_layer vs",
                                       "fc_net_layernorm": "(cs231n.model_mutant_fc_reg_last_layer vs"},
    "model_mutant_utils_values": {"conv_relu_pool": "(cs231n.model_mutant_utils_values vs",
                                  "affine_bn_relu": "dx (cs231n.model_mutant_utils_values vs",
                                  "conv_bn_relu": "dgamma (cs231n.model_mutant_utils_values vs"},
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutants_are_caught_naming_function_and_gradient(name):
    status, op, text = MUTANTS[name]
    result = _check(name, dtypes=["float64"])
    verdicts = result.per_op()
    assert result.status == status
    assert verdicts[op]["verdict"] in ("disagree", "error") and text in verdicts[op]["worst"]["message"]
    for other, fragment in ALSO_CAUGHT.get(name, {}).items():
        assert verdicts[other]["verdict"] == "disagree" and fragment in verdicts[other]["worst"]["message"]


def test_every_course_model_and_sandwich_op_has_a_caught_mutant():
    from gradmatrix.oracles.contracts.cs231n import models
    from gradmatrix.oracles.declared import declarations_in

    OPS_OF_MODELS = [declaration.name for declaration in declarations_in(models)]
    from gradmatrix.oracles.catalog import CATALOG

    caught = {op for _, op, _ in MUTANTS.values()} | {op for also in ALSO_CAUGHT.values() for op in also}
    assert caught == set(OPS_OF_MODELS) and set(OPS_OF_MODELS) <= set(CATALOG)


def test_reg_missing_on_one_weight_is_no_convention():
    notes = {n for r in _check("model_mutant_reg_missing_w2", dtypes=["float64"]).document["comparisons"]
             for n in r.get("notes", [])}
    assert len(notes) == 1 and "none of the conventions 1, 0.5" in notes.pop()


def test_shape_only_and_dtype_only_are_warnings_that_do_not_fail():
    result = _check("model_mutant_utils", ops=["affine_bn_relu", "conv_relu"], dtypes=["float32"])
    assert result.status == 0
    warnings = {(w["kind"], w["tensor"]) for r in result.document["comparisons"] for w in r.get("warnings", [])}
    assert ("shape-size-1", "dgamma") in warnings
    assert ("dtype-promoted", "out") in warnings and ("dtype-promoted", "dw") in warnings


def test_value_bug_keeps_the_headline_over_a_dtype_only_finding():
    result = _check("model_mutant_utils", ops=["affine_relu"], dtypes=["float32"])
    assert result.per_op()["affine_relu"]["worst"]["message"].startswith("dx (")


def test_stubs_and_unknown_names_are_listed_with_reasons(capsys):
    entries = {e["name"]: e for e in account(Candidate(load_module(str(HERE / "model_mutant_utils.py"))))}
    assert entries["conv_relu_pool_backward"]["reason"] == "unimplemented stub: conv_relu_pool_backward returns None"
    assert entries["conv_relu_pool_backward"]["stub"]
    # the implemented half is not checked (nothing to pair it with) and is not the stub
    forward = entries["conv_relu_pool_forward"]
    assert not forward["checked"] and "stub" not in forward
    assert forward["reason"] == "its partner conv_relu_pool_backward is the starter's stub"
    assert entries["conv_bn_relu_forward"]["reason"] == "its partner conv_bn_relu_backward is missing"
    assert entries["eval_numerical_gradient"]["reason"].startswith("unknown name")
    assert entries["affine_relu_backward"]["checked"] and entries["affine_relu_backward"]["op"] == "affine_relu"


def test_module_with_nothing_checkable_is_never_a_pass(capfd, tmp_path):
    assert main(["check", str(HERE / "model_nothing_checkable.py"), "--out", str(tmp_path / "r")]) == 2
    out = capfd.readouterr()
    text = out.out + out.err
    assert "sgd (function): NOT CHECKED: unknown name" in text
    assert "Solver (class): NOT CHECKED: unknown name" in text
    assert "nothing in cs231n.model_nothing_checkable was checked" in text
    assert "PASS" not in text


def test_partly_checked_module_is_not_a_bare_pass():
    from gradmatrix.cli import accounting_lines

    candidate = Candidate(load_module(str(HERE / "model_mutant_utils.py")))
    before, closing = accounting_lines(candidate)
    lines = before + closing(0)
    assert any("NOT CHECKED" in line for line in before)
    assert lines[-1].endswith("not a pass for the whole module")
    assert not any("PASS" in line for line in lines)


def test_missing_past_module_gets_the_future_hint():
    with pytest.raises(ImportError, match="pip install future"):
        load_module(str(HERE / "model_needs_past.py"))


def test_a_stub_is_the_function_that_raised_not_its_partner(tmp_path):
    (tmp_path / "half.py").write_text(
        "import numpy as np\n\n\ndef relu_forward(x):\n    return np.maximum(0, x), x\n\n\n"
        "def relu_backward(dout, cache):\n    raise NotImplementedError('TODO')\n")
    entries = {e["name"]: e for e in account(Candidate(load_module(str(tmp_path / "half.py"))))}
    assert entries["relu_backward"]["stub"] and "raises NotImplementedError" in entries["relu_backward"]["reason"]
    assert "stub" not in entries["relu_forward"]
    assert entries["relu_forward"]["reason"] == "its partner relu_backward is the starter's stub"


def test_document_run_info_accounts_for_every_definition():
    from gradmatrix.reports.schema import validate

    result = _check("model_mutant_utils", ops=["affine_relu"], dtypes=["float64"], oracles=("numeric",))
    accounting = {e["name"]: e for e in result.document["run"]["accounting"]}
    assert accounting["conv_relu_pool_backward"] == {
        "name": "conv_relu_pool_backward", "kind": "function", "checked": False, "op": "conv_relu_pool",
        "reason": "unimplemented stub: conv_relu_pool_backward returns None", "stub": True}
    assert accounting["affine_relu_forward"]["checked"] and len(accounting) == 10
    validate(result.document)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the mutant's own overflow
def test_overflow_is_reported_as_numerical_instability():
    mutant = Path(__file__).parent / "mutants" / "softmax_no_max_shift.py"
    result = gradmatrix.check(str(mutant), ops=["softmax_loss"], seeds=1, modes=["reverse"], oracles=("numeric",))
    records = result.document["comparisons"]
    # at logits of 1e4 exp overflows: a warning; where the logits are ordinary, an error
    at_extremes = [w for r in records for w in r.get("warnings", []) if w["kind"] == "non-finite-at-extreme-inputs"]
    unstable = [t for r in records for t in r["tensors"] if "numerical instability" in t.get("problem", "")]
    assert at_extremes and all(r["dims"].get("scale", 0) >= 1e4 or r["dims"].get("shift", 0) >= 1e4
                               for r in records if any(w["kind"] == "non-finite-at-extreme-inputs"
                                                       for w in r.get("warnings", [])))
    assert all("returned non-finite values where numeric is finite" in t["problem"] for t in unstable)


def test_the_2017_constructor_is_recognised_by_its_signature():
    result = _check("fc_net_2017", dtypes=["float64"])
    assert result.document["run"]["candidate_ops"] == ["fc_net", "fc_net_batchnorm"]  # no layernorm in 2017
    assert result.status == 0


def test_relative_import_outside_a_package_gets_a_hint(tmp_path):
    path = tmp_path / "loose_layer_utils.py"
    path.write_text("from .layers import *\n")
    with pytest.raises(ImportError, match="needs the file's folder to be a package"):
        load_module(str(path))


def test_sibling_and_package_imports_resolve(tmp_path):
    # a sibling imported by plain name, and a second cs231n/ folder replacing the first one
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "sibling_layers_for_test.py").write_text((HERE / "model_layers.py").read_text())
    (tmp_path / "plain" / "sandwich.py").write_text(
        "from sibling_layers_for_test import *\n\n\n" + (HERE / "layer_utils.py").read_text().split("\n", 3)[3])
    package = tmp_path / "assignment2" / "cs231n"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model_layers.py").write_text((HERE / "model_layers.py").read_text())
    (package / "layer_utils.py").write_text(
        (HERE / "layer_utils.py").read_text().replace("from .model_layers import", "from cs231n.model_layers import"))
    plain = Candidate(load_module(str(tmp_path / "plain" / "sandwich.py")))
    packaged = Candidate(load_module(str(package / "layer_utils.py")))
    assert plain.ops == packaged.ops == ["affine_relu", "conv_relu", "conv_relu_pool", "affine_bn_relu", "conv_bn_relu"]
    assert Path(packaged.module.__file__).parent == package
    assert Path(sys.modules["cs231n.model_layers"].__file__).parent == package


def test_verdict_line_of_a_partly_checked_module_is_not_a_bare_pass():
    from gradmatrix.reports.markdown import verdict_line

    result = _check("model_mutant_utils", ops=["affine_bn_relu"], dtypes=["float64"], oracles=("numeric",))
    summary = result.document["summary"]
    assert result.status == 0 and summary["unchecked"] == 4  # the stub pair, half a pair, a helper
    line = verdict_line(summary)
    assert line.startswith("**PASS for the checked part only**") and "4 function(s) or class(es)" in line
