"""The tests' in-process ``gradmatrix`` (``cli_helpers.gradmatrix``) stands for a fresh
interpreter: the same exit status and output, the candidate's worker's output included, and
nothing of the run left behind in the test's process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest

import cli_helpers
from cli_helpers import gradmatrix, gradmatrix_process

TALKS = """\
import sys
from gradmatrix.manual import relu_forward
from gradmatrix.manual import relu_backward as _rb


def relu_backward(dout, cache):
    print("candidate says hello")
    print("candidate warns", file=sys.stderr)
    return _rb(dout, cache)
"""
QUICK = ["--ops", "relu", "--seeds", "1", "--dtypes", "float64", "--oracles", "numeric", "--modes", "reverse",
         "--progress", "none", "--format", "json"]


def test_in_process_gives_what_a_fresh_interpreter_gives(tmp_path):
    (tmp_path / "talks.py").write_text(TALKS)
    for args in (["run", "--ops", "nope"], ["--version"], ["check", "--help"], ["check", "missing.py"]):
        here, fresh = gradmatrix(*args, cwd=tmp_path), gradmatrix_process(*args, cwd=tmp_path)
        assert (here.returncode, here.stdout, here.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr), args
    runs = {}
    for how, run in (("here", gradmatrix), ("fresh", gradmatrix_process)):
        (tmp_path / how).mkdir()
        runs[how] = run("check", tmp_path / "talks.py", *QUICK, cwd=tmp_path / how)
        # the worker's own prints (its file descriptors) are part of the command's output
        assert "candidate says hello" in runs[how].stdout and "candidate warns" in runs[how].stderr, runs[how]
    here, fresh = runs["here"], runs["fresh"]
    assert here.returncode == fresh.returncode == 0
    assert here.stdout.replace(str(tmp_path / "here"), "OUT") == fresh.stdout.replace(str(tmp_path / "fresh"), "OUT")
    assert here.stderr == fresh.stderr


@pytest.mark.parametrize("unbuffered", ["1", None])
def test_a_workers_buffered_prints_reach_the_output_when_its_check_ends(tmp_path, unbuffered):
    """Without PYTHONUNBUFFERED the worker's stdout is block-buffered (a pipe): when the check
    is done the worker flushes it before it is stopped, never killed with it still in the buffer."""
    (tmp_path / "talks.py").write_text(TALKS)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered
    run = gradmatrix("check", tmp_path / "talks.py", *QUICK, cwd=tmp_path, env=env)
    assert run.returncode == 0 and run.stdout.count("candidate says hello") >= 1, run


def test_in_process_takes_cwd_and_env_and_gives_them_back(tmp_path, monkeypatch):
    from gradmatrix.oracles import jax_store, reference_store

    monkeypatch.setenv("GRADMATRIX_HELPER_PROBE", "the test's")
    before = (os.getcwd(), dict(os.environ), sys.stdout, sys.stderr, sys.stdin, list(sys.path), sys.argv,
              signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), np.geterr(),
              list(warnings.filters), dict(reference_store.STATS), dict(jax_store._EXECUTABLES))
    store = tmp_path / "store"
    run = gradmatrix("cache", cwd=tmp_path, env={**os.environ, "GRADMATRIX_JAX_CACHE": str(store)})
    assert run.returncode == 0 and run.stdout.startswith(f"gradmatrix cache: {store}: 0 compiled"), run
    after = (os.getcwd(), dict(os.environ), sys.stdout, sys.stderr, sys.stdin, list(sys.path), sys.argv,
             signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), np.geterr(),
             list(warnings.filters), dict(reference_store.STATS), dict(jax_store._EXECUTABLES))
    assert after == before
    relative = gradmatrix("report", "missing.json", cwd=tmp_path)  # the path is read from cwd
    assert relative.returncode == 2 and "no such file: missing.json" in relative.stderr


def test_in_process_ends_a_command_past_the_time_limit_and_gives_the_process_back(tmp_path, monkeypatch):
    (tmp_path / "spins.py").write_text(
        "import os, time\n\n\ndef relu_forward(x):\n    with open('worker.pid', 'w') as f:\n        f.write(str(os.getpid()))\n"
        "    while True:\n        time.sleep(0.05)\n\n\ndef relu_backward(dout, cache):\n    return dout\n")
    monkeypatch.setattr(cli_helpers, "TIMEOUT", 1)
    here, handler = os.getcwd(), signal.getsignal(signal.SIGALRM)
    with pytest.raises(subprocess.TimeoutExpired):
        gradmatrix("check", "spins.py", *QUICK, "--case-timeout", "0", cwd=tmp_path)
    assert os.getcwd() == here and signal.getsignal(signal.SIGALRM) == handler
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    # the candidate's worker, still in its probe when the time ran out, was stopped and reaped
    with pytest.raises(ProcessLookupError):
        os.kill(int((tmp_path / "worker.pid").read_text()), 0)
    # the command's clean-up ran: its report directory is not left locked
    again = gradmatrix("check", "gradmatrix.manual", *QUICK, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
