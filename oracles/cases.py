"""Cases: an op at concrete dims, seed and dtype, and the inputs drawn for it.

Inputs come from a ``numpy.random.Generator`` owned by the case and seeded from the case's
op, dims and seed (never from global state), so a case id alone reproduces its inputs.
Floats are drawn in float64 and cast to the case's dtype, so a float32 case sees the
float32 rounding of the values its float64 twin sees.

Case kinds, one per kind of check:
* "random": inputs drawn away from kinks; every gradient compared (reverse mode).
* "kink": special values at points of non-differentiability (reverse mode).
* "jvp": forward mode against reverse mode through ``<u, J v> = <J^T u, v>`` (see
  ``oracles.modes``).
* "hvp": Hessian-vector products of a scalar loss (ops with ``second_order``).
A "jvp" or "hvp" case draws exactly the inputs and upstream gradient of its "random" twin
(same op, dims, seed and dtype), then, from the same generator, one direction ``v`` per
differentiable input.  The random cases' draws are untouched by the modes.
"""

from __future__ import annotations

import functools
import numbers
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from gradmatrix.oracles.catalog import (
    BATCH_SIZES, CATALOG, DTYPES, MODE_BATCH_SIZES, MODE_SEEDS, SEEDS, OpSpec, spec_of,
)
from gradmatrix.oracles.framework import LOW_PRECISION
from gradmatrix.oracles.spec import batch_crossed

# which case kinds each mode of checking consists of (--modes on the command line)
MODES: dict[str, tuple[str, ...]] = {"reverse": ("random", "kink"), "jvp": ("jvp",), "hvp": ("hvp",)}
DIRECTIONAL = ("jvp", "hvp")  # kinds whose inputs are their random twin's plus directions v
# float16 / bfloat16 cases: asked for by name (--dtypes float16 bfloat16), never in a matrix's
# default dtypes; the random cases' shapes and draws, judged by the reference's own error at
# that dtype (``reports.framework_checks``; ``gradmatrix.runner``)
LOW_PRECISION_KIND = "low-precision"


def names_option(value, argument: str, choices=None, noun: str = "name") -> list[str] | None:
    """A user's list-of-names option (ops, dtypes, oracles, modes) as a list.

    One name given as a string is a list of that one name (never split into its
    characters); repeated names are kept once, in their first place.

    Args:
        value: None (the default, returned as None), a str, or an iterable of str.
        argument: the option's name, for messages ("dtypes").
        choices: the names allowed (None: any).
        noun: what a name is, for messages ("dtype").

    Returns:
        The names, or None.

    Raises:
        TypeError: neither a str nor an iterable of str (a dict, a number, bytes, a list
            holding something other than str).
        ValueError: an empty list, or a name not among ``choices``.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    elif isinstance(value, (bytes, bytearray, Mapping)) or not isinstance(value, Iterable):
        raise TypeError(f"{argument} must be one {noun} or a list of {noun}s, as str; got {type(value).__name__} {value!r}")
    names = list(value)
    wrong = [n for n in names if not isinstance(n, str)]
    if wrong:
        raise TypeError(f"{argument} must be one {noun} or a list of {noun}s, as str; got {type(wrong[0]).__name__} "
                        f"{wrong[0]!r} in {names!r}")
    if not names:
        raise ValueError(f"{argument} is empty, which would check nothing; leave it out for the default")
    names = list(dict.fromkeys(names))
    if choices is not None:
        unknown = [n for n in names if n not in choices]
        if unknown:
            raise ValueError(f"{argument}: unknown {noun}(s) {unknown}; choose from {list(choices)}")
    return names


def count_option(value, argument: str, least: int = 1) -> int:
    """A user's count option (seeds) as an int >= ``least``.

    Raises:
        TypeError: not an integer (a bool, a float, a string).
        ValueError: an integer below ``least``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{argument} must be an integer, got {type(value).__name__} {value!r}")
    if value < least:
        raise ValueError(f"{argument} must be at least {least}, got {value}")
    return int(value)


