"""The layers of the CS231n course's assignment 2 (``layers.py``) that are not ops of our own.

Where the course's function only differs from one of ours in how it is called
(``batchnorm_forward(x, gamma, beta, bn_param)``, ``layernorm_forward(x, gamma, beta,
ln_param)``), the catalog's op lists the course's contract beside ours.  The ops here are
the rest:

* ``svm_loss(x, y)``, the multiclass hinge loss, and the spatial batch and group norms, with
  an array-API ``reference`` forward that torch, JAX and the numeric oracle all run;
* ``batchnorm_backward_alt``, ``conv_forward_naive(x, w, b, conv_param)`` and
  ``max_pool_forward_naive(x, pool_param)``, which compute our batchnorm, conv and max_pool
  (``forwards_of``) on the shapes the course promises: conv and pooling sizes divisible by
  the stride, ``(H + 2 pad - HH) % stride == 0``, which not every shape of ours is;
* ``dropout_forward(x, dropout_param)`` in training mode, which draws its mask inside.
  Its contract recovers the mask from the candidate's own output (``out / x``), and the
  oracles use that mask.  The course changed the meaning of ``p`` over its years (the
  probability of dropping a unit in early versions, of keeping it later): the rescale the
  code applies (1/p or 1/(1-p)) tells which it uses, and the run's records say so;
* ``dropout_forward`` in test mode (``dropout_test``), where inverted dropout, whichever
  meaning of p it takes, returns x unchanged and ``dropout_backward`` returns dout;
* ``batchnorm_forward`` in test mode (``batchnorm_test``) after training-mode calls on other
  batches, all with one ``bn_param`` (``oracles.contract.Stateful``): the running averages
  those calls leave, and the test-mode output normalised with them, compared by the
  output only (the course's backward takes a training-mode cache only).

``max_pool_naive`` has tie cases of its own, drawn and judged by ``max_pool``'s functions
(``oracles.kinks``): a backward that hands a window's gradient to every tied maximum passes
every case without ties.

Shapes stay within what the course promises and cover what its students get wrong: pad 0
(``x[pad:-pad]`` is empty there) and pad > 0, stride 1 and 2, non-square inputs and outputs
(an im2col row index), overlapping and non-overlapping pooling windows, masks with zeros.
Each op has two default shapes, since every shape costs a JAX compilation per dtype.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from gradmatrix.oracles.contract import Const, ContractError, Packed, Stateful, inverted_dropout_mask
from gradmatrix.oracles.declared import Floats, Integers, Kinks, Recovered, declare
from gradmatrix.oracles.draws import KINK_MARGIN, away_from_zero, distinct, fan_in_rows
from gradmatrix.oracles.kinks import max_pool_convention, max_pool_kink_inputs, max_pool_subgradient
from gradmatrix.oracles.spec import OVERLAPPING_WINDOWS, window, windows_out

_BN_PARAM = Packed("bn_param", mode=Const("train"), eps="eps")


# --- svm_loss ---------------------------------------------------------------------------


def _svm_loss(xp, a: dict, dims: Mapping):
    """Mean multiclass hinge loss of scores x (N, C) with labels y (N,):
    sum_{j != y_i} max(0, x_ij - x_iy + 1) / N.  Vectorized: x (K, N, C) and y (K or 1, N)
    give the K losses."""
    from array_api_compat import device

    x, y = a["x"], a["y"]
    n, c = x.shape[-2:]
    zero = xp.zeros_like(x)
    is_label = xp.expand_dims(y, axis=-1) == xp.arange(c, device=device(y))  # (..., N, C)
    correct = xp.sum(xp.where(is_label, x, zero), axis=-1, keepdims=True)
    margins = xp.where(is_label, zero, xp.maximum(x - correct + 1.0, zero))
    return xp.sum(margins, axis=(-2, -1)) / n


def _svm_off_kinks(inputs: dict, dims: Mapping, rng: np.random.Generator) -> dict:
    """Redraw the wrong-class scores whose margin x_ij - x_iy + 1 lies within KINK_MARGIN of
    0, the hinge's kink, so that every oracle differentiates the same linear piece."""
    x, y = inputs["x"], inputs["y"]
    rows = np.arange(x.shape[0])
    for _ in range(1000):
        margins = x - x[rows, y][:, None] + 1.0
        close = np.abs(margins) < KINK_MARGIN
        close[rows, y] = False
        if not close.any():
            return inputs
        x = np.where(close, rng.standard_normal(x.shape), x)
        inputs["x"] = x
    raise RuntimeError("could not draw svm_loss scores away from the hinge's kink")


