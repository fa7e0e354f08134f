"""The ``gradmatrix`` command as the tests run it: no standard input, output captured, a
generous time limit.  Every test that runs the command goes through here.

``gradmatrix(...)`` runs it in the test's own process (``gradmatrix.cli.main``), as a fresh
interpreter would: the command's cost is then its work, not a new interpreter importing
NumPy, torch and JAX again (a second or two each, over a hundred times a suite).  That is
safe because the judge never runs the code under test: the candidate is imported and run in
a worker process of its own (``gradmatrix.isolation``), started here as it is from the
command.  What the command reads or changes of the process is given to it as a fresh
interpreter would have it and put back afterwards (``_InProcess``).

``gradmatrix_process(...)`` and ``start(...)`` run it in a fresh interpreter, for the tests
whose point is the process: signals and Ctrl-C, how a crash ends it, settings read when a
framework is imported, the README's literal commands."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
import warnings

import numpy as np

TIMEOUT = 600  # seconds; a hang fails the test instead of the suite


def command(*args) -> list[str]:
    """The argv of ``gradmatrix ARGS`` in this interpreter."""
    return [sys.executable, "-m", "gradmatrix", *map(str, args)]


def gradmatrix(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    """Run ``gradmatrix ARGS`` to completion in this process and return it as
    ``subprocess.run`` would (returncode; stdout and stderr as text, the candidate's worker
    processes' output included).  Off the main thread (where no signal handler can be set,
    as the command does) it runs in a fresh interpreter instead.

    Raises:
        subprocess.TimeoutExpired: it ran past ``TIMEOUT``, raised in the command wherever it
            was, so that its clean-up runs as for Ctrl-C (the worker stopped, the lock let go)."""
    if threading.current_thread() is not threading.main_thread():
        return gradmatrix_process(*args, cwd=cwd, env=env)
    with _InProcess(command(*args), cwd, env) as run:
        run.returncode = _main([str(a) for a in args])
    return run.result


def gradmatrix_process(*args, cwd=None, env=None, **kwargs) -> subprocess.CompletedProcess:
    """Run ``gradmatrix ARGS`` to completion in a fresh interpreter and return it (stdout and
    stderr as text)."""
    return subprocess.run(command(*args), cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL, **kwargs)


def _main(argv: list[str]) -> int:
    """``python -m gradmatrix ARGV``'s exit status: ``main``'s, a ``sys.exit``'s as the
    interpreter turns it into one, or 1 with the traceback on stderr for an exception."""
    from gradmatrix.cli import main

    try:
        return main(argv)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired:
        raise
    except Exception:  # noqa: BLE001  (a crash: what the interpreter would print and return)
        traceback.print_exc()
        return 1


def _per_process_state() -> list:
    """The modules' state a fresh interpreter starts without: the compiled functions it has in
    memory and their counts, the reference store's listing of its folders and its counts, what
    was stored since the store was last kept within its bound, the report directory's last
    read.  Each is a dict or list that other modules also hold (``from ... import
    _EXECUTABLES``), so it is emptied and refilled in place, never replaced."""
    from gradmatrix.oracles import cache, jax_oracle, jax_store, reference_store
    from gradmatrix.reports import writers

    return [jax_store._EXECUTABLES, jax_store.COMPILE_STATS, reference_store.STATS, reference_store._LISTED,
            cache._STORED, writers._LAST_READ, jax_oracle._WITH_JV, jax_oracle._EXPECTED]


def _emptied(state):
    """``state`` as a new process has it: counts at zero, nothing cached."""
    if isinstance(state, list):
        return [None] * len(state)
    if all(isinstance(v, (int, float)) for v in state.values()):
        return {k: type(v)() for k, v in state.items()}
    return {}


def _refill(state, contents) -> None:
    """Put ``contents`` into ``state`` in place."""
    if isinstance(state, list):
        state[:] = contents
    else:
        state.clear()
        state.update(contents)


# the warnings filters of a new interpreter started without -W or PYTHONWARNINGS (Python's default filter list)
FRESH_FILTERS = (("default", DeprecationWarning, "__main__"), ("ignore", DeprecationWarning, ""),
                 ("ignore", PendingDeprecationWarning, ""), ("ignore", ImportWarning, ""),
                 ("ignore", ResourceWarning, ""))


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning printed on stderr as a new interpreter prints it (pytest would record it
    instead, out of the command's output)."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


class _InProcess:
    """The process as ``subprocess.run(..., cwd=cwd, env=env, stdin=DEVNULL,
    capture_output=True, text=True)`` gives it to a new interpreter, for the length of a
    ``with``: that working directory and environment; standard input empty; standard output
    and error captured at their file descriptors (so the worker processes it starts write
    into them too, as they would into the pipes); SIGINT and SIGTERM at their defaults'
    handlers as Python installs them; ``sys.argv``, ``sys.path``, warnings filters, NumPy's
    error state and print options, the root logger, and the per-process caches
    (``_per_process_state``) fresh.  Everything is put back afterwards, and whatever the
    command left running in the background (the store's writes, JAX compiling ahead) is
    finished first, as at the interpreter's exit.  A run past ``TIMEOUT`` raises
    ``subprocess.TimeoutExpired``."""

    def __init__(self, args: list[str], cwd, env):
        self.args, self.cwd, self.env = args, cwd, env
        self.returncode = None
        self.result = None

    def __enter__(self):
        self._saved_cwd = os.getcwd()
        self._saved_env = dict(os.environ)
        self._saved_sys = (sys.stdin, sys.stdout, sys.stderr, sys.argv, list(sys.path))
        self._saved_numpy = (np.geterr(), np.get_printoptions())
        self._saved_logging = (logging.root.level, list(logging.root.handlers))
        self._saved_signals = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}
        self._state = _per_process_state()
        self._saved_state = [state.copy() for state in self._state]
        for state in self._state:
            _refill(state, _emptied(state))
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.resetwarnings()
        for action, category, module in reversed(FRESH_FILTERS):
            warnings.filterwarnings(action, category=category, module=module)
        warnings.showwarning = _show_warning
        if self.env is not None:
            os.environ.clear()
            os.environ.update(self.env)
        if self.cwd is not None:
            os.chdir(self.cwd)
        sys.argv = list(self.args[2:])
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self._captured = [tempfile.TemporaryFile() for _ in range(2)]
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved_fds = [os.dup(fd) for fd in (0, 1, 2)]
        with open(os.devnull, "rb") as nothing:
            os.dup2(nothing.fileno(), 0)
        for fd, file in zip((1, 2), self._captured):
            os.dup2(file.fileno(), fd)
        sys.stdin = open(0, "r", closefd=False)
        sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1)
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1)

        def too_long(signum, frame):
            raise subprocess.TimeoutExpired(self.args, TIMEOUT)

        signal.signal(signal.SIGALRM, too_long)
        signal.setitimer(signal.ITIMER_REAL, TIMEOUT)
        return self

    def __exit__(self, *exc_info):
        from gradmatrix.oracles import jax_store, reference_store

        signal.setitimer(signal.ITIMER_REAL, 0)
        try:
            for ahead in list(jax_store._AHEAD):  # as at the interpreter's exit (atexit)
                ahead.stop()
            reference_store.flush()
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            sys.stdin.close()
            for fd, saved in zip((0, 1, 2), self._saved_fds):
                os.dup2(saved, fd)
                os.close(saved)
            sys.stdin, sys.stdout, sys.stderr, sys.argv, sys.path[:] = self._saved_sys
            for signum, handler in self._saved_signals.items():
                signal.signal(signum, handler)
            os.chdir(self._saved_cwd)
            os.environ.clear()
            os.environ.update(self._saved_env)
            np.seterr(**self._saved_numpy[0])
            np.set_printoptions(**self._saved_numpy[1])
            logging.root.setLevel(self._saved_logging[0])
            logging.root.handlers[:] = self._saved_logging[1]
            self._warnings.__exit__(None, None, None)
            for state, saved in zip(self._state, self._saved_state):
                _refill(state, saved)
            stdout, stderr = (self._text(file) for file in self._captured)
        if exc_info[0] is None:
            self.result = subprocess.CompletedProcess(self.args, self.returncode, stdout, stderr)
        return False

    @staticmethod
    def _text(file) -> str:
        """A captured stream as ``text=True`` reads a pipe: UTF-8, universal newlines."""
        file.seek(0)
        with io.TextIOWrapper(file, encoding="utf-8", errors="replace", newline=None) as text:
            return text.read()


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
