"""The catalog: every op the harness checks, declared once.

An op entry says what its inputs are (names, shapes in terms of named dims, which are
differentiable, how they are drawn), what it outputs, how a candidate module following the
``manual`` contract is called for it, and its conventions at kinks.  Cases, oracles, the
test matrix and the reports all read this table; nothing else declares an op.

How to add an op:
  1. Write ``foo_forward``/``foo_backward`` in ``manual`` (docstring with shapes and the
     derivation).
  2. Add an ``OpSpec`` to ``CATALOG`` below: its inputs, output, shapes for the default and
     full matrices, and ``call_candidate`` (how a module with the manual contract is run).
  3. Add one forward function per oracle, keyed by the op's name: ``oracles.torch_oracle``,
     ``oracles.jax_oracle`` and ``oracles.numeric`` (a batched float64 NumPy forward).
  The matrix, the comparison and the reports pick the op up from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

# A draw function gets the case's generator, the concrete shape and the case's dims and
# returns float64 values (labels: int64); the case casts floats to its dtype afterwards.
DrawFn = Callable[[np.random.Generator, tuple, Mapping], np.ndarray]

# Random draws keep this far from a kink (ReLU's 0), so that central differences with the
# numeric oracle's step (at most 1e-5 * |x|, see oracles.numeric) never straddle one and every oracle is
# differentiating the same smooth piece.  The kinks themselves get cases of their own.
KINK_MARGIN = 1e-3


def normal(rng: np.random.Generator, shape: tuple, dims: Mapping) -> np.ndarray:
    """Standard normal values, scaled by the case's ``scale`` dim when it has one."""
    return rng.standard_normal(shape) * dims.get("scale", 1.0)


def away_from_zero(rng: np.random.Generator, shape: tuple, dims: Mapping) -> np.ndarray:
    """Standard normal values pushed ``KINK_MARGIN`` away from 0 (ReLU's kink)."""
    z = rng.standard_normal(shape)
    return z + np.where(z >= 0, KINK_MARGIN, -KINK_MARGIN)


def labels(rng: np.random.Generator, shape: tuple, dims: Mapping) -> np.ndarray:
    """Integer class labels, uniform over ``[0, C)``."""
    return rng.integers(0, dims["C"], size=shape, dtype=np.int64)


def scaled_weights(rng: np.random.Generator, shape: tuple, dims: Mapping) -> np.ndarray:
    """Normal weights scaled by 1/sqrt(fan-in), so activations stay of order 1."""
    return rng.standard_normal(shape) / np.sqrt(shape[0])


@dataclass(frozen=True)
class InputSpec:
    """One input of an op."""

    name: str  # the argument's name in the manual contract ("x", "w", "W1", ...)
    shape: tuple  # dim names and ints; a dim whose value is a tuple is splatted
    differentiable: bool = True  # gradients are compared for this input
    draw: DrawFn = normal  # how values are drawn from the case's generator
    is_label: bool = False  # integer labels: never cast to the case's float dtype


@dataclass(frozen=True)
class OpSpec:
    """One op: its inputs, output, matrix shapes, contract and conventions."""

    name: str
    inputs: tuple[InputSpec, ...]
    output: str  # name of the forward output ("out", "loss")
    output_shape: tuple | None  # dims of the output; None for a scalar loss (no upstream gradient)
    contract: tuple[str, ...]  # functions a candidate module must provide for this op
    call_candidate: Callable  # (module, inputs: dict, dout, dims) -> (forward value, {input name: grad})
    shapes: Mapping[str, tuple[dict, ...]]  # matrix name -> dims without N (N comes from the batch sizes)
    doc: str = ""  # one line for reports
    derived: Mapping[str, Callable[[Mapping], object]] = field(default_factory=dict)  # dims computed from others
    finalize: Callable | None = None  # (inputs, dims, rng) -> inputs, fixes drawn inputs (keep off kinks)
    kinks: str = ""  # known conventions at points of non-differentiability
    kink_inputs: Callable | None = None  # (rng, dims) -> (inputs, {input: mask of gradient elements at a kink})
    kink_shapes: tuple = ()  # dims (N included) of the kink cases
    kink_convention: Callable | None = None  # (grads, inputs, dout) -> the derivative an implementation took at the kink
    tolerance_overrides: Mapping[tuple[str, str], tuple[float, str]] = field(default_factory=dict)
    # (dtype, kind) -> (rtol, why), merged with the table in reports.tolerances by taking the max

    @property
    def differentiable(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.inputs if spec.differentiable)

    def resolve_dims(self, dims: Mapping) -> dict:
        """Return ``dims`` with the derived dims added."""
        full = dict(dims)
        for name, fn in self.derived.items():
            full[name] = fn(full)
        return full

    def shape_of(self, shape: tuple, dims: Mapping) -> tuple[int, ...]:
        """Concrete shape of a dims-tuple such as ``("N", "D")``."""
        out: list[int] = []
        for dim in shape:
            value = dims[dim] if isinstance(dim, str) else dim
            out.extend(value if isinstance(value, tuple) else (value,))
        return tuple(int(v) for v in out)


