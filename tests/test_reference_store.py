"""The store of the oracles' results (``oracles.reference_store``): a check whose references
are stored gives the same records without importing torch or JAX; the candidate is always
run; what is not gradmatrix's own, or not the result asked for, is never used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gradmatrix import manual
from gradmatrix.oracles import reference_store
from gradmatrix.oracles.candidate import Candidate
from gradmatrix.oracles.cases import draw_inputs
from gradmatrix.runner import Runner, default_plan

ROOT = Path(__file__).resolve().parent.parent
CORRECT = ROOT / "tests" / "cs231n" / "layers.py"
WRONG = ROOT / "tests" / "one_bug" / "relu_sign_error.py"


def _check(path: Path, store: Path, out: Path, ops=("relu", "affine")) -> dict:
    """``gradmatrix.check`` in a fresh process: its status, the records, and whether torch or
    JAX were imported there."""
    out.mkdir()
    script = (f"import json, sys, gradmatrix\n"
              f"from gradmatrix.runner import Runner\n"
              f"planned = []  # the runner planning a host's jobs: on an empty store, never on a full one\n"
              f"start = Runner._start_host\n"
              f"Runner._start_host = lambda self, *a, **k: planned.append(a[0]) or start(self, *a, **k)\n"
              f"r = gradmatrix.check({str(path)!r}, ops={list(ops)!r}, dtypes=['float64', 'float32'], seeds=1)\n"
              f"open('records.json', 'w').write(json.dumps(r.document['comparisons']))\n"
              f"print(json.dumps({{'status': r.status, 'torch': 'torch' in sys.modules, 'jax': 'jax' in sys.modules,\n"
              f"                  'planned': planned}}))")
    env = dict(os.environ, GRADMATRIX_JAX_CACHE=str(store))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=out,
                          stdin=subprocess.DEVNULL, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    found["records"] = json.loads((out / "records.json").read_text())
    return found


def _values(records: list) -> dict:
    """What a comparison measured, by id (no timings)."""
    return {r["id"]: (r["verdict"], json.dumps(r.get("tensors"), sort_keys=True)) for r in records}


def test_a_stored_check_gives_the_same_records_without_importing_torch_or_jax(tmp_path):
    store = tmp_path / "store"
    cold = _check(CORRECT, store, tmp_path / "cold")
    # computed: torch here, JAX in its host process (gradmatrix.oracle_host), which stores nothing itself
    assert cold["status"] == 0 and cold["torch"] and not cold["jax"] and cold["planned"] == ["jax"]
    assert any(r["pair"][1] == "jax" for r in cold["records"])
    assert list((store / "references").glob("*.result"))
    warm = _check(CORRECT, store, tmp_path / "warm")
    # every result the plan wants is stored (a jvp case wants jax.jvp, not the reverse mode it
    # could also give): no host is planned, no framework imported
    assert warm["status"] == 0 and not warm["torch"] and not warm["jax"] and warm["planned"] == []
    assert _values(warm["records"]) == _values(cold["records"])
    # the candidate is never stored: a wrong one after a correct one fails on the stored references
    wrong = _check(WRONG, store, tmp_path / "wrong", ops=["relu"])
    assert wrong["status"] == 1
    failed = {r["pair"][1] for r in wrong["records"] if r["verdict"] == "disagree" and r["op"] == "relu"}
    assert {"torch", "jax", "numeric"} <= failed


def _relu_run(tmp_path, monkeypatch) -> tuple:
    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", str(tmp_path))
    plan = [c for c in default_plan("default", ["relu"], ["float64"], 1, ("torch", "numeric")) if c.case.kind == "random"]
    runner = Runner(Candidate(manual, "manual"), ("torch", "numeric"), store_writes=True)
    records = [runner.run(c) for c in plan]
    runner.close()  # the results stored are written
    return plan, records


@pytest.mark.parametrize("damage", ["truncated", "other result", "flipped byte"])
def test_a_damaged_or_foreign_stored_result_is_removed_and_computed_again(tmp_path, monkeypatch, damage):
    plan, first = _relu_run(tmp_path, monkeypatch)
    files = sorted((tmp_path / "references").glob("*.result"))
    assert len(files) >= 2
    victim, other = files[0], files[1]
    data = victim.read_bytes()
    if damage == "truncated":
        victim.write_bytes(data[: len(data) // 2])
    elif damage == "other result":
        victim.write_bytes(other.read_bytes())
    else:
        victim.write_bytes(data[:-5] + bytes([data[-5] ^ 0xFF]) + data[-4:])
    before = dict(reference_store.STATS)
    _, again = _relu_run(tmp_path, monkeypatch)
    assert reference_store.STATS["rejected"] == before["rejected"] + 1
    assert [(r["id"], r["verdict"], r.get("tensors")) for r in again] == [(r["id"], r["verdict"], r.get("tensors"))
                                                                          for r in first]
    assert victim.read_bytes() != data[: len(data) // 2] and len(list((tmp_path / "references").glob("*.result"))) == len(files)


def test_only_gradmatrix_own_specs_are_stored(tmp_path, monkeypatch):
    import gradmatrix
    from gradmatrix.oracles.declared import build, declarations_in

    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", str(tmp_path))
    plan = default_plan("default", ["relu"], ["float64"], 1, ("numeric",))
    assert reference_store.key(plan[0].case, "numeric", "default", "cpu") is not None

    def scale(x):
        return 2.0 * x, None

    layer = gradmatrix.layer(forward=scale, backward=lambda dout, cache: 2.0 * dout, shapes={"x": (4, 3)})

    class Module:  # a user's module declaring one layer
        pass

    Module.my_scale = layer
    spec, _ = build(next(iter(declarations_in(Module))), Module)
    from dataclasses import replace
    case = replace(plan[0].case, op=spec.name, entry=spec)
    assert reference_store.key(case, "numeric", "default", "cpu") is None
    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", "off")
    assert reference_store.key(plan[0].case, "numeric", "default", "cpu") is None


def test_the_key_follows_the_inputs_a_candidate_drew(tmp_path, monkeypatch):
    """The course's dropout mask is the candidate's: two masks are two keys."""
    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", str(tmp_path))
    case = next(c.case for c in default_plan("default", ["dropout_train"], ["float64"], 1, ("numeric",)))
    mask = draw_inputs(case).arrays["mask"]
    keys = [reference_store.key(case, "numeric", "default", "cpu", reference_store.digest_arrays({"mask": m}))
            for m in (mask, np.logical_not(mask).astype(mask.dtype))]
    assert keys[0] != keys[1] and keys[0] == reference_store.key(
        case, "numeric", "default", "cpu", reference_store.digest_arrays({"mask": mask.copy()}))


POISON = """
from gradmatrix.manual import sigmoid_forward, sigmoid_backward
from gradmatrix.oracles import numeric, torch_oracle

