"""The ``gradmatrix`` command as the tests run it: a fresh interpreter, no standard input,
output captured, a generous time limit.  Every test that runs the command goes through here."""

from __future__ import annotations

import subprocess
import sys

TIMEOUT = 600  # seconds; a hang fails the test instead of the suite


def command(*args) -> list[str]:
    """The argv of ``gradmatrix ARGS`` in this interpreter."""
    return [sys.executable, "-m", "gradmatrix", *map(str, args)]


def gradmatrix(*args, cwd=None, env=None, **kwargs) -> subprocess.CompletedProcess:
    """Run ``gradmatrix ARGS`` to completion and return it (stdout and stderr as text)."""
    return subprocess.run(command(*args), cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL, **kwargs)


def start(*args, cwd=None, env=None, **kwargs) -> subprocess.Popen:
    """Start ``gradmatrix ARGS`` (for tests that signal it), stdout and stderr piped as text."""
    return subprocess.Popen(command(*args), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL, **kwargs)
