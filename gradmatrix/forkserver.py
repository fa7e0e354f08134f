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
  run none of the user's code (the server imports gradmatrix and NumPy, torch and JAX once
  a worker has run the oracles (``preload``), and never runs a worker's code itself);
* its umask and resource limits are the judge's of that moment too;
* its exit is observed by the server, its parent, which reports the status to the judge as
  ``subprocess.Popen`` would (``-N`` for a signal N); the judge kills it by a pidfd the
  server opened before anything could reap it, so a reused process id is never signalled.

``Forked`` offers the part of ``Popen``'s interface the isolation uses: ``pid``,
``wait(timeout)``, ``kill()``; the judge holds a pidfd of each worker, so a kill reaches that
process and no other, the server alive or not.  Where forking is not available (not Linux
5.3+), the server cannot be started or stops answering, ``spawn`` starts the worker as a
fresh interpreter instead (a server that has ended is started anew for the next worker):
the server changes how fast a worker starts, never what it does.

What a fork shares with its server and a fresh interpreter would not: the hash seed of
``str`` (``PYTHONHASHSEED`` unset), the modules already imported, and whatever the judge
changed after the server started other than the working directory, environment, umask,
resource limits and standard streams (CPU affinity, nice value, the signal mask).
"""

from __future__ import annotations

import atexit
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings

_MESSAGE = 1 << 20  # bytes: one request (its environment included) or reply, at most
_FDS = 3  # a request's file descriptors: the worker's end of its pipe, its stdout, its stderr
USABLE = (sys.platform.startswith("linux") and hasattr(socket, "send_fds") and hasattr(os, "pidfd_open")
          and hasattr(signal, "pidfd_send_signal"))
# environment variables read when a module is imported or the interpreter starts (its own,
# BLAS's thread counts, JAX's and torch's configuration, the locale), by prefix: a worker
# asked for with any of them other than a server started with cannot be a copy of that server
IMPORT_TIME_SETTINGS = ("PYTHON", "LD_", "OMP_", "OPENBLAS_", "GOTO", "MKL_", "KMP_", "NPY_", "NUMPY_", "JAX_",
                        "XLA_", "TF_", "TORCH", "PYTORCH_", "CUDA", "NVIDIA_", "MPLBACKEND", "LANG", "LC_", "TZ")
# what a worker checking a declared layer imports to run its oracles (1 to 2 s): the server
# imports it once told that a worker needed it
# (``preload``), between requests, so that the next workers have it
FRAMEWORKS = ("gradmatrix.oracles.torch_oracle", "gradmatrix.oracles.jax_oracle")
REPLY_TIME_LIMIT = 30.0  # seconds the server may take to answer a wait beyond its own
IMPORT_TIME_LIMIT = 120.0  # ... to fork a worker (it may be importing ``FRAMEWORKS`` when asked)
_LIMITS = ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_STACK",
           "RLIMIT_CORE")  # the resource limits a worker takes from the judge at the moment it is asked for


# ... except those read only when used, which a worker reads from its own environment: torch
# writes its compiler's cache directory into the environment the first time it compiles, so
# counting it would start a second server for the same settings
READ_WHEN_USED = ("TORCHINDUCTOR_CACHE_DIR",)


def _settings(env) -> dict:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_SETTINGS) and k not in READ_WHEN_USED}


class Forked:
    """A worker forked by the server: ``pid``, ``wait(timeout)`` and ``kill()`` as ``Popen``'s.

    The judge holds a pidfd of the worker (opened by the server before anything could reap
    it), so ``kill`` signals that process and no other, and its end is seen even when the
    server has ended; its exit status comes from the server, its parent, and is lost (None)
    if the server ended first."""

    def __init__(self, server: "ForkServer", pid: int, pidfd: int):
        self._server, self.pid, self._pidfd = server, pid, pidfd
        self.returncode: int | None = None
        self._lost = False

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit status (``Popen``'s convention), waiting up to ``timeout`` seconds; None
        when the server ended and took the status with it.

        Raises:
            subprocess.TimeoutExpired: it is still running after ``timeout``.
        """
        if self.returncode is not None or self._lost:
            return self.returncode
        if not _ended(self._pidfd, timeout):
            raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
        try:  # it has ended: its parent has the status, or will in a moment
            code, _ = self._server.ask(("wait", self.pid, REPLY_TIME_LIMIT), within=2 * REPLY_TIME_LIMIT)
        except OSError:
            code = None
        self._lost = code is None
        self.returncode = code
        os.close(self._pidfd)
        return code

    def kill(self) -> None:
        """SIGKILL it, unless it has already ended."""
        if self.returncode is None and not self._lost:
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it has ended: nothing to stop

    def __del__(self):
        if self.returncode is None and not self._lost:
            try:
                os.close(self._pidfd)
            except OSError:
                pass