svm_loss = declare(
    "svm_loss", None, {"x": ("N", "C"), "y": Integers(("N",), 0, "C")},
    reference=_svm_loss, vectorized=True, kinks=Kinks(avoid=_svm_off_kinks), second_order=False, name="svm_loss",
    doc="the course's svm_loss(x, y): mean multiclass hinge loss, margin 1",
    matrices={
        # a batch of 32 with few classes: the numeric oracle differences every score
        "default": ({"N": 1, "C": 3}, {"N": 32, "C": 3}),
        "full": ({"C": 2}, {"C": 5}, {"C": 10}, {"C": 10, "scale": 10.0}),
    })


# --- batch norm's second backward, spatial batch norm, group norm -----------------------


batchnorm_alt = declare(
    "batchnorm_forward", "batchnorm_backward_alt", {"x": ("N", "D"), "gamma": ("D",), "beta": ("D",)},
    positional=("x", "gamma", "beta", _BN_PARAM), output=("out", ("N", "D")), forwards_of="batchnorm",
    name="batchnorm_alt", doc="the course's batchnorm_forward with batchnorm_backward_alt, its simplified backward",
    matrices={
        # a batch of 32 and a large eps (0.1: its place in the normaliser shows)
        "default": ({"N": 4, "D": 3, "eps": 1e-5}, {"N": 32, "D": 5, "eps": 0.1}),
        "full": ({"D": 3, "eps": 1e-5}, {"D": 8, "eps": 1e-5}, {"D": 64, "eps": 1e-5}),
    })


# --- batch norm, test mode: the running averages of the training calls before -----------


def _batchnorm_test(xp, a: dict, dims: Mapping):
    """The course's batch norm in test mode after one training-mode call per batch of
    ``batches`` (T, N, D), all with one bn_param: the running averages start at 0 and each
    call updates them with its batch's mean and biased variance,

        running_mean = momentum * running_mean + (1 - momentum) * mean(batch)
        running_var  = momentum * running_var  + (1 - momentum) * var(batch),

    and test mode normalises x (M, D) with them: gamma * (x - running_mean) /
    sqrt(running_var + eps) + beta, gamma and beta (D,)."""
    batches, momentum = a["batches"], dims["momentum"]
    running_mean = running_var = xp.zeros_like(a["beta"])
    for t in range(batches.shape[0]):
        batch = batches[t, ...]
        mean = xp.mean(batch, axis=0)
        var = xp.mean((batch - mean) * (batch - mean), axis=0)
        running_mean = momentum * running_mean + (1.0 - momentum) * mean
        running_var = momentum * running_var + (1.0 - momentum) * var
    return a["gamma"] * (a["x"] - running_mean) / xp.sqrt(running_var + dims["eps"]) + a["beta"]


batchnorm_test = declare(
    None, None,
    {"batches": ("T", "N", "D"), "x": ("M", "D"), "gamma": ("D",), "beta": ("D",)},
    # nothing differentiable: the course's batchnorm_backward takes a training-mode cache only
    wrt=(),
    contracts=(Stateful("batchnorm_forward", ("x", "gamma", "beta"),
                        Packed("bn_param", mode=Const("train"), eps="eps", momentum="momentum"),
                        history="batches", replaces="x", mode=Const("test")),),
    output=("out", ("M", "D")), reference=_batchnorm_test, name="batchnorm_test",
    doc="the course's batchnorm_forward in test mode, after training-mode calls on other batches with one bn_param",
    matrices={
        # momentum 0.9, the course's default: swapped weights (0.1 on the running average)
        # keep mostly the last batch, far from the reference.  A test batch of another size
        # than the training ones (M != N), down to one sample
        "default": ({"N": 32, "T": 3, "M": 5, "D": 3, "eps": 1e-5, "momentum": 0.9},
                    {"N": 4, "T": 2, "M": 1, "D": 6, "eps": 0.1, "momentum": 0.9}),
        "full": ({"T": 3, "M": 5, "D": 4, "eps": 1e-5, "momentum": 0.9},
                 {"T": 5, "M": 8, "D": 8, "eps": 1e-5, "momentum": 0.7}),
    })


def _standardized(xp, x, axes: tuple, eps: float):
    """(x - mean) / sqrt(biased variance + eps) over ``axes`` (two-pass variance)."""
    centered = x - xp.mean(x, axis=axes, keepdims=True)
    return centered / xp.sqrt(xp.mean(centered * centered, axis=axes, keepdims=True) + eps)


