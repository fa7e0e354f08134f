"""Worker processes forked from a process that has already imported what a worker needs.

A candidate's worker (``gradmatrix.isolation``) is a fresh interpreter that imports NumPy and
gradmatrix's oracles before it loads the candidate: about 0.25 s of CPU, paid again for every
module checked, and for every worker restarted after a time limit.  On Linux, a judge process
instead starts one *fork server* the first time it needs a worker: an interpreter, started
as a worker is (``python -m gradmatrix.forkserver``, with the judge's environment), that
imports those modules once and then forks a copy for each worker asked of it.

A forked worker is the same worker, started in the same state a fresh one would be:

* its working directory, environment, ``sys.argv`` and first ``sys.path`` entry are the
  judge's at the moment it is asked for (not when the server started), its standard input
  is empty and its standard output and error are the judge's at that moment (passed as file
  descriptors), and its signal handlers are Python's defaults;
* it shares no memory with the judge: it is the server's child, a copy of a process that has
  run none of the user's code (the server imports gradmatrix and NumPy and nothing else,
  and never runs a worker's code itself);
* its exit is observed by the server, its parent, which reports the status to the judge as
  ``subprocess.Popen`` would (``-N`` for a signal N); the judge kills it through the server,
  which kills only a child it has not reaped, so a stale process id is never signalled.

``Forked`` offers the part of ``Popen``'s interface the isolation uses: ``pid``,
``wait(timeout)``, ``kill()``.  Where forking is not available (not Linux) or the server
cannot be started or has ended, ``spawn`` starts the worker as a fresh interpreter instead:
the server changes how fast a worker starts, never what it does.
"""

from __future__ import annotations

import atexit
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings

_MESSAGE = 1 << 20  # bytes: one request (its environment included) or reply, at most
_FDS = 3  # a request's file descriptors: the worker's end of its pipe, its stdout, its stderr
USABLE = sys.platform.startswith("linux") and hasattr(socket, "send_fds")
# environment variables read when a module is imported (the interpreter's, BLAS's thread
# counts, JAX's and torch's configuration), by prefix: a worker asked for with any of them
# other than a server started with cannot be a copy of that server
IMPORT_TIME_SETTINGS = ("PYTHON", "LD_", "OMP_", "OPENBLAS_", "GOTO", "MKL_", "KMP_", "NPY_", "NUMPY_", "JAX_",
                        "XLA_", "TF_", "TORCH", "PYTORCH_", "CUDA", "NVIDIA_", "MPLBACKEND")
# what a worker checking a declared layer imports to run its oracles (1.5 to 3 s): the server
# imports it once asked to (``spawn(frameworks=True)``), before it forks that worker
FRAMEWORKS = ("gradmatrix.oracles.torch_oracle", "gradmatrix.oracles.jax_oracle", "torch._dynamo")


REPLY_TIME_LIMIT = 30.0  # seconds the server may take to fork a worker, kill one or say it ended
IMPORT_TIME_LIMIT = 120.0  # ... to import ``FRAMEWORKS`` first


def _settings(env) -> dict:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_SETTINGS)}


