"""Hypothesis searches shapes and magnitudes: manual must agree with torch and the numeric
oracle on every example, and a mutant's failure must shrink to a minimal case whose record
and report show it.

A drawn example is a ``Draw``: the op, its dims (N, D, M, C, H within small bounds), a
magnitude 10**exponent, the dtype and a seed.  The values come from the case's own
generator (``Case.rng``), scaled by the magnitude, so a falsifying example prints as a
handful of numbers that reproduce it exactly.  Hypothesis shrinks towards N = 1, the
smallest dims, magnitude 1, float64 and seed 0.

Where the magnitude goes, per op:

* relu: the upstream gradient, 1e-6 .. 1e6; x only when the magnitude is >= 1 (see
  ``_relu``: below 1e-5 every x is a kink to the numeric oracle).
* affine: x, b and the upstream gradient, 1e-6 .. 1e6.
* softmax_loss: the scores, 1e-6 .. 1e6; some examples tie each row's maximum exactly.
* two_layer_net: X, only 1e-2 .. 10 in float32 and 0.1 .. 10 in float64 (see
  ``NET_EXPONENTS``: outside that, correct code fails against the numeric oracle).

Off limits, by assumption: examples whose gradients are near-total cancellations (see
``cancellation``), where a norm-wise relative tolerance cannot hold for correct code.

What the search found in the harness: correct code flagged where a gradient is so small
against the numbers it is computed from that the numeric oracle's rounding dominates, and
its error bound (eps x the summed terms it changed / step) falls short of the rounding of
the intermediates by 1.2x to 1.9x; there the bound is all the allowance there is.

1. every row predicted with confidence (dscores ~ 3e-9): log(sum exp) with sum ~ 1 is
   rounded to eps absolute; 5e-4 off, float64;
2. X ~ 1e6: b2's step (1e-5, as |b2| ~ 1) is added to scores ~ 1e6 and rounded there;
   db1 2.3e-5 off, float64;
3. X ~ 1e-3: W1's step moves y1 by 1e-8 beside b1 ~ 1; dW1 5e-7 off, float64.

Each is kept out of the strategy with its reason rather than loosening a tolerance, and
pinned by ``test_numeric_error_bound_holds`` (a strict xfail: it fails once the oracle is
fixed, and the restrictions can then go).

Comparisons are manual~torch, manual~numeric and torch~numeric (jax recompiles for every
new shape, too slow for a search).  Examples are random, with no example database
(``database=None``: a failure prints its Draw, which reproduces it); the shrinking tests
are derandomized, so their minimal cases are fixed.  When this was written the property
held on 15,000 examples per op (30 per op per run here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, find, given, settings
from hypothesis import strategies as st

from gradmatrix import manual
from gradmatrix.oracles.candidate import Candidate, load_module
from gradmatrix.oracles.cases import Case, CaseInputs
from gradmatrix.oracles.catalog import KINK_MARGIN, away_from_zero, labels, scaled_weights
from gradmatrix.oracles.implementations import oracle
from gradmatrix.runner import Comparison, Runner
from gradmatrix.oracles.numeric import evaluate as numeric_gradients
from gradmatrix.reports import document as documents
from gradmatrix.reports import environment
from gradmatrix.reports.markdown import render

MUTANTS = Path(__file__).parent / "mutants"
ORACLES = ("torch", "numeric")
PAIRS = (("manual", "torch"), ("manual", "numeric"), ("torch", "numeric"))
DTYPES = ("float64", "float32")  # float64 first: hypothesis shrinks towards it


@dataclass(frozen=True)
class Draw:
    """One hypothesis example: enough numbers to rebuild the case and its inputs."""

    op: str
    dims: tuple  # ((name, value), ...), N first, as in Case.dims
    seed: int
    exponent: int  # the values' magnitude is 10**exponent
    dtype: str
    ties: bool = False  # softmax_loss: copy each row's maximum into another column

    @property
    def scale(self) -> float:
        return 10.0 ** self.exponent

    @property
    def case(self) -> Case:
        return Case(self.op, self.dims + (("scale", self.scale),), self.seed, self.dtype)


def _shape(n: int, features) -> tuple:
    return (n, *features) if isinstance(features, tuple) else (n, features)


def _relu(rng, d, scale):
    # The numeric oracle steps by 1e-5 * max(1, |x|), an absolute 1e-5 for |x| < 1, so every
    # |x| < 1e-5 is a kink to it (the central difference straddles 0 and gives 0.5) and its
    # Richardson bound does not notice (D(h) and D(h/2) are both ~0.5).  Kinks have cases of
    # their own; x keeps the catalog's 1e-3 from 0 and small magnitudes go to dout.
    x = away_from_zero(rng, _shape(d["N"], d["D"]), d) * max(1.0, scale)
    return {"x": x}, rng.standard_normal(x.shape) * scale


def _affine(rng, d, scale):
    arrays = {"x": rng.standard_normal(_shape(d["N"], d["Dx"])) * scale,
              "w": scaled_weights(rng, (d["D"], d["M"]), d),
              "b": rng.standard_normal(d["M"]) * scale}
    return arrays, rng.standard_normal((d["N"], d["M"])) * scale


def _softmax(rng, d, scale, ties):
    scores = rng.standard_normal((d["N"], d["C"])) * scale
    if ties:  # an exact tie with the maximum in every row: the shift is still exact
        rows = np.arange(d["N"])
        scores[rows, (scores.argmax(axis=1) + 1) % d["C"]] = scores.max(axis=1)
    return {"scores": scores, "y": labels(rng, (d["N"],), d)}, None


def _net(rng, d, scale, dtype):
    n, dd, h, c = d["N"], d["D"], d["H"], d["C"]
    arrays = {"X": rng.standard_normal((n, dd)) * scale, "y": labels(rng, (n,), d),
              "W1": scaled_weights(rng, (dd, h), d), "b1": rng.standard_normal(h),
              "W2": scaled_weights(rng, (h, c), d), "b2": rng.standard_normal(c)}
    for _ in range(1000):
        X, W1, b1 = (arrays[k].astype(dtype).astype(np.float64) for k in ("X", "W1", "b1"))
        # the numeric oracle's steps, 1e-5 * max(1, |v|) for v in W1 and b1, move y1[n, j] by
        # up to 1e-5 * max(1, |W1|) * max_d |X[n, d]| and 1e-5 * max(1, |b1[j]|); the catalog's
        # absolute margin (1e-3) is not enough once |X| ~ 10
        reach = 1e-5 * (np.abs(X).max(axis=1, keepdims=True) * max(1.0, np.abs(W1).max())
                        + np.maximum(1.0, np.abs(b1)))
        close = (np.abs(X @ W1 + b1) < np.maximum(KINK_MARGIN, 100 * reach)).any(axis=0)
        if not close.any():
            return arrays, None
        arrays["b1"] = np.where(close, rng.standard_normal(h), arrays["b1"])
    raise RuntimeError("could not draw two-layer-net inputs away from the ReLU kink")


def build(draw: Draw) -> CaseInputs:
    """The case and inputs of a draw, floats cast to its dtype after drawing in float64."""
    case = draw.case
    spec, dims, rng = case.spec, case.dim_map, case.rng()
    if draw.op == "relu":
        arrays, dout = _relu(rng, dims, draw.scale)
    elif draw.op == "affine":
        arrays, dout = _affine(rng, dims, draw.scale)
    elif draw.op == "softmax_loss":
        arrays, dout = _softmax(rng, dims, draw.scale, draw.ties)
    else:
        arrays, dout = _net(rng, dims, draw.scale, np.dtype(draw.dtype))
    dtype = np.dtype(draw.dtype)
    cast = {s.name: (arrays[s.name] if s.is_label else arrays[s.name].astype(dtype)) for s in spec.inputs}
    return CaseInputs(case, cast, None if dout is None else dout.astype(dtype))


# The tolerance table allows float32 reductions "with cancellation" of up to ~1e3 x eps32
# (reports/tolerances.py); an example whose gradient cancels further is outside what a
# norm-wise relative tolerance can promise, for correct code as much as for wrong code.
MAX_CANCELLATION = 100.0


def _softmax_grad(scores: np.ndarray, y: np.ndarray):
    """(p - onehot(y)) / N and (p + onehot(y)) / N in float64, p_y - 1 without cancellation."""
    n = scores.shape[0]
    rows = np.arange(n)
    exps = np.exp(scores - scores.max(axis=1, keepdims=True))
    p = exps / exps.sum(axis=1, keepdims=True)
    others = np.where(np.arange(scores.shape[1]) == y[:, None], 0.0, exps).sum(axis=1) / exps.sum(axis=1)
    grad, size = p.copy(), p.copy()
    grad[rows, y] = -others
    size[rows, y] += 1
    return grad / n, size / n


def cancellation(inputs: CaseInputs) -> float:
    """How far the op's outputs and gradients cancel: max |summands| / max |value|, worst tensor.

    Each tensor is recomputed in float64 beside the same expression with absolute values
    (|x| @ |w| beside x @ w, p + onehot beside p - onehot, ...), whose largest entry is the
    size of what was summed.  A ratio of 1e4 means the tensor is 1e4 times smaller than its
    terms, so rounding its terms (eps32 each) moves it by 1e-3 of itself: correct float32
    code fails a 1e-4 tolerance.  Seen in the search: db1 of a one-unit hidden layer summed
    from five rows to 6.7e-5 (1500x), manual and torch 2.2e-4 apart in float32; every row
    predicted with confidence (p_y - 1 cancels to 3e-9, finding 1 of the module docstring).
    """
    a = {k: (v.astype(np.float64) if v.dtype.kind == "f" else v) for k, v in inputs.arrays.items()}
    op = inputs.case.op
    if op == "affine":
        x, w, b, dout = a["x"].reshape(len(a["x"]), -1), a["w"], a["b"], inputs.dout.astype(np.float64)
        tensors = [(x @ w + b, np.abs(x) @ np.abs(w) + np.abs(b)), (dout @ w.T, np.abs(dout) @ np.abs(w).T),
                   (x.T @ dout, np.abs(x).T @ np.abs(dout)), (dout.sum(axis=0), np.abs(dout).sum(axis=0))]
    elif op == "softmax_loss":
        tensors = [_softmax_grad(a["scores"], a["y"])]
    elif op == "two_layer_net":
        X, W1, b1, W2, b2, reg = a["X"], a["W1"], a["b1"], a["W2"], a["b2"], inputs.case.dim_map["reg"]
        y1 = X @ W1 + b1
        h1 = np.maximum(y1, 0.0)
        dscores, size = _softmax_grad(h1 @ W2 + b2, a["y"])
        dy1, size1 = (dscores @ W2.T) * (y1 > 0), (size @ np.abs(W2).T) * (y1 > 0)
        tensors = [(X.T @ dy1 + 2 * reg * W1, np.abs(X).T @ size1 + 2 * reg * np.abs(W1)),
                   (dy1.sum(axis=0), size1.sum(axis=0)),
                   (h1.T @ dscores + 2 * reg * W2, h1.T @ size + 2 * reg * np.abs(W2)),
                   (dscores.sum(axis=0), size.sum(axis=0))]
    else:  # relu: no sums
        return 1.0
    worst = 1.0
    for value, size in tensors:
        top, terms = float(np.max(np.abs(value))), float(np.max(size))
        worst = max(worst, terms / top if top else (1.0 if terms == 0 else np.inf))
    return worst


SMALL = st.integers(1, 6)
FEATURES = st.one_of(SMALL, st.tuples(SMALL, SMALL))  # a feature dim, or two (multi-dimensional x)
SEEDS = st.integers(0, 2**32 - 1)
EXPONENTS = st.integers(-6, 6)
# X's magnitude for the net.  Above 10 the numeric oracle's step for b2 (1e-5, as |b2| ~ 1)
# is added to scores of the size of X and rounded there, beyond its error bound (finding 2
# in the module docstring): db1 2.3e-5 off at X ~ 1e6 in float64, which allows 1e-8.  Below
# 0.1 its step for W1 moves y1 by |X| * 1e-5 beside b1 ~ 1 (finding 3): 5e-7 off at
# X ~ 1e-3.  float32 (1e-4) tolerates both; but above 10 the scores saturate the softmax
# and the rows' +-1/N contributions to db2 cancel (see cancellation), so nearly every
# example would be rejected.  Large and tiny magnitudes are searched on the layers.
NET_EXPONENTS = {"float64": st.integers(-1, 1), "float32": st.integers(-2, 1)}


@st.composite
def draws(draw, op: str, n=st.integers(1, 8), c=st.integers(2, 6)) -> Draw:
    # hypothesis shrinks the earliest choices first: dims, then magnitude, dtype and seed,
    # so a minimal example is the smallest case that fails for some seed
    if op == "relu":
        dims = (("N", draw(n)), ("D", draw(FEATURES)))
    elif op == "affine":
        dims = (("N", draw(n)), ("Dx", draw(FEATURES)), ("M", draw(SMALL)))
    elif op == "softmax_loss":
        dims = (("N", draw(n)), ("C", draw(c)))
    else:
        dims = (("N", draw(n)), ("D", draw(SMALL)), ("H", draw(SMALL)), ("C", draw(c)),
                ("reg", draw(st.sampled_from([0.0, 0.1, 0.5]))))
    if op == "two_layer_net":
        dtype = draw(st.sampled_from(DTYPES))
        exponent, seed = draw(NET_EXPONENTS[dtype]), draw(SEEDS)
    else:
        exponent, dtype, seed = draw(EXPONENTS), draw(st.sampled_from(DTYPES)), draw(SEEDS)
    ties = draw(st.booleans()) if op == "softmax_loss" else False
    return Draw(op, dims, seed, exponent, dtype, ties)


def disagreements(inputs: CaseInputs) -> list:
    """Messages of the comparisons among manual, torch and numeric that fail on ``inputs``."""
    runner = Runner(Candidate(manual, "manual"), ORACLES)
    records = [runner.run(Comparison(inputs.case, pair), inputs=inputs) for pair in PAIRS]
    return [r["message"] for r in records if r["verdict"] != "agree"]


@pytest.mark.parametrize("op", ["relu", "affine", "softmax_loss", "two_layer_net"])
@settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_manual_agrees_with_torch_and_numeric(op, data):
    draw = data.draw(draws(op), label="draw")
    inputs = build(draw)
    assume(cancellation(inputs) <= MAX_CANCELLATION)
    failures = disagreements(inputs)
    assert not failures, f"{draw}: {failures}"


def _mutant_fails(module, name: str, draw: Draw) -> dict | None:
    """The mutant~torch record on ``draw`` when it is not "agree", else None."""
    runner = Runner(Candidate(module, name), ("torch",))
    record = runner.run(Comparison(draw.case, (name, "torch")), inputs=build(draw))
    return None if record["verdict"] == "agree" else record


def _overflows(module, name: str, draw: Draw) -> dict | None:
    """The mutant~torch record on ``draw`` when the mutant's result is non-finite there, else None."""
    runner = Runner(Candidate(module, name), ("torch",))
    record = runner.run(Comparison(draw.case, (name, "torch")), inputs=build(draw))
    flagged = any(w["kind"] == "non-finite-at-extreme-inputs" for w in record.get("warnings", ()))
    unstable = any("numerical instability" in t.get("problem", "") for t in record["tensors"])
    return record if flagged or unstable else None


