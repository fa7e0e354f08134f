"""What an op is, as data: ``InputSpec``, ``OpSpec``, and the matrices they are checked on.

An ``OpSpec`` is a value: a family of ops (``oracles.ops``, the course modules) builds its
entries from these classes and exports them as ``ENTRIES``; ``oracles.catalog`` joins the
families; a user's declared layer (``oracles.declared``) builds one the same way.  Nothing
here registers anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from gradmatrix.oracles.draws import DrawFn, normal


@dataclass(frozen=True)
class InputSpec:
    """One input of an op."""

    name: str  # the argument's name in the manual contract ("x", "w", "W1", ...)
    shape: tuple  # dim names and ints; a dim whose value is a tuple is splatted
    differentiable: bool = True  # gradients are compared for this input
    draw: DrawFn = normal  # how values are drawn from the case's generator
    is_label: bool = False  # integer labels: never cast to the case's float dtype
    drawn_by_candidate: bool = False
    # drawn inside the candidate's own forward (the course's dropout mask): its contract
    # recovers it from the forward's output, and the case's oracles use the candidate's


@dataclass(frozen=True)
class OpSpec:
    """One op: its inputs, output, matrix shapes, contract and conventions."""

    name: str
    inputs: tuple[InputSpec, ...]
    output: str  # name of the forward output ("out", "loss")
    output_shape: tuple | None  # dims of the output (() for a 0-d one); None for a loss (no upstream gradient)
    contracts: tuple  # how a candidate is called (oracles.contract): alternatives, the best-fitting one is used
    shapes: Mapping[str, tuple[dict, ...]]  # matrix name -> dims without N (N comes from the batch sizes)
    doc: str = ""  # one line for reports
    derived: Mapping[str, Callable[[Mapping], object]] = field(default_factory=dict)  # dims computed from others
    finalize: Callable | None = None  # (inputs, dims, rng) -> inputs, fixes drawn inputs (keep off kinks)
    kink_inputs: Callable | None = None  # (rng, dims) -> (inputs, {input: mask of gradient elements at a kink})
    kink_shapes: tuple = ()  # dims (N included) of the kink cases
    kink_convention: Callable | None = None  # (grads, inputs, dout) -> the derivative an implementation took at the kink
    # (grads, inputs, dout) -> {input: distance of each element outside the subdifferential} (oracles.kinks);
    # without it a difference at a kink cannot pass as a convention
    kink_subgradient: Callable | None = None
    rounding_units: Callable | None = None
    # dims -> {output or input name: size}: values formed as differences of larger terms are
    # judged against the size of those terms, not their own (reports.compare's ``scales``)
    second_order: bool = False  # a scalar loss whose Hessian-vector products get "hvp" cases
    reference: Callable | None = None
    # (xp, inputs: dict, dims) -> output, written once against the Python array API: the
    # forward of every oracle (torch, JAX, float64 NumPy for the numeric one) that has no
    # forward of its own for the op
    # the reference also takes each array with one more leading axis (K copies, or 1 to
    # broadcast) and returns the K outputs stacked (the numeric oracle's perturbed copies in one call)
    vectorized: bool = False
    forwards: Mapping[str, Callable] = field(default_factory=dict)
    # oracle name ("torch", "jax", "numeric") -> (arrays: dict, dims) -> output, that oracle's
    # forward for an op declared outside the oracles' modules (a user's layer,
    # ``oracles.declared``); it wins over ``reference``.  The numeric one takes one float64 copy.
    oracles: tuple[str, ...] | None = None  # the oracles that have a forward for the op (None: every one)
    # a declared layer's tolerance override, {"rtol", "atol", "reason", "scope": "layer"} (the
    # scoped override of OpInfo's DecorateInfo): merged into the table's by reports.tolerances
    tolerance: Mapping | None = None
    forwards_of: str | None = None
    # another op whose per-oracle forwards compute this one: same inputs and dims, other
    # contracts or shapes (the course's conv_forward_naive is conv on the shapes it promises)
    conditions: Mapping[str, Callable[[Mapping], bool]] = field(default_factory=dict)
    # what a case's dims may say of it that a mistake can be confined to, by name ->
    # dims -> bool: every record carries each one's value (reports.compare), and a finding
    # whose failing cases all have one that none of its agreeing cases has names it as the
    # likely cause ("fails only where pooling windows overlap (stride < pool)")

    def framework_forward(self, forwards: Mapping) -> Callable | None:
        """An oracle's own forward for this op from its ``FORWARDS`` table (keyed by the op's
        name, or by the op its ``forwards_of`` names), unless a declared layer brings its own."""
        return None if self.forwards else forwards.get(self.forwards_of or self.name)

    def forward_for(self, oracle: str, xp) -> Callable:
        """The op's forward ``(arrays, dims) -> out`` for ``oracle`` ("torch", "jax", "numeric")
        where that oracle has none of its own: a declared layer's ``forwards[oracle]``, else
        ``reference`` run with the array namespace ``xp``.

        Raises:
            NotImplementedError: the op has neither.
        """
        if oracle in self.forwards:
            return self.forwards[oracle]
        if self.reference is None:
            raise NotImplementedError(f"op {self.name!r} has neither a {oracle} forward nor a reference forward")
        return lambda arrays, dims: self.reference(xp, arrays, dims)

    @property
    def functions(self) -> tuple[str, ...]:
        """The function names of the op's first contract (ours), for messages."""
        return self.contracts[0].functions

    @property
    def differentiable(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.inputs if spec.differentiable)

    def resolve_dims(self, dims: Mapping) -> dict:
        """Return ``dims`` with the derived dims added."""
        full = dict(dims)
        for name, fn in self.derived.items():
            full[name] = fn(full)
        return full

    def case_dims(self) -> list[dict]:
        """Every dims a case of the op can have, derived dims included: each matrix's dims
        dicts, crossed with its batch sizes where they fix no N, and the kink cases'."""
        every = [dims for matrix, dicts in self.shapes.items() for shape in dicts
                 for dims in batch_crossed(shape, {*BATCH_SIZES.get(matrix, ()), *MODE_BATCH_SIZES.get(matrix, ())})]
        return [self.resolve_dims(dims) for dims in (*every, *self.kink_shapes)]

    def shape_of(self, shape: tuple, dims: Mapping) -> tuple[int, ...]:
        """Concrete shape of a dims-tuple such as ``("N", "D")``."""
        return concrete_shape(shape, dims)


