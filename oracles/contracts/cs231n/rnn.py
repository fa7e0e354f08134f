"""CS231n assignment 3's ``rnn_layers.py``: recurrent, embedding and temporal layers.

The course's contract, by name and signature (its years 2016 to 2023 agree on these):

* ``rnn_step_forward(x, prev_h, Wx, Wh, b) -> (next_h, cache)``,
  ``rnn_step_backward(dnext_h, cache) -> (dx, dprev_h, dWx, dWh, db)``;
* ``rnn_forward(x, h0, Wx, Wh, b) -> (h, cache)``, ``rnn_backward(dh, cache) -> (dx, dh0, dWx, dWh, db)``,
  dh the upstream gradient of every hidden state (N, T, H);
* ``word_embedding_forward(x, W) -> (out, cache)``, ``word_embedding_backward(dout, cache) -> dW``,
  x (N, T) integer word indices, drawn with repeats (``dW[x] += dout`` loses all but one);
* ``temporal_affine_forward(x, w, b)``, ``temporal_affine_backward(dout, cache) -> (dx, dw, db)``;
* ``temporal_softmax_loss(x, y, mask) -> (loss, dx)``: the masked cross-entropy summed over
  the time steps, divided by N (not by the number of unmasked steps); mask (N, T) boolean,
  drawn with zeros;
* ``lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b) -> (next_h, next_c, cache)``,
  ``lstm_step_backward(dnext_h, dnext_c, cache) -> (dx, dprev_h, dprev_c, dWx, dWh, db)``:
  two outputs, which the oracles see joined as (N, 2H) (``Layer.outputs``); gates in the
  course's order i, f, o, g along the 4H axis of ``x Wx + prev_h Wh + b``;
* ``lstm_forward(x, h0, Wx, Wh, b) -> (h, cache)``, ``lstm_backward(dh, cache) -> (dx, dh0, dWx, dWh, db)``,
  the initial cell state 0.
The affine layer the file also holds is the catalog's ``affine``.

The ops are this module's declarations; ``oracles.catalog`` joins them with the other families'.
The references are written once against the Python array API (torch, JAX and the float64
numeric oracle run them); the time loops unroll, T being small.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from array_api_compat import device as device_of

from gradmatrix.oracles.contract import Layer
from gradmatrix.oracles.declared import Floats, Integers, declare
from gradmatrix.oracles.draws import scaled_weights

# --- draws -----------------------------------------------------------------------------------


def word_indices(rng: np.random.Generator, shape: tuple, dims: Mapping) -> np.ndarray:
    """Integer indices in [0, V), int64, with repeats: within the first sequence
    (x[0, 1] = x[0, 0]) and, for N > 1, across sequences (the last index = x[0, 0]), so that
    an embedding backward must accumulate (np.add.at) rather than assign."""
    x = rng.integers(0, dims["V"], size=shape, dtype=np.int64)
    if x.shape[-1] > 1:
        x[0, 1] = x[0, 0]
    if x.shape[0] > 1:
        x[-1, -1] = x[0, 0]
    return x


def time_step_mask(rng: np.random.Generator, shape: tuple, dims: Mapping) -> np.ndarray:
    """A boolean (N, T) mask, True where a time step counts, with zeros: the first step
    counts, the last does not (a padded caption's end), the others about 2 in 3."""
    mask = rng.random(shape) < 0.65
    mask[0, 0] = True
    mask[:, -1] = False
    return mask


def vocabulary_labels(rng: np.random.Generator, shape: tuple, dims: Mapping) -> np.ndarray:
    """Ground-truth word indices in [0, V), int64."""
    return rng.integers(0, dims["V"], size=shape, dtype=np.int64)


# --- references (array API) ---------------------------------------------------------------------


def _sigmoid(xp, z):
    return 1.0 / (1.0 + xp.exp(-z))


def _rnn_cell(xp, x, prev_h, Wx, Wh, b):
    """next_h = tanh(x Wx + prev_h Wh + b), (N, H)."""
    return xp.tanh(xp.matmul(x, Wx) + xp.matmul(prev_h, Wh) + b)


def _lstm_cell(xp, x, prev_h, prev_c, Wx, Wh, b):
    """(next_h, next_c): gates i, f, o, g from the four H-wide blocks of x Wx + prev_h Wh + b."""
    hidden = prev_h.shape[1]
    a = xp.matmul(x, Wx) + xp.matmul(prev_h, Wh) + b
    i = _sigmoid(xp, a[:, :hidden])
    f = _sigmoid(xp, a[:, hidden:2 * hidden])
    o = _sigmoid(xp, a[:, 2 * hidden:3 * hidden])
    g = xp.tanh(a[:, 3 * hidden:])
    next_c = f * prev_c + i * g
    return o * xp.tanh(next_c), next_c


def rnn_step(xp, a: dict, dims: Mapping):
    return _rnn_cell(xp, a["x"], a["prev_h"], a["Wx"], a["Wh"], a["b"])


def rnn(xp, a: dict, dims: Mapping):
    """Hidden states (N, T, H) of the vanilla RNN over x (N, T, D) from h0."""
    h, states = a["h0"], []
    for t in range(a["x"].shape[1]):
        h = _rnn_cell(xp, a["x"][:, t, :], h, a["Wx"], a["Wh"], a["b"])
        states.append(h)
    return xp.stack(states, axis=1)


def word_embedding(xp, a: dict, dims: Mapping):
    """out[n, t] = W[x[n, t]], (N, T, D)."""
    n, t = a["x"].shape
    rows = xp.take(a["W"], xp.reshape(a["x"], (-1,)), axis=0)
    return xp.reshape(rows, (n, t, a["W"].shape[1]))


def temporal_affine(xp, a: dict, dims: Mapping):
    """x (N, T, D) @ w (D, M) + b at every time step, (N, T, M)."""
    return xp.matmul(a["x"], a["w"]) + a["b"]


def temporal_softmax(xp, a: dict, dims: Mapping):
    """sum over n, t of mask[n, t] * (log sum_v exp(x[n, t, v]) - x[n, t, y[n, t]]), / N."""
    x = a["x"]
    vocabulary = xp.arange(x.shape[2], device=device_of(x))
    onehot = xp.astype(xp.reshape(a["y"], (*a["y"].shape, 1)) == xp.reshape(vocabulary, (1, 1, -1)), x.dtype)
    shifted = x - xp.max(x, axis=2, keepdims=True)
    log_norm = xp.log(xp.sum(xp.exp(shifted), axis=2))
    picked = xp.sum(shifted * onehot, axis=2)
    return xp.sum((log_norm - picked) * xp.astype(a["mask"], x.dtype)) / x.shape[0]


def lstm_step(xp, a: dict, dims: Mapping):
    """(next_h, next_c) joined along the last axis, (N, 2H)."""
    next_h, next_c = _lstm_cell(xp, a["x"], a["prev_h"], a["prev_c"], a["Wx"], a["Wh"], a["b"])
    return xp.concat([next_h, next_c], axis=1)


def lstm(xp, a: dict, dims: Mapping):
    """Hidden states (N, T, H) of the LSTM over x (N, T, D) from h0 and a zero cell state."""
    h = a["h0"]
    c = xp.zeros_like(h)
    states = []
    for t in range(a["x"].shape[1]):
        h, c = _lstm_cell(xp, a["x"][:, t, :], h, c, a["Wx"], a["Wh"], a["b"])
        states.append(h)
    return xp.stack(states, axis=1)


# --- the ops ------------------------------------------------------------------------------------
# Every default shape has T > 1 where there is time (a backward that does not carry dh
# across steps), N = 1 and N > 1, and D != H (a transposed dWx has the wrong shape).

_RNN_WEIGHTS = {"Wx": Floats(("D", "H"), scaled_weights), "Wh": Floats(("H", "H"), scaled_weights), "b": ("H",)}
_LSTM_WEIGHTS = {"Wx": Floats(("D", "H4"), scaled_weights), "Wh": Floats(("H", "H4"), scaled_weights), "b": ("H4",)}


def _four_h(d):
    return 4 * d["H"]


def _two_h(d):
    return 2 * d["H"]


# Each op's default shapes: N = 1, and N = 32 (past a batch of 16: a sum over part of the
# batch shows); D != H (or M) where an op has both (a transposed weight has the wrong shape).

rnn_step_layer = declare(
    "rnn_step_forward", "rnn_step_backward", {"x": ("N", "D"), "prev_h": ("N", "H"), **_RNN_WEIGHTS},
    output=("next_h", ("N", "H")), reference=rnn_step, name="rnn_step",
    doc="vanilla RNN step, next_h = tanh(x Wx + prev_h Wh + b)",
    matrices={
        "default": ({"N": 1, "D": 4, "H": 3}, {"N": 32, "D": 5, "H": 4}),
        "full": ({"N": 1, "D": 4, "H": 3}, {"N": 3, "D": 5, "H": 4}, {"N": 8, "D": 12, "H": 10}),
    })

rnn_layer = declare(
    "rnn_forward", "rnn_backward", {"x": ("N", "T", "D"), "h0": ("N", "H"), **_RNN_WEIGHTS},
    output=("h", ("N", "T", "H")), reference=rnn, name="rnn",
    doc="vanilla RNN over a sequence, hidden states (N, T, H) from h0",
    matrices={
        "default": ({"N": 1, "T": 3, "D": 4, "H": 3}, {"N": 32, "T": 4, "D": 3, "H": 4}),
        "full": ({"N": 1, "T": 3, "D": 4, "H": 3}, {"N": 3, "T": 4, "D": 5, "H": 4},
                 {"N": 2, "T": 10, "D": 3, "H": 5}),
    })

word_embedding_layer = declare(
    "word_embedding_forward", "word_embedding_backward",
    {"x": Integers(("N", "T"), 0, "V", draw=word_indices), "W": ("V", "D")},
    output=("out", ("N", "T", "D")), reference=word_embedding, name="word_embedding",
    doc="word embedding lookup out[n, t] = W[x[n, t]], repeated indices",
    matrices={
        "default": ({"N": 1, "T": 4, "V": 5, "D": 3}, {"N": 32, "T": 4, "V": 6, "D": 3}),
        "full": ({"N": 1, "T": 4, "V": 5, "D": 3}, {"N": 3, "T": 4, "V": 6, "D": 3},
                 {"N": 8, "T": 5, "V": 50, "D": 7}),
    })

temporal_affine_layer = declare(
    "temporal_affine_forward", "temporal_affine_backward",
    {"x": ("N", "T", "D"), "w": Floats(("D", "M"), scaled_weights), "b": ("M",)},
    output=("out", ("N", "T", "M")), reference=temporal_affine, name="temporal_affine",
    doc="affine layer at every time step, x (N, T, D) @ w + b",
    matrices={
        "default": ({"N": 1, "T": 3, "D": 4, "M": 5}, {"N": 32, "T": 2, "D": 5, "M": 3}),
        "full": ({"N": 1, "T": 3, "D": 4, "M": 5}, {"N": 3, "T": 2, "D": 5, "M": 3}, {"N": 6, "T": 4, "D": 8, "M": 6}),
    })

temporal_softmax_loss_layer = declare(
    "temporal_softmax_loss", None,
    {"x": ("N", "T", "V"), "y": Integers(("N", "T"), 0, "V", draw=vocabulary_labels),
     "mask": Integers(("N", "T"), 0, 2, draw=time_step_mask)},
    reference=temporal_softmax, second_order=False, name="temporal_softmax_loss",
    doc="masked softmax cross-entropy summed over time steps, divided by N",
    # like softmax_loss: dx = mask (p - onehot(y)) / N, terms of size up to 1/N
    rounding_units=lambda dims: {"loss": 1.0 / dims["N"], "x": 1.0 / dims["N"]},
    matrices={
        "default": ({"N": 1, "T": 4, "V": 5}, {"N": 32, "T": 3, "V": 4}),
        "full": ({"N": 1, "T": 4, "V": 5}, {"N": 4, "T": 3, "V": 6}, {"N": 8, "T": 5, "V": 12}),
    })

_LSTM_STEP_ARGS = ("x", "prev_h", "prev_c", "Wx", "Wh", "b")
lstm_step_layer = declare(
    None, None, {"x": ("N", "D"), "prev_h": ("N", "H"), "prev_c": ("N", "H"), **_LSTM_WEIGHTS},
    # two outputs, joined on the last axis for the oracles (``Layer.outputs``)
    contracts=(Layer("lstm_step_forward", "lstm_step_backward", _LSTM_STEP_ARGS, _LSTM_STEP_ARGS,
                     outputs=("next_h", "next_c")),),
    output=("next_h|next_c", ("N", "H2")), derived={"H4": _four_h, "H2": _two_h}, reference=lstm_step,
    name="lstm_step", doc="LSTM step, gates i, f, o, g; outputs (next_h, next_c) joined as (N, 2H)",
    matrices={
        "default": ({"N": 1, "D": 4, "H": 3}, {"N": 32, "D": 5, "H": 2}),
        "full": ({"N": 1, "D": 4, "H": 3}, {"N": 3, "D": 5, "H": 2}, {"N": 6, "D": 8, "H": 5}),
    })

lstm_layer = declare(
    "lstm_forward", "lstm_backward", {"x": ("N", "T", "D"), "h0": ("N", "H"), **_LSTM_WEIGHTS},
    output=("h", ("N", "T", "H")), derived={"H4": _four_h}, reference=lstm, name="lstm",
    doc="LSTM over a sequence, hidden states (N, T, H) from h0 and a zero cell state",
    matrices={
        "default": ({"N": 1, "T": 3, "D": 4, "H": 3}, {"N": 32, "T": 3, "D": 3, "H": 2}),
        "full": ({"N": 1, "T": 3, "D": 4, "H": 3}, {"N": 3, "T": 3, "D": 5, "H": 2}, {"N": 2, "T": 8, "D": 3, "H": 4}),
    })