_evaluate = numeric.evaluate


def _doubled(inputs, **options):  # code under test changing what an oracle computes
    result = _evaluate(inputs, **options)
    result.grads = {k: 2 * v for k, v in result.grads.items()}
    return result


numeric.evaluate = _doubled
"""

WRONG_SIGMOID = """
from gradmatrix.manual import sigmoid_forward, sigmoid_backward as _right


def sigmoid_backward(dout, cache):
    return 2 * _right(dout, cache)
"""


def test_code_in_the_judges_process_never_writes_the_store(tmp_path, monkeypatch):
    """A module checked in this process (a module object) could change the oracles: what
    they compute then must not reach a later run of another candidate."""
    import importlib.util

    import gradmatrix

    store = tmp_path / "store"
    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", str(store))
    (tmp_path / "poison.py").write_text(POISON)
    spec = importlib.util.spec_from_file_location("poison", tmp_path / "poison.py")
    poison = importlib.util.module_from_spec(spec)
    from gradmatrix.oracles import numeric

    monkeypatch.setattr(numeric, "evaluate", numeric.evaluate)  # undone after the test
    spec.loader.exec_module(poison)
    selection = dict(ops="sigmoid", dtypes="float64", seeds=1, oracles="numeric", modes="reverse")
    assert gradmatrix.check(poison, **selection).document["run"]["isolated"] is False
    assert not list(store.rglob("*.result"))
    monkeypatch.undo()
    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", str(store))
    (tmp_path / "wrong.py").write_text(WRONG_SIGMOID)
    assert not gradmatrix.check(str(tmp_path / "wrong.py"), **selection).passed


def test_a_store_that_cannot_be_written_costs_only_speed(tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")  # the store's folder cannot be made under it
    plan, records = _relu_run(blocked, monkeypatch)
    assert records and all(r["verdict"] in ("agree", "convention") for r in records)
    assert blocked.read_text() == "not a folder"


def test_a_result_stored_by_another_process_after_the_listing_is_used(tmp_path, monkeypatch):
    # a long-lived process (a suite's worker, a class's judge) lists the store once; a result
    # that a run beside it stores later is read, not computed again
    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", str(tmp_path))
    case = default_plan("default", ["relu"], ["float64"], 1, ("numeric",))[0].case
    key = reference_store.key(case, "numeric", "default", "cpu")
    assert not reference_store.has(key) and reference_store.load(key) is None  # listed: nothing
    script = ("import sys\n"
              "from gradmatrix import manual\n"
              "from gradmatrix.oracles.candidate import Candidate\n"
              "from gradmatrix.runner import Runner, default_plan\n"
              "plan = default_plan('default', ['relu'], ['float64'], 1, ('numeric',))[:1]\n"
              "runner = Runner(Candidate(manual, 'manual'), ('numeric',), store_writes=True)\n"
              "print(runner.run(plan[0])['verdict'])\n"
              "runner.close()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env=dict(os.environ, GRADMATRIX_JAX_CACHE=str(tmp_path)), timeout=300)
    assert done.returncode == 0 and done.stdout.split() == ["agree"], done.stdout + done.stderr
    before = reference_store.STATS["loaded"]
    assert reference_store.has(key)
    stored = reference_store.load(key)
    assert stored is not None and reference_store.STATS["loaded"] == before + 1
    x = draw_inputs(case).arrays["x"]
    np.testing.assert_allclose(stored.grads["x"], (x > 0).astype(np.float64), atol=1e-6)


def test_a_result_removed_since_the_listing_is_no_longer_listed(tmp_path, monkeypatch):
    # gradmatrix cache clear, or another run keeping the store under its bound: the listing
    # follows, so the run plans that result as computed, not as stored
    plan, _ = _relu_run(tmp_path, monkeypatch)
    key = reference_store.key(plan[0].case, "numeric", "default", "cpu")
    assert reference_store.has(key)
    reference_store._path(key).unlink()
    assert reference_store.load(key) is None and not reference_store.has(key)


def test_a_keys_path_follows_the_store_it_is_asked_in(tmp_path, monkeypatch):
    # a key's path is made once per key and store: the same key asked in another store is there
    case = default_plan("default", ["relu"], ["float64"], 1, ("numeric",))[0].case
    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", str(tmp_path / "a"))
    key = reference_store.key(case, "numeric", "default", "cpu")
    first = reference_store._path(key)
    assert reference_store._path(key) is first and first.is_relative_to(tmp_path / "a")
    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", str(tmp_path / "b"))
    assert reference_store._path(key) == tmp_path / "b" / first.relative_to(tmp_path / "a")


def _aged(folder: Path, names: list, size: int, start: float) -> list:
    """Store files of ``size`` bytes, each last used a minute after the one before."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        path = folder / name
        path.write_bytes(b"x" * size)
        os.utime(path, (start + 60 * i, start + 60 * i))
        paths.append(path)
    return paths


