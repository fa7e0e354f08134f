"""Forward mode and second order: "jvp" and "hvp" cases (``oracles.modes``).

Real frameworks throughout: the identity <u, J v> = <J^T u, v> must hold for correct code
and fail for wrong gradients, and the Hessian-vector products must equal a closed form.
"""

import hashlib
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from gradmatrix import manual
from gradmatrix.oracles import jax_oracle, modes, numeric, torch_oracle
from gradmatrix.oracles.candidate import Candidate, load_module
from gradmatrix.oracles.cases import Case, CaseInputs, draw_inputs, matrix_cases
from gradmatrix.runner import Comparison, Runner, default_plan
from gradmatrix.oracles.result import Result
from gradmatrix.reports.compare import compare
from cli_helpers import gradmatrix as gradmatrix_cli

MUTANTS = Path(__file__).parent / "mutants"


def _records(candidate, ops, modes_=("jvp", "hvp"), dtypes=("float64", "float32")):
    runner = Runner(candidate)
    plan = default_plan("default", ops, list(dtypes), 1, candidate=candidate, modes=list(modes_))
    return [runner.run(c, reproduce=f"gradmatrix check --only {c.id}") for c in plan]


def test_manual_torch_and_jax_agree_in_forward_mode_and_second_order():
    # a slice of the default matrix: every kind of op (elementwise, matmul, losses, a
    # normalization, a convolution), both dtypes, every jvp and hvp pair
    records = _records(Candidate(manual, "manual"), ["affine", "softmax_loss", "two_layer_net", "batchnorm", "conv"])
    bad = [r["message"] for r in records if r["verdict"] != "agree"]
    assert not bad, bad[:5]
    pairs = Counter("~".join(r["pair"]) for r in records)
    # the candidate meets forward mode proper (JAX's) and torch's J v (reverse over reverse)
    assert set(pairs) == {"manual~jax.jvp", "manual~torch.jvp", "jax.jvp~numeric", "torch~torch.jvp",
                          "torch.hvp~manual.fd", "jax.hvp~manual.fd", "torch.hvp~jax.hvp"}
    assert {r["kind"] for r in records} == {"jvp", "jvp-numeric", "hvp", "hvp-fd"}
    hvp_ops = {r["op"] for r in records if r["case_kind"] == "hvp"}
    assert hvp_ops == {"softmax_loss", "two_layer_net"}  # the losses marked second_order
    jvp = [t for r in records if r["case_kind"] == "jvp" for t in r["tensors"] if t["tensor"] == modes.JVP_TENSOR]
    assert jvp and all(t["of_allowed"] < 0.5 for t in jvp)  # with room to spare, not just under the line


def test_mode_cases_draw_their_random_twins_inputs_and_leave_random_draws_alone():
    random = Case("affine", (("N", 8), ("Dx", 6), ("M", 3)), 1, "float32")
    twin = draw_inputs(Case(random.op, random.dims, random.seed, random.dtype, "jvp"))
    base = draw_inputs(random)
    assert all(np.array_equal(base.arrays[k], twin.arrays[k]) for k in base.arrays)
    assert np.array_equal(base.dout, twin.dout) and not base.directions
    assert set(twin.directions) == {"x", "w", "b"} and twin.directions["w"].dtype == np.float32
    # the draws of these cases before forward mode existed (sha256 of inputs and dout)
    digests = {
        random: "00ca282536589374",
        Case("two_layer_net", (("N", 8), ("D", 6), ("H", 6), ("C", 3), ("reg", 0.1)), 2, "float64"): "b3688faeccaf3096",
        Case("conv", (("N", 1), ("C", 2), ("HW", (5, 5)), ("F", 3), ("K", (3, 3)), ("stride", 1), ("pad", 1)), 0,
             "float64"): "1d0a5183c086195b",
        Case("relu", (("N", 4), ("D", 6)), 0, "float64", kind="kink"): "9519b3af4299d926",
    }
    for case, digest in digests.items():
        inputs, h = draw_inputs(case), hashlib.sha256()
        for k in sorted(inputs.arrays):
            h.update(inputs.arrays[k].tobytes())
        if inputs.dout is not None:
            h.update(inputs.dout.tobytes())
        assert h.hexdigest()[:16] == digest, case.id


