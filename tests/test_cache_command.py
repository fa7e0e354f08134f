"""The store of compiled functions and reference results lives under the platform's cache
directory (XDG_CACHE_HOME honoured) and ``gradmatrix cache`` shows and clears it, touching
nothing else there."""

from __future__ import annotations

import os
from pathlib import Path

from cli_helpers import gradmatrix

MUTANT = Path(__file__).parent / "one_bug" / "relu_sign_error.py"


def _environment(tmp_path: Path, **settings) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "GRADMATRIX_JAX_CACHE"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), **settings)
    return env


def test_a_check_stores_under_xdg_cache_home_and_cache_clear_empties_only_the_store(tmp_path):
    env = _environment(tmp_path)
    run = gradmatrix("check", MUTANT, "--dtypes", "float64", "--seeds", "1", "--modes", "reverse", "--format", "json",
                     "--out", tmp_path / "r", "--progress", "none", cwd=tmp_path, env=env)
    assert run.returncode == 1, run.stdout + run.stderr
    store = tmp_path / "xdg" / "gradmatrix" / "jax"
    stored = list((store / "executables").glob("*.jaxfn"))
    results = list((store / "references").glob("*.result"))
    assert stored and results, list(tmp_path.rglob("*"))
    shown = gradmatrix("cache", cwd=tmp_path, env=env)
    assert shown.returncode == 0 and shown.stdout.startswith(
        f"gradmatrix cache: {store}: {len(stored)} compiled functions, {len(results)} reference results")
    assert "(kept under 1000 MB: the least recently used go first)" in shown.stdout
    keep = store / "executables" / "notes.txt"  # not the store's: left alone
    keep.write_text("mine")
    cleared = gradmatrix("cache", "clear", cwd=tmp_path, env=env)
    assert cleared.returncode == 0 and f"removed {len(stored)} compiled functions, {len(results)}" in cleared.stdout
    assert not list((store / "executables").glob("*.jaxfn")) and keep.read_text() == "mine"
    assert not list((store / "references").glob("*.result"))
    assert ": 0 compiled functions, 0 reference results" in gradmatrix("cache", cwd=tmp_path, env=env).stdout


def test_the_store_can_be_named_or_turned_off(tmp_path):
    named = gradmatrix("cache", cwd=tmp_path, env=_environment(tmp_path, GRADMATRIX_JAX_CACHE=str(tmp_path / "mine")))
    assert named.stdout.startswith(f"gradmatrix cache: {tmp_path / 'mine'}: 0 compiled functions")
    off = gradmatrix("cache", "clear", cwd=tmp_path, env=_environment(tmp_path, GRADMATRIX_JAX_CACHE="off"))
    assert off.returncode == 0 and "off" in off.stdout
    wrong = gradmatrix("cache", "empty", cwd=tmp_path, env=_environment(tmp_path))
    assert wrong.returncode == 2 and len(wrong.stderr.splitlines()) == 1