SHRINK = settings(database=None, derandomize=True, max_examples=200, deadline=None)


def test_hypothesis_shrinks_a_mutant_to_a_minimal_case_and_the_report_shows_it():
    name = "softmax_missing_1_over_n"
    module = load_module(str(MUTANTS / f"{name}.py"))
    # its gradient is N times too large: right at N = 1, wrong from N = 2 on
    minimal = find(draws("softmax_loss"), lambda d: _mutant_fails(module, name, d) is not None, settings=SHRINK)
    dims = dict(minimal.dims)
    assert (dims["N"], dims["C"], minimal.exponent, minimal.dtype) == (2, 2, 0, "float64")
    assert _mutant_fails(module, name, Draw(minimal.op, (("N", 1), ("C", 2)), minimal.seed, 0, "float64")) is None

    record = _mutant_fails(module, name, minimal)
    assert record["verdict"] == "disagree" and record["id"] == f"{minimal.case.id}-{name}~torch"
    assert record["message"].startswith(f"dscores ({name} vs torch, float64): max rel err 1.0e+00")
    run = {"candidate": name, "matrix": "hypothesis", "oracles": ["torch"]}
    markdown = render(documents.build([record], environment.collect(), run))
    discrepancies = markdown.split("## Discrepancies (1)", 1)[1]
    assert f"### `{record['id']}`" in discrepancies
    assert "- verdict: **disagree**" in discrepancies and "`dscores`: worst element" in discrepancies


