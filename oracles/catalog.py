"""The catalog: every op the harness checks, the join of the families that declare them.

Two families: ``oracles.ops``, the ops ``manual`` implements, hand-built ``OpSpec`` entries
(``ENTRIES``); and CS231n's functions, declarations made with the public declaration API
(``oracles.contracts.cs231n``, one module per assignment part; ``oracles.declared``), each
built here into its ``OpSpec``.  A catalog op, a course's function and a user's own layer
differ only in who declared them and which catalog they join: CS231n's join this one,
which ``gradmatrix run`` and ``make report`` check; the other courses' declarations
(``oracles.contracts``, ``COURSE_SPECS``) and a user's layers join a run's own catalog
(``Candidate.catalog``).  ``CATALOG`` is the join, read-only, built once here (the way
PyTorch's OpInfo joins per-family lists).  Cases, oracles, the test matrix and the reports
read entries; nothing else declares an op.

Imports run one way: this module imports ``oracles.declared`` and the course modules;
``declared`` imports no catalog (a user's layer is named off the catalog by the public face,
``declared.layer_name``), so the catalog's own declarations can be built while it is joined.

How to add an op:
  1. Write ``foo_forward``/``foo_backward`` in ``manual`` (docstring with shapes and the
     derivation).
  2. Add an ``OpSpec`` to ``ENTRIES`` in ``oracles.ops``: its inputs, output, shapes for the
     default and full matrices, and its ``contracts`` (``oracles.contract``: the functions a
     candidate provides, their arguments and the order of the gradients they return).
  3. Give the oracles a forward: ``reference``, one function written against the Python
     array API that torch, JAX and the numeric oracle all run; or one forward per oracle,
     keyed by the op's name, in ``oracles.torch_oracle``, ``oracles.jax_oracle`` and
     ``oracles.numeric`` (a batched float64 NumPy forward), where a framework's own
     primitive (``F.cross_entropy``, ``lax.conv_general_dilated``) is the better oracle.
  The matrix, the comparison and the reports pick the op up from here.

How to add a course function to the catalog (CS231n's): a ``declare(...)`` in the
assignment part's module of ``oracles.contracts.cs231n``, with named dims (``matrices=``),
its reference forward and its contract (see ``declare``'s docstring); a new part is a
module listed in that package's ``PARTS``.  A course of its own that ``gradmatrix check``
matches by name, outside this catalog, is a module of ``oracles.contracts`` (``COURSES``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from gradmatrix.oracles import ops
from gradmatrix.oracles.contracts import COURSE_SPECS, cs231n
from gradmatrix.oracles.declared import build, declarations_in
from gradmatrix.oracles.draws import (  # noqa: F401  (the draws entries use, importable from here too)
    KINK_MARGIN, DrawFn, away_from_zero, distinct, fan_in_rows, keep_mask, labels, normal, prod, scaled_weights,
)
from gradmatrix.oracles.spec import (  # noqa: F401  (the catalog's vocabulary, importable from here)
    BATCH_SIZES, DTYPES, MATRICES, MODE_BATCH_SIZES, MODE_SEEDS, SEEDS, SKIPS_ORACLES, InputSpec, OpSpec,
)



def declared_entries(module) -> list[OpSpec]:
    """The ``OpSpec`` of each declaration in ``module``, in the module's order."""
    return [build(declaration, module)[0] for declaration in declarations_in(module)]


# the families, in the order their ops are listed: manual's ops, then CS231n's functions
# (assignments 1 to 3, ``cs231n.PARTS``)
FAMILIES = (ops.ENTRIES, *(declared_entries(part) for part in cs231n.PARTS))


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


CATALOG: Mapping[str, OpSpec] = join(*FAMILIES)


def spec_of(op: str) -> OpSpec:
    """The spec called ``op``: a catalog op, else a course's (a layer a user declares is in
    its run's catalog, ``Candidate.catalog``, and its cases carry it).

    Raises:
        KeyError: no such op or layer.
    """
    return CATALOG[op] if op in CATALOG else COURSE_SPECS[op]