# --- how a module following the manual contract is called, per op -------------------------


def _call_relu(module, inputs, dout, dims):
    out, cache = module.relu_forward(inputs["x"])
    dx = module.relu_backward(dout, cache)
    return out, {"x": dx}


def _call_affine(module, inputs, dout, dims):
    out, cache = module.affine_forward(inputs["x"], inputs["w"], inputs["b"])
    grads = module.affine_backward(dout, cache)
    if not isinstance(grads, tuple) or len(grads) != 3:
        raise TypeError(f"affine_backward must return the tuple (dx, dw, db), got {type(grads).__name__}")
    return out, dict(zip(("x", "w", "b"), grads))


def _call_softmax_loss(module, inputs, dout, dims):
    loss, dscores = module.softmax_loss(inputs["scores"], inputs["y"])
    return loss, {"scores": dscores}


NET_PARAMS = ("W1", "b1", "W2", "b2")


def _call_two_layer_net(module, inputs, dout, dims):
    params = {k: inputs[k] for k in NET_PARAMS}
    loss, grads = module.two_layer_net_loss(params, inputs["X"], inputs["y"], reg=dims["reg"])
    if not isinstance(grads, dict):
        raise TypeError(f"two_layer_net_loss must return (loss, grads) with grads a dict, got {type(grads).__name__}")
    return loss, grads


def _net_off_kinks(inputs: dict, dims: Mapping, rng: np.random.Generator) -> dict:
    """Redraw b1 column by column until no hidden pre-activation lies within KINK_MARGIN of 0."""
    return _net_off_kinks_except(inputs, rng, keep=None)


def _net_off_kinks_except(inputs: dict, rng: np.random.Generator, keep: int | None) -> dict:
    """As ``_net_off_kinks``, leaving hidden unit ``keep`` (a deliberate kink) alone, apart from sample 0."""
    for _ in range(1000):
        z = inputs["X"] @ inputs["W1"] + inputs["b1"]
        near = np.abs(z) < KINK_MARGIN
        if keep is not None:
            near[0, keep] = False
            if np.any(near[1:, keep]):  # other samples of the kink unit: move them by redrawing their rows of X
                rows = 1 + np.flatnonzero(near[1:, keep])
                inputs["X"][rows] = rng.standard_normal((rows.size, inputs["X"].shape[1]))
                continue
        close = np.any(near, axis=0)
        if not close.any():
            return inputs
        inputs["b1"] = np.where(close, rng.standard_normal(close.shape), inputs["b1"])
    raise RuntimeError("could not draw two-layer-net inputs away from the ReLU kink")


def _relu_kink_inputs(rng: np.random.Generator, dims: Mapping):
    """x with exact 0.0 and -0.0 entries among ordinary values; the gradient at those is a convention."""
    shape = (dims["N"], dims["D"])
    x = away_from_zero(rng, shape, dims)
    where = rng.random(shape)
    x[where < 0.25] = 0.0
    x[(where >= 0.25) & (where < 0.4)] = -0.0
    return {"x": x}, {"x": x == 0}


def _relu_convention(grads: dict, inputs: dict, dout) -> float | None:
    """The derivative taken at x = 0: dx / dout there (0 for torch and jax, 0.5 numeric, 1 for y >= 0)."""
    at = (inputs["x"] == 0) & (dout != 0)
    if not at.any():
        return None
    ratios = np.asarray(grads["x"], dtype=np.float64)[at] / dout[at].astype(np.float64)
    return float(np.round(np.median(ratios), 6))


def _net_kink_inputs(rng: np.random.Generator, dims: Mapping):
    """A first sample X[0] = 0 and b1[0] = 0, so the hidden pre-activation y1[0, 0] is exactly 0.

    Only db1[0] depends on the ReLU convention there (dW1 gets X[0]^T dy1[0] = 0 either way).
    """
    n, d, h, c = dims["N"], dims["D"], dims["H"], dims["C"]
    inputs = {
        "X": rng.standard_normal((n, d)), "y": labels(rng, (n,), dims),
        "W1": scaled_weights(rng, (d, h), dims), "b1": rng.standard_normal(h),
        "W2": scaled_weights(rng, (h, c), dims), "b2": rng.standard_normal(c),
    }
    inputs["X"][0] = 0.0
    inputs["b1"][0] = 0.0
    inputs = _net_off_kinks_except(inputs, rng, keep=0)
    mask = {k: np.zeros(inputs[k].shape, dtype=bool) for k in ("W1", "b1", "W2", "b2")}
    mask["b1"][0] = True
    return inputs, mask


def _prod(values) -> int:
    return int(np.prod(values)) if isinstance(values, tuple) else int(values)