def test_hypothesis_finds_the_smallest_magnitude_that_overflows_a_softmax_without_shift():
    name = "softmax_no_max_shift"
    module = load_module(str(MUTANTS / f"{name}.py"))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        minimal = find(draws("softmax_loss"), lambda d: _overflows(module, name, d) is not None, settings=SHRINK)
        record = _overflows(module, name, minimal)
        ten_times_smaller = Draw(minimal.op, minimal.dims, minimal.seed, minimal.exponent - 1, minimal.dtype, minimal.ties)
        assert _overflows(module, name, ten_times_smaller) is None
    # exp overflows above 88.7 in float32 and 709.8 in float64 (a whole row underflows below
    # -103 and -745): standard normal draws reach that times 100 in float32, times 1000 in
    # float64, never ten times less
    assert dict(minimal.dims) == {"N": 1, "C": 2}
    assert minimal.exponent == {"float32": 2, "float64": 3}[minimal.dtype]
    # beyond exp's range a non-finite result is a robustness warning (reports.severity), and the
    # record still agrees: never a failure, never silence
    assert record["verdict"] == "agree"
    assert {(w["kind"], w["impl"]) for w in record["warnings"]} == {("non-finite-at-extreme-inputs", name)}


def _torch_gradients(inputs: CaseInputs) -> dict:
    return oracle("torch").evaluate(inputs).grads


