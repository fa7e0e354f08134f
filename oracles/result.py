"""What every implementation returns for a case, and how it says it cannot run."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field

import numpy as np


class Unavailable(Exception):
    """An implementation cannot run here (its framework is not installed, say); the reason says why."""


# the kind of warning an implementation reports itself (``Result.warnings``; what warnings are
# and why they do not fail: ``reports.severity``)
WROTE_INTO_ARGUMENT = "wrote-into-argument"

def differs_by_size_1_axes(shape, expected) -> bool:
    """Whether ``shape`` holds the same elements as ``expected`` in the same order, with axes
    of size 1 added or dropped (``(1, D)`` for ``(D,)``, ``()`` for ``(1,)``): comparable once
    reshaped (a warning, ``reports.severity``)."""
    shape, expected = tuple(shape), tuple(expected)
    return shape != expected and [d for d in shape if d != 1] == [d for d in expected if d != 1]


DEFAULT_CASE_TIMEOUT = 300.0  # seconds one implementation may take on one case: generous, a hang ends


class CaseTimeout(BaseException):
    """An implementation ran past the per-case time limit.  A BaseException, so that an
    ``except Exception`` inside the implementation cannot swallow it and hang on."""


class CandidateFault(Exception):
    """A candidate broke the contract (raised, returned the wrong structure, wrote into its inputs)."""


@dataclass
class Result:
    """Forward value and gradients of one implementation on one case.

    Attributes:
        impl: the implementation's name ("manual", "torch", "jax", "numeric", a module name).
        forward: the op's output (a 0-d array for losses).
        grads: gradient per differentiable input name, each with the input's shape.
        computes_in: the dtype the implementation always computes in (the numeric oracle:
            "float64"), or None when it must follow the case's dtype.
        notes: remarks for the report (for instance, the convention followed at a kink).
        error_bounds: per gradient, an elementwise bound on the implementation's own
            error (the numeric oracle's truncation and rounding estimate); comparisons
            against this result allow it on top of the dtype's tolerance.
        scales: per key of ``grads``, the magnitude its rounding is judged against when
            that exceeds the value itself.  A directional derivative ``<u, J v>`` is a sum
            of products that can cancel to nearly 0, so its tolerance is relative to the
            size of what was summed (see ``oracles.modes``), not to the sum.
        directions: per gradient given as projections (the numeric oracle's inputs too
            large to difference element by element), the directions (K, *input shape) its
            K values are projections on; a comparison projects the other side's gradient on
            them (``reports.compare``).
        drawn: inputs a candidate drew itself (the course's dropout mask), recovered from its
            forward by its contract; the case's oracles are run on these (``gradmatrix.runner``).
    """

    impl: str
    forward: np.ndarray
    grads: dict
    computes_in: str | None = None
    notes: list = field(default_factory=list)
    error_bounds: dict = field(default_factory=dict)
    scales: dict = field(default_factory=dict)
    drawn: dict = field(default_factory=dict)
    directions: dict = field(default_factory=dict)
    repeats: dict = field(default_factory=dict)
    # a layer's gradients again, called in another order (``oracles.contract.Layer.call``):
    # "again" (backward a second time on the same cache), "plain" (a fresh forward and its
    # backward, with no other forward between); compared with ``grads`` by ``reports.compare``
    warnings: list = field(default_factory=list)
    # what the implementation did that leaves its values right but is worth telling
    # (``reports.severity``): {"kind", "impl", "function", "parameter", ...}, such as a write
    # into an argument; the comparison adds the structural ones (a promoted dtype)


def short_traceback(exc: BaseException, limit: int = 4) -> str:
    """The last ``limit`` frames of what raised ``exc`` (its cause, where it has one), or
    the candidate's own frames where they were kept."""
    if getattr(exc, "user_traceback", None) is not None:  # the candidate's own frames (oracles.candidate)
        return exc.user_traceback
    cause = exc.__cause__ or exc
    return "".join(traceback.format_exception(type(cause), cause, cause.__traceback__, limit=-limit))
