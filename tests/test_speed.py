"""What makes a run fast changes no result: compiled JAX functions stored whole and loaded
back, compilation ahead of the run on a background thread, and the CPU compiler options.
(The speed itself is measured in ``benchmarks/``, never asserted here.)"""

import numpy as np
import pytest

from gradmatrix import manual
from gradmatrix.oracles import jax_oracle, jax_store
from gradmatrix.oracles.candidate import Candidate
from gradmatrix.oracles.cases import Case, draw_inputs, matrix_cases
from gradmatrix.oracles.catalog import CATALOG
from gradmatrix.runner import Runner, default_plan

# softmax_loss included: XLA cannot reload its CPU executable (a fused kernel is lost on the
# way), which must then be compiled again rather than stored (a stored one fails when called)
CASES = list({(c.op, c.dtype): c for c in matrix_cases("default", ["softmax_loss", "conv", "batchnorm"], seeds=1)
              if c.kind == "random"}.values())




def _same(a, b) -> bool:
    return np.array_equal(a.forward, b.forward) and a.grads.keys() == b.grads.keys() and all(
        np.array_equal(a.grads[k], b.grads[k]) for k in a.grads)


def test_a_stored_function_loads_back_and_computes_bitwise_the_same(empty_store):
    inputs = [draw_inputs(case) for case in CASES]
    compiled = [jax_oracle.evaluate(i) for i in inputs]
    stored = list((empty_store / "executables").glob("*.jaxfn"))
    assert 0 < len(stored) <= len(CASES)
    jax_store._EXECUTABLES.clear()  # a new process: only what is on disk
    loaded_before, rejected_before = jax_store.COMPILE_STATS["loaded"], jax_store.COMPILE_STATS["rejected"]
    again = [jax_oracle.evaluate(i) for i in inputs]
    assert jax_store.COMPILE_STATS["loaded"] - loaded_before == len(stored)
    assert jax_store.COMPILE_STATS["rejected"] == rejected_before  # each passed its check on load
    assert all(_same(a, b) and not b.notes for a, b in zip(compiled, again))


def test_a_function_larger_than_the_store_keeps_is_not_stored_and_a_loaded_one_counts_as_used(empty_store,
                                                                                               monkeypatch):
    import json
    import os

    from gradmatrix.oracles import cache

    monkeypatch.setattr(cache, "_STORED", {})  # what this process stored: only the store made here
    case = CASES[1]
    monkeypatch.setattr(cache, "LARGEST", 10)
    first = jax_oracle.evaluate(draw_inputs(case))
    assert not list((empty_store / "executables").glob("*.jaxfn")) and not cache._STORED
    monkeypatch.setattr(cache, "LARGEST", 64_000_000)
    jax_store._EXECUTABLES.clear()
    jax_oracle.evaluate(draw_inputs(case))
    (path,) = (empty_store / "executables").glob("*.jaxfn")
    # counted towards the store's bound at once (a host process is stopped, never left to its exit)
    assert json.loads((empty_store / cache._SIZE).read_text())["bytes"] == path.stat().st_size
    os.utime(path, (1_600_000_000.0, 1_600_000_000.0))
    jax_store._EXECUTABLES.clear()
    again = jax_oracle.evaluate(draw_inputs(case))
    assert _same(first, again) and path.stat().st_mtime > 1_600_000_000.0 + 86_400


def test_a_damaged_stored_function_is_compiled_again(empty_store):
    case = CASES[1]
    first = jax_oracle.evaluate(draw_inputs(case))
    (path,) = (empty_store / "executables").glob("*.jaxfn")
    path.write_bytes(b"not an executable")
    jax_store._EXECUTABLES.clear()
    with pytest.warns(jax_store.StoreWarning):
        again = jax_oracle.evaluate(draw_inputs(case))
    assert _same(first, again) and "rebuilt" in again.notes[0]


def test_only_the_catalogs_own_ops_are_stored():
    spec = CATALOG["relu"]
    dims, args = jax_oracle._arguments("vjp", draw_inputs(Case("relu", (("N", 2), ("D", 3)), 0, "float64")), "cpu")
    assert jax_store.store_key("vjp", spec, dims, "float64", "cpu", args) is not None
    from dataclasses import replace
    declared = replace(spec)  # the same op declared again (a user's layer of that name): not the catalog's
    assert jax_store.store_key("vjp", declared, dims, "float64", "cpu", args) is None


def test_compiling_ahead_gives_the_same_records_and_stops_with_the_run(empty_store):
    plan = default_plan(ops=["affine", "layernorm", "softmax_loss"], seeds=1)
    ahead = Runner(Candidate(manual, "manual"))
    ahead.compile_ahead(plan)
    threads = list(ahead._ahead)
    assert threads  # jax runs here, on the CPU
    with_ahead = [ahead.run(c) for c in plan]
    ahead.close()
    assert not ahead._ahead and not any(t._thread.is_alive() for t in threads)
    jax_store._EXECUTABLES.clear()
    plain = Runner(Candidate(manual, "manual"))
    without = [plain.run(c) for c in plan]
    drop = ("duration_s",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in with_ahead] == \
           [{k: v for k, v in r.items() if k not in drop} for r in without]
