"""Forward mode and second order: the implementations and pairs of "jvp" and "hvp" cases.

Forward mode ("jvp" cases, every op).  For an op f with Jacobian J at the case's inputs,
a random upstream gradient u (the case's ``dout``; 1 for a scalar output) and a random
direction v (one array per differentiable input, ``CaseInputs.directions``),

    <u, J v>  =  <J^T u, v>  =  sum_k <g_k, v_k>,   g_k = the reverse-mode gradient of input k.

The left side comes from each framework's ``J v`` (implementation ``jax.jvp``: forward
mode, the tangent map of ``jax.linearize``; ``torch.jvp``: reverse over reverse, the gradient of ``<J^T u, v>`` with
respect to u, as the registry says: ``Oracle.forward_mode``), the right from any
reverse-mode implementation's ordinary gradients (the candidate, ``torch``, ``jax``), and
the numeric oracle gives the directional derivative ``<u, (f(x + t v) - f(x - t v)) / 2t>``
in float64.  Each yields one 0-d tensor, ``<u,Jv>``; the reduction is done here, in
float64, so the harness adds no rounding of its own, and cast to the dtype the
implementation returned its gradients (or J v) in.

Second order ("hvp" cases, ops with ``second_order``: the losses).  ``torch.hvp``
(reverse over reverse: the gradient of <grad, v>) and ``jax.hvp`` (forward over reverse:
jvp of grad) are Hessian-vector products keyed by input name, by two methods;
``<candidate>.fd`` is central differences of the candidate's own gradient along v in
float64 (``manual.fd`` by default; with ``gradmatrix check mine.py`` it is ``mine.fd``, so
a wrong hand gradient shows up as both HVPs disagreeing with it).  Labels and other
non-differentiable inputs are held fixed.

The pairs (``mode_pairs``), each (a, b) with b the reference, four per "jvp" case, with
the frameworks in ``FORWARD_MODE``'s order (forward mode proper first):
* ``<candidate>~jax.jvp``: the candidate's reverse mode against forward mode, which shares
  no code with any backward pass (the point of the check);
* ``<candidate>~torch.jvp``: against torch's reverse over reverse, another method than the
  candidate's own; where JAX cannot run (its pairs skipped), the candidate's check remains;
* ``jax.jvp~numeric``: the forward mode against the float64 directional difference, the
  ground truth, so a disagreement above can be laid at the right door;
* ``torch~torch.jvp``: torch's reverse mode against its own ``J v``, a pair of references.
Every ``J v`` thus meets a reverse mode, and every implementation is tied to the truth
(torch and jax reverse modes meet each other in the reverse matrix, on the same inputs: a
mode case draws its random twin's inputs).  ``jax~jax.jvp`` and ``torch.jvp~numeric``
would only close loops that are already closed, at 70 comparisons each on the default
matrix.
Three per "hvp" case: ``torch.hvp~<candidate>.fd`` and ``jax.hvp~<candidate>.fd``, second
order against the candidate's gradient; ``torch.hvp~jax.hvp``, the frameworks against each
other at the tight autodiff tolerance (when both disagree with the candidate but agree with
each other, the candidate's gradient is wrong).
With an oracle left out (``--oracles``), its pairs go, and the candidate and the numeric
reference pair with the forward mode that remains; with neither framework, a "jvp" case
pairs the candidate with the numeric directional difference itself.
"""

from __future__ import annotations

import numpy as np

from gradmatrix.oracles.cases import CaseInputs
from gradmatrix.oracles.implementations import FORWARD_MODE, ON_DEVICE, SECOND_ORDER, oracle
from gradmatrix.oracles.result import CandidateFault, Result, differs_by_size_1_axes

MODE_KINDS = ("jvp", "hvp")  # the case kinds this module serves
JVP_TENSOR = "<u,Jv>"  # the one tensor of a "jvp" comparison (besides the forward value)
# the oracles that serve each kind of case, as the registry (oracles.implementations) says
FRAMEWORKS = {"jvp": FORWARD_MODE, "hvp": SECOND_ORDER}
SUFFIXES = (".jvp", ".hvp", ".fd")