class Forked:
    """A worker forked by the server: ``pid``, ``wait(timeout)`` and ``kill()`` as ``Popen``'s.

    Should the server end first (killed from outside), the worker's status is lost with it:
    ``wait`` then returns None once the worker is gone, and ``kill`` signals it by its id."""

    def __init__(self, server: "ForkServer", pid: int):
        self._server, self.pid = server, pid
        self.returncode: int | None = None
        self._lost = False

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit status (``Popen``'s convention), waiting up to ``timeout`` seconds; None
        when the server ended and took the status with it.

        Raises:
            subprocess.TimeoutExpired: it is still running after ``timeout``.
        """
        if self.returncode is None and not self._lost:
            try:
                code = self._server.ask(("wait", self.pid, timeout),
                                        within=None if timeout is None else timeout + REPLY_TIME_LIMIT)
            except OSError:
                self._lost = True
            else:
                if code is None:
                    raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
                self.returncode = code
        if self._lost:
            _gone(self.pid, timeout)
        return self.returncode

    def kill(self) -> None:
        """SIGKILL it, unless it has already ended (the server knows; it is its parent)."""
        if self.returncode is None and not self._lost:
            try:
                self._server.ask(("kill", self.pid), within=REPLY_TIME_LIMIT)
                return
            except OSError:
                self._lost = True
        if self._lost:
            try:
                os.kill(self.pid, signal.SIGKILL)  # its parent is gone: nothing reaped it yet but init
            except ProcessLookupError:
                pass


def _gone(pid: int, timeout: float | None) -> None:
    """Wait until process ``pid`` no longer exists (for a worker whose server ended)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if deadline is not None and time.monotonic() >= deadline:
            raise subprocess.TimeoutExpired(f"worker {pid}", timeout)
        time.sleep(0.01)


class ForkServer:
    """The judge's side of one fork server; ``spawn`` is the way in."""

    def __init__(self, env: dict):
        """Start a server with environment ``env`` (its workers get their own on fork)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._process = subprocess.Popen([sys.executable, "-m", "gradmatrix.forkserver", str(theirs.fileno())],
                                         pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env)
        theirs.close()
        self._socket = ours
        self._lock = threading.Lock()  # one request and its reply at a time

    def ask(self, request: tuple, fds=(), *, within: float | None):
        """Send ``request`` (with ``fds``) and return the server's reply, given ``within``
        seconds (None: no limit).  A server that does not answer in time is stopped: its
        workers are then stopped by their ids (``Forked``), and new ones are fresh.

        Raises:
            OSError: the server has ended, or did not answer in time.
        """
        with self._lock:
            try:
                self._socket.settimeout(within)
                socket.send_fds(self._socket, [pickle.dumps(request)], list(fds))
                reply = self._socket.recv(_MESSAGE)
            except TimeoutError:
                self._process.kill()
                self._socket.close()
                raise OSError(f"the fork server did not answer within {within:g} s; it was stopped") from None
        if not reply:
            raise OSError("the fork server has ended")
        answer = pickle.loads(reply)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def fork(self, target: str, skip: tuple, env: dict, worker_fd: int, frameworks: bool = False) -> Forked:
        """A worker for ``target`` (``gradmatrix.isolation._serve``), forked now, with torch
        and JAX imported first where ``frameworks``.

        Raises:
            OSError: the server has ended, or this process's standard streams are closed.
        """
        pid = self.ask(("fork", target, tuple(skip), env, os.getcwd(), frameworks), (worker_fd, 1, 2),
                       within=IMPORT_TIME_LIMIT if frameworks else REPLY_TIME_LIMIT)
        return Forked(self, pid)

    def close(self) -> None:
        self._socket.close()  # the server reads its end and exits
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()


_SERVERS: dict = {}  # import-time settings -> this process's server started with them
_SERVERS_PID = 0  # the process they belong to (a forked judge starts its own)
_MOST_SERVERS = 4  # settings that changed more often than that start the oldest server's anew
_BROKEN = False  # a server could not start, or ended: workers are fresh interpreters from then on
_START_LOCK = threading.Lock()


def _server(env: dict) -> ForkServer | None:
    """This process's server for ``env``'s import-time settings, started on first use."""
    global _SERVERS_PID, _BROKEN
    with _START_LOCK:
        if _BROKEN or not USABLE:
            return None
        if _SERVERS_PID != os.getpid():
            _SERVERS.clear()
            _SERVERS_PID = os.getpid()
        key = frozenset(_settings(env).items())
        if key not in _SERVERS:
            if len(_SERVERS) >= _MOST_SERVERS:
                _SERVERS.pop(next(iter(_SERVERS))).close()
            try:
                _SERVERS[key] = ForkServer(env)
            except OSError:
                _BROKEN = True
                return None
            atexit.register(_SERVERS[key].close)
        return _SERVERS[key]


def spawn(target: str, skip: tuple, env: dict, worker_fd: int, frameworks: bool = False):
    """Start a worker for ``target`` (``python -m gradmatrix.isolation FD TARGET [SKIP...]``,
    ``skip`` the ops whose stubs it does not probe) with environment ``env``, the judge's
    working directory and standard streams, standard input empty, and ``worker_fd`` open in
    it (its pipe to the judge): forked by this process's fork server for ``env``'s
    import-time settings (``IMPORT_TIME_SETTINGS``; one per settings seen, so a run whose
    settings change gets a server started with them), else a fresh interpreter.
    ``frameworks``: the worker will likely run the oracles (a module declaring layers was
    checked before): the server imports them first, once.

    Returns:
        A ``Forked`` or a ``subprocess.Popen``.
    """
    global _BROKEN
    server = _server(env)
    if server is not None:
        try:
            return server.fork(target, skip, env, worker_fd, frameworks)
        except OSError:
            _BROKEN = True  # it ended (killed from outside): fresh interpreters from now on
    return subprocess.Popen([sys.executable, "-m", "gradmatrix.isolation", str(worker_fd), target, *skip],
                            pass_fds=(worker_fd,), stdin=subprocess.DEVNULL, env=env)


# --- the server's side ------------------------------------------------------------------


def _status(code: int) -> int:
    """A ``waitpid`` status as ``Popen.returncode``: the exit code, or -N for signal N."""
    return -os.WTERMSIG(code) if os.WIFSIGNALED(code) else os.WEXITSTATUS(code)


def _worker(target: str, skip: tuple, env: dict, cwd: str, fds: list) -> None:
    """In the forked child: become the worker a fresh interpreter would be, run it, exit."""
    worker_fd, stdout, stderr = fds
    code = 0
    try:
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(number, signal.SIG_DFL)
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        empty = os.open(os.devnull, os.O_RDONLY)
        os.dup2(empty, 0)
        for fd in (stdout, stderr, empty):
            os.close(fd)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = [sys.modules["gradmatrix.isolation"].__file__, str(worker_fd), target, *skip]
        if sys.path and sys.path[0] == _STARTED_IN:  # as ``python -m`` sets it (unless PYTHONSAFEPATH)
            sys.path[0] = cwd
        import numpy as np

        np.random.seed()  # fresh entropy, as a new interpreter's (``random`` reseeds itself at fork)
        from multiprocessing.connection import Connection

        from gradmatrix.isolation import _serve

        _serve(Connection(worker_fd), target, skip)
    except SystemExit as exc:  # the worker's own end, as the interpreter would take it
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001  (an interpreter would print it and exit 1)
        import traceback

        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()  # what the interpreter runs at exit
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _preload() -> None:
    """Import ``FRAMEWORKS`` (once; what is not installed stays out, as in a worker)."""
    import importlib

    for name in FRAMEWORKS:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _reap(exited: dict, alive: set) -> None:
    """Collect every child that has ended (no zombie is left), keeping its status."""
    while alive:
        try:
            pid, code = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        alive.discard(pid)
        exited[pid] = _status(code)


def _wait(pid: int, timeout: float | None, exited: dict, alive: set) -> int | None:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        _reap(exited, alive)
        if pid in exited:
            return exited[pid]
        if pid not in alive:
            raise ChildProcessError(f"process {pid} is not a worker of this server")
        if deadline is not None and time.monotonic() >= deadline:
            return None
        time.sleep(0.002)


_STARTED_IN = os.getcwd()  # the server's directory: ``python -m`` put it first on sys.path


def serve(fd: int) -> None:
    """The server: import what a worker needs, then fork a worker for each request until the
    judge closes its end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the judge's: it ends us by closing
    import gradmatrix.isolation  # noqa: F401  (a worker's imports, made once, shared by every fork)
    import gradmatrix.oracles.candidate  # noqa: F401

    channel = socket.socket(fileno=fd)
    alive: set = set()
    exited: dict = {}
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(channel, _MESSAGE, _FDS)
        except OSError:
            return
        if not data:
            return  # the judge has ended
        request = pickle.loads(data)
        try:
            reply = _answer(request, fds, channel, alive, exited)
        except Exception as exc:  # noqa: BLE001  (a request it cannot serve: the judge raises it)
            reply = exc
        channel.send(pickle.dumps(reply))


def _answer(request: tuple, fds: list, channel, alive: set, exited: dict):
    """The reply to one request: a forked worker's pid, None for a kill, a wait's status."""
    if request[0] == "fork":
        _, target, skip, env, cwd, frameworks = request
        if frameworks:
            _preload()
        with warnings.catch_warnings():
            # Python 3.12+ warns on a fork in a process with threads: the server's only other
            # threads are BLAS's idle pool (OpenBLAS resets it in the child at fork), and it
            # runs no Python thread, so no lock can be held across the fork
            warnings.filterwarnings("ignore", message=r".*multi-threaded.*fork", category=DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            channel.close()
            _worker(target, skip, env, cwd, fds)  # never returns
        for each in fds:
            os.close(each)
        alive.add(pid)
        return pid
    if request[0] == "kill":
        _reap(exited, alive)
        if request[1] in alive:  # not reaped: the id is still its, never another process's
            os.kill(request[1], signal.SIGKILL)
        return None
    return _wait(request[1], request[2], exited, alive)  # "wait"


if __name__ == "__main__":  # the server: python -m gradmatrix.forkserver FD
    serve(int(sys.argv[1]))
