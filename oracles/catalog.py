"""The catalog: every op the harness checks, the join of the families that declare them.

Each family is a module exporting its entries as ``ENTRIES`` (``OpSpec`` values,
``oracles.spec``): ``oracles.ops`` holds the ops ``manual`` implements, the ``course_*``
modules CS231n's own functions.  Importing a family writes nothing anywhere; ``CATALOG`` is
their join, read-only, built once here (the way PyTorch's OpInfo joins per-family lists).
A run's own declared layers (``oracles.declared``) join a catalog of that run, never this
one.  Cases, oracles, the test matrix and the reports read entries; nothing else declares
an op.

How to add an op:
  1. Write ``foo_forward``/``foo_backward`` in ``manual`` (docstring with shapes and the
     derivation).
  2. Add an ``OpSpec`` to ``ENTRIES`` in ``oracles.ops`` (or a course module): its inputs,
     output, shapes for the default and full matrices, and its ``contracts``
     (``oracles.contract``: the functions a candidate provides, their arguments and the
     order of the gradients they return).
  3. Give the oracles a forward: ``reference``, one function written against the Python
     array API that torch, JAX and the numeric oracle all run; or one forward per oracle,
     keyed by the op's name, in ``oracles.torch_oracle``, ``oracles.jax_oracle`` and
     ``oracles.numeric`` (a batched float64 NumPy forward), where a framework's own
     primitive (``F.cross_entropy``, ``lax.conv_general_dilated``) is the better oracle.
  The matrix, the comparison and the reports pick the op up from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from gradmatrix.oracles import course_classifiers, course_layers, course_models, course_rnn, ops
from gradmatrix.oracles.draws import (  # noqa: F401  (the draws entries use, importable from here too)
    KINK_MARGIN, DrawFn, away_from_zero, distinct, fan_in_rows, keep_mask, labels, normal, prod, scaled_weights,
)
from gradmatrix.oracles.spec import (  # noqa: F401  (the catalog's vocabulary, importable from here)
    BATCH_SIZES, DTYPES, MATRICES, MODE_BATCH_SIZES, MODE_SEEDS, SEEDS, SKIPS_ORACLES, InputSpec, OpSpec,
)

# the families, in the order their ops are listed: manual's ops, then the course's (CS231n
# assignments 1 to 3)
FAMILIES = (ops, course_layers, course_classifiers, course_rnn, course_models)


def join(*entries: Iterable[OpSpec], base: Mapping[str, OpSpec] | None = None) -> Mapping[str, OpSpec]:
    """A read-only catalog of ``base`` and ``entries``, by name, in order.

    Raises:
        ValueError: two entries under one name (one would hide the other).
    """
    joined: dict[str, OpSpec] = dict(base or {})
    for family in entries:
        for spec in family:
            if spec.name in joined:
                raise ValueError(f"two ops are named {spec.name!r}; an op's name is its id in every report")
            joined[spec.name] = spec
    return MappingProxyType(joined)


CATALOG: Mapping[str, OpSpec] = join(*(family.ENTRIES for family in FAMILIES))