def hv_tensor(name: str) -> str:
    """The tensor name of the Hessian-vector product's block for input ``name``: ``Hv[W1]``."""
    return f"Hv[{name}]"


def base_name(name: str) -> str:
    """The implementation a mode implementation is built on: ``torch.jvp`` -> ``torch``."""
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def mode_pairs(kind: str, candidate: str, oracles) -> list[tuple]:
    """The pairs of a "jvp" or "hvp" case (see the module's docstring for why these)."""
    if kind not in FRAMEWORKS:
        raise ValueError(f"not a mode case kind: {kind!r}")
    frameworks = [f for f in FRAMEWORKS[kind] if f in oracles]
    if not frameworks:
        # no forward mode to meet: the candidate's <g, v> meets the float64 directional
        # difference directly (a layer declared without a reference has only that oracle)
        return [(candidate, "numeric")] if kind == "jvp" and "numeric" in oracles else []
    if kind == "jvp":
        first = f"{frameworks[0]}.jvp"
        pairs = [(candidate, f"{f}.jvp") for f in frameworks]
        if "numeric" in oracles:
            pairs.append((first, "numeric"))
        return pairs + [(f, f"{f}.jvp") for f in frameworks[1:]]
    pairs = [(f"{f}.hvp", f"{candidate}.fd") for f in frameworks]  # "hvp"
    # the frameworks' products among themselves: each after the first against the first
    return pairs + [(f"{frameworks[0]}.hvp", f"{f}.hvp") for f in frameworks[1:]]


def _dtype_of(arrays) -> np.dtype:
    return np.result_type(*[np.asarray(a).dtype for a in arrays])


def _directional(name: str, forward, value: float, dtype, scale: float, bound: float | None = None,
                 computes_in: str | None = None) -> Result:
    result = Result(name, np.asarray(forward), {JVP_TENSOR: np.asarray(value, dtype=dtype)},
                    computes_in=computes_in, scales={JVP_TENSOR: scale})
    if bound is not None:
        result.error_bounds[JVP_TENSOR] = bound
    return result


def from_reverse(result: Result, inputs: CaseInputs) -> Result:
    """``sum_k <g_k, v_k>`` from a reverse-mode result (gradients with ``dout = u``).

    Its scale, the size the rounding is judged against, is ``sum_k max|g_k| * sum|v_k|``:
    an elementwise error of rtol * max|g_k| (what the reverse matrix allows) moves the sum
    by at most rtol times that.

    Raises:
        CandidateFault: a gradient is missing or has the wrong shape (no sum can be taken;
            the reverse-mode comparisons name the problem in detail).
    """
    value, scale, grads = 0.0, 0.0, []
    for name, v in inputs.directions.items():
        g = result.grads.get(name)
        if g is not None and differs_by_size_1_axes(np.shape(g), v.shape):
            g = np.reshape(g, v.shape)  # (1, D) for (D,): the same values (a warning in reverse mode)
        if g is None or np.shape(g) != v.shape:
            got = "no gradient" if g is None else f"shape {np.shape(g)}"
            raise CandidateFault(f"d{name}: {result.impl} returned {got}, expected shape {v.shape}")
        g64, v64 = np.asarray(g, dtype=np.float64), v.astype(np.float64)
        value += float(np.sum(g64 * v64))
        scale += float(np.max(np.abs(g64), initial=0.0) * np.abs(v64).sum())
        grads.append(g)
    directional = _directional(result.impl, result.forward, value, _dtype_of(grads), scale,
                               computes_in=result.computes_in)
    directional.drawn, directional.notes = result.drawn, result.notes  # the oracles use the candidate's own mask
    return directional


def from_forward_mode(name: str, out, jv, inputs: CaseInputs) -> Result:
    """``<u, J v>`` from forward mode's ``J v``; scale ``max|J v| * sum|u|`` (u = 1 for a loss)."""
    jv64 = np.asarray(jv, dtype=np.float64)
    u = np.ones_like(jv64) if inputs.dout is None else inputs.dout.astype(np.float64)
    value = float(np.sum(u * jv64))
    scale = float(np.max(np.abs(jv64), initial=0.0) * np.abs(u).sum())
    return _directional(name, out, value, np.asarray(jv).dtype, scale)