def test_modes_select_case_kinds_and_unknown_modes_are_refused():
    kinds = Counter(c.kind for c in matrix_cases("default", ["softmax_loss", "relu"], modes=["jvp", "hvp"]))
    assert set(kinds) == {"jvp", "hvp"} and kinds["hvp"] < kinds["jvp"]  # hvp: the loss only
    assert {c.kind for c in matrix_cases("default", ["relu"], modes=["reverse"])} == {"random", "kink"}
    assert {c.seed for c in matrix_cases("default", ["relu"], modes=["jvp"])} == {0}
    with pytest.raises(ValueError, match="unknown mode"):
        matrix_cases("default", ["relu"], modes=["sideways"])


def test_numeric_directional_derivative_matches_the_affine_closed_form():
    # out = x w + b is linear in each input: <u, J v> = <u, v_x w + x v_w + v_b> exactly
    inputs = draw_inputs(Case("affine", (("N", 5), ("Dx", (2, 3)), ("M", 4)), 0, "float64", "jvp"))
    x, w = inputs.arrays["x"].reshape(5, 6), inputs.arrays["w"]
    v = inputs.directions
    exact = np.sum(inputs.dout * (v["x"].reshape(5, 6) @ w + x @ v["w"] + v["b"]))
    d = numeric.directional_derivative(inputs)
    assert abs(d["value"] - exact) <= d["bound"] + 1e-12 * d["scale"]
    assert d["bound"] < 1e-8 * d["scale"]


