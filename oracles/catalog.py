"""The catalog: every op the harness checks, declared once.

An op entry says what its inputs are (names, shapes in terms of named dims, which are
differentiable, how they are drawn), what it outputs, how a candidate module following the
``manual`` contract is called for it, and its conventions at kinks.  Cases, oracles, the
test matrix and the reports all read this table; nothing else declares an op.

How to add an op:
  1. Write ``foo_forward``/``foo_backward`` in ``manual`` (docstring with shapes and the
     derivation).
  2. Add an ``OpSpec`` to ``CATALOG`` below: its inputs, output, shapes for the default and
     full matrices, and its ``contracts`` (``oracles.contract``: the functions a candidate
     provides, their arguments and the order of the gradients they return).
  3. Give the oracles a forward: ``reference``, one function written against the Python
     array API that torch, JAX and the numeric oracle all run; or one forward per oracle,
     keyed by the op's name, in ``oracles.torch_oracle``, ``oracles.jax_oracle`` and
     ``oracles.numeric`` (a batched float64 NumPy forward), where a framework's own
     primitive (``F.cross_entropy``, ``lax.conv_general_dilated``) is the better oracle.
  The matrix, the comparison and the reports pick the op up from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from gradmatrix.oracles import kinks
from gradmatrix.oracles.contract import Const, Keyword, Layer, Loss, Packed
from gradmatrix.oracles.draws import (  # noqa: F401  (the draws op modules use, importable from here too)
    KINK_MARGIN, DrawFn, away_from_zero, distinct, fan_in_rows, keep_mask, labels, normal, prod, scaled_weights,
)
from gradmatrix.oracles.kinks import (
    gates_off_ties, max_convention, max_kink_inputs, max_pool_convention, max_pool_kink_inputs, net_kink_inputs,
    net_off_kinks, relu_convention, relu_kink_inputs,
)


@dataclass(frozen=True)
class InputSpec:
    """One input of an op."""

    name: str  # the argument's name in the manual contract ("x", "w", "W1", ...)
    shape: tuple  # dim names and ints; a dim whose value is a tuple is splatted
    differentiable: bool = True  # gradients are compared for this input
    draw: DrawFn = normal  # how values are drawn from the case's generator
    is_label: bool = False  # integer labels: never cast to the case's float dtype
    drawn_by_candidate: bool = False
    # drawn inside the candidate's own forward (the course's dropout mask): its contract
    # recovers it from the forward's output, and the case's oracles use the candidate's


@dataclass(frozen=True)
class OpSpec:
    """One op: its inputs, output, matrix shapes, contract and conventions."""

    name: str
    inputs: tuple[InputSpec, ...]
    output: str  # name of the forward output ("out", "loss")
    output_shape: tuple | None  # dims of the output (() for a 0-d one); None for a loss (no upstream gradient)
    contracts: tuple  # how a candidate is called (oracles.contract): alternatives, the best-fitting one is used
    shapes: Mapping[str, tuple[dict, ...]]  # matrix name -> dims without N (N comes from the batch sizes)
    doc: str = ""  # one line for reports
    derived: Mapping[str, Callable[[Mapping], object]] = field(default_factory=dict)  # dims computed from others
    finalize: Callable | None = None  # (inputs, dims, rng) -> inputs, fixes drawn inputs (keep off kinks)
    kink_inputs: Callable | None = None  # (rng, dims) -> (inputs, {input: mask of gradient elements at a kink})
    kink_shapes: tuple = ()  # dims (N included) of the kink cases
    kink_convention: Callable | None = None  # (grads, inputs, dout) -> the derivative an implementation took at the kink
    # (grads, inputs, dout) -> {input: distance of each element outside the subdifferential} (oracles.kinks);
    # without it a difference at a kink cannot pass as a convention
    kink_subgradient: Callable | None = None
    rounding_units: Callable | None = None
    # dims -> {output or input name: size}: values formed as differences of larger terms are
    # judged against the size of those terms, not their own (reports.compare's ``scales``)
    second_order: bool = False  # a scalar loss whose Hessian-vector products get "hvp" cases
    reference: Callable | None = None
    # (xp, inputs: dict, dims) -> output, written once against the Python array API: the
    # forward of every oracle (torch, JAX, float64 NumPy for the numeric one) that has no
    # forward of its own for the op
    forwards: Mapping[str, Callable] = field(default_factory=dict)
    # oracle name ("torch", "jax", "numeric") -> (arrays: dict, dims) -> output, that oracle's
    # forward for an op declared outside the oracles' modules (a user's layer,
    # ``oracles.declared``); it wins over ``reference``.  The numeric one takes one float64 copy.
    oracles: tuple[str, ...] | None = None  # the oracles that have a forward for the op (None: every one)
    forwards_of: str | None = None
    # another op whose per-oracle forwards compute this one: same inputs and dims, other
    # contracts or shapes (the course's conv_forward_naive is conv on the shapes it promises)

    def framework_forward(self, forwards: Mapping) -> Callable | None:
        """An oracle's own forward for this op from its ``FORWARDS`` table (keyed by the op's
        name, or by the op its ``forwards_of`` names), unless a declared layer brings its own."""
        return None if self.forwards else forwards.get(self.forwards_of or self.name)

    def forward_for(self, oracle: str, xp) -> Callable:
        """The op's forward ``(arrays, dims) -> out`` for ``oracle`` ("torch", "jax", "numeric")
        where that oracle has none of its own: a declared layer's ``forwards[oracle]``, else
        ``reference`` run with the array namespace ``xp``.

        Raises:
            NotImplementedError: the op has neither.
        """
        if oracle in self.forwards:
            return self.forwards[oracle]
        if self.reference is None:
            raise NotImplementedError(f"op {self.name!r} has neither a {oracle} forward nor a reference forward")
        return lambda arrays, dims: self.reference(xp, arrays, dims)

    @property
    def functions(self) -> tuple[str, ...]:
        """The function names of the op's first contract (ours), for messages."""
        return self.contracts[0].functions

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
























