"""What the default matrix covers, per op: each parameter of a signature takes each class of
value it has, and the batch reaches 32.

A wrong gradient passes wherever no case exposes it: a conv backward that hard-codes pad = 1
agrees on every case with pad 1, a max-pool backward that hard-codes stride = 2 on every
case with stride 2, a db that sums the first 16 rows on every case with N <= 16
(tests/mutants: conv_pad_hardcoded_1, max_pool_stride_hardcoded_2, affine_db_first_16_rows,
which tests/test_corpus.py holds to being caught).  These tests read the cases
``matrix_cases`` builds for the default matrix (reverse mode, one seed), not the catalog's
tuples, so what is asserted is what runs.

CS231n's layers declared in ``oracles/contracts/cs231n/layers.py`` have shapes of their own, not yet widened:
where they miss a class their test is a strict xfail naming it (``NOT_YET``), which turns
into a failure the day their shapes cover it.
"""

from __future__ import annotations

import pytest

from gradmatrix.oracles.catalog import CATALOG
from gradmatrix.oracles.cases import matrix_cases
from gradmatrix.oracles.contract import Keyword, Packed

BATCH = 32  # past a batch of 16: a sum over a slice of the rows, a fixed-size buffer

# op -> the classes its default shapes in oracles/contracts/cs231n/layers.py do not cover yet
NOT_YET: dict[str, set[str]] = {}


def _param(op: str, check: str):
    marks = [pytest.mark.xfail(strict=True, reason=f"{op}'s default shapes (oracles/contracts/cs231n/layers.py) do not "
                                                   f"cover {check} yet")] if check in NOT_YET.get(op, ()) else []
    return pytest.param(op, id=op, marks=marks)


def cases(op: str) -> list[dict]:
    """The dims (derived ones included) of the op's reverse-mode random cases in the default matrix."""
    return [c.dim_map for c in matrix_cases("default", [op], ["float64"], 1, ["reverse"]) if c.kind == "random"]


def passed_dims(op: str) -> set[str]:
    """The dims a candidate's functions are given (stride, pad, eps, p, reg, ...): those its
    signature lets vary, read from the op's contracts."""
    spec = CATALOG[op]
    inputs = {s.name for s in spec.inputs}
    found = set()
    for contract in spec.contracts:
        args = [a for field in ("args", "init", "loss", "positional") for a in getattr(contract, field, None) or ()
            if not callable(a)]
        args += [contract.shared] if getattr(contract, "shared", None) is not None else []
        for arg in args:
            sources = ([source for _, source in arg.fields] if isinstance(arg, Packed)
                       else [arg.source or arg.name] if isinstance(arg, Keyword) else [arg])
            found |= {s for s in sources if isinstance(s, str) and s not in inputs}
    return found


def sizes(op: str) -> list[int]:
    """Every size an input's shape takes in the op's default cases (tuple dims splatted)."""
    spec = CATALOG[op]
    names = {d for s in spec.inputs for d in s.shape if isinstance(d, str)}
    out = []
    for dims in cases(op):
        for name in names:
            value = dims[name]
            out.extend(value if isinstance(value, tuple) else (value,))
    return out


def ops_where(predicate) -> list[str]:
    return [op for op in CATALOG if predicate(op)]


def batched(op: str) -> bool:
    return any("N" in s.shape for s in CATALOG[op].inputs)


def test_the_families_below_cover_the_catalog():
    # score_net alone takes one sample (no input has N): its batch sizes only give more draws
    assert [op for op in CATALOG if not batched(op)] == ["score_net"]
    assert set(NOT_YET) <= set(CATALOG)
    assert {"conv", "conv_relu", "conv_relu_pool", "conv_bn_relu", "conv_naive"} == set(ops_where(
        lambda op: "pad" in passed_dims(op)))
    # a pooling window, as one size or as the course's pool_height and pool_width
    assert {"max_pool", "max_pool_naive", "conv_relu_pool"} == set(ops_where(
        lambda op: "pool" in passed_dims(op) or {"PH", "PW"} <= passed_dims(op)))


