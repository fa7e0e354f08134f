"""The CS231n course's models and sandwich layers, declared as catalog ops (``declare``).

Models (``oracles.contract.Model``): ``TwoLayerNet`` of assignment 1 (``neural_net.py``,
``TwoLayerNet(input_size, hidden_size, output_size, std)``, ``loss(X, y, reg=...)``) and of
assignment 2 (``fc_net.py``, ``TwoLayerNet(input_dim, hidden_dim, num_classes, weight_scale,
reg)``, ``loss(X, y)``), ``FullyConnectedNet`` with two hidden layers, without normalization,
with batchnorm and with layernorm (the 2017 ``use_batchnorm=True`` and the later
``normalization="batchnorm"``), its dropout left at the constructor's default, which is "no
dropout" in every year (``dropout=0``, ``dropout=1`` or ``dropout_keep_ratio=1``) so the
loss is deterministic, and ``ThreeLayerConvNet`` (``cnn.py``: conv - relu - 2x2 max pool -
affine - relu - affine - softmax).  The model is built, its ``params`` replaced by the
case's inputs and ``loss(X, y)`` called; the gradients come from the returned dict.

Sandwich layers (``layer_utils.py``): ``affine_relu``, ``conv_relu``, ``conv_relu_pool``
and ``affine_bn_relu`` / ``affine_norm_relu`` (batchnorm in training mode).

Every op has one forward written against the Python array API (``reference``), which
torch, JAX and the numeric oracle run.  Inputs are drawn away from the ReLU kink and from
ties in a pooling window (``_off_kinks``).

``oracles.catalog`` joins this module's declarations with the other families'.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from gradmatrix.oracles.contract import Const, Keyword, Layer, Model, Packed
from gradmatrix.oracles.declared import Floats, Integers, Kinks, declare
from gradmatrix.oracles.draws import KINK_MARGIN, fan_in_rows, prod, scaled_weights
from gradmatrix.oracles.spec import windows_out

_CONV_OUT = windows_out("K", pad="pad")  # the conv output's (H', W'), the stride and pad dims


# --- forwards against the array API ------------------------------------------------------------


def _relu(xp, z):
    return xp.where(z > 0, z, xp.zeros_like(z))


def _affine(xp, x, w, b):
    """x (N, d_1, ..., d_k) reshaped to (N, D), @ w (D, M) + b (M,) -> (N, M)."""
    return xp.matmul(xp.reshape(x, (x.shape[0], -1)), w) + b


def _softmax_loss(xp, scores, y):
    """Mean cross-entropy of scores (N, C) with int64 labels y (N,), with the max shift."""
    n, c = scores.shape
    shifted = scores - xp.max(scores, axis=1, keepdims=True)
    log_norm = xp.log(xp.sum(xp.exp(shifted), axis=1))
    # column indices 0 .. C-1 built from scores itself, so no device needs naming
    columns = xp.cumulative_sum(xp.ones_like(scores), axis=1) - 1
    onehot = columns == xp.reshape(xp.astype(y, scores.dtype), (n, 1))
    picked = xp.sum(xp.where(onehot, shifted, xp.zeros_like(shifted)), axis=1)
    return xp.sum(log_norm - picked) / n


def _standardize(xp, z, axis: int, eps: float):
    """(z - mean) / sqrt(biased var + eps) along ``axis``."""
    centered = z - xp.mean(z, axis=axis, keepdims=True)
    return centered / xp.sqrt(xp.mean(centered * centered, axis=axis, keepdims=True) + eps)


def _l2(xp, a: Mapping, names) -> object:
    """sum of W**2 over the weights ``names`` (the course's penalty is reg times this)."""
    return sum(xp.sum(a[n] * a[n]) for n in names)


def _pad(xp, x, pad: int):
    """Zero-pad the last two axes of x (N, C, H, W) by ``pad``, with concat (no writes)."""
    if pad == 0:
        return x
    rows = xp.zeros_like(x[:, :, :1, :])
    x = xp.concat([rows] * pad + [x] + [rows] * pad, axis=2)
    cols = xp.zeros_like(x[:, :, :, :1])
    return xp.concat([cols] * pad + [x] + [cols] * pad, axis=3)


def _conv(xp, x, w, b, stride: int, pad: int):
    """Cross-correlation of x (N, C, H, W) with w (F, C, HH, WW) + b (F,) -> (N, F, H', W')."""
    xp_ = _pad(xp, x, pad)
    f, _, hh, ww = w.shape
    ho = 1 + (xp_.shape[2] - hh) // stride
    wo = 1 + (xp_.shape[3] - ww) // stride
    # the windows of every filter offset (i, j) stacked: (N, C, HH * WW, H', W'), then one
    # contraction over C and the offsets with w (F, C, HH * WW) -> (N, H', W', F)
    windows = xp.stack([xp_[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
                        for i in range(hh) for j in range(ww)], axis=2)
    out = xp.tensordot(windows, xp.reshape(w, (f, w.shape[1], hh * ww)), axes=([1, 2], [1, 2]))
    return xp.permute_dims(out, (0, 3, 1, 2)) + xp.reshape(b, (1, f, 1, 1))


def _pool2(xp, x, pool: int):
    """Max over non-overlapping pool x pool windows tiling x (N, C, H, W) exactly."""
    n, c, h, w = x.shape
    tiles = xp.reshape(x, (n, c, h // pool, pool, w // pool, pool))
    return xp.max(tiles, axis=(3, 5))


def _trace(trace, kind: str, value):
    if trace is not None:
        trace.append((kind, value))
    return value


# --- drawing inputs away from kinks ------------------------------------------------------------


def _near_kinks(trace, margin: float) -> np.ndarray:
    """Per sample (axis 0): whether a ReLU input lies within ``margin`` of 0, or a pooling
    window's two largest inputs lie within ``margin`` of each other while the larger is
    above ``margin`` (a tie whose routing the numeric oracle's step could flip)."""
    bad = None
    for kind, value in trace:
        if kind == "relu":
            near = np.abs(np.asarray(value)) < margin
        else:  # ("pool", (input, pool))
            value, pool = np.asarray(value[0]), value[1]
            n, c, h, w = value.shape
            windows = value.reshape(n, c, h // pool, pool, w // pool, pool).transpose(0, 1, 2, 4, 3, 5)
            top2 = np.sort(windows.reshape(n, c, h // pool, w // pool, pool * pool), axis=-1)[..., -2:]
            near = (top2[..., 1] - top2[..., 0] < margin) & (top2[..., 1] > margin)
        near = near.reshape(near.shape[0], -1).any(axis=1)
        bad = near if bad is None else bad | near
    return bad


def _off_kinks(forward, redraw: str) -> Kinks:
    """Kinks whose ``avoid`` redraws the samples (rows of input ``redraw``) whose forward
    passes within KINK_MARGIN of a ReLU kink or a pooling tie, until none does."""
    def finalize(inputs: dict, dims: Mapping, rng: np.random.Generator) -> dict:
        for _ in range(1000):
            trace = []
            forward(np, inputs, dims, trace)
            bad = _near_kinks(trace, KINK_MARGIN)
            if not bad.any():
                return inputs
            x = inputs[redraw]
            fresh = rng.standard_normal(x.shape)
            inputs[redraw] = np.where(bad.reshape((-1,) + (1,) * (x.ndim - 1)), fresh, x)
        raise RuntimeError(f"could not draw inputs away from ReLU kinks and pooling ties ({redraw})")
    return Kinks(avoid=finalize)


# --- sandwich layers ---------------------------------------------------------------------------


def _affine_relu(xp, a, dims, trace=None):
    return _relu(xp, _trace(trace, "relu", _affine(xp, a["x"], a["w"], a["b"])))


def _conv_relu(xp, a, dims, trace=None):
    return _relu(xp, _trace(trace, "relu", _conv(xp, a["x"], a["w"], a["b"], dims["stride"], dims["pad"])))


def _conv_relu_pool(xp, a, dims, trace=None):
    hidden = _conv_relu(xp, a, dims, trace)
    _trace(trace, "pool", (hidden, dims["pool"]))
    return _pool2(xp, hidden, dims["pool"])


def _affine_bn_relu(xp, a, dims, trace=None):
    z = _standardize(xp, _affine(xp, a["x"], a["w"], a["b"]), 0, dims["eps"]) * a["gamma"] + a["beta"]
    return _relu(xp, _trace(trace, "relu", z))


_CONV_PARAM = Packed("conv_param", stride="stride", pad="pad")
_CONV_INPUTS = {"x": ("N", "C", "HW"), "w": Floats(("F", "C", "K"), fan_in_rows), "b": ("F",)}

affine_relu = declare(
    "affine_relu_forward", "affine_relu_backward",
    {"x": ("N", "Dx"), "w": Floats(("D", "M"), scaled_weights), "b": ("M",)},
    output=("out", ("N", "M")), derived={"D": lambda d: prod(d["Dx"])}, kinks=_off_kinks(_affine_relu, "x"),
    reference=lambda xp, a, dims: _affine_relu(xp, a, dims), name="affine_relu",
    doc="layer_utils sandwich: affine then ReLU",
    matrices={
        "default": ({"N": 32, "Dx": 5, "M": 4}, {"N": 3, "Dx": (2, 3), "M": 5}),
        "full": ({"Dx": 5, "M": 4}, {"Dx": (2, 3), "M": 5}, {"Dx": 32, "M": 16}),
    })

conv_relu = declare(
    "conv_relu_forward", "conv_relu_backward", _CONV_INPUTS, positional=("x", "w", "b", _CONV_PARAM),
    output=("out", ("N", "F", "HWo")), derived={"HWo": _CONV_OUT}, kinks=_off_kinks(_conv_relu, "x"),
    reference=lambda xp, a, dims: _conv_relu(xp, a, dims), name="conv_relu",
    doc="layer_utils sandwich: convolution (conv_param stride, pad) then ReLU",
    matrices={
        # pad 1, 0 and 2, stride 1 and 2 on non-square x; the windows tile the padded x
        # ((H + 2 pad - HH) % stride == 0), as the course's fast layers require; N = 32 with a
        # small x (the numeric oracle's per-element cost is (size of x) x (size of the case))
        "default": ({"N": 2, "C": 2, "HW": (6, 4), "F": 3, "K": (3, 3), "stride": 1, "pad": 1},
                    {"N": 3, "C": 3, "HW": (5, 7), "F": 2, "K": (3, 3), "stride": 2, "pad": 0},
                    {"N": 32, "C": 1, "HW": (3, 3), "F": 2, "K": (3, 3), "stride": 2, "pad": 2}),
        "full": ({"C": 2, "HW": (6, 4), "F": 3, "K": (3, 3), "stride": 1, "pad": 1},
                 {"C": 1, "HW": (5, 5), "F": 2, "K": (3, 3), "stride": 2, "pad": 1},
                 {"C": 3, "HW": (5, 7), "F": 2, "K": (1, 3), "stride": 1, "pad": 0}),
    })

conv_relu_pool = declare(
    "conv_relu_pool_forward", "conv_relu_pool_backward", _CONV_INPUTS,
    positional=("x", "w", "b", _CONV_PARAM, Packed("pool_param", pool_height="pool", pool_width="pool", stride="pool")),
    output=("out", ("N", "F", "HWp")),
    derived={"HWo": _CONV_OUT, "HWp": lambda d: tuple(s // d["pool"] for s in _CONV_OUT(d))},
    kinks=_off_kinks(_conv_relu_pool, "x"), reference=lambda xp, a, dims: _conv_relu_pool(xp, a, dims),
    name="conv_relu_pool",
    doc="layer_utils sandwich: convolution, ReLU, then max pooling (pool_param pool x pool, stride pool)",
    matrices={
        # the course's fast pooling tiles: conv outputs divisible by the pool.  Conv pad 0 and
        # 1, stride 2 and 1, pool 2 and 3 (the pool's windows, stride = pool, never overlap);
        # N = 32 with a small x
        "default": ({"N": 3, "C": 2, "HW": (9, 5), "F": 3, "K": (3, 3), "stride": 2, "pad": 0, "pool": 2},
                    {"N": 32, "C": 1, "HW": (3, 6), "F": 2, "K": (3, 3), "stride": 1, "pad": 1, "pool": 3}),
        "full": ({"C": 2, "HW": (6, 4), "F": 3, "K": (3, 3), "stride": 1, "pad": 1, "pool": 2},
                 {"C": 1, "HW": (8, 8), "F": 2, "K": (3, 3), "stride": 1, "pad": 0, "pool": 2}),
    })

_BN_PARAM = Packed("bn_param", mode=Const("train"), eps="eps")
_BN_GRADS = ("x", "w", "b", "gamma", "beta")

affine_bn_relu = declare(
    None, None,
    {"x": ("N", "D"), "w": Floats(("D", "M"), scaled_weights), "b": ("M",), "gamma": ("M",), "beta": ("M",)},
    # the sandwich's name over the course's years
    contracts=tuple(Layer(f"{name}_forward", f"{name}_backward", ("x", "w", "b", "gamma", "beta", _BN_PARAM),
                          _BN_GRADS)
                    for name in ("affine_bn_relu", "affine_norm_relu", "affine_batchnorm_relu")),
    output=("out", ("N", "M")), kinks=_off_kinks(_affine_bn_relu, "x"),
    # batchnorm removes the mean, so db is a sum of terms of size |dout| ~ 1 that cancels to 0
    rounding_units=lambda dims: {"b": 1.0},
    reference=lambda xp, a, dims: _affine_bn_relu(xp, a, dims), name="affine_bn_relu",
    doc="layer_utils sandwich: affine, batchnorm (training mode), ReLU",
    matrices={
        # eps 1e-5 and 0.1 (a tenth of the O(1) variances drawn), as the catalog's batchnorm
        "default": ({"N": 32, "D": 5, "M": 4, "eps": 1e-5}, {"N": 4, "D": 3, "M": 6, "eps": 0.1}),
        "full": ({"N": 6, "D": 5, "M": 4, "eps": 1e-5}, {"N": 16, "D": 8, "M": 8, "eps": 1e-5}),
    })

def _conv_bn_relu(xp, a, dims, trace=None):
    conv = _conv(xp, a["x"], a["w"], a["b"], dims["stride"], dims["pad"])
    f = conv.shape[1]
    # spatial batchnorm: statistics per channel over the batch and both spatial axes
    centered = conv - xp.mean(conv, axis=(0, 2, 3), keepdims=True)
    xhat = centered / xp.sqrt(xp.mean(centered * centered, axis=(0, 2, 3), keepdims=True) + dims["eps"])
    z = xhat * xp.reshape(a["gamma"], (1, f, 1, 1)) + xp.reshape(a["beta"], (1, f, 1, 1))
    return _relu(xp, _trace(trace, "relu", z))


conv_bn_relu = declare(
    "conv_bn_relu_forward", "conv_bn_relu_backward", {**_CONV_INPUTS, "gamma": ("F",), "beta": ("F",)},
    positional=("x", "w", "b", "gamma", "beta", _CONV_PARAM, _BN_PARAM),
    output=("out", ("N", "F", "HWo")), derived={"HWo": _CONV_OUT}, kinks=_off_kinks(_conv_bn_relu, "x"),
    # batchnorm removes the per-channel mean, so db sums terms of size |dout| ~ 1 to 0
    rounding_units=lambda dims: {"b": 1.0},
    reference=lambda xp, a, dims: _conv_bn_relu(xp, a, dims), name="conv_bn_relu",
    doc="layer_utils sandwich (2016-2017): convolution, spatial batchnorm (training mode), ReLU",
    matrices={
        # pad 1, stride 1, eps 1e-5; then pad 0, stride 2, eps 0.1 and N = 32 (windows tiling
        # the padded x, as the course's fast layers require)
        "default": ({"N": 2, "C": 2, "HW": (6, 4), "F": 3, "K": (3, 3), "stride": 1, "pad": 1, "eps": 1e-5},
                    {"N": 32, "C": 1, "HW": (5, 3), "F": 2, "K": (3, 3), "stride": 2, "pad": 0, "eps": 0.1}),
        "full": ({"N": 2, "C": 2, "HW": (6, 4), "F": 3, "K": (3, 3), "stride": 1, "pad": 1, "eps": 1e-5},
                 {"N": 4, "C": 1, "HW": (5, 5), "F": 2, "K": (3, 3), "stride": 2, "pad": 1, "eps": 1e-5}),
    })

# --- models ------------------------------------------------------------------------------------


def _two_layer_net(xp, a, dims, trace=None):
    hidden = _relu(xp, _trace(trace, "relu", _affine(xp, a["X"], a["W1"], a["b1"])))
    scores = _affine(xp, hidden, a["W2"], a["b2"])
    return _softmax_loss(xp, scores, a["y"]) + dims["reg"] * _l2(xp, a, ("W1", "W2"))


_NET_INPUTS = {"X": ("N", "D"), "y": Integers(("N",), 0, "C")}  # data and labels: no gradient
_TWO_LAYER_PARAMS = ("W1", "b1", "W2", "b2")

TwoLayerNet = declare(  # noqa: N816  (the course's name)
    None, None,
    {**_NET_INPUTS, "W1": Floats(("D", "H"), scaled_weights), "b1": ("H",),
     "W2": Floats(("H", "C"), scaled_weights), "b2": ("C",)},
    wrt=_TWO_LAYER_PARAMS, output="loss", second_order=False,
    contracts=(
        # assignment 1: reg is an argument of loss
        Model("TwoLayerNet", (Keyword("input_size", "D"), Keyword("hidden_size", "H"), Keyword("output_size", "C")),
              _TWO_LAYER_PARAMS, ("X", "y", Keyword("reg")), weights=("W1", "W2")),
        # assignment 2: reg is given to the constructor
        Model("TwoLayerNet", (Keyword("input_dim", "D"), Keyword("hidden_dim", "H"), Keyword("num_classes", "C"),
                              Keyword("reg")),
              _TWO_LAYER_PARAMS, ("X", "y"), weights=("W1", "W2")),
    ),
    kinks=_off_kinks(_two_layer_net, "X"), reference=lambda xp, a, dims: _two_layer_net(xp, a, dims),
    name="TwoLayerNet",
    doc="the course's TwoLayerNet class (assignment 1 neural_net.py, assignment 2 fc_net.py): "
        "affine - relu - affine - softmax, plus reg * sum(W**2) (0.5 * reg: a convention)",
    matrices={
        "default": ({"N": 5, "D": 4, "H": 6, "C": 3, "reg": 0.0}, {"N": 32, "D": 6, "H": 5, "C": 4, "reg": 0.1}),
        "full": ({"D": 4, "H": 6, "C": 3, "reg": 0.0}, {"D": 6, "H": 5, "C": 4, "reg": 0.1},
                 {"D": 10, "H": 8, "C": 5, "reg": 0.5}),
    })


def _fc_net(normalization: str | None):
    """The forward of a FullyConnectedNet with hidden layers ``dims["hidden_dims"]``:
    {affine - [batchnorm over axis 0 | layernorm over axis 1] - relu} x L-1 - affine - softmax."""
    def forward(xp, a, dims, trace=None):
        layers = len(dims["hidden_dims"]) + 1
        h = a["X"]
        for i in range(1, layers):
            z = _affine(xp, h, a[f"W{i}"], a[f"b{i}"])
            if normalization:
                axis = 0 if normalization == "batchnorm" else 1
                z = _standardize(xp, z, axis, dims["eps"]) * a[f"gamma{i}"] + a[f"beta{i}"]
            h = _relu(xp, _trace(trace, "relu", z))
        scores = _affine(xp, h, a[f"W{layers}"], a[f"b{layers}"])
        return _softmax_loss(xp, scores, a["y"]) + dims["reg"] * _l2(xp, a, [f"W{i}" for i in range(1, layers + 1)])
    return forward


_FC_WEIGHTS = ("W1", "W2", "W3")
_FC_SHAPES = {
    # N >= 4: batch statistics of fewer samples are nearly degenerate (see batchnorm in the
    # catalog).  eps stays the course's default, 1e-5: the model's constructor takes none
    "default": ({"N": 6, "D": 5, "H1": 6, "H2": 4, "C": 3, "reg": 0.0, "eps": 1e-5},
                {"N": 32, "D": 4, "H1": 5, "H2": 6, "C": 4, "reg": 0.1, "eps": 1e-5}),
    "full": ({"N": 6, "D": 5, "H1": 6, "H2": 4, "C": 3, "reg": 0.0, "eps": 1e-5},
             {"N": 8, "D": 4, "H1": 5, "H2": 6, "C": 4, "reg": 0.1, "eps": 1e-5},
             {"N": 16, "D": 10, "H1": 8, "H2": 8, "C": 5, "reg": 0.5, "eps": 1e-5}),
}


def _fc_contracts(params: tuple, *options) -> tuple:
    """FullyConnectedNet's constructor: the options (``normalization=...`` or the 2017
    ``use_batchnorm=True``) and reg by keyword, dtype the case's; dropout at its default (off)."""
    init = (Keyword("hidden_dims"), Keyword("input_dim", "D"), Keyword("num_classes", "C"), Keyword("reg"))
    return tuple(Model("FullyConnectedNet", init + option, params, ("X", "y"), weights=_FC_WEIGHTS, dtype="dtype")
                 for option in options or ((),))


def _fc_net_declaration(name: str, normalization: str | None, *options):
    """FullyConnectedNet with two hidden layers, ``normalization`` None, "batchnorm" or
    "layernorm", its constructor taking ``options`` (one contract each)."""
    params = ("W1", "b1", "W2", "b2", "W3", "b3")
    inputs = {**_NET_INPUTS,
              "W1": Floats(("D", "H1"), scaled_weights), "b1": ("H1",),
              "W2": Floats(("H1", "H2"), scaled_weights), "b2": ("H2",),
              "W3": Floats(("H2", "C"), scaled_weights), "b3": ("C",)}
    if normalization:
        params += ("gamma1", "beta1", "gamma2", "beta2")
        inputs.update({"gamma1": ("H1",), "beta1": ("H1",), "gamma2": ("H2",), "beta2": ("H2",)})
    forward = _fc_net(normalization)
    return declare(
        None, None, inputs, wrt=params, output="loss", second_order=False, contracts=_fc_contracts(params, *options),
        derived={"hidden_dims": lambda d: (d["H1"], d["H2"])}, kinks=_off_kinks(forward, "X"),
        # batchnorm removes the mean, so db of a normalized layer is a sum of per-sample
        # terms of size up to about 1/N (the loss's) that cancels to 0
        rounding_units=(lambda dims: {"b1": 1.0 / dims["N"], "b2": 1.0 / dims["N"]}) if normalization == "batchnorm"
        else None,
        reference=lambda xp, a, dims: forward(xp, a, dims), matrices=_FC_SHAPES, name=name,
        doc=f"the course's FullyConnectedNet, two hidden layers, {normalization or 'no normalization'}, no dropout")


fc_net = _fc_net_declaration("fc_net", None)
fc_net_batchnorm = _fc_net_declaration("fc_net_batchnorm", "batchnorm", (Keyword("normalization", Const("batchnorm")),),
                                       (Keyword("use_batchnorm", Const(True)),))
fc_net_layernorm = _fc_net_declaration("fc_net_layernorm", "layernorm", (Keyword("normalization", Const("layernorm")),))


def _three_layer_convnet(xp, a, dims, trace=None):
    k = a["W1"].shape[2]
    conv = _conv(xp, a["X"], a["W1"], a["b1"], 1, (k - 1) // 2)
    hidden = _relu(xp, _trace(trace, "relu", conv))
    _trace(trace, "pool", (hidden, 2))
    pooled = _pool2(xp, hidden, 2)
    hidden2 = _relu(xp, _trace(trace, "relu", _affine(xp, pooled, a["W2"], a["b2"])))
    scores = _affine(xp, hidden2, a["W3"], a["b3"])
    return _softmax_loss(xp, scores, a["y"]) + dims["reg"] * _l2(xp, a, ("W1", "W2", "W3"))


ThreeLayerConvNet = declare(  # noqa: N816  (the course's name)
    None, None,
    {"X": ("N", "Ch", "HW"), "y": Integers(("N",), 0, "C"),
     "W1": Floats(("F", "Ch", "K", "K"), fan_in_rows), "b1": ("F",),
     "W2": Floats(("Dp", "Hd"), scaled_weights), "b2": ("Hd",),
     "W3": Floats(("Hd", "C"), scaled_weights), "b3": ("C",)},
    wrt=("W1", "b1", "W2", "b2", "W3", "b3"), output="loss", second_order=False,
    contracts=(Model("ThreeLayerConvNet", (Keyword("input_dim", "CHW"), Keyword("num_filters", "F"),
                                           Keyword("filter_size", "K"), Keyword("hidden_dim", "Hd"),
                                           Keyword("num_classes", "C"), Keyword("reg")),
                     ("W1", "b1", "W2", "b2", "W3", "b3"), ("X", "y"), weights=("W1", "W2", "W3"), dtype="dtype"),),
    derived={"CHW": lambda d: (d["Ch"], *d["HW"]), "Dp": lambda d: d["F"] * (d["HW"][0] // 2) * (d["HW"][1] // 2)},
    kinks=_off_kinks(_three_layer_convnet, "X"), reference=lambda xp, a, dims: _three_layer_convnet(xp, a, dims),
    name="ThreeLayerConvNet",
    doc="the course's ThreeLayerConvNet (cnn.py): conv (stride 1, same padding) - relu - 2x2 max pool - "
        "affine - relu - affine - softmax",
    matrices={
        # non-square images; filter 3 (pad 1) and 5 (pad 2)
        "default": ({"N": 3, "Ch": 2, "HW": (6, 4), "F": 3, "K": 3, "Hd": 5, "C": 4, "reg": 0.0},
                    {"N": 32, "Ch": 1, "HW": (4, 4), "F": 2, "K": 5, "Hd": 4, "C": 3, "reg": 0.1}),
        "full": ({"N": 3, "Ch": 2, "HW": (6, 4), "F": 3, "K": 3, "Hd": 5, "C": 4, "reg": 0.0},
                 {"N": 4, "Ch": 1, "HW": (4, 4), "F": 2, "K": 5, "Hd": 4, "C": 3, "reg": 0.1},
                 {"N": 8, "Ch": 3, "HW": (8, 8), "F": 4, "K": 3, "Hd": 10, "C": 5, "reg": 0.05}),
    })
