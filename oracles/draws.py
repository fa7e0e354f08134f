"""How an op's inputs are drawn: each function gets the case's generator, the concrete
shape and the case's dims and returns float64 values (labels: int64); the case casts floats
to its dtype afterwards."""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

DrawFn = Callable[[np.random.Generator, tuple, Mapping], np.ndarray]

# Random draws keep this far from a kink (ReLU's 0), so that central differences with the
# numeric oracle's step (at most 1e-5 * |x|, see oracles.numeric) never straddle one and every oracle is
# differentiating the same smooth piece.  The kinks themselves get cases of their own.
KINK_MARGIN = 1e-3


def normal(rng: np.random.Generator, shape: tuple, dims: Mapping) -> np.ndarray:
    """Standard normal values, scaled by the case's ``scale`` dim and offset by its ``shift``
    dim when it has them (shift 1e4: large logits that nearly tie)."""
    return rng.standard_normal(shape) * dims.get("scale", 1.0) + dims.get("shift", 0.0)


def away_from_zero(rng: np.random.Generator, shape: tuple, dims: Mapping) -> np.ndarray:
    """Standard normal values pushed ``KINK_MARGIN`` away from 0 (ReLU's kink)."""
    z = rng.standard_normal(shape)
    return z + np.where(z >= 0, KINK_MARGIN, -KINK_MARGIN)


def labels(rng: np.random.Generator, shape: tuple, dims: Mapping) -> np.ndarray:
    """Integer class labels, uniform over ``[0, C)``."""
    return rng.integers(0, dims["C"], size=shape, dtype=np.int64)


def scaled_weights(rng: np.random.Generator, shape: tuple, dims: Mapping) -> np.ndarray:
    """Normal weights scaled by 1/sqrt(fan-in), so activations stay of order 1."""
    return rng.standard_normal(shape) / np.sqrt(shape[0])


def fan_in_rows(rng: np.random.Generator, shape: tuple, dims: Mapping) -> np.ndarray:
    """Normal weights laid out output-first (W of ``W x``, conv filters (F, C, HH, WW)),
    scaled by 1/sqrt(fan-in), the product of all axes but the first."""
    return rng.standard_normal(shape) / np.sqrt(prod(tuple(shape[1:])) if len(shape) > 1 else 1)


def keep_mask(rng: np.random.Generator, shape: tuple, dims: Mapping) -> np.ndarray:
    """A dropout mask of 0.0 and 1.0, each unit kept with probability 1 - ``p``."""
    return (rng.random(shape) >= dims["p"]).astype(np.float64)


def distinct(rng: np.random.Generator, shape: tuple, dims: Mapping) -> np.ndarray:
    """Values in random order, pairwise at least 2 * KINK_MARGIN apart: no ties in any max
    pooling window, whatever its size (spread over about [-2, 2], wider for large arrays)."""
    n = prod(tuple(shape))
    spacing = max(2 * KINK_MARGIN, 4.0 / n)
    return ((rng.permutation(n) - (n - 1) / 2) * spacing).reshape(shape)


def prod(values) -> int:
    return int(np.prod(values)) if isinstance(values, tuple) else int(values)