class ForwardMode:
    """``torch.jvp`` / ``jax.jvp``: forward-mode ``<u, J v>`` of a "jvp" case."""

    def __init__(self, framework):
        self.framework = framework  # an oracles.implementations.Oracle
        self.name = f"{framework.name}.jvp"

    def available(self) -> None:
        self.framework.available()

    def evaluate(self, inputs: CaseInputs) -> Result:
        out, jv = self.framework.jvp(inputs)
        return from_forward_mode(self.name, out, jv, inputs)


class HessianVector:
    """``torch.hvp`` / ``jax.hvp``: Hessian-vector products of a loss (torch reverse over
    reverse, JAX forward over reverse)."""

    def __init__(self, framework):
        self.framework = framework
        self.name = f"{framework.name}.hvp"

    def available(self) -> None:
        self.framework.available()

    def evaluate(self, inputs: CaseInputs) -> Result:
        loss, hv = self.framework.hvp(inputs)
        return Result(self.name, np.asarray(loss), hv)


class GradientDifferences:
    """``<candidate>.fd``: central differences of the candidate's gradient along v, in float64."""

    def __init__(self, candidate):
        self.candidate = candidate
        self.name = f"{candidate.name}.fd"

    def available(self) -> None:
        self.candidate.available()

    def evaluate(self, inputs: CaseInputs) -> Result:
        from gradmatrix.oracles import numeric

        def gradient(arrays: dict):
            result = self.candidate.evaluate(CaseInputs(inputs.case, arrays, None))
            return result.forward, result.grads

        fd = numeric.hessian_vector_by_differences(gradient, inputs)
        return Result(self.name, fd["forward"], fd["hv"], computes_in="float64", error_bounds=fd["bounds"])


class NumericDirectional:
    """``numeric`` in a "jvp" case: the float64 directional difference, with its error bound."""

    name = "numeric"

    def available(self) -> None:
        """NumPy only: always available."""

    def evaluate(self, inputs: CaseInputs) -> Result:
        from gradmatrix.oracles import numeric

        d = numeric.directional_derivative(inputs)
        return _directional("numeric", d["forward"], d["value"], np.float64, d["scale"], d["bound"],
                            computes_in="float64")


class FromReverse:
    """A reverse-mode implementation in a "jvp" case: its gradients reduced to ``sum_k <g_k, v_k>``."""

    def __init__(self, impl):
        self.impl = impl
        self.name = impl.name

    def available(self) -> None:
        self.impl.available()

    def evaluate(self, inputs: CaseInputs) -> Result:
        return from_reverse(self.impl.evaluate(inputs), inputs)


def implementations(kind: str, impls: dict, candidate: str | None) -> dict:
    """The implementations of a "jvp" or "hvp" case, by name, built on the run's own
    (``impls``: the candidate and the oracles, by name; ``candidate`` None: the oracles'
    only, as ``gradmatrix.oracle_host`` builds them)."""
    if kind not in FRAMEWORKS:
        raise ValueError(f"not a mode case kind: {kind!r}")
    frameworks = [impls[f] for f in FRAMEWORKS[kind] if f in impls]
    if kind == "jvp":
        out = {name: FromReverse(impl) for name, impl in impls.items() if name != "numeric"}
        out.update({f"{f.name}.jvp": ForwardMode(f) for f in frameworks})
        if "numeric" in impls:
            out["numeric"] = NumericDirectional()
        return out
    out = {f"{f.name}.hvp": HessianVector(f) for f in frameworks}  # "hvp"
    if candidate is not None:
        out[f"{candidate}.fd"] = GradientDifferences(impls[candidate])
    return out


def run_implementations(candidate, oracles, device: str) -> tuple[dict, dict]:
    """The implementations of a run, by name: the candidate and the oracles (on ``device``
    where they follow it), and those of each mode kind (``oracles.modes``) built on them.

    Returns:
        (impls, {kind: impls of that kind}).
    """
    impls = {candidate.name: candidate}
    for name in oracles:
        options = {"device": device} if name in ON_DEVICE and device != "cpu" else {}
        impls[name] = oracle(name, **options)
    return impls, {kind: implementations(kind, impls, candidate.name) for kind in MODE_KINDS}