def _ended(pidfd: int, timeout: float | None) -> bool:
    """Whether the process of ``pidfd`` ends within ``timeout`` seconds (None: wait for it).
    A pidfd reads as ready once its process has ended, a zombie included."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(None if timeout is None else max(0, int(timeout * 1000))))


class ServerEnded(OSError):
    """The server has ended (killed from outside, or stopped by a request cut short): the
    next worker is asked of a new one."""


class ServerStuck(ServerEnded):
    """The server did not answer in time and was stopped: no more servers in this process."""


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
        self.ended = False
        self.preloaded = False  # told to import FRAMEWORKS

    def ask(self, request: tuple, fds=(), *, within: float | None) -> tuple:
        """Send ``request`` (with ``fds``) and return the server's reply and the file
        descriptors that came with it, given ``within`` seconds (None: no limit).

        A request cut short after it was sent (no answer in time, Ctrl-C, SIGTERM raised as
        KeyboardInterrupt) would leave its answer to be read as the next one's: the server is
        stopped instead, its workers are still stopped by their pidfds, new ones are fresh.

        Raises:
            ServerEnded: the server has ended, or did not answer in time.
            OSError: the request could not be sent (a file descriptor that is closed).
        """
        with self._lock:
            if self.ended:
                raise ServerEnded("the fork server has ended")
            self._socket.settimeout(within)
            try:
                socket.send_fds(self._socket, [pickle.dumps(request)], list(fds))
            except (BrokenPipeError, ConnectionError):
                self._stop()
                raise ServerEnded("the fork server has ended") from None
            try:
                reply, received, _, _ = socket.recv_fds(self._socket, _MESSAGE, 1)
            except TimeoutError:
                self._stop()
                raise ServerStuck(f"the fork server did not answer within {within:g} s; it was stopped") from None
            except BaseException:
                self._stop()
                raise
            if not reply:
                self._stop()
                raise ServerEnded("the fork server has ended")
        answer = pickle.loads(reply)
        if isinstance(answer, Exception):
            raise answer
        return answer, received

    def _stop(self) -> None:
        self.ended = True
        self._process.kill()
        self._socket.close()

    def fork(self, target: str, skip: tuple, env: dict, worker_fd: int) -> Forked:
        """A worker for ``target`` (``gradmatrix.isolation._serve``), forked now; it takes this
        process's working directory, umask and resource limits of the moment.

        Raises:
            ServerEnded, OSError: as ``ask``.
        """
        import resource

        limits = {name: resource.getrlimit(getattr(resource, name)) for name in _LIMITS if hasattr(resource, name)}
        umask = os.umask(0o22)
        os.umask(umask)
        pid, (pidfd,) = self.ask(("fork", target, tuple(skip), env, os.getcwd(), umask, limits),
                                 (worker_fd, 1, 2), within=IMPORT_TIME_LIMIT)
        return Forked(self, pid, pidfd)

    def hang_up(self) -> None:
        """Tell the server to end (it reads the end of its socket and exits), without waiting."""
        with self._lock:
            if not self.ended:
                self.ended = True
                self._socket.close()

    def close(self) -> None:
        """End the server and wait for it (its workers are not its to end: each is stopped by its judge)."""
        self.hang_up()
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


_SERVERS: dict = {}  # import-time settings -> this process's server started with them
_MOST_SERVERS = 4  # settings that changed more often than that start the oldest server's anew
_BROKEN = False  # a server could not start, or got stuck: workers are fresh interpreters from then on
_START_LOCK = threading.Lock()


def _forget_servers() -> None:
    """In a child forked from a judge: the servers, their locks and their sockets are the
    parent's; the child starts its own when it needs one."""
    global _START_LOCK
    for server in _SERVERS.values():
        server.ended = True  # never asked from here: the parent's
    _SERVERS.clear()
    _START_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_servers)


