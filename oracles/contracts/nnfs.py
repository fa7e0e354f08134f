""""Neural Networks from Scratch" (nnfs.io), as its readers write it: class layers, declared.

Every layer is a class: built, its parameters set as attributes (``layer.weights``), then
``forward(inputs)`` (``forward(inputs, training)`` in the later chapters) sets
``self.output``, and ``backward(dvalues)`` sets ``self.dinputs`` (and ``self.dweights``,
``self.dbiases``).  A loss's ``forward(y_pred, y_true)`` returns the per-sample losses and its
``backward(y_pred, y_true)`` sets the gradient of their mean; the combined
``Activation_Softmax_Loss_CategoricalCrossentropy`` returns the mean loss from
``forward(inputs, y_true)`` and its ``backward`` takes the softmax output.

``Layer_Dense`` with regularizers (``weight_regularizer_l1``, ..., the book's chapter 14) is
checked on ``sum(dvalues * output)`` plus the L1 and L2 terms (the book's
``Loss.regularization_loss``), so a regularizer the backward forgets, or ``2 * l2 * dweights``
for ``2 * l2 * weights``, is a wrong ``dweights``.  ``Layer_Dropout(rate)`` (``rate`` the
dropped fraction) draws its mask itself (the book with ``np.random.binomial``, readers in
other ways): the mask is read from the layer's output (``Recovered``: ``1 / (1 - rate)``
where it kept a unit, 0 where it dropped one), and the oracles compute ``inputs * mask`` with
the layer's own mask.  A forward that does not rescale by ``1 / (1 - rate)`` disagrees in its
output, a backward that does not use the forward's mask in ``dinputs``, and a layer that keeps
a fraction of units far from ``1 - rate`` is no dropout at that rate (the inputs are large
enough to tell).
"""

from __future__ import annotations

import numpy as np

from gradmatrix.oracles.contract import inverted_dropout_mask
from gradmatrix.oracles.declared import Floats, Integers, Methods, Param, Recovered, declare

N, D, M = 6, 4, 3  # samples, inputs, neurons (classes)
DROP = 0.25  # Layer_Dropout's rate: the fraction dropped
DROPOUT_SHAPE = (64, 64)  # Layer_Dropout's inputs: enough units to tell its kept fraction
SEED = 0  # NumPy's global seed before each call of a layer that draws


def _off_zero(rng, shape):
    """Normal values at least 0.1 from 0: L1's sign and ReLU's mask stay put under a step."""
    values = rng.standard_normal(shape)
    return np.where(np.abs(values) < 0.1, np.sign(values + 1e-12) * 0.1, values)


def _probability_rows(rng, shape):
    e = np.exp(rng.standard_normal(shape))
    return e / e.sum(axis=-1, keepdims=True)


def _probabilities(rng, shape):
    return rng.uniform(0.05, 0.95, shape)


def _bits(rng, shape):
    return rng.integers(0, 2, shape).astype(np.float64)


def _one_hot(xp, y, classes: int, like):
    return xp.astype(xp.reshape(y, (-1, 1)) == xp.reshape(xp.arange(classes), (1, -1)), like.dtype)


def _softmax(xp, x):
    e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def dense_reference(xp, inputs, weights, biases):
    return xp.matmul(inputs, weights) + biases


REGULARIZERS = {"weight_regularizer_l1": 0.1, "weight_regularizer_l2": 0.2,
                "bias_regularizer_l1": 0.3, "bias_regularizer_l2": 0.4}


def regularization(arrays, params) -> float:
    """The book's ``Loss.regularization_loss(layer)``: l1 sum|W| + l2 sum W^2, and the same for biases."""
    w, b = (np.asarray(arrays[k], dtype=np.float64) for k in ("weights", "biases"))
    return (params["weight_regularizer_l1"] * np.abs(w).sum() + params["weight_regularizer_l2"] * (w * w).sum()
            + params["bias_regularizer_l1"] * np.abs(b).sum() + params["bias_regularizer_l2"] * (b * b).sum())


def dense_regularized_reference(xp, inputs, weights, biases, dvalues, **p):
    return (xp.sum(dvalues * (xp.matmul(inputs, weights) + biases))
            + p["weight_regularizer_l1"] * xp.sum(xp.abs(weights)) + p["weight_regularizer_l2"] * xp.sum(weights * weights)
            + p["bias_regularizer_l1"] * xp.sum(xp.abs(biases)) + p["bias_regularizer_l2"] * xp.sum(biases * biases))


def dropout_reference(xp, inputs, mask, rate=DROP):
    return inputs * mask


def dropout_mask(out, arrays, params):
    """The mask a ``Layer_Dropout`` drew, from its output (``oracles.contract.inverted_dropout_mask``)."""
    return inverted_dropout_mask(out, arrays["inputs"], 1.0 - params["rate"], "Layer_Dropout.forward",
                                 f" (1 - rate, rate = {params['rate']:g})")