def concrete_shape(shape: tuple, dims: Mapping) -> tuple[int, ...]:
    """The ints of a dims-tuple such as ``("N", "HW")`` at ``dims`` (a tuple-valued dim splats)."""
    out: list[int] = []
    for dim in shape:
        value = dims[dim] if isinstance(dim, str) else dim
        out.extend(value if isinstance(value, tuple) else (value,))
    return tuple(int(v) for v in out)


def batch_crossed(shape: Mapping, batch_sizes) -> list[dict]:
    """The dims of the cases of one shape: N first, the shape's own or each of ``batch_sizes``
    where it fixes none, then the shape's other dims; a shape with N None (a declared
    layer's, whose inputs have their own shapes) has no N dim at all."""
    rest = {k: v for k, v in shape.items() if k != "N"}
    return [{**({"N": n} if n is not None else {}), **rest}
            for n in ((shape["N"],) if "N" in shape else batch_sizes)]


def windows_out(window: str, pad: str | None = None) -> Callable[[Mapping], tuple]:
    """Derived dim HWo: windows along each spatial axis, 1 + (size + 2 pad - window) // stride."""
    def out(d):
        windows = d[window] if isinstance(d[window], tuple) else (d[window],) * len(d["HW"])
        padding = d[pad] if pad else 0
        return tuple(1 + (size + 2 * padding - k) // d["stride"] for size, k in zip(d["HW"], windows))
    return out


def window(dims: Mapping, name: str = "pool") -> tuple[int, int]:
    """A window's (height, width): the dim ``name``, one int for a square window or a pair."""
    size = dims[name]
    return tuple(size) if isinstance(size, (tuple, list)) else (size, size)


# pooling windows that share pixels: a pixel can be the maximum of several windows, and
# its gradient is then the sum of theirs (an assignment keeps only the last)
OVERLAPPING_WINDOWS = {"pooling windows overlap (stride < pool)": lambda d: d["stride"] < max(window(d))}


# Batch sizes (the N dim), crossed with every shape of a matrix that does not fix N itself.
# The default matrix fixes N per shape: JAX compiles once per op, dims and dtype (0.1 to
# 0.3 s each on one core), so it covers N = 1 and N > 1 with few distinct shapes and spends
# its time on seeds instead, which reuse the compiled code.
BATCH_SIZES: dict[str, tuple[int, ...]] = {
    "default": (1, 8, 32),
    "full": (1, 2, 8, 32, 128),
    "large": (),  # every large shape fixes N
}
SEEDS: dict[str, int] = {"default": 4, "full": 5, "large": 1}  # seeds 0 .. n-1

# The large matrix ("large" in an entry's shapes): GPU-sized products (N, D, H up to 4096)
# of the matmul ops, where reduced-precision float32 matmuls (TF32) show.  It has no kink
# cases and no per-element numeric oracle (16.7 million parameters would take hours):
# manual in float64, itself checked against the numeric oracle on the default and full
# matrices, is its reference.

# Forward-mode ("jvp") and second-order ("hvp") cases: in the default matrix each op's shape
# with the largest N (see oracles.cases._mode_shapes), in the full matrix every shape at the
# batch sizes below; the first seeds only.  The identity they check holds for any draw, so
# more draws mostly add time (a JAX compilation per op, dims and dtype); the reverse-mode
# cases keep the full product, N = 1 included.  Seeds are further capped by --seeds.
MODE_BATCH_SIZES: dict[str, tuple[int, ...]] = {"default": (32,), "full": (8, 128), "large": ()}
MODE_SEEDS: dict[str, int] = {"default": 1, "full": 2, "large": 1}
DTYPES: tuple[str, ...] = ("float64", "float32")
MATRICES: tuple[str, ...] = ("default", "full", "large")
# oracles that cannot run a matrix (the numeric oracle's per-element differences at GPU sizes)
SKIPS_ORACLES: dict[str, tuple[str, ...]] = {"large": ("numeric",)}
