"""The ops ``manual`` implements, as catalog entries (``ENTRIES``), declared once.

An entry says what an op's inputs are (names, shapes in terms of named dims, which are
differentiable, how they are drawn), what it outputs, how a candidate module following the
``manual`` contract is called for it, and its conventions at kinks.  ``oracles.catalog``
joins these entries with the course modules'; importing this module writes nothing anywhere.
"""

from __future__ import annotations

from gradmatrix.oracles import kinks
from gradmatrix.oracles.contract import Const, Keyword, Layer, Loss, Packed
from gradmatrix.oracles.draws import (
    away_from_zero, distinct, fan_in_rows, keep_mask, labels, prod, scaled_weights,
)
from gradmatrix.oracles.kinks import (
    gates_off_ties, max_convention, max_kink_inputs, max_pool_convention, max_pool_kink_inputs, net_kink_inputs,
    net_off_kinks, relu_convention, relu_kink_inputs,
)
from gradmatrix.oracles.spec import OVERLAPPING_WINDOWS, InputSpec, OpSpec, windows_out

ENTRIES: list[OpSpec] = []  # in the order reports list them


ENTRIES.append(OpSpec(
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

ENTRIES.append(OpSpec(
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

ENTRIES.append(OpSpec(
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

ENTRIES.append(OpSpec(
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


ENTRIES.append(OpSpec(
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

ENTRIES.append(OpSpec(
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

ENTRIES.append(OpSpec(
    name="add",
    doc="add gate, elementwise x + y (distributes the upstream gradient)",
    inputs=(InputSpec("x", ("N", "D")), InputSpec("y", ("N", "D"))),
    output="out",
    output_shape=("N", "D"),
    contracts=(Layer("add_forward", "add_backward", ("x", "y"), ("x", "y")),),
    reference=lambda xp, a, dims: xp.add(a["x"], a["y"]),
    shapes=_GATE_SHAPES,
))

ENTRIES.append(OpSpec(
    name="multiply",
    doc="multiply gate, elementwise x * y (switches the upstream gradient)",
    inputs=(InputSpec("x", ("N", "D")), InputSpec("y", ("N", "D"))),
    output="out",
    output_shape=("N", "D"),
    contracts=(Layer("multiply_forward", "multiply_backward", ("x", "y"), ("x", "y")),),
    reference=lambda xp, a, dims: xp.multiply(a["x"], a["y"]),
    shapes=_GATE_SHAPES,
))

ENTRIES.append(OpSpec(
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

ENTRIES.append(OpSpec(
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

ENTRIES.append(OpSpec(
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

ENTRIES.append(OpSpec(
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

ENTRIES.append(OpSpec(
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

ENTRIES.append(OpSpec(
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
    derived={"HWo": windows_out("K", pad="pad")},
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

ENTRIES.append(OpSpec(
    name="max_pool",
    doc="max pooling over square windows, NCHW, no padding",
    inputs=(InputSpec("x", ("N", "C", "HW"), draw=distinct),),
    output="out",
    output_shape=("N", "C", "HWo"),
    contracts=(Layer("max_pool_forward", "max_pool_backward", ("x", "pool", "stride"), ("x",)),),
    derived={"HWo": windows_out("pool")},
    conditions=OVERLAPPING_WINDOWS,
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
