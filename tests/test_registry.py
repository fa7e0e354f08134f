"""The oracle registry (``oracles/implementations.py``): each oracle says once what it
provides, and what reads the registry (pairs, modes, devices, declared references) follows
it.  A framework added to the registry is held here to what its attributes promise."""

import importlib

import numpy as np
import pytest

from gradmatrix import manual
from gradmatrix.oracles import modes
from gradmatrix.oracles.cases import Case, draw_inputs
from gradmatrix.oracles.implementations import (
    FORWARD, FORWARD_MODE, LOW_PRECISION, ON_DEVICE, ORACLES, REFERENCE_KEYS, REGISTRY, REVERSE_OVER_REVERSE,
    SECOND_ORDER, oracle,
)

CASE = Case("affine", (("N", 4), ("Dx", 5), ("M", 3)), 0, "float64")


@pytest.mark.parametrize("name", ORACLES)
def test_each_oracle_provides_what_it_says(name):
    cls = REGISTRY[name]
    module = importlib.import_module(cls.module)
    assert cls.name == name and cls.runs and cls.reference_key
    assert callable(module.available) and callable(module.evaluate)
    assert callable(getattr(module, "evaluate_jvp", None)) == bool(cls.forward_mode)
    assert cls.forward_mode in ("", FORWARD, REVERSE_OVER_REVERSE)
    assert callable(getattr(module, "evaluate_hvp", None)) == cls.second_order


@pytest.mark.parametrize("name", ON_DEVICE)
def test_an_oracle_that_follows_the_device_says_its_gpu_precision_and_settings(name):
    # what --device, --matmul-precision and the report's environment ask of it (oracles.devices,
    # reports.environment), answered by its module
    from gradmatrix.oracles import devices
    from gradmatrix.reports import environment

    chosen = oracle(name)
    assert isinstance(chosen.gpu_reason(), str)  # "" where it has a GPU, else why not
    assert chosen.imported()  # gpu_reason imported its framework
    before = chosen.settings("cpu")
    assert before["device"] == "cpu"
    with devices.matmul_precision("high"):
        during = environment.collect("cpu", "high")["frameworks"][name]
    assert during != before and environment.collect()["frameworks"][name] == before  # set, then put back


@pytest.mark.parametrize("name", ORACLES)
def test_each_oracle_gives_manuals_gradients(name):
    inputs = draw_inputs(CASE)
    result = oracle(name).evaluate(inputs)
    a = inputs.arrays
    _, cache = manual.affine_forward(a["x"], a["w"], a["b"])
    dx, dw, db = manual.affine_backward(inputs.dout, cache)
    for tensor, expected in (("x", dx), ("w", dw), ("b", db)):
        np.testing.assert_allclose(result.grads[tensor], expected, rtol=1e-6, atol=1e-9)


def test_the_lists_read_by_the_runner_come_from_the_registry():
    assert ORACLES[-1] == "numeric"  # the truth is named last in every pair
    assert set(FORWARD_MODE) == {n for n, c in REGISTRY.items() if c.forward_mode}
    # forward mode proper first: the candidate's reverse mode meets it (oracles.modes)
    assert [REGISTRY[n].forward_mode for n in FORWARD_MODE] == sorted(
        (REGISTRY[n].forward_mode for n in FORWARD_MODE), key=lambda how: how != FORWARD)
    assert set(SECOND_ORDER) == {n for n, c in REGISTRY.items() if c.second_order}
    assert set(ON_DEVICE) == {n for n, c in REGISTRY.items() if c.on_device} and "numeric" not in ON_DEVICE
    assert set(LOW_PRECISION) <= set(ON_DEVICE)
    assert sorted(REFERENCE_KEYS.values()) == sorted(ORACLES)  # one reference key per oracle


def test_the_modes_pair_every_oracle_that_provides_them():
    jvp = {name for pair in modes.mode_pairs("jvp", "manual", ORACLES) for name in pair}
    assert {f"{n}.jvp" for n in FORWARD_MODE} <= jvp
    hvp = {name for pair in modes.mode_pairs("hvp", "manual", ORACLES) for name in pair}
    assert {f"{n}.hvp" for n in SECOND_ORDER} <= hvp
    with pytest.raises(ValueError, match="not a mode case kind"):
        modes.mode_pairs("reverse", "manual", ORACLES)


def test_an_unknown_oracle_is_named():
    with pytest.raises(ValueError, match=r"unknown oracle 'mxnet'; choose from \['torch', 'jax', 'numeric'\]"):
        oracle("mxnet")
