"""gradmatrix beside its peers on the same cases: ``torch.autograd.gradcheck`` (full and fast
mode) and ``jax.test_util.check_grads`` (reverse mode, order 1), against gradmatrix checking
manual, torch, jax and numeric pairwise on those cases.

The cases are the default matrix's float64 reverse-mode cases (random draws) of every op
``manual`` implements.  Each peer checks one framework's own gradient against its own numeric
differences; gradmatrix evaluates four implementations once per case and compares all six
pairs, with per-element error bounds.  Prints wall seconds per tool and the ratios.

    .venv/bin/python benchmarks/peer_checks.py
    .venv/bin/python benchmarks/peer_checks.py --ops affine conv
"""

from __future__ import annotations

import argparse
import sys
import time


def _cases(ops):
    from gradmatrix.oracles.cases import draw_inputs, matrix_cases

    cases = [c for c in matrix_cases("default", ops, ["float64"], None, ["reverse"]) if c.kind == "random"]
    return [draw_inputs(c) for c in cases]


def _torch_function(inputs):
    """(function of the differentiable tensors, those tensors) for torch's gradcheck: the
    op's torch forward, projected on the case's upstream gradient like every oracle."""
    import torch

    from gradmatrix.oracles import torch_oracle

    spec = inputs.case.spec
    forward = torch_oracle.forward_of(spec)
    dims = inputs.case.dim_map
    names = spec.differentiable
    const = {k: torch.tensor(v) for k, v in inputs.arrays.items() if k not in names}
    dout = None if inputs.dout is None else torch.tensor(inputs.dout)
    tensors = tuple(torch.tensor(inputs.arrays[n], requires_grad=True) for n in names)

    def f(*diff):
        out = forward({**const, **dict(zip(names, diff))}, dims)
        return out if dout is None else (out * dout).sum()

    return f, tensors


def _jax_function(inputs):
    import jax.numpy as jnp

    from gradmatrix.oracles import jax_oracle
    from gradmatrix.oracles.catalog import CATALOG

    spec = inputs.case.spec
    forward = jax_oracle.forward_of(CATALOG[spec.name])
    dims = inputs.case.dim_map
    names = spec.differentiable
    const = {k: jnp.asarray(v) for k, v in inputs.arrays.items() if k not in names}
    dout = None if inputs.dout is None else jnp.asarray(inputs.dout)

    def f(*diff):  # check_grads perturbs with NumPy arrays: the forward gets JAX arrays, as in the oracle
        out = forward({**const, **{n: jnp.asarray(d) for n, d in zip(names, diff)}}, dims)
        return out if dout is None else (out * dout).sum()

    return f, tuple(jnp.asarray(inputs.arrays[n]) for n in names)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", nargs="+", metavar="OP", help="limit to these ops (default: every op)")
    args = parser.parse_args(argv)

    import torch
    from jax.test_util import check_grads

    from gradmatrix import manual
    from gradmatrix.oracles.candidate import Candidate
    from gradmatrix.runner import Comparison, Runner, pairs

    all_inputs = _cases(args.ops or Candidate(manual).ops)  # the ops all four implementations have
    print(f"{len(all_inputs)} float64 reverse-mode cases of the default matrix")
    wall = {}

    def timed(name, check):
        start = time.perf_counter()
        failures = sum(0 if check(inputs) else 1 for inputs in all_inputs)
        wall[name] = time.perf_counter() - start
        print(f"{name:40} {wall[name]:7.2f} s  ({failures} case(s) reported wrong)", flush=True)

    def torch_check(fast):
        def check(inputs):
            f, tensors = _torch_function(inputs)
            return torch.autograd.gradcheck(f, tensors, fast_mode=fast, raise_exception=False)
        return check

    def jax_check(inputs):
        f, arrays = _jax_function(inputs)
        try:
            check_grads(f, arrays, order=1, modes=["rev"])
        except AssertionError:
            return False
        return True

    runner = Runner(Candidate(manual, "manual"))

    def gradmatrix_check(inputs):
        records = [runner.run(Comparison(inputs.case, pair), inputs=inputs) for pair in pairs("manual", runner.impls)]
        return all(r["verdict"] in ("agree", "convention") for r in records)

    # warm each tool's imports and first-call costs outside the timings
    first = all_inputs[0]
    torch_check(False)(first), jax_check(first), gradmatrix_check(first)

    timed("torch gradcheck (full)", torch_check(False))
    timed("torch gradcheck (fast_mode)", torch_check(True))
    timed("jax check_grads (rev, order 1)", jax_check)
    from gradmatrix.oracles import jax_oracle

    # gradmatrix twice: as this process finds the store of compiled JAX functions (compiled
    # where it has none), then as a new process finds it after a first run (every function
    # loaded from the store, nothing compiled)
    before = dict(jax_oracle.COMPILE_STATS)
    timed("gradmatrix (4 implementations, 6 pairs)", gradmatrix_check)
    compiled = jax_oracle.COMPILE_STATS["compilations"] - before["compilations"]
    jax_oracle._EXECUTABLES.clear()
    runner = Runner(Candidate(manual, "manual"))
    timed("gradmatrix, functions stored", gradmatrix_check)
    print(f"gradmatrix's JAX functions: {compiled} compiled in the first pass; store {jax_oracle.cache_dir()} "
          f"(GRADMATRIX_JAX_CACHE=off: none, every pass compiles)")
    print()
    for base in ("gradmatrix (4 implementations, 6 pairs)", "gradmatrix, functions stored"):
        for name, seconds in wall.items():
            if not name.startswith("gradmatrix"):
                print(f"{name} / {base}: {seconds / wall[base]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