def _spatial_batchnorm(xp, a: dict, dims: Mapping):
    """x (N, C, H, W): each channel standardized over N, H and W, then gamma * xhat + beta (C,).
    Vectorized: x (K, N, C, H, W), gamma and beta (K or 1, C)."""
    gamma, beta = a["gamma"], a["beta"]
    xhat = _standardized(xp, a["x"], (-4, -2, -1), dims["eps"])
    return (xhat * xp.reshape(gamma, (*gamma.shape[:-1], 1, gamma.shape[-1], 1, 1))
            + xp.reshape(beta, (*beta.shape[:-1], 1, beta.shape[-1], 1, 1)))


spatial_batchnorm = declare(
    "spatial_batchnorm_forward", "spatial_batchnorm_backward",
    {"x": ("N", "C", "HW"), "gamma": ("C",), "beta": ("C",)},
    positional=("x", "gamma", "beta", _BN_PARAM), output=("out", ("N", "C", "HW")), reference=_spatial_batchnorm,
    vectorized=True, name="spatial_batchnorm",
    doc="the course's spatial batch norm, training mode: each channel of (N, C, H, W) over N, H, W",
    matrices={
        "default": ({"N": 2, "C": 3, "HW": (2, 3), "eps": 1e-5}, {"N": 32, "C": 2, "HW": (1, 3), "eps": 0.1}),
        "full": ({"C": 3, "HW": (4, 5), "eps": 1e-5}, {"C": 1, "HW": (2, 2), "eps": 1e-5},
                 {"C": 8, "HW": (6, 6), "eps": 1e-5}),
    })