def test_the_store_is_kept_under_its_limit_least_recently_used_first(tmp_path, monkeypatch):
    from gradmatrix.oracles import cache

    monkeypatch.setattr(cache, "_STORED", {})  # what this process stored: only the store made here
    start = 1_700_000_000.0
    files = _aged(tmp_path / "references", [f"r{i}.result" for i in range(6)], 100, start)
    files += _aged(tmp_path / "executables", [f"f{i}.jaxfn" for i in range(4)], 100, start + 30)
    others = _aged(tmp_path / "references", ["notes.txt", "draft.tmp"], 500, start - 600)  # not the store's own
    others += _aged(tmp_path, ["size.json"], 500, start - 600)
    writing = _aged(tmp_path / "references", [f"{'a' * 64}.12.34.tmp"], 500, time.time())  # a writer at work
    dead = _aged(tmp_path / "executables", [f"{'b' * 64}.56.78.tmp"], 500, start - 600)  # a writer that died
    oldest_first = sorted(files, key=lambda p: p.stat().st_mtime)
    # 1,000 bytes over a limit of 600: the least recently used go until 450 at most are left
    cache.stored(tmp_path, 100)
    removed = cache.settle(limit=600)
    assert sorted(removed) == sorted(oldest_first[:6] + dead)
    assert all(p.exists() for p in oldest_first[6:] + others + writing)
    assert (tmp_path / "size.json").read_bytes() == b"x" * 500  # a file of that name is not the store's record
    # within the hour, what is stored is counted, not measured, while the count stays under the limit
    cache.stored(tmp_path, 100)
    assert cache.settle(limit=600) == [] and json.loads((tmp_path / cache._SIZE).read_text())["bytes"] == 500
    # a count past it has the store measured at once
    new = _aged(tmp_path / "references", ["r7.result", "r8.result"], 400, start + 10_000)
    cache.stored(tmp_path, 800)
    assert sorted(cache.settle(limit=600)) == sorted(oldest_first[6:] + new[:1])
    # a measure from a clock that has gone back, or over an hour old, is taken again
    for at in (time.time() + 86_400, time.time() - 7_200):
        (tmp_path / cache._SIZE).write_text(json.dumps({"bytes": 0, "at": at}))
        cache.stored(tmp_path, 1)
        assert cache.settle(limit=10_000) == []
        assert abs(json.loads((tmp_path / cache._SIZE).read_text())["at"] - time.time()) < 60