def test_each_frameworks_j_v_equals_the_affine_closed_form():
    # torch.jvp is reverse over reverse, jax.jvp forward mode: both are J v to rounding
    inputs = draw_inputs(Case("affine", (("N", 5), ("Dx", (2, 3)), ("M", 4)), 0, "float64", "jvp"))
    x, w, v = inputs.arrays["x"].reshape(5, 6), inputs.arrays["w"], inputs.directions
    exact = v["x"].reshape(5, 6) @ w + x @ v["w"] + v["b"]
    for oracle in (torch_oracle, jax_oracle):
        out, jv = oracle.evaluate_jvp(inputs)
        np.testing.assert_allclose(jv, exact, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(out, x @ w + inputs.arrays["b"], rtol=1e-12)


def test_identity_catches_a_missing_transpose():
    records = _records(Candidate(load_module(str(MUTANTS / "affine_missing_transpose.py"))), ["affine"], ["jvp"],
                       ["float64"])
    mine = [r for r in records if r["pair"][0] == "affine_missing_transpose"]  # against jax.jvp and torch.jvp
    square = [r for r in mine if r["dims"]["Dx"] == r["dims"]["M"] > 1]
    # square weights: dw has the right shape and wrong values, so <dw, v_w> is off (1 x 1: w^T = w)
    assert square and all(r["verdict"] == "disagree" for r in square)
    assert all(r["verdict"] == "agree" for r in mine if r["dims"]["Dx"] == r["dims"]["M"] == 1)
    assert {r["pair"][1] for r in square} == {"jax.jvp", "torch.jvp"}
    assert all(f"<u,Jv> (affine_missing_transpose vs {r['pair'][1]}, float64): max rel err" in r["message"]
               for r in square)
    assert all("--only affine-jvp-" in r["message"] for r in square)
    # non-square (a full-matrix shape; the default's jvp case is square): no sum can be
    # taken, and the record says why
    candidate = Candidate(load_module(str(MUTANTS / "affine_missing_transpose.py")))
    case = Case("affine", (("N", 4), ("Dx", 6), ("M", 3)), 0, "float64", "jvp")
    nonsquare = Runner(candidate, ("torch",)).run(Comparison(case, (candidate.name, "torch.jvp")))
    assert nonsquare["verdict"] == "error" and "returned shape" in nonsquare["message"]
    assert all(r["verdict"] == "agree" for r in records if r not in mine)  # the oracles still agree


def test_identity_catches_a_net_whose_l2_gradient_lacks_its_factor_2():
    records = _records(Candidate(load_module(str(MUTANTS / "net_l2_missing_factor2.py"))), ["two_layer_net"], ["jvp"])
    mine = [r for r in records if r["pair"][0] == "net_l2_missing_factor2"]
    assert all((r["verdict"] == "disagree") == (r["dims"]["reg"] > 0) for r in mine)  # reg = 0: nothing to miss
    assert any(r["verdict"] == "disagree" for r in mine)


def _softmax_hvp_case():
    case = Case("softmax_loss", (("N", 2), ("C", 3)), 0, "float64", "hvp")
    scores = np.array([[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]])
    v = np.array([[0.3, -1.0, 2.0], [1.5, 0.5, -0.25]])
    return CaseInputs(case, {"scores": scores, "y": np.array([1, 2])}, None, directions={"scores": v})


def test_softmax_hvp_equals_the_analytic_hessian():
    # H = blockdiag(diag(p_i) - p_i p_i^T) / N for the mean cross-entropy, whatever the labels
    inputs = _softmax_hvp_case()
    s, v = inputs.arrays["scores"], inputs.directions["scores"]
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    expected = np.stack([(np.diag(p[i]) - np.outer(p[i], p[i])) @ v[i] for i in range(2)]) / 2
    for name, hv in (("torch", torch_oracle.evaluate_hvp(inputs)[1]), ("jax", jax_oracle.evaluate_hvp(inputs)[1])):
        assert np.max(np.abs(hv["scores"] - expected)) < 1e-12, name
    fd = modes.GradientDifferences(Candidate(manual, "manual")).evaluate(inputs)
    err = np.abs(fd.grads["scores"] - expected)
    assert np.all(err <= fd.error_bounds["scores"]) and err.max() < 1e-10  # within its own bound, and tight
    assert fd.error_bounds["scores"].max() < 1e-8 * np.abs(expected).max()


def test_hvp_catches_a_softmax_gradient_missing_its_1_over_n():
    mutant = Candidate(load_module(str(MUTANTS / "softmax_missing_1_over_n.py")))
    records = _records(mutant, ["softmax_loss"], ["hvp"])
    against = [r for r in records if r["pair"][1] == "softmax_missing_1_over_n.fd"]
    # the differenced gradient is N times too large (the mode cases run at N = 32).  With
    # logits of 1e4 the softmax is saturated, p is one-hot, H = 0 and N * 0 = 0: the HVP
    # cannot see the mistake there (the reverse-mode cases do)
    exposing = [r for r in against if r["dims"]["N"] > 1 and r["dims"].get("scale", 1.0) < 1e4]
    assert exposing and all((r["verdict"] == "disagree") == (r in exposing) for r in against)
    message = next(r["message"] for r in against if r["verdict"] == "disagree")
    assert "Hv[scores] (torch.hvp vs softmax_missing_1_over_n.fd" in message or "(jax.hvp vs" in message
    # torch and jax agree with each other: the gradient, not the frameworks, is wrong
    assert all(r["verdict"] == "agree" for r in records if r["pair"] == ["torch.hvp", "jax.hvp"])
    # the single comparison function decides, with the tolerance kind of its pair
    assert {r["kind"] for r in against} == {"hvp-fd"}


def test_a_wrong_hvp_is_caught_against_the_differences():
    # the comparison itself: the analytic HVP with one element perturbed by 1e-6 must fail in float64
    inputs = _softmax_hvp_case()
    fd = modes.GradientDifferences(Candidate(manual, "manual")).evaluate(inputs)
    loss, hv = torch_oracle.evaluate_hvp(inputs)
    hv["scores"][1, 2] += 1e-6
    record = compare(inputs.case, Result("torch.hvp", loss, hv), fd)
    assert record["verdict"] == "disagree" and "at [1, 2]" in record["message"]


def test_pytest_modes_option_and_schema(tmp_path, read_report):
    run = subprocess.run([sys.executable, "-m", "pytest", "--pyargs",
                          "gradmatrix.matrix_test", "-q", "-p", "no:cacheprovider", "--gm-ops", "softmax_loss",
                          "--gm-modes", "jvp,hvp", "--gm-dtypes", "float64", "--gm-oracles", "torch,numeric"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    doc = read_report(tmp_path / "gradmatrix-report" / "agreement.json")
    assert doc["run"]["modes"] == ["jvp", "hvp"]
    assert {r["case_kind"] for r in doc["comparisons"]} == {"jvp", "hvp"}
    # without jax: the candidate and the numeric reference pair with torch's J v (reverse over reverse)
    assert {g["pair"] for g in doc["groups"]} == {"manual~torch.jvp", "torch.jvp~numeric", "torch.hvp~manual.fd"}
    md = (tmp_path / "gradmatrix-report" / "agreement.md").read_text()
    assert "`torch.hvp~manual.fd`" in md
    bad = gradmatrix_cli("run", "--modes", "sideways", cwd=tmp_path)
    assert bad.returncode == 2 and "unknown mode" in bad.stderr