def _format_dim(value) -> str:
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Case:
    """One op at concrete dims, seed and dtype."""

    op: str
    dims: tuple  # ((name, value), ...) in the catalog's order, N first
    seed: int
    dtype: str  # "float32" or "float64"
    kind: str = "random"  # "random", "kink" (special values), "jvp" or "hvp" (see the module's docstring)
    # the op's entry, carried by the case (a planned case always has it): the catalog's, or a
    # layer its user declared; a case built by hand from an op's name finds it in the catalog
    entry: OpSpec | None = field(default=None, compare=False, repr=False)

    def __reduce__(self):
        # to another process (the candidate's worker), a case travels as its name and dims:
        # an entry holds functions (draws, references) that need not pickle, and the
        # catalog's ops, the only ones sent, are found by name there
        return (Case, (self.op, self.dims, self.seed, self.dtype, self.kind))

    @property
    def spec(self) -> OpSpec:
        """The op's spec: the one the case carries, else the catalog's entry of its name."""
        return self.entry if self.entry is not None else spec_of(self.op)

    @property
    def dim_map(self) -> dict:
        return self.spec.resolve_dims(dict(self.dims))

    @functools.cached_property
    def id(self) -> str:
        """Readable id, e.g. ``affine-N8-Dx6-M3-seed1-float32`` (made once: a run reads it
        thousands of times)."""
        dims = "-".join(f"{name}{_format_dim(value)}" for name, value in self.dims)
        kind = "" if self.kind == "random" else f"-{self.kind}"
        return f"{self.op}{kind}-{dims}-seed{self.seed}-{self.dtype}"

    def rng(self) -> np.random.Generator:
        """A fresh generator for this case, seeded from its op, dims, kind and seed."""
        # a mode case, and a low-precision one, share their random twin's inputs
        kind = "random" if self.kind in (*DIRECTIONAL, LOW_PRECISION_KIND) else self.kind
        key = zlib.crc32(f"{self.op}|{kind}|{self.dims}".encode())
        return np.random.default_rng([self.seed, key])


@dataclass(frozen=True)
class CaseInputs:
    """The concrete inputs of a case: arrays keyed by input name, and the upstream gradient."""

    case: Case
    arrays: dict  # input name -> np.ndarray (floats in the case dtype, labels int64)
    dout: np.ndarray | None  # upstream gradient of the output, None for scalar losses
    kink_masks: dict = field(default_factory=dict)  # input name -> gradient elements at a kink (kink cases)
    directions: dict = field(default_factory=dict)  # differentiable input name -> direction v (jvp, hvp cases)

    def copy(self) -> "CaseInputs":
        """Fresh copies, so that one implementation cannot change what another sees."""
        dout = None if self.dout is None else self.dout.copy()
        return CaseInputs(self.case, {k: v.copy() for k, v in self.arrays.items()}, dout, self.kink_masks,
                          {k: v.copy() for k, v in self.directions.items()})


def draw_inputs(case: Case) -> CaseInputs:
    """Draw the inputs (and upstream gradient) of ``case`` from its own generator."""
    spec = case.spec
    dims = case.dim_map
    rng = case.rng()
    masks = {}
    if case.kind == "kink":
        arrays, masks = spec.kink_inputs(rng, dims)
    else:
        arrays = {s.name: s.draw(rng, spec.shape_of(s.shape, dims), dims) for s in spec.inputs}
        if spec.finalize is not None:
            arrays = spec.finalize(arrays, dims, rng)
    dout = None
    if spec.output_shape is not None:
        dout = rng.standard_normal(spec.shape_of(spec.output_shape, dims))
    directions = {}
    if case.kind in DIRECTIONAL:  # drawn last: the inputs and dout stay those of the random twin
        directions = {s.name: rng.standard_normal(spec.shape_of(s.shape, dims)) for s in spec.inputs if s.differentiable}
    dtype = numpy_dtype(case.dtype)
    cast = {s.name: (arrays[s.name] if s.is_label else arrays[s.name].astype(dtype)) for s in spec.inputs}
    return CaseInputs(case, cast, None if dout is None else dout.astype(dtype), masks,
                      {k: v.astype(dtype) for k, v in directions.items()})