def _close_all() -> None:
    servers = list(_SERVERS.values())
    for server in servers:  # all told first: they end side by side, not one after another
        server.hang_up()
    for server in servers:
        server.close()


atexit.register(_close_all)


def _server(env: dict) -> ForkServer | None:
    """This process's server for ``env``'s import-time settings, started on first use."""
    global _BROKEN
    with _START_LOCK:
        if _BROKEN or not USABLE:
            return None
        key = frozenset(_settings(env).items())
        if key not in _SERVERS or _SERVERS[key].ended:
            if key not in _SERVERS and len(_SERVERS) >= _MOST_SERVERS:
                _SERVERS.pop(next(iter(_SERVERS))).close()  # its workers stay its judges' to stop (pidfds)
            try:
                _SERVERS[key] = ForkServer(env)
            except OSError:
                _BROKEN = True
                return None
        return _SERVERS[key]


def worker_environment() -> dict:
    """The environment a candidate's worker starts with: the judge's, without a window (a
    check never needs one, and a script's top-level ``plt.show()`` would block on a desktop
    until someone closes it; it runs guarded: ``oracles.scripts``)."""
    return {**os.environ, "MPLBACKEND": "Agg"}


def start(env: dict) -> None:
    """Start this process's server for ``env`` now, where a worker will be wanted: it imports
    what a worker needs while the judge imports the rest (``gradmatrix.cli`` starts it as
    soon as it has parsed its arguments, with JAX's host)."""
    _server(env)


def preload(env: dict) -> None:
    """A worker with ``env`` ran the oracles (its module declares layers): the server for
    its settings imports ``FRAMEWORKS`` once, after it answers, so that later workers start
    with them (a fresh worker would import them itself when it needs them)."""
    with _START_LOCK:
        server = _SERVERS.get(frozenset(_settings(env).items()))
    if server is not None and not server.preloaded:
        try:
            server.ask(("preload",), within=REPLY_TIME_LIMIT)
            server.preloaded = True
        except OSError:
            pass  # ended: the next worker asks a new one


def spawn(target: str, skip: tuple, env: dict, worker_fd: int):
    """Start a worker for ``target`` (``python -m gradmatrix.isolation FD TARGET [SKIP...]``,
    ``skip`` the ops whose stubs it does not probe) with environment ``env``, the judge's
    working directory and standard streams, standard input empty, and ``worker_fd`` open in
    it (its pipe to the judge): forked by this process's fork server for ``env``'s
    import-time settings (``IMPORT_TIME_SETTINGS``; one per settings seen, so a run whose
    settings change gets a server started with them), else a fresh interpreter.

    Returns:
        A ``Forked`` or a ``subprocess.Popen``.
    """
    global _BROKEN
    server = _server(env)
    if server is not None:
        try:
            return server.fork(target, skip, env, worker_fd)
        except ServerStuck:
            _BROKEN = True  # a server that stops answering: fresh interpreters from now on
        except OSError:
            pass  # ended, or a standard stream closed here: this worker starts fresh
    return subprocess.Popen([sys.executable, "-m", "gradmatrix.isolation", str(worker_fd), target, *skip],
                            pass_fds=(worker_fd,), stdin=subprocess.DEVNULL, env=env)


