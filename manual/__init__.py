"""Hand-derived, vectorized NumPy forward and backward passes: the reference candidate.

Each public function follows the CS231n layer contract and documents its derivation; see
``help(manual.affine_backward)`` for an example.
"""

from .activations import sigmoid_backward, sigmoid_forward, tanh_backward, tanh_forward
from .conv import conv_backward, conv_forward, max_pool_backward, max_pool_forward
from .dropout import dropout_backward, dropout_forward
from .gates import (
    add_backward,
    add_forward,
    max_backward,
    max_forward,
    multiply_backward,
    multiply_forward,
)
from .layers import affine_backward, affine_forward, relu_backward, relu_forward
from .losses import softmax_loss
from .net import two_layer_net_loss
from .norm import batchnorm_backward, batchnorm_forward, layernorm_backward, layernorm_forward
from .score_net import score_net_backward, score_net_forward

__all__ = [
    "add_backward",
    "add_forward",
    "affine_backward",
    "affine_forward",
    "batchnorm_backward",
    "batchnorm_forward",
    "conv_backward",
    "conv_forward",
    "dropout_backward",
    "dropout_forward",
    "layernorm_backward",
    "layernorm_forward",
    "max_backward",
    "max_forward",
    "max_pool_backward",
    "max_pool_forward",
    "multiply_backward",
    "multiply_forward",
    "relu_backward",
    "relu_forward",
    "score_net_backward",
    "score_net_forward",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax_loss",
    "tanh_backward",
    "tanh_forward",
    "two_layer_net_loss",
]