@pytest.mark.parametrize("op", [_param(op, "batch") for op in ops_where(batched)])
def test_the_batch_reaches_32(op):
    batches = sorted({dims["N"] for dims in cases(op)})
    assert batches[-1] >= BATCH, f"{op}: batch sizes {batches}, none reaches {BATCH}"


@pytest.mark.parametrize("op", [_param(op, "sizes") for op in CATALOG])
def test_sizes_are_odd_and_even(op):
    found = sorted(set(sizes(op)))
    assert any(s % 2 == 1 and s > 1 for s in found) and any(s % 2 == 0 for s in found), \
        f"{op}: input sizes {found} lack an odd size above 1 or an even one"


@pytest.mark.parametrize("op", ops_where(lambda op: "pad" in passed_dims(op)))
def test_convolutions_take_pad_0_and_more_stride_1_and_2_on_non_square_inputs(op):
    pads = {dims["pad"] for dims in cases(op)}
    assert 0 in pads and max(pads) > 0, f"{op}: pads {sorted(pads)}"
    non_square = {dims["stride"] for dims in cases(op) if dims["HW"][0] != dims["HW"][1]}
    assert {1, 2} <= non_square, f"{op}: strides on non-square inputs {sorted(non_square)}"


def test_conv_takes_pad_0_1_and_2():
    assert {dims["pad"] for dims in cases("conv")} >= {0, 1, 2}


def _unread(size: int, window: int, stride: int, pad: int) -> int:
    """Rows of x (not of its padding) that no window reads: windows start at multiples of
    ``stride`` on the padded axis; a row is read when some window covers it."""
    out = 1 + (size + 2 * pad - window) // stride
    read = {start + k for start in range(0, out * stride, stride) for k in range(window)}
    return sum(1 for row in range(pad, pad + size) if row not in read)


@pytest.mark.parametrize("op, window", [("conv", "K"), ("max_pool", "pool")])
def test_some_pixel_of_x_is_read_by_no_window(op, window):
    # there dx must be 0: a backward that assumes the windows tile x (or cover it) is off
    def unread(dims):
        windows = dims[window] if isinstance(dims[window], tuple) else (dims[window],) * 2
        return sum(_unread(s, k, dims["stride"], dims.get("pad", 0)) for s, k in zip(dims["HW"], windows))
    assert any(unread(dims) for dims in cases(op))


@pytest.mark.parametrize("op", [_param(op, "pool-stride") for op in ("max_pool", "max_pool_naive")])
def test_pooling_windows_overlap_and_not_with_stride_1_and_2(op):
    from gradmatrix.oracles.spec import window

    shapes = [(max(window(dims)), dims["stride"]) for dims in cases(op)]
    assert len({pool for pool, _ in shapes}) >= 2, f"{op}: one pool size in {shapes}"
    assert {1, 2} <= {stride for _, stride in shapes}, f"{op}: strides in {shapes}"
    assert {stride < pool for pool, stride in shapes} == {True, False}, f"{op}: (pool, stride) {shapes}"


def test_conv_relu_pool_takes_two_pool_sizes():
    # the course's pool_param has stride = pool: its windows never overlap, their size varies
    assert len({dims["pool"] for dims in cases("conv_relu_pool")}) >= 2


@pytest.mark.parametrize("op", [_param(op, "eps") for op in ops_where(lambda op: "eps" in passed_dims(op))])
def test_eps_is_negligible_in_one_case_and_matters_in_another(op):
    # eps 1e-5 against O(1) variances hides where eps goes (inside or outside the root, or
    # nowhere) below float32's resolution; eps of 1e-2 or more shows it in both dtypes
    eps = sorted({dims["eps"] for dims in cases(op)})
    assert eps[0] <= 1e-5 and eps[-1] >= 1e-2, f"{op}: eps {eps}"


@pytest.mark.parametrize("op", ops_where(lambda op: "p" in passed_dims(op)))
def test_dropout_p_below_and_above_one_half(op):
    ps = {dims["p"] for dims in cases(op)}
    assert any(0 < p < 0.5 for p in ps) and any(0.5 <= p < 1 for p in ps), f"{op}: p {sorted(ps)}"
