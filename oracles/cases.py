"""Cases: an op at concrete dims, seed and dtype, and the inputs drawn for it.

Inputs come from a ``numpy.random.Generator`` owned by the case and seeded from the case's
op, dims and seed (never from global state), so a case id alone reproduces its inputs.
Floats are drawn in float64 and cast to the case's dtype, so a float32 case sees the
float32 rounding of the values its float64 twin sees.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from oracles.catalog import BATCH_SIZES, CATALOG, DTYPES, SEEDS, OpSpec


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
    kind: str = "random"  # "random", or "kink" for special-value cases

    @property
    def spec(self) -> OpSpec:
        return CATALOG[self.op]

    @property
    def dim_map(self) -> dict:
        return self.spec.resolve_dims(dict(self.dims))

    @property
    def id(self) -> str:
        """Readable id, e.g. ``affine-N8-Dx6-M3-seed1-float32``."""
        dims = "-".join(f"{name}{_format_dim(value)}" for name, value in self.dims)
        kind = "" if self.kind == "random" else f"-{self.kind}"
        return f"{self.op}{kind}-{dims}-seed{self.seed}-{self.dtype}"

    def rng(self) -> np.random.Generator:
        """A fresh generator for this case, seeded from its op, dims, kind and seed."""
        key = zlib.crc32(f"{self.op}|{self.kind}|{self.dims}".encode())
        return np.random.default_rng([self.seed, key])


@dataclass(frozen=True)
class CaseInputs:
    """The concrete inputs of a case: arrays keyed by input name, and the upstream gradient."""

    case: Case
    arrays: dict  # input name -> np.ndarray (floats in the case dtype, labels int64)
    dout: np.ndarray | None  # upstream gradient of the output, None for scalar losses
    kink_masks: dict = field(default_factory=dict)  # input name -> gradient elements at a kink (kink cases)

    def copy(self) -> "CaseInputs":
        """Fresh copies, so that one implementation cannot change what another sees."""
        dout = None if self.dout is None else self.dout.copy()
        return CaseInputs(self.case, {k: v.copy() for k, v in self.arrays.items()}, dout, self.kink_masks)


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
    dtype = np.dtype(case.dtype)
    cast = {s.name: (arrays[s.name] if s.is_label else arrays[s.name].astype(dtype)) for s in spec.inputs}
    return CaseInputs(case, cast, None if dout is None else dout.astype(dtype), masks)


def matrix_cases(
    matrix: str = "default",
    ops: Iterable[str] | None = None,
    dtypes: Iterable[str] | None = None,
    seeds: int | None = None,
) -> list[Case]:
    """All cases of a matrix: ops x shapes x batch sizes x seeds x dtypes, then the kink cases.

    A shape that fixes ``N`` itself is not crossed with the batch sizes.

    Kink cases (special values such as ReLU inputs of exactly 0 and -0.0) are their own
    class, at each op's ``kink_shapes``, for every seed and dtype.

    Args:
        matrix: "default" or "full".
        ops: op names to keep (default: every op in the catalog).
        dtypes: dtype names to keep (default: float64 and float32).
        seeds: number of seeds per shape (default: the matrix's own).

    Raises:
        ValueError: an unknown matrix, op or dtype.
    """
    if matrix not in BATCH_SIZES:
        raise ValueError(f"unknown matrix {matrix!r}; choose from {sorted(BATCH_SIZES)}")
    ops = list(ops) if ops else list(CATALOG)
    dtypes = list(dtypes) if dtypes else list(DTYPES)
    for op in ops:
        if op not in CATALOG:
            raise ValueError(f"unknown op {op!r}; choose from {sorted(CATALOG)}")
    for dtype in dtypes:
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; choose from {list(DTYPES)}")
    n_seeds = SEEDS[matrix] if seeds is None else seeds
    if n_seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {n_seeds}")
    cases = []
    for op in ops:
        for shape in CATALOG[op].shapes[matrix]:
            for n in (shape["N"],) if "N" in shape else BATCH_SIZES[matrix]:
                dims = (("N", n), *((k, v) for k, v in shape.items() if k != "N"))
                for seed in range(n_seeds):
                    for dtype in dtypes:
                        cases.append(Case(op, dims, seed, dtype))
        for shape in CATALOG[op].kink_shapes:
            for seed in range(n_seeds):
                for dtype in dtypes:
                    cases.append(Case(op, tuple(shape.items()), seed, dtype, kind="kink"))
    return cases