CATALOG: dict[str, OpSpec] = {}


def _register(spec: OpSpec) -> None:
    CATALOG[spec.name] = spec


_register(OpSpec(
    name="relu",
    doc="ReLU, elementwise max(0, x)",
    inputs=(InputSpec("x", ("N", "D"), draw=away_from_zero),),
    output="out",
    output_shape=("N", "D"),
    contracts=(Layer("relu_forward", "relu_backward", ("x",), ("x",)),),
    shapes={
        # N = 32: past a batch of 16 (a slice of the first rows, a fixed-size buffer), with few
        # features: the numeric oracle's per-element cost is (size of x) x (size of the case)
        "default": ({"N": 1, "D": 1}, {"N": 32, "D": 3}, {"N": 4, "D": (3, 4)}),
        "full": ({"D": 1}, {"D": 7}, {"D": 64}, {"D": (3, 4)}, {"D": (2, 3, 5)}, {"D": 512}),
        "large": ({"N": 4096, "D": 4096},),
    },
    # at the kink: x = 0 and x = -0.0: torch.relu and jax.nn.relu give 0; a central difference
    # gives 0.5; seed 002's mask (y1 >= 0) gives 1
    kink_inputs=relu_kink_inputs,
    kink_shapes=({"N": 4, "D": 6}, {"N": 16, "D": 8}),
    kink_convention=relu_convention,
    kink_subgradient=kinks.relu_subgradient,
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
    contracts=(Layer("affine_forward", "affine_backward", ("x", "w", "b"), ("x", "w", "b")),),
    derived={"D": lambda d: prod(d["Dx"])},
    shapes={
        # D = M gives square weights (a missing transpose still has the right shape there)
        # multi-dimensional x with D = 6 != M: non-square weights and a reshape to undo
        # N = 32: db or dw summed over only the first 16 rows shows
        "default": ({"N": 1, "Dx": 1, "M": 1}, {"N": 32, "Dx": 5, "M": 5}, {"N": 4, "Dx": (2, 3), "M": 4}),
        "full": ({"Dx": 1, "M": 1}, {"Dx": 5, "M": 5}, {"Dx": 6, "M": 3}, {"Dx": 3, "M": 8},
                 {"Dx": (2, 3, 4), "M": 5}, {"Dx": 128, "M": 32}, {"Dx": 64, "M": 64}),
        "large": ({"N": 4096, "Dx": 4096, "M": 4096}, {"N": 1024, "Dx": 4096, "M": 1000}),
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
    contracts=(Loss("softmax_loss", ("scores", "y"), ("scores",)),),
    shapes={
        # scale 1e4: exp overflows without the max shift; shift 1e4: large logits within a
        # few units of each other, where float32 keeps only ~1e-3 of log-sum-exp(scores);
        # N = 32 with an odd C = 7 (the forward-mode and second-order shape: the largest N)
        "default": ({"N": 1, "C": 2}, {"N": 32, "C": 7}, {"N": 8, "C": 10, "scale": 1e4},
                    {"N": 8, "C": 10, "shift": 1e4}),
        "full": ({"C": 2}, {"C": 3}, {"C": 10}, {"C": 100}, {"C": 10, "scale": 30.0}, {"C": 10, "scale": 1e4}),
        "large": ({"N": 4096, "C": 1000},),
    },
    # dscores = (p - onehot(y)) / N and each row's loss are formed from terms of size up to
    # 1/N: for a confident, correct row (p_y = 1 - 4e-18) every framework gives 0 where the
    # truth is 4e-18, an error of eps relative to 1/N
    rounding_units=lambda dims: {"loss": 1.0 / dims["N"], "scores": 1.0 / dims["N"]},
    second_order=True,
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
    contracts=(Loss("two_layer_net_loss", (Packed("params", W1="W1", b1="b1", W2="W2", b2="b2"), "X", "y", Keyword("reg")),
                    ("W1", "b1", "W2", "b2")),),
    finalize=net_off_kinks,
    shapes={
        "default": ({"N": 1, "D": 3, "H": 4, "C": 2, "reg": 0.0}, {"N": 8, "D": 6, "H": 6, "C": 3, "reg": 0.1},
                    {"N": 32, "D": 10, "H": 8, "C": 5, "reg": 0.5}),
        "full": ({"D": 3, "H": 4, "C": 2, "reg": 0.0}, {"D": 6, "H": 6, "C": 3, "reg": 0.1},
                 {"D": 10, "H": 8, "C": 5, "reg": 0.5}, {"D": 32, "H": 16, "C": 10, "reg": 0.05}),
        "large": ({"N": 4096, "D": 4096, "H": 4096, "C": 1000, "reg": 0.01},
                  {"N": 256, "D": 1024, "H": 512, "C": 100, "reg": 0.1}),
    },
    # at the kink: hidden pre-activation y1 = 0: the ReLU convention decides db1 there
    kink_inputs=net_kink_inputs,
    kink_subgradient=kinks.two_layer_net_subgradient,
    kink_shapes=({"N": 4, "D": 3, "H": 4, "C": 3, "reg": 0.1},),
    second_order=True,
))

# --- ops added with the computational-graph seed (001): activations, gates, score net,
# dropout, normalization, convolution and pooling.  Their draw helpers, adapters and kink
# cases sit with their entries.






























def _windows_out(window: str, pad: str | None = None) -> Callable[[Mapping], tuple]:
    """Derived dim HWo: windows along each spatial axis, 1 + (size + 2 pad - window) // stride."""
    def out(d):
        windows = d[window] if isinstance(d[window], tuple) else (d[window],) * len(d["HW"])
        padding = d[pad] if pad else 0
        return tuple(1 + (size + 2 * padding - k) // d["stride"] for size, k in zip(d["HW"], windows))
    return out






_register(OpSpec(
    name="sigmoid",
    doc="logistic sigmoid, elementwise 1 / (1 + exp(-x)); backward from the output",
    inputs=(InputSpec("x", ("N", "D")),),
    output="out",
    output_shape=("N", "D"),
    contracts=(Layer("sigmoid_forward", "sigmoid_backward", ("x",), ("x",)),),
    shapes={
        # scale 10: saturated units, where s (1 - s) is tiny and float32 loses 1 - s
        "default": ({"N": 32, "D": 3}, {"N": 4, "D": 7, "scale": 10.0}),
        "full": ({"D": 1}, {"D": 7}, {"D": (3, 4)}, {"D": 64, "scale": 10.0}, {"D": 512}),
    },
))

_register(OpSpec(
    name="tanh",
    doc="hyperbolic tangent, elementwise; backward from the output",
    inputs=(InputSpec("x", ("N", "D")),),
    output="out",
    output_shape=("N", "D"),
    contracts=(Layer("tanh_forward", "tanh_backward", ("x",), ("x",)),),
    shapes={
        "default": ({"N": 32, "D": 3}, {"N": 4, "D": 7, "scale": 10.0}),
        "full": ({"D": 1}, {"D": 7}, {"D": (3, 4)}, {"D": 64, "scale": 10.0}, {"D": 512}),
    },
))

_GATE_SHAPES = {
    # N = 1, D = 1 (the smallest batch) is seed 001's scalar graph; N = 32 a batch past 16
    # (few features, as relu's)
    "default": ({"N": 1, "D": 1}, {"N": 32, "D": 3}),
    "full": ({"D": 1}, {"D": 7}, {"D": 64}, {"D": 512}),
}

_register(OpSpec(
    name="add",
    doc="add gate, elementwise x + y (distributes the upstream gradient)",
    inputs=(InputSpec("x", ("N", "D")), InputSpec("y", ("N", "D"))),
    output="out",
    output_shape=("N", "D"),
    contracts=(Layer("add_forward", "add_backward", ("x", "y"), ("x", "y")),),
    reference=lambda xp, a, dims: xp.add(a["x"], a["y"]),
    shapes=_GATE_SHAPES,
))

_register(OpSpec(
    name="multiply",
    doc="multiply gate, elementwise x * y (switches the upstream gradient)",
    inputs=(InputSpec("x", ("N", "D")), InputSpec("y", ("N", "D"))),
    output="out",
    output_shape=("N", "D"),
    contracts=(Layer("multiply_forward", "multiply_backward", ("x", "y"), ("x", "y")),),
    reference=lambda xp, a, dims: xp.multiply(a["x"], a["y"]),
    shapes=_GATE_SHAPES,
))

_register(OpSpec(
    name="max",
    doc="max gate, elementwise maximum(x, y) (routes the upstream gradient)",
    inputs=(InputSpec("x", ("N", "D")), InputSpec("y", ("N", "D"))),
    output="out",
    output_shape=("N", "D"),
    contracts=(Layer("max_forward", "max_backward", ("x", "y"), ("x", "y")),),
    shapes=_GATE_SHAPES,
    finalize=gates_off_ties,
    # at the kink: ties x == y: manual routes all to x (1(x >= y), y gets 1(y > x));
    # torch.maximum, jnp.maximum and a central difference split 0.5 / 0.5
    kink_inputs=max_kink_inputs,
    kink_shapes=({"N": 1, "D": 1}, {"N": 8, "D": 6}),
    kink_convention=max_convention,
    kink_subgradient=kinks.max_subgradient,
))

_register(OpSpec(
    name="score_net",
    doc="seed 001's score s = u^T sigmoid(W x + b), one sample, column convention",
    inputs=(
        InputSpec("x", ("D",)),
        InputSpec("W", ("H", "D"), draw=fan_in_rows),
        InputSpec("b", ("H",)),
        InputSpec("u", ("H",)),
    ),
    output="s",
    output_shape=(),  # a 0-d score with an upstream gradient ds, not a loss
    contracts=(Layer("score_net_forward", "score_net_backward", ("x", "W", "b", "u"), ("x", "W", "b", "u")),),
    # one sample: no input uses N, so the batch sizes only give more draws of the same shapes
    shapes={
        # H = D: square W, where dW transposed (outer(x, delta)) still has the right shape
        "default": ({"N": 1, "D": 4, "H": 4}, {"N": 1, "D": 5, "H": 3}),
        "full": ({"D": 1, "H": 1}, {"D": 4, "H": 4}, {"D": 5, "H": 3}, {"D": 32, "H": 16}),
    },
))

_register(OpSpec(
    name="dropout",
    doc="inverted dropout with an explicit 0/1 mask, x * mask / (1 - p)",
    inputs=(
        InputSpec("x", ("N", "D")),
        InputSpec("mask", ("N", "D"), differentiable=False, draw=keep_mask),
    ),
    output="out",
    output_shape=("N", "D"),
    contracts=(Layer("dropout_forward", "dropout_backward", ("x", "mask", "p"), ("x",)),),
    shapes={
        # p = 0.5 and 0.2: scales 1 / (1 - p) of 2 and 1.25; at 0.2, unlike 0.5, p taken for
        # the keep probability (1 / p) shows
        "default": ({"N": 32, "D": 6, "p": 0.5}, {"N": 1, "D": 9, "p": 0.2}),
        "full": ({"D": 1, "p": 0.5}, {"D": 6, "p": 0.5}, {"D": 10, "p": 0.2}, {"D": 7, "p": 0.0},
                 {"D": 64, "p": 0.9}),
    },
))

_register(OpSpec(
    name="layernorm",
    doc="layer norm: each row standardized over its features, then gamma * xhat + beta",
    inputs=(InputSpec("x", ("N", "D")), InputSpec("gamma", ("D",)), InputSpec("beta", ("D",))),
    output="out",
    output_shape=("N", "D"),
    contracts=(Layer("layernorm_forward", "layernorm_backward", ("x", "gamma", "beta", "eps"), ("x", "gamma", "beta")),
               Layer("layernorm_forward", "layernorm_backward", ("x", "gamma", "beta", Packed("ln_param", eps="eps")),
                     ("x", "gamma", "beta"))),  # the course's
    shapes={
        # eps 1e-5 (negligible against the O(1) variances drawn) and 0.1 (a tenth of them):
        # eps left out, or added outside the square root, shows in both dtypes
        "default": ({"N": 32, "D": 4, "eps": 1e-5}, {"N": 1, "D": 9, "eps": 0.1}),
        # D = 1: xhat = 0, out = beta and dx = 0
        "full": ({"D": 1, "eps": 1e-5}, {"D": 4, "eps": 1e-5}, {"D": 10, "eps": 1e-5}, {"D": 10, "eps": 1e-3},
                 {"D": 64, "eps": 1e-5}),
    },
    # D = 1: dx and dgamma are exactly 0, as differences of terms of size |gamma dout| /
    # sqrt(eps) (x - mean over one element, scaled by 1 / sqrt(0 + eps)) that cancel; each
    # implementation's rounding of those terms (torch's ~1e-15 in float64) is judged against
    # them (the draws are O(1))
    rounding_units=lambda dims: {"x": dims["eps"] ** -0.5, "gamma": dims["N"] * dims["eps"] ** -0.5}
    if dims["D"] == 1 else {},
))

_register(OpSpec(
    name="batchnorm",
    doc="batch norm, training mode: each column standardized over the batch (biased variance)",
    inputs=(InputSpec("x", ("N", "D")), InputSpec("gamma", ("D",)), InputSpec("beta", ("D",))),
    output="out",
    output_shape=("N", "D"),
    contracts=(Layer("batchnorm_forward", "batchnorm_backward", ("x", "gamma", "beta", "eps"), ("x", "gamma", "beta")),
               Layer("batchnorm_forward", "batchnorm_backward",  # the course's, in training mode
                     ("x", "gamma", "beta", Packed("bn_param", mode=Const("train"), eps="eps")), ("x", "gamma", "beta"))),
    shapes={
        # N = 1 (from the batch sizes): var = 0, out = beta and dx = 0
        # not N = 2: there x_hat = +-1 whatever x, dx is a cancellation about 1e-3 of its
        # terms, and float32 results (every framework's) differ from float64 by ~5e-4
        # eps 0.1 and 1e-5, as layernorm's
        "default": ({"N": 5, "D": 3, "eps": 0.1}, {"N": 32, "D": 4, "eps": 1e-5}),
        "full": ({"D": 1, "eps": 1e-5}, {"D": 3, "eps": 1e-5}, {"D": 8, "eps": 1e-5}, {"D": 8, "eps": 1e-3},
                 {"D": 64, "eps": 1e-5}),
    },
    # the full matrix's batch sizes bring N = 1 and N = 2 anyway: dx is then exactly 0
    # (N = 1) or a cancellation to about 1e-3 (N = 2) of terms of size |gamma dout| / std,
    # std = sqrt(eps) at N = 1 and O(1) at N = 2 (the draws are O(1)); each implementation's
    # rounding is judged against those terms, as the batch-size-1 ops' losses are against 1/N
    rounding_units=lambda dims: {"x": dims["eps"] ** -0.5} if dims["N"] == 1 else {"x": 1.0} if dims["N"] == 2 else {},
))

_register(OpSpec(
    name="conv",
    doc="2-D convolution (cross-correlation), NCHW, zero padding, stride",
    inputs=(
        InputSpec("x", ("N", "C", "HW")),
        InputSpec("w", ("F", "C", "K"), draw=fan_in_rows),
        InputSpec("b", ("F",)),
    ),
    output="out",
    output_shape=("N", "F", "HWo"),
    contracts=(Layer("conv_forward", "conv_backward", ("x", "w", "b", "stride", "pad"), ("x", "w", "b")),),
    derived={"HWo": _windows_out("K", pad="pad")},
    shapes={
        # HW: (H, W) of x; K: (HH, WW) of the filters.  Every x is non-square; pad 1, 0 and 2
        # (a pad hard-coded to any one value fails somewhere), stride 3, 2 and 1.  In the first
        # two, rows or columns of x are read by no window (dx is 0 there): (6 + 2 - 3) % 3 = 2
        # > pad 1, and stride 3 > WW = 2 skips a column between windows; (8 - 3) % 2 = 1 >
        # pad 0.  The third: N = 32, the "same" convolution of 5x5 filters (pad 2, stride 1),
        # filters larger than x.  The windows overlap in the last two.  x and out stay small
        # where N is large: the numeric oracle's per-element cost is (size of x) x (size of
        # the case)
        "default": ({"N": 1, "C": 2, "HW": (6, 5), "F": 3, "K": (3, 2), "stride": 3, "pad": 1},
                    {"N": 4, "C": 1, "HW": (8, 5), "F": 2, "K": (3, 3), "stride": 2, "pad": 0},
                    {"N": 32, "C": 1, "HW": (3, 2), "F": 2, "K": (5, 5), "stride": 1, "pad": 2}),
        # (6, 6), K 3, stride 2, no padding: the last row and column are read by no window
        "full": ({"C": 1, "HW": (1, 1), "F": 1, "K": (1, 1), "stride": 1, "pad": 0},
                 {"C": 2, "HW": (5, 5), "F": 3, "K": (3, 3), "stride": 1, "pad": 1},
                 {"C": 3, "HW": (7, 6), "F": 2, "K": (3, 2), "stride": 2, "pad": 1},
                 {"C": 2, "HW": (6, 6), "F": 2, "K": (3, 3), "stride": 2, "pad": 0},
                 {"C": 2, "HW": (6, 6), "F": 3, "K": (3, 3), "stride": 1, "pad": 2}),
    },
))

_register(OpSpec(
    name="max_pool",
    doc="max pooling over square windows, NCHW, no padding",
    inputs=(InputSpec("x", ("N", "C", "HW"), draw=distinct),),
    output="out",
    output_shape=("N", "C", "HWo"),
    contracts=(Layer("max_pool_forward", "max_pool_backward", ("x", "pool", "stride"), ("x",)),),
    derived={"HWo": _windows_out("pool")},
    shapes={
        # pool 2, stride 2 on a non-square x: windows that do not overlap, and no window reads
        # the last row ((5 - 2) % 2 = 1), whose dx is 0.  Overlapping windows, where a pixel
        # can be the maximum of several, at stride 2 (pool 3) and at stride 1 (pool 2, N = 32,
        # a small x: the numeric oracle's per-element cost is (size of x) x (size of the
        # case)).  Stride 1 has a case to itself: a stride hard-coded to 2 fails there only
        "default": ({"N": 1, "C": 2, "HW": (5, 6), "pool": 2, "stride": 2},
                    {"N": 4, "C": 1, "HW": (7, 7), "pool": 3, "stride": 2},
                    {"N": 32, "C": 1, "HW": (3, 3), "pool": 2, "stride": 1}),
        "full": ({"C": 1, "HW": (2, 2), "pool": 2, "stride": 2}, {"C": 2, "HW": (4, 4), "pool": 2, "stride": 2},
                 {"C": 2, "HW": (7, 7), "pool": 3, "stride": 2}, {"C": 3, "HW": (8, 8), "pool": 2, "stride": 1},
                 {"C": 2, "HW": (9, 7), "pool": 3, "stride": 3}),
    },
    # at the kink: ties within a window: manual, F.max_pool2d (CPU) and jax.lax.reduce_window
    # route all to the first maximum (row-major); a central difference splits among the tied
    # elements
    kink_inputs=max_pool_kink_inputs,
    kink_shapes=({"N": 2, "C": 2, "HW": (4, 4), "pool": 2, "stride": 2},),
    kink_convention=max_pool_convention,
    kink_subgradient=kinks.max_pool_subgradient,
))

# Batch sizes (the N dim), crossed with every shape of a matrix that does not fix N itself.
# The default matrix fixes N per shape: JAX compiles once per op, dims and dtype (0.1 to
# 0.3 s each on one core), so it covers N = 1 and N > 1 with few distinct shapes and spends
# its time on seeds instead, which reuse the compiled code.
BATCH_SIZES: dict[str, tuple[int, ...]] = {
    "default": (1, 8, 32),
    "full": (1, 2, 8, 32, 128),
    "large": (),  # every large shape fixes N
}
SEEDS: dict[str, int] = {"default": 4, "full": 5, "large": 1}  # seeds 0 .. n-1

# The large matrix ("large" in an entry's shapes): GPU-sized products (N, D, H up to 4096)
# of the matmul ops, where reduced-precision float32 matmuls (TF32) show.  It has no kink
# cases and no per-element numeric oracle (16.7 million parameters would take hours):
# manual in float64, itself checked against the numeric oracle on the default and full
# matrices, is its reference.

# Forward-mode ("jvp") and second-order ("hvp") cases: in the default matrix each op's shape
# with the largest N (see oracles.cases._mode_shapes), in the full matrix every shape at the
# batch sizes below; the first seeds only.  The identity they check holds for any draw, so
# more draws mostly add time (a JAX compilation per op, dims and dtype); the reverse-mode
# cases keep the full product, N = 1 included.  Seeds are further capped by --seeds.
MODE_BATCH_SIZES: dict[str, tuple[int, ...]] = {"default": (32,), "full": (8, 128), "large": ()}
MODE_SEEDS: dict[str, int] = {"default": 1, "full": 2, "large": 1}
DTYPES: tuple[str, ...] = ("float64", "float32")
MATRICES: tuple[str, ...] = ("default", "full", "large")
# oracles that cannot run a matrix (the numeric oracle's per-element differences at GPU sizes)
SKIPS_ORACLES: dict[str, tuple[str, ...]] = {"large": ("numeric",)}

# The course's own layers (CS231n assignment 2) that are not ops of ours register themselves.
from gradmatrix.oracles import course_layers  # noqa: E402,F401
from gradmatrix.oracles import course_classifiers  # noqa: E402,F401
from gradmatrix.oracles import course_rnn  # noqa: E402,F401
from gradmatrix.oracles import course_models  # noqa: E402,F401