def cross_entropy_reference(xp, y_pred, y_true):
    return -xp.mean(xp.log(xp.sum(y_pred * _one_hot(xp, y_true, y_pred.shape[-1], y_pred), axis=-1)))


def binary_cross_entropy_reference(xp, y_pred, y_true):
    return -xp.mean(y_true * xp.log(y_pred) + (1.0 - y_true) * xp.log(1.0 - y_pred))


def softmax_cross_entropy_reference(xp, inputs, y_true):
    shifted = inputs - xp.max(inputs, axis=-1, keepdims=True)
    log_probs = shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))
    return -xp.mean(xp.sum(log_probs * _one_hot(xp, y_true, inputs.shape[-1], inputs), axis=-1))


_DENSE = {"inputs": (N, D), "weights": (D, M), "biases": (1, M)}
_LABELS = Integers((N,), 0, M)
_LOSS = Methods(backward_args=("y_pred", "y_true"))

dense = declare("Layer_Dense", None, _DENSE, reference=dense_reference, name="nnfs_Layer_Dense",
                methods=Methods(init={"n_inputs": D, "n_neurons": M}, attributes=("weights", "biases")))
dense_regularized = declare(
    "Layer_Dense", None,
    {"inputs": (N, D), "weights": Floats((D, M), _off_zero), "biases": Floats((1, M), _off_zero), "dvalues": (N, M)},
    params=REGULARIZERS, wrt=["inputs", "weights", "biases"], reference=dense_regularized_reference,
    name="nnfs_Layer_Dense_regularized",
    methods=Methods(init={"n_inputs": D, "n_neurons": M, **{k: Param(k) for k in REGULARIZERS}},
                    attributes=("weights", "biases"), backward_args=("dvalues",), weighted_by="dvalues",
                    penalty=regularization))
relu = declare("Activation_ReLU", None, {"inputs": Floats((N, M), _off_zero)},
               reference=lambda xp, inputs: xp.where(inputs > 0, inputs, xp.zeros_like(inputs)),
               name="nnfs_Activation_ReLU", methods=Methods())
softmax = declare("Activation_Softmax", None, {"inputs": (N, M)}, reference=lambda xp, inputs: _softmax(xp, inputs),
                  name="nnfs_Activation_Softmax", methods=Methods())
sigmoid = declare("Activation_Sigmoid", None, {"inputs": (N, M)},
                  reference=lambda xp, inputs: 1.0 / (1.0 + xp.exp(-inputs)), name="nnfs_Activation_Sigmoid",
                  methods=Methods())
linear = declare("Activation_Linear", None, {"inputs": (N, M)}, reference=lambda xp, inputs: inputs * 1.0,
                 name="nnfs_Activation_Linear", methods=Methods())
# the mask is the layer's: 4096 units, so that a kept fraction of 1 - rate is told from
# rate (or from all) by far more than KEPT_FRACTION_SIGMAS
dropout = declare("Layer_Dropout", None,
                  {"inputs": Floats(DROPOUT_SHAPE, _off_zero), "mask": Recovered(DROPOUT_SHAPE, dropout_mask)},
                  params={"rate": DROP}, reference=dropout_reference, numpy_seed=SEED, name="nnfs_Layer_Dropout",
                  methods=Methods(init={"rate": Param("rate")}))
cross_entropy = declare("Loss_CategoricalCrossentropy", None,
                        {"y_pred": Floats((N, M), _probability_rows), "y_true": _LABELS},
                        reference=cross_entropy_reference, name="nnfs_Loss_CategoricalCrossentropy", methods=_LOSS)
binary_cross_entropy = declare("Loss_BinaryCrossentropy", None,
                               {"y_pred": Floats((N, M), _probabilities), "y_true": Floats((N, M), _bits)},
                               wrt=["y_pred"], reference=binary_cross_entropy_reference,
                               name="nnfs_Loss_BinaryCrossentropy", methods=_LOSS)
mean_squared = declare("Loss_MeanSquaredError", None, {"y_pred": (N, M), "y_true": (N, M)}, wrt=["y_pred"],
                       reference=lambda xp, y_pred, y_true: xp.mean((y_true - y_pred) ** 2),
                       name="nnfs_Loss_MeanSquaredError", methods=_LOSS)
mean_absolute = declare("Loss_MeanAbsoluteError", None, {"y_pred": (N, M), "y_true": (N, M)}, wrt=["y_pred"],
                        reference=lambda xp, y_pred, y_true: xp.mean(xp.abs(y_true - y_pred)),
                        name="nnfs_Loss_MeanAbsoluteError", methods=_LOSS)
softmax_cross_entropy = declare("Activation_Softmax_Loss_CategoricalCrossentropy", None,
                                {"inputs": (N, M), "y_true": _LABELS}, reference=softmax_cross_entropy_reference,
                                name="nnfs_Activation_Softmax_Loss_CategoricalCrossentropy",
                                methods=Methods(backward_args=("self.output", "y_true")))
