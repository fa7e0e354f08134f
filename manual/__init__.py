"""Hand-derived, vectorized NumPy forward and backward passes: the reference candidate.

Each public function follows the CS231n layer contract and documents its derivation; see
``help(manual.affine_backward)`` for an example.
"""

from manual.layers import affine_backward, affine_forward, relu_backward, relu_forward
from manual.losses import softmax_loss
from manual.net import two_layer_net_loss

__all__ = [
    "affine_backward",
    "affine_forward",
    "relu_backward",
    "relu_forward",
    "softmax_loss",
    "two_layer_net_loss",
]
