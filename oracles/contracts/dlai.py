"""deeplearning.ai's "Building your Deep Neural Network: Step by Step", as students write it.

Course 1, week 4: features in rows and examples in columns, ``A`` of shape ``(n_l, m)``
(``batch_axis=-1``); ``W{l}`` is ``(n_l, n_{l-1})`` and ``b{l}`` ``(n_l, 1)``.  The cost is the
mean cross-entropy over the ``m`` examples, and the course takes its ``1/m`` in
``linear_backward``: ``dW = 1/m dZ A_prev.T``, ``db = 1/m sum(dZ)``, but ``dA_prev = W.T dZ``
without it.  So the gradients are compared as those of the summed loss, ``dW`` and ``db``
times ``m`` (``mean_over_batch``), and the report states that convention in a line.

The functions, with the names and signatures of the notebook and its ``dnn_utils``:

* ``linear_forward(A, W, b) -> (Z, cache)``, ``linear_backward(dZ, cache) -> (dA_prev, dW, db)``;
* ``linear_activation_forward(A_prev, W, b, activation) -> (A, cache)`` and
  ``linear_activation_backward(dA, cache, activation)``, for ``"relu"`` and ``"sigmoid"``
  (two layers, one per activation);
* ``sigmoid(Z)`` and ``relu(Z)`` returning ``(A, cache)`` with ``cache = Z``, and
  ``sigmoid_backward(dA, cache)``, ``relu_backward(dA, cache)`` returning ``dZ``;
* ``L_model_forward(X, parameters) -> (AL, caches)`` (``L - 1`` ReLU layers, then a sigmoid)
  and ``L_model_backward(AL, Y, caches) -> grads`` (``grads["dA0"]``, ``grads["dW1"]``, ...),
  judged together on the summed cross-entropy of ``AL`` and ``Y``: ``L_model_backward``
  starts from the cost's derivative ``dAL`` itself;
* ``compute_cost(AL, Y)``, compared by its value.

Every one has the course's reference forward here, so a forward and a backward that agree
with each other but not with the course (a sigmoid layer in the ReLU's place) are caught.
"""

from __future__ import annotations

import numpy as np

from gradmatrix.oracles.contract import Packed
from gradmatrix.oracles.declared import Floats, declare

M = 6  # examples, the columns
LAYER_DIMS = (5, 4, 3, 1)  # L_model's layer_dims: n_x, two hidden ReLU layers, the sigmoid unit
N_PREV, N_OUT = 5, 4  # one layer's inputs and units


def _off_zero(rng, shape):
    """Normal values at least 0.1 from 0: a ReLU's mask stays put under a numeric step."""
    values = rng.standard_normal(shape)
    return np.where(np.abs(values) < 0.1, np.sign(values + 1e-12) * 0.1, values)


def _probabilities(rng, shape):
    return rng.uniform(0.05, 0.95, shape)


def _labels(rng, shape):
    return rng.integers(0, 2, shape).astype(np.float64)


def _small(rng, shape):
    """Weights of the scale the course initialises with: AL stays away from 0 and 1."""
    return 0.5 * rng.standard_normal(shape)


def _sigmoid(xp, z):
    return 1.0 / (1.0 + xp.exp(-z))


def _relu(xp, z):
    return xp.where(z > 0, z, xp.zeros_like(z))


ACTIVATIONS = {"relu": _relu, "sigmoid": _sigmoid}


def linear_reference(xp, A, W, b):  # noqa: N803  (the course's names)
    """Z = W A + b: A (n_prev, m), W (n, n_prev), b (n, 1) -> Z (n, m)."""
    return xp.matmul(W, A) + b


def linear_activation_reference(xp, A_prev, W, b, activation):  # noqa: N803
    return ACTIVATIONS[activation](xp, linear_reference(xp, A_prev, W, b))


def cross_entropy_sum(xp, AL, Y):  # noqa: N803
    """The cross-entropy summed over the examples: m times the course's cost."""
    return -xp.sum(Y * xp.log(AL) + (1.0 - Y) * xp.log(1.0 - AL))


def L_model_reference(xp, A0, *arrays):  # noqa: N802, N803
    """The summed cross-entropy of the L-layer net: arrays are W1, b1, ..., WL, bL, then Y."""
    *weights, Y = arrays
    A = A0
    layers = len(weights) // 2
    for l in range(layers):
        activation = "sigmoid" if l == layers - 1 else "relu"
        A = linear_activation_reference(xp, A, weights[2 * l], weights[2 * l + 1], activation)
    return cross_entropy_sum(xp, A, Y)


def compute_cost_reference(xp, AL, Y):  # noqa: N803
    """The course's cost: the mean cross-entropy, a scalar."""
    return cross_entropy_sum(xp, AL, Y) / AL.shape[-1]


def _summed_cost(AL, arrays) -> float:  # noqa: N803
    """What L_model_backward's gradients are judged against: the summed cross-entropy of the
    candidate's own AL (its cost without the 1/m, taken back in dW and db)."""
    return cross_entropy_sum(np, np.asarray(AL, dtype=np.float64), np.asarray(arrays["Y"], dtype=np.float64))


_LINEAR = {"A": (N_PREV, M), "W": (N_OUT, N_PREV), "b": (N_OUT, 1)}
_LINEAR_ACTIVATION = {"A_prev": (N_PREV, M), "W": (N_OUT, N_PREV), "b": (N_OUT, 1)}
_PARAMETERS = {name: shape for l in range(1, len(LAYER_DIMS))
               for name, shape in ((f"W{l}", Floats((LAYER_DIMS[l], LAYER_DIMS[l - 1]), _small)),
                                   (f"b{l}", Floats((LAYER_DIMS[l], 1), _small)))}

linear = declare("linear_forward", "linear_backward", _LINEAR, reference=linear_reference, batch_axis=-1,
                 mean_over_batch=("W", "b"), name="dlai_linear")


def _linear_activation(activation: str):
    return declare("linear_activation_forward", "linear_activation_backward", _LINEAR_ACTIVATION,
                   fixed={"activation": activation}, positional=("A_prev", "W", "b", "activation"),
                   backward_args=("dout", "cache", "activation"), reference=linear_activation_reference,
                   batch_axis=-1, mean_over_batch=("W", "b"), name=f"dlai_linear_activation_{activation}")


linear_activation_relu = _linear_activation("relu")
linear_activation_sigmoid = _linear_activation("sigmoid")
sigmoid = declare("sigmoid", "sigmoid_backward", {"Z": (N_OUT, M)},
                  reference=lambda xp, Z: _sigmoid(xp, Z), name="dlai_sigmoid")
relu = declare("relu", "relu_backward", {"Z": Floats((N_OUT, M), _off_zero)},
               reference=lambda xp, Z: _relu(xp, Z), name="dlai_relu")
L_model = declare(  # noqa: N816  (the course's name)
    "L_model_forward", "L_model_backward",
    {"A0": (LAYER_DIMS[0], M), **_PARAMETERS, "Y": Floats((1, M), _labels)},
    positional=("A0", Packed("parameters", **{name: name for name in _PARAMETERS})),
    backward_args=("out", "Y", "cache"), loss=_summed_cost, wrt=["A0", *_PARAMETERS],
    reference=L_model_reference, batch_axis=-1, mean_over_batch=tuple(_PARAMETERS), name="dlai_L_model")
compute_cost = declare("compute_cost", None, {"AL": Floats((1, M), _probabilities), "Y": Floats((1, M), _labels)},
                       reference=compute_cost_reference, wrt=(), name="dlai_compute_cost")