def _spatial_groupnorm(xp, a: dict, dims: Mapping):
    """x (N, C, H, W) in G groups of C/G contiguous channels, each standardized over its
    channels, H and W; then gamma * xhat + beta, gamma and beta (1, C, 1, 1).  Vectorized:
    x (K, N, C, H, W), gamma and beta (K or 1, 1, C, 1, 1)."""
    x, g = a["x"], dims["G"]
    *lead, c, h, w = x.shape
    grouped = xp.reshape(x, (*lead, g, c // g, h, w))
    xhat = xp.reshape(_standardized(xp, grouped, (-3, -2, -1), dims["eps"]), x.shape)
    return xhat * a["gamma"] + a["beta"]


spatial_groupnorm = declare(
    "spatial_groupnorm_forward", "spatial_groupnorm_backward",
    {"x": ("N", "C", "HW"), "gamma": (1, "C", 1, 1), "beta": (1, "C", 1, 1)},
    positional=("x", "gamma", "beta", "G", Packed("gn_param", eps="eps")), output=("out", ("N", "C", "HW")),
    reference=_spatial_groupnorm, vectorized=True, name="spatial_groupnorm",
    doc="the course's spatial group norm: G groups of contiguous channels per sample, gamma (1, C, 1, 1)",
    matrices={
        # C / G = 2 != G = 3: channels grouped in the wrong order show; G = 1: one group
        # of all channels per sample (layer norm over C, H, W)
        "default": ({"N": 2, "C": 6, "HW": (2, 3), "G": 3, "eps": 1e-5},
                    {"N": 32, "C": 4, "HW": (1, 3), "G": 1, "eps": 0.1}),
        "full": ({"C": 6, "HW": (3, 4), "G": 3, "eps": 1e-5}, {"C": 4, "HW": (2, 2), "G": 1, "eps": 1e-5},
                 {"C": 4, "HW": (3, 3), "G": 4, "eps": 1e-5}, {"C": 12, "HW": (5, 4), "G": 4, "eps": 1e-5}),
    })


# --- dropout, training mode: the mask drawn by the candidate ----------------------------


def inverted_keep_mask(rng: np.random.Generator, shape: tuple, dims: Mapping) -> np.ndarray:
    """An inverted-dropout mask, 1/p with probability p and 0 otherwise (p the keep
    probability): the oracles' mask when the candidate's cannot be recovered."""
    return (rng.random(shape) < dims["p"]) / dims["p"]


def _dropout_meaning(p: float, scale: float | None, kept: int, units: int) -> str:
    """"keep" or "drop": what p means to the code, read from the rescale of its kept units
    (1/p or 1/(1-p)), or where it applies none, from the fraction it keeps."""
    rescales = {"keep": 1.0 / p, "drop": 1.0 / (1.0 - p), None: 1.0}
    if scale is not None and scale > 0:
        nearest = min(rescales, key=lambda m: abs(np.log(scale) - np.log(rescales[m])))
        if nearest is not None:
            return nearest
    return "keep" if abs(kept / units - p) <= abs(kept / units - (1.0 - p)) else "drop"


def recover_dropout_mask(out: np.ndarray, inputs: dict, dims: Mapping) -> tuple[np.ndarray, list]:
    """The inverted-dropout mask a training-mode ``dropout_forward`` drew, from its output.

    A unit is kept where out != 0 (x is drawn away from 0); the mask is 1/q there and 0
    elsewhere, q the keep probability p or 1 - p, whichever the code's rescale says
    (``_dropout_meaning``).  The oracles compute x * mask with it: a forward that rescales
    by anything else, or by nothing, disagrees with them in ``out``, and a backward that
    does not use the forward's mask and rescale disagrees in ``dx``.

    Args:
        out: the candidate's forward output, shape of x.
        inputs: the case's inputs (``x``, shape (N, D)).
        dims: the case's dims (``p``).

    Returns:
        (mask (N, D) in x's dtype, [a note naming the meaning of p]): a ``Recovered``
        array's ``recover`` with a line for the report.

    Raises:
        ContractError: out has the wrong shape, or the fraction of kept units is far from
            the keep probability the rescale implies (not an inverted-dropout mask).
    """
    x = inputs["x"]
    if np.shape(out) != x.shape:
        raise ContractError(f"dropout_forward returned out of shape {np.shape(out)}, expected x's {x.shape}")
    p = float(dims["p"])
    out64, x64 = out.astype(np.float64), x.astype(np.float64)
    kept = out64 != 0
    n_kept = int(kept.sum())
    scale = float(np.median(out64[kept] / x64[kept])) if n_kept else None
    meaning = _dropout_meaning(p, scale, n_kept, kept.size)
    q = p if meaning == "keep" else 1.0 - p
    mask = inverted_dropout_mask(out, x, q, "dropout_forward",
                                 f" (its rescale reads p = {p:g} as the probability of "
                                 f"{'keeping' if meaning == 'keep' else 'dropping'} a unit)")
    note = (f"dropout_forward reads p as the probability of keeping a unit (the course's later convention)"
            if meaning == "keep" else
            f"dropout_forward reads p as the probability of dropping a unit (the course's early convention)")
    if p == 0.5:
        note = "dropout_forward: p = 0.5, where keeping and dropping coincide"
    return mask, [note]


dropout_train = declare(
    "dropout_forward", "dropout_backward",
    {"x": Floats(("N", "D"), away_from_zero),  # never 0: out / x recovers the mask
     "mask": Recovered(("N", "D"), recover_dropout_mask, inverted_keep_mask)},
    positional=("x", Packed("dropout_param", p="p", mode=Const("train"), seed=Const(123))),
    output=("out", ("N", "D")), reference=lambda xp, a, dims: a["x"] * a["mask"], vectorized=True,
    name="dropout_train",
    doc="the course's dropout_forward(x, dropout_param), training mode: the candidate's own mask, x * mask",
    matrices={
        # p far from 0.5, where 1/p and 1/(1-p) tell the two meanings apart, and enough
        # units that a mask keeping 1 - p instead of p is contract.KEPT_FRACTION_SIGMAS away (96
        # units at p = 0.3: 0.4 apart in the kept fraction, 5 sigmas are 0.23)
        "default": ({"N": 8, "D": 13, "p": 0.3}, {"N": 32, "D": 16, "p": 0.8}),
        "full": ({"D": 30, "p": 0.3}, {"D": 16, "p": 0.8}, {"D": 64, "p": 0.1}),
    })


# --- dropout, test mode: inverted dropout leaves x as it is -----------------------------


dropout_test = declare(
    "dropout_forward", "dropout_backward", {"x": ("N", "D")},
    positional=("x", Packed("dropout_param", p="p", mode=Const("test"))), output=("out", ("N", "D")),
    # inverted dropout rescales the kept units in training mode, whichever meaning of p the
    # code takes (``dropout_train``), so test mode has nothing left to do: a test-mode output
    # scaled by p or 1 - p is non-inverted dropout's, on top of an inverted training mode
    reference=lambda xp, a, dims: a["x"], vectorized=True, name="dropout_test",
    doc="the course's dropout_forward(x, dropout_param), test mode: out = x, and dropout_backward gives dout",
    matrices={
        # p far from 0.5 and from 1: x * p and x * (1 - p) differ from x and from each other
        "default": ({"N": 8, "D": 13, "p": 0.3}, {"N": 32, "D": 16, "p": 0.8}),
        "full": ({"D": 30, "p": 0.3}, {"D": 16, "p": 0.8}),
    })


# --- conv and max pooling, naive: our conv and max_pool on the course's shapes ----------


conv_naive = declare(
    "conv_forward_naive", "conv_backward_naive",
    {"x": ("N", "C", "HW"), "w": Floats(("F", "C", "K"), fan_in_rows), "b": ("F",)},
    positional=("x", "w", "b", Packed("conv_param", stride="stride", pad="pad")),
    output=("out", ("N", "F", "HWo")), derived={"HWo": windows_out("K", pad="pad")}, forwards_of="conv",
    name="conv_naive", doc="the course's conv_forward_naive(x, w, b, conv_param): conv on sizes the stride divides",
    matrices={
        # (H + 2 pad - HH) % stride == 0 along both axes, as the course promises; outputs
        # 3 x 4 (stride 2, pad 1) and 1 x 4 (stride 1, pad 0, a non-square filter, a batch of 32)
        "default": ({"N": 2, "C": 3, "HW": (5, 7), "F": 2, "K": (3, 3), "stride": 2, "pad": 1},
                    {"N": 32, "C": 1, "HW": (3, 5), "F": 2, "K": (3, 2), "stride": 1, "pad": 0}),
        "full": ({"C": 3, "HW": (5, 7), "F": 2, "K": (3, 3), "stride": 2, "pad": 1},
                 {"C": 2, "HW": (4, 6), "F": 3, "K": (3, 2), "stride": 1, "pad": 0},
                 {"C": 3, "HW": (8, 8), "F": 4, "K": (3, 3), "stride": 1, "pad": 1},
                 {"C": 2, "HW": (7, 9), "F": 2, "K": (3, 3), "stride": 2, "pad": 0},
                 {"C": 1, "HW": (1, 1), "F": 1, "K": (1, 1), "stride": 1, "pad": 0}),
    })

max_pool_naive = declare(
    "max_pool_forward_naive", "max_pool_backward_naive", {"x": Floats(("N", "C", "HW"), distinct)},
    positional=("x", Packed("pool_param", pool_height="PH", pool_width="PW", stride="stride")),
    output=("out", ("N", "C", "HWo")),
    derived={"HWo": windows_out("pool"), "PH": lambda d: window(d)[0], "PW": lambda d: window(d)[1]},
    forwards_of="max_pool", name="max_pool_naive",
    conditions={**OVERLAPPING_WINDOWS,
                "windows are not square (pool_height != pool_width)": lambda d: window(d)[0] != window(d)[1]},
    doc="the course's max_pool_forward_naive(x, pool_param): max pooling on sizes the stride divides",
    matrices={
        # non-overlapping 2 x 2 windows; 3 x 2 windows at stride 2, overlapping down the
        # rows (a pixel can be the maximum of two windows: its gradients add up) and not
        # square (pool is (pool_height, pool_width): pool_param has both, and a height read
        # for the width passes every square window); both on non-square x; and 2 x 2
        # windows at stride 1, overlapping, on a batch of 32
        "default": ({"N": 2, "C": 2, "HW": (4, 6), "pool": 2, "stride": 2},
                    {"N": 2, "C": 3, "HW": (7, 6), "pool": (3, 2), "stride": 2},
                    {"N": 32, "C": 1, "HW": (3, 4), "pool": 2, "stride": 1}),
        "full": ({"C": 2, "HW": (4, 6), "pool": 2, "stride": 2}, {"C": 3, "HW": (7, 5), "pool": 3, "stride": 2},
                 {"C": 2, "HW": (8, 8), "pool": 2, "stride": 1}, {"C": 1, "HW": (9, 6), "pool": 3, "stride": 3},
                 {"C": 2, "HW": (4, 7), "pool": (2, 3), "stride": 2}, {"C": 1, "HW": (6, 5), "pool": (3, 2), "stride": 1}),
    },
    # at the kink: ties within a window, drawn and judged as max_pool's are (pool_param has
    # pool_height = pool_width = pool): each tied maximum takes a share t_i >= 0 of the
    # window's upstream gradient, sum t_i = 1.  The windows tile x (pool == stride) in a
    # 2 x 3 output, so a window's row and its column both count
    kinks=Kinks(inputs=max_pool_kink_inputs, shapes=({"N": 2, "C": 2, "HW": (4, 6), "pool": 2, "stride": 2},),
                convention=max_pool_convention, subgradient=max_pool_subgradient))