# --- the server's side ------------------------------------------------------------------


def _status(code: int) -> int:
    """A ``waitpid`` status as ``Popen.returncode``: the exit code, or -N for signal N."""
    return -os.WTERMSIG(code) if os.WIFSIGNALED(code) else os.WEXITSTATUS(code)


def _worker(target: str, skip: tuple, env: dict, cwd: str, umask: int, limits: dict, fds: list) -> None:
    """In the forked child: become the worker a fresh interpreter would be, run it, exit."""
    import io
    import resource

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
        # streams as an interpreter opens them on these descriptors: stdout line-buffered on
        # a terminal only, stderr always, both written through under -u / PYTHONUNBUFFERED
        # (the server started with the flags and environment a fresh worker has)
        out, err = sys.stdout, sys.stderr
        sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding=out.encoding,
                                                       errors=out.errors, line_buffering=os.isatty(1),
                                                       write_through=out.write_through)
        sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding=err.encoding,
                                                       errors=err.errors, line_buffering=True,
                                                       write_through=err.write_through)
        os.chdir(cwd)
        os.umask(umask)
        for name, limit in limits.items():
            try:
                resource.setrlimit(getattr(resource, name), limit)
            except (ValueError, OSError):  # a limit the server may not raise back: it stays lower
                pass
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
        if isinstance(exc.code, int) or exc.code is None:
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001  (an interpreter would print it and exit 1)
        import traceback

        traceback.print_exc()
        code = 1
    try:  # what the interpreter does at exit: join threads, run atexit, flush
        threading._shutdown()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001
        code = code or 120
    finally:
        os._exit(code)


def _preload() -> None:
    """Import ``FRAMEWORKS`` (once; what is not installed stays out, as in a worker)."""
    import importlib

    for name in FRAMEWORKS:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001  (not installed, or broken: the worker meets it as a fresh one would)
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
            return exited.pop(pid)  # told once: the judge keeps it, and the id may be reused
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
        sent = []
        try:
            reply, sent = _answer(request, fds, channel, alive, exited)
        except Exception as exc:  # noqa: BLE001  (a request it cannot serve: the judge raises it)
            reply = exc
        socket.send_fds(channel, [pickle.dumps(reply)], sent)
        for each in sent:
            os.close(each)
        if request[0] == "preload":  # answered first: the judge goes on while this imports
            _preload()


def _answer(request: tuple, fds: list, channel, alive: set, exited: dict) -> tuple:
    """(the reply to one request, file descriptors sent with it): a forked worker's pid with
    its pidfd, or a wait's status."""
    if request[0] == "fork":
        _, target, skip, env, cwd, umask, limits = request
        with warnings.catch_warnings():
            # Python 3.12+ warns on a fork in a process with threads: the server's only other
            # threads are BLAS's idle pool (OpenBLAS resets it in the child at fork), and it
            # runs no Python thread, so no lock can be held across the fork
            warnings.filterwarnings("ignore", message=r".*multi-threaded.*fork", category=DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            channel.close()
            _worker(target, skip, env, cwd, umask, limits, fds)  # never returns
        for each in fds:
            os.close(each)
        exited.pop(pid, None)  # an id used before, by a worker long reported
        alive.add(pid)
        return pid, [os.pidfd_open(pid)]  # before anything can reap it: the judge's handle on this process
    if request[0] == "preload":
        return None, []  # done once answered (``serve``)
    return _wait(request[1], request[2], exited, alive), []  # "wait"


if __name__ == "__main__":  # the server: python -m gradmatrix.forkserver FD
    serve(int(sys.argv[1]))
    # ended by its judge: it holds nothing to write or release, and the interpreter's own
    # teardown (torch's and JAX's, once preloaded: about a second) is time its judge waits
    # for at exit; its workers, if any are left, stay their judges' to stop (pidfds)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