def test_a_run_keeps_the_bound_after_its_writes_and_keeps_what_it_loaded(tmp_path, monkeypatch):
    from gradmatrix.oracles import cache

    monkeypatch.setattr(cache, "_STORED", {})
    _relu_run(tmp_path, monkeypatch)
    results = sorted((tmp_path / "references").glob("*.result"))
    size = sum(p.stat().st_size for p in results)
    results[0].unlink()  # computed and stored again by the next run: it settles the store after that write
    for path in results[1:]:  # used before the old files were; the next run loads them
        os.utime(path, (1_600_000_000.0, 1_600_000_000.0))
    old = _aged(tmp_path / "references", ["old0.result", "old1.result"], size, 1_700_000_000.0)
    (tmp_path / cache._SIZE).unlink()  # never measured: the next settle measures
    # 3 sizes over a limit of 2.5: removed until 1.875 at most are left, both old files
    monkeypatch.setattr(cache, "LIMIT", size * 5 // 2)
    plan, records = _relu_run(tmp_path, monkeypatch)
    assert records and all(r["verdict"] in ("agree", "convention") for r in records)
    assert not any(p.exists() for p in old) and all(p.exists() for p in results)


def test_a_result_larger_than_the_store_keeps_is_computed_not_stored(tmp_path, monkeypatch):
    from gradmatrix.oracles import cache

    monkeypatch.setattr(cache, "LARGEST", 100)  # every result of the run is larger
    plan, records = _relu_run(tmp_path, monkeypatch)
    assert records and all(r["verdict"] in ("agree", "convention") for r in records)
    assert not list((tmp_path / "references").glob("*.result"))


def test_a_write_that_fails_leaves_no_part_of_its_file(tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(reference_store.os, "replace", full_disk)  # written in part, never put in place
    plan, records = _relu_run(tmp_path, monkeypatch)
    assert records and all(r["verdict"] in ("agree", "convention") for r in records)
    assert not list((tmp_path / "references").iterdir())
