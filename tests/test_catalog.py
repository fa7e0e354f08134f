"""Meta-tests of the catalog and the declared contracts: every op can be run by every
oracle, and a candidate's return structure is read (or refused) as its contract says."""

import numpy as np
import pytest

from gradmatrix.oracles import jax_oracle, numeric, torch_oracle
from gradmatrix.oracles.catalog import CATALOG
from gradmatrix.oracles.contract import ContractError, Layer, Loss, Packed, name_gradients, signature_score


@pytest.mark.parametrize("op", list(CATALOG))
@pytest.mark.parametrize("oracle", [torch_oracle, jax_oracle, numeric], ids=["torch", "jax", "numeric"])
def test_every_op_has_a_forward_in_every_oracle(op, oracle):
    assert callable(oracle.forward_of(CATALOG[op]))


@pytest.mark.parametrize("op", list(CATALOG))
def test_every_contract_names_the_ops_inputs(op):
    spec = CATALOG[op]
    names = {s.name for s in spec.inputs}
    for contract in spec.contracts:
        assert set(contract.grads) == set(spec.differentiable), contract
        assert set(contract.grads) <= names


def test_gradients_come_as_one_array_any_sequence_or_a_mapping():
    dx, dw = np.ones(2), np.zeros(3)
    assert name_gradients(dx, ("x",), "f")["x"] is dx
    assert name_gradients([dx, dw], ("x", "w"), "f")["w"] is dw
    assert name_gradients((dx, dw), ("x", "w"), "f")["x"] is dx
    assert name_gradients({"w": dw, "x": dx}, ("x", "w"), "f") == {"x": dx, "w": dw}
    with pytest.raises(ContractError, match=r"affine_backward must return \(dx, dw, db\), got a sequence of 2"):
        name_gradients((dx, dw), ("x", "w", "b"), "affine_backward")
    with pytest.raises(ContractError, match=r"missing \['b'\]"):
        name_gradients({"x": dx, "w": dw}, ("x", "w", "b"), "f")


def test_a_forward_without_its_cache_is_named():
    layer = Layer("relu_forward", "relu_backward", ("x",), ("x",))
    functions = {"relu_forward": lambda x: np.maximum(x, 0), "relu_backward": lambda dout, cache: dout}
    with pytest.raises(ContractError, match=r"relu_forward must return \(out, cache\), got ndarray"):
        layer.call(functions.__getitem__, {"x": np.ones(3)}, np.ones(3), {})


def test_the_best_fitting_signature_chooses_the_contract():
    ours = Layer("batchnorm_forward", "batchnorm_backward", ("x", "gamma", "beta", "eps"), ("x", "gamma", "beta"))
    course = Layer("batchnorm_forward", "batchnorm_backward",
                   ("x", "gamma", "beta", Packed("bn_param", eps="eps")), ("x", "gamma", "beta"))

    def batchnorm_forward(x, gamma, beta, bn_param):
        raise AssertionError("not called")

    functions = {"batchnorm_forward": batchnorm_forward, "batchnorm_backward": lambda dout, cache: None}
    assert signature_score(course, functions.__getitem__) > signature_score(ours, functions.__getitem__)
    assert signature_score(Loss("softmax_loss", ("scores", "y"), ("scores",)), functions.__getitem__) is None
    two_args = Layer("batchnorm_forward", "batchnorm_backward", ("x", "gamma"), ("x",))
    assert signature_score(two_args, functions.__getitem__) is None  # forward needs 4 arguments


def test_the_catalog_is_manuals_ops_then_cs231ns_declarations():
    """CS231n's functions are declarations made with the public API, built into catalog ops:
    nothing beyond ``oracles.ops`` is a hand-built entry, and the order is the parts'."""
    from gradmatrix.oracles import ops
    from gradmatrix.oracles.contracts import cs231n
    from gradmatrix.oracles.declared import declarations_in

    declared = [d.name for part in cs231n.PARTS for d in declarations_in(part)]
    assert list(CATALOG) == [spec.name for spec in ops.ENTRIES] + declared
    assert {"svm_loss", "conv_naive", "lstm_step", "ThreeLayerConvNet"} <= set(declared)


def _dims_key(dims: dict) -> tuple:
    return tuple(sorted(dims.items()))


@pytest.mark.parametrize("op", list(CATALOG))
def test_case_dims_are_the_dims_of_every_case_of_the_op(op):
    # a declared layer's conditions travel from its worker as a table over case_dims(): a
    # case whose dims it lacks could not be looked up
    from gradmatrix.oracles.cases import matrix_cases

    spec = CATALOG[op]
    every = {_dims_key(d) for d in spec.case_dims()}
    for matrix in ("default", "full"):
        cases = matrix_cases(matrix, ops=[op], dtypes=["float64", "float32", "float16"])
        assert {_dims_key(case.dim_map) for case in cases} <= every, matrix


def test_case_dims_of_a_layer_without_n():
    import gradmatrix
    from gradmatrix.oracles.cases import matrix_cases
    from gradmatrix.oracles.declared import build

    declaration = gradmatrix.layer(lambda x: (2 * x, None), lambda dout, cache: 2 * dout, shapes={"x": ("D",)},
                                   output=("out", ("D",)), matrices=[{"N": None, "D": 3}, {"N": None, "D": 6}],
                                   reference=lambda xp, a, dims: 2 * a["x"], name="doubled_vector",
                                   conditions={"long (D > 4)": lambda dims: dims["D"] > 4})
    spec, _ = build(declaration)
    assert spec.case_dims() == [{"D": 3}, {"D": 6}, {"D": 3}, {"D": 6}]  # default's, then full's
    cases = matrix_cases("default", ops=[spec.name], catalog={spec.name: spec})
    assert {_dims_key(case.dim_map) for case in cases} == {(("D", 3),), (("D", 6),)}