CATALOG: dict[str, OpSpec] = {}


def _register(spec: OpSpec) -> None:
    CATALOG[spec.name] = spec


_register(OpSpec(
    name="relu",
    doc="ReLU, elementwise max(0, x)",
    inputs=(InputSpec("x", ("N", "D"), draw=away_from_zero),),
    output="out",
    output_shape=("N", "D"),
    contract=("relu_forward", "relu_backward"),
    call_candidate=_call_relu,
    shapes={
        "default": ({"D": 1}, {"D": 7}, {"D": (3, 4)}),
        "full": ({"D": 1}, {"D": 7}, {"D": 64}, {"D": (3, 4)}, {"D": (2, 3, 5)}, {"D": 512}),
    },
    kinks="x = 0 and x = -0.0: torch.relu and jax.nn.relu give 0; a central difference gives 0.5; "
          "seed 002's mask (y1 >= 0) gives 1",
    kink_inputs=_relu_kink_inputs,
    kink_shapes=({"N": 4, "D": 6}, {"N": 16, "D": 8}),
    kink_convention=_relu_convention,
))

_register(OpSpec(
    name="affine",
    doc="affine layer, x.reshape(N, D) @ w + b",
    inputs=(
        InputSpec("x", ("N", "Dx")),
        InputSpec("w", ("D", "M"), draw=scaled_weights),
        InputSpec("b", ("M",)),
    ),
    output="out",
    output_shape=("N", "M"),
    contract=("affine_forward", "affine_backward"),
    call_candidate=_call_affine,
    derived={"D": lambda d: _prod(d["Dx"])},
    shapes={
        # D = M gives square weights (a missing transpose still has the right shape there)
        "default": ({"Dx": 1, "M": 1}, {"Dx": 5, "M": 5}, {"Dx": 6, "M": 3}, {"Dx": (2, 3, 4), "M": 5}),
        "full": ({"Dx": 1, "M": 1}, {"Dx": 5, "M": 5}, {"Dx": 6, "M": 3}, {"Dx": 3, "M": 8},
                 {"Dx": (2, 3, 4), "M": 5}, {"Dx": 128, "M": 32}, {"Dx": 64, "M": 64}),
    },
))

_register(OpSpec(
    name="softmax_loss",
    doc="mean softmax cross-entropy over the rows",
    inputs=(
        InputSpec("scores", ("N", "C")),
        InputSpec("y", ("N",), differentiable=False, draw=labels, is_label=True),
    ),
    output="loss",
    output_shape=None,
    contract=("softmax_loss",),
    call_candidate=_call_softmax_loss,
    shapes={
        "default": ({"C": 2}, {"C": 10}, {"C": 10, "scale": 1e4}),
        "full": ({"C": 2}, {"C": 3}, {"C": 10}, {"C": 100}, {"C": 10, "scale": 30.0}, {"C": 10, "scale": 1e4}),
    },
))

_register(OpSpec(
    name="two_layer_net",
    doc="affine -> ReLU -> affine -> softmax loss, plus reg * (|W1|^2 + |W2|^2)",
    inputs=(
        InputSpec("X", ("N", "D"), differentiable=False),
        InputSpec("y", ("N",), differentiable=False, draw=labels, is_label=True),
        InputSpec("W1", ("D", "H"), draw=scaled_weights),
        InputSpec("b1", ("H",)),
        InputSpec("W2", ("H", "C"), draw=scaled_weights),
        InputSpec("b2", ("C",)),
    ),
    output="loss",
    output_shape=None,
    contract=("two_layer_net_loss",),
    call_candidate=_call_two_layer_net,
    finalize=_net_off_kinks,
    shapes={
        "default": ({"D": 3, "H": 4, "C": 2, "reg": 0.0}, {"D": 6, "H": 6, "C": 3, "reg": 0.1},
                    {"D": 10, "H": 8, "C": 5, "reg": 0.5}),
        "full": ({"D": 3, "H": 4, "C": 2, "reg": 0.0}, {"D": 6, "H": 6, "C": 3, "reg": 0.1},
                 {"D": 10, "H": 8, "C": 5, "reg": 0.5}, {"D": 32, "H": 16, "C": 10, "reg": 0.05}),
    },
    kinks="hidden pre-activation y1 = 0: the ReLU convention decides db1 there",
    kink_inputs=_net_kink_inputs,
    kink_shapes=({"N": 4, "D": 3, "H": 4, "C": 3, "reg": 0.1},),
))

# Batch sizes (the N dim) crossed with every op's shapes.
BATCH_SIZES: dict[str, tuple[int, ...]] = {
    "default": (1, 8, 32),
    "full": (1, 2, 8, 32, 128),
}
SEEDS: dict[str, int] = {"default": 3, "full": 5}  # seeds 0 .. n-1
DTYPES: tuple[str, ...] = ("float64", "float32")
MATRICES: tuple[str, ...] = ("default", "full")