def numpy_dtype(name: str) -> np.dtype:
    """The NumPy dtype called ``name``; "bfloat16" is ``ml_dtypes``' (installed with JAX)."""
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def matrix_cases(
    matrix: str = "default",
    ops: Iterable[str] | None = None,
    dtypes: Iterable[str] | None = None,
    seeds: int | None = None,
    modes: Iterable[str] | None = None,
    catalog: Mapping[str, OpSpec] | None = None,
) -> list[Case]:
    """All cases of a matrix: ops x shapes x batch sizes x seeds x dtypes, then the kink cases,
    then the forward-mode and second-order cases.

    A shape that fixes ``N`` itself is not crossed with the batch sizes.

    Kink cases (special values such as ReLU inputs of exactly 0 and -0.0) are their own
    class, at each op's ``kink_shapes``, for every seed and dtype.  "jvp" cases cover every
    op and "hvp" cases the ops marked ``second_order``, at the op's shapes for the matrix,
    the batch sizes ``MODE_BATCH_SIZES`` and the first ``MODE_SEEDS`` seeds.

    Args:
        matrix: "default" or "full".
        ops: op names to keep (default: every op in the catalog); a layer declared by its
            user (``oracles.declared``) is named here too.
        dtypes: dtype names to keep (default: float64 and float32); "float16" and
            "bfloat16" make "low-precision" cases (reverse mode, the random cases' shapes).
        seeds: number of seeds per shape (default: the matrix's own).
        modes: which checks, of "reverse", "jvp", "hvp" (default: all).
        catalog: the run's catalog, where ``ops`` are looked up (default: ``CATALOG`` and the
            layers declared so far); each case carries its op's entry from it.
        A single name is a list of one (``names_option``); a name given twice counts once.

    Returns:
        The cases, each once (a case id names one case).

    Raises:
        TypeError: an option of the wrong type (``names_option``, ``count_option``).
        ValueError: an unknown matrix, op, dtype or mode, or seeds below 1.
    """
    # an empty list has always meant the default here (the command line's unset options)
    modes = names_option(modes or None, "modes", MODES, "mode") or list(MODES)
    if not isinstance(matrix, str) or matrix not in BATCH_SIZES:
        raise ValueError(f"unknown matrix {matrix!r}; choose from {sorted(BATCH_SIZES)}")
    lookup = spec_of if catalog is None else catalog.__getitem__
    ops = names_option(ops or None, "ops", None, "op") or list(CATALOG if catalog is None else catalog)
    dtypes = names_option(dtypes or None, "dtypes", (*DTYPES, *LOW_PRECISION), "dtype") or list(DTYPES)
    low = [d for d in dtypes if d in LOW_PRECISION]
    dtypes = [d for d in dtypes if d in DTYPES]
    specs = {}
    for op in ops:
        try:
            specs[op] = lookup(op)
        except KeyError:
            raise ValueError(f"unknown op {op!r}; choose from {sorted(CATALOG if catalog is None else catalog)}") \
                from None
    n_seeds = SEEDS[matrix] if seeds is None else count_option(seeds, "seeds")
    cases = []
    for op, spec in specs.items():
        if "reverse" in modes:
            cases += _product(spec, spec.shapes.get(matrix, ()), BATCH_SIZES[matrix], n_seeds, dtypes, "random")
            cases += _product(spec, spec.shapes.get(matrix, ()), BATCH_SIZES[matrix], n_seeds, low,
                              LOW_PRECISION_KIND)
            for shape in spec.kink_shapes if matrix != "large" else ():
                for seed in range(n_seeds):
                    for dtype in dtypes:
                        cases.append(Case(op, tuple(shape.items()), seed, dtype, kind="kink", entry=spec))
        mode_seeds = min(n_seeds, MODE_SEEDS[matrix])
        mode_shapes = _mode_shapes(spec.shapes.get(matrix, ()))
        if "jvp" in modes and spec.differentiable:  # <u, J v> needs a direction v: none without a differentiable input
            cases += _product(spec, mode_shapes, MODE_BATCH_SIZES[matrix], mode_seeds, dtypes, "jvp")
        if "hvp" in modes and spec.second_order:
            cases += _product(spec, mode_shapes, MODE_BATCH_SIZES[matrix], mode_seeds, dtypes, "hvp")
    return _distinct(cases)


def _distinct(cases: list) -> list:
    """Each case once, in its first place.  A run records one result per comparison id,
    so a case listed twice (one shape declared twice, an op asked for twice) would make
    the run look incomplete; two different cases under one id would be worse, one
    result standing for both, so that is refused.

    Raises:
        ValueError: two different cases whose ids are the same.
    """
    by_id: dict = {}
    for case in dict.fromkeys(cases):
        other = by_id.setdefault(case.id, case)
        if other is not case:
            raise ValueError(f"two cases share the id {case.id!r}: dims {other.dims} and {case.dims}; "
                             f"give their dims values that print differently")
    return list(by_id.values())


def _mode_shapes(shapes: tuple) -> tuple:
    """The shapes of the forward-mode and second-order cases: where a matrix fixes N per
    shape (the default matrix), only the one with the largest N (the last of those), since
    each shape costs a JAX compilation of its own; otherwise every shape, crossed with
    ``MODE_BATCH_SIZES``."""
    fixed = [s for s in shapes if "N" in s]
    if not fixed:
        return shapes
    largest = max(s["N"] or 0 for s in fixed)
    return ([s for s in fixed if (s["N"] or 0) == largest][-1],)


def _product(spec: OpSpec, shapes, batch_sizes, n_seeds: int, dtypes, kind: str) -> list[Case]:
    """Cases of one kind: shapes x batch sizes x seeds x dtypes, in that nesting; a shape that
    fixes N itself is not crossed with the batch sizes, and one with N None (a declared
    layer's, whose inputs have their own shapes) has no N dim at all."""
    return [Case(spec.name, tuple(dims.items()), seed, dtype, kind, entry=spec)
            for shape in shapes for dims in batch_crossed(shape, batch_sizes)
            for seed in range(n_seeds) for dtype in dtypes]