def _confident_softmax_gradients(inputs: CaseInputs) -> dict:
    # one row, two classes, label 0: dscores = (-p1, p1) with p1 = 1 / (1 + exp(s0 - s1)),
    # exact in float64 (no p - 1 cancellation, unlike manual's and torch's formula)
    (s0, s1), = inputs.arrays["scores"].astype(np.float64)
    p1 = np.exp(s1 - s0) / (1.0 + np.exp(s1 - s0))
    return {"scores": np.array([[-p1, p1]])}


NET = (("N", 1), ("D", 3), ("H", 4), ("C", 2), ("reg", 0.0))


# The first and last held once the numeric softmax took log1p of the non-maximal terms (a
# confident row's loss keeps its relative precision); the middle one still falls short.
STEP_ROUNDING = pytest.mark.xfail(strict=True, reason="harness: the numeric oracle's error bound falls short (1.2x-1.9x) "
                                  "of the rounding of a step added to a much larger pre-activation")


@pytest.mark.parametrize("draw, reference", [
    pytest.param(Draw("softmax_loss", (("N", 1), ("C", 2)), 2, 1, "float64"), _confident_softmax_gradients,
                 id="softmax-every-row-confident"),
    pytest.param(Draw("two_layer_net", NET, 29, 6, "float64"), _torch_gradients, id="net-X1e6-b2-step-rounded",
                 marks=STEP_ROUNDING),
    pytest.param(Draw("two_layer_net", NET, 22, -3, "float64"), _torch_gradients, id="net-X1e-3-W1-step-rounded"),
])
def test_numeric_error_bound_holds(draw, reference):
    # what the search found, pinned: the numeric oracle differs from the exact gradient by
    # more than the error bound it reports, so correct code is flagged; when the oracle is
    # fixed this xfail turns into a failure, and the strategy's restrictions can go
    inputs = build(draw)
    numeric = numeric_gradients(inputs)
    exact = reference(inputs)
    for name, value in numeric.grads.items():
        allowed = numeric.error_bounds[name] + 1e-13 * np.max(np.abs(exact[name]))  # the reference's own rounding
        assert np.all(np.abs(value - exact[name]) <= allowed), name
