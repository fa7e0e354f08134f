"""FullyConnectedNet with the 2017 constructor (dropout=0 drops nothing, use_batchnorm), for
gradmatrix's tests; the network itself is fc_net.py's."""

import numpy as np

from .fc_net import FullyConnectedNet as _Later


class FullyConnectedNet(_Later):
    def __init__(self, hidden_dims, input_dim=3 * 32 * 32, num_classes=10, dropout=0, use_batchnorm=False,
                 reg=0.0, weight_scale=1e-2, dtype=np.float32, seed=None):
        _Later.__init__(self, hidden_dims, input_dim, num_classes, 1 - dropout,
                        "batchnorm" if use_batchnorm else None, reg, weight_scale, dtype, seed)
