"""The ``gradmatrix`` command as the tests run it: a fresh interpreter, no standard input,
output captured, a generous time limit.  Every test that runs the command goes through here."""

from __future__ import annotations

import signal
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


def _ctrl_c_as_a_terminal_sends_it() -> None:
    """In the child before it runs the command: SIGINT back to its default.  A shell without job
    control starts a background job (``make test &``) with SIGINT ignored, and an ignored signal
    stays ignored across exec, so the command would never see the Ctrl-C a test sends it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args, cwd=None, env=None, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs) -> subprocess.Popen:
    """Start ``gradmatrix ARGS`` (for tests that signal it: Ctrl-C reaches it whatever the suite
    was started from), stdout and stderr piped as text."""
    return subprocess.Popen(command(*args), cwd=cwd, env=env, stdout=stdout, stderr=stderr, text=True,
                            stdin=subprocess.DEVNULL, preexec_fn=_ctrl_c_as_a_terminal_sends_it, **kwargs)
