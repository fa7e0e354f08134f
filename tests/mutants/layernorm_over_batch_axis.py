"""layernorm normalizing each feature over the batch (axis 0, batch norm's statistics) instead of each sample over its features (axis 1)."""

from gradmatrix.manual import batchnorm_backward as layernorm_backward  # noqa: F401
from gradmatrix.manual import batchnorm_forward as layernorm_forward  # noqa: F401
