"""An oracle that compiles per shape (JAX), computed ahead in a process of its own.

A check on an empty store spends most of its CPU time in JAX: importing it, then tracing,
lowering and compiling a function per op, shape and dtype (72 functions, about 2.1 s of
CPU compiled 8 to a module (``oracles.jax_oracle.expect``), 3.4 s one by one, for the
default matrix of a course's ``layers.py``), most of it Python that holds the GIL.
On a thread of the judge that work competes with everything else the judge does (torch,
the numeric oracle, the comparisons); in a process of its own, started as soon as the plan
is known (on an empty store, as soon as the check starts: it imports JAX while the
candidate loads, and gets its jobs with the plan), it runs beside them on another core, and
the judge never imports JAX at all.

The host runs gradmatrix's own code only: the oracle's results on the catalog's and the
courses' ops.  A layer the candidate declares is evaluated in the candidate's worker
(``gradmatrix.isolation``), and a case whose inputs the candidate draws (the course's
dropout mask) needs the candidate's result first: both stay out of the host's jobs.  For
each job, in the plan's order, the host draws the case's inputs itself (a draw is a
function of the case, so these are the judge's arrays), evaluates the implementation
(``oracles.modes`` builds the modes' on the oracle, as in the judge) and sends back what
came of it as data: the ``Result``, or the exception's type, message and traceback.

The judge takes a result when a comparison needs it (``take``), waiting while the host
works towards it.  JAX's host usually finishes before the judge, whose own work (torch, the
numeric oracle, the comparisons) is the longer; so it also gets the numeric oracle's jobs
(the oracles that import no framework, ``oracles.implementations.NO_FRAMEWORK``) as spare
work, done from the plan's last job backwards once its own are done, while the judge
computes them from the first: the judge takes an answer that has come (``offered``), else
computes it and tells the host, which stops where the judge has been.  A host that stops answering (nothing within the case time limit), cannot
start, or ends is stopped, and whatever it has not answered is evaluated in the judge as
before: the host changes where an oracle runs, never what it computes.  Where the oracle's
framework is already imported in the judge (its compiled functions in memory), on a
single core, on a GPU or at another matmul precision, the judge keeps the work
(``gradmatrix.runner.Runner.compile_ahead``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection

START_TIME_LIMIT = 60.0  # seconds the host may take to start and import its oracles, at least


class RaisedElsewhere(Exception):
    """An exception an implementation raised in another process, as data: ``raised`` its
    type's name, ``said`` its text, ``user_traceback`` its frames
    (``oracles.result.short_traceback``)."""

    def __init__(self, raised: str, message: str, trace: str):
        super().__init__(f"{raised}: {message}")
        self.raised = raised
        self.said = message
        self.user_traceback = trace


class OracleHost:
    """The judge's end of a host process: it sends the jobs, a reader thread collects the
    answers, ``available`` and ``take`` hand them out."""

    def __init__(self, jobs: list | None, oracles: tuple, device: str, precision: str, progress_limit: float,
                 keep_functions: bool = True, spare: list = (), expected: list | None = None):
        """
        Args:
            jobs: ``(case, implementation name)`` pairs, in the order they will be needed;
                None: given later (``submit``), the host importing its oracles meanwhile.
            oracles: the oracles the jobs' implementations are built on, the spare jobs' too.
            device, precision: as the runner's.
            progress_limit: seconds without an answer (since its last, or since it was given
                work) after which the host counts as stuck (0: none); its first answer gets
                at least ``START_TIME_LIMIT``.  The case time limit: a spare job that takes
                longer is not answered (the judge computes it under its own limit).
            keep_functions: store the functions it compiles (``oracles.jax_store``); not
                needed where the judge stores the results themselves (``oracles.reference_store``).
            spare: jobs the judge also computes itself (``submit``).
            expected: what its oracle may prepare together (``submit``).

        Raises:
            OSError: the process cannot be started.
        """
        self.oracles = oracles
        self._index: dict = {}  # (case, name) -> the id of its job's answer
        self._spare: dict = {}  # (case, name) -> the id of a spare job's answer (``offered``)
        self._claimed = -1  # the last spare job the judge computed itself (the host leaves it and those before)
        self._asked = -1  # the id of the next request (``ask``): negative, the jobs' count from 0
        self._limit = progress_limit
        self._results: dict = {}
        self._available: dict | None = None
        self._stopped = ""  # why the host no longer answers ("": it does)
        self._changed = threading.Condition()
        self._sending = threading.Lock()
        self._last = time.monotonic()
        ours, theirs = socket.socketpair()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "gradmatrix.oracle_host", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        # a few bytes: the socket holds them
        self._conn.send((oracles, device, precision, keep_functions, progress_limit))
        self._reader = threading.Thread(target=self._read, name="gradmatrix-oracle-host", daemon=True)
        self._reader.start()
        if jobs is not None:
            self.submit(jobs, spare, expected)

    def submit(self, jobs: list, spare: list = (), expected: list | None = None) -> None:
        """Give the host its jobs (once): ``(case, implementation name)`` pairs in the order
        they will be needed; ``spare`` (of the same form, in the same order) are jobs the
        judge also computes itself: the host takes them from the last backwards once its own
        are done, and the judge uses an answer that is there when it needs it (``offered``);
        ``expected``, the jobs and what it will be asked (``ask``: a case the candidate
        draws an input of), in the plan's order: what its oracle may prepare together
        (``oracles.jax_oracle.expect``); None: the jobs."""
        with self._changed:
            self._index = {job: i for i, job in enumerate(jobs)}
            self._spare = {job: len(jobs) + i for i, job in enumerate(spare)}
            self._last = time.monotonic()  # its time to answer counts from here (it may have idled)

        def send() -> None:  # on a thread: a large plan must not wait for the host to read it
            try:
                with self._sending:
                    self._conn.send(("jobs", jobs, list(spare), list(jobs if expected is None else expected)))
            except (OSError, ValueError):  # it ended: every result is then evaluated in the judge
                with self._changed:
                    self._stopped = self._stopped or "its process ended"
                    self._changed.notify_all()

        threading.Thread(target=send, name="gradmatrix-oracle-host-jobs", daemon=True).start()

    def _read(self) -> None:
        try:
            while True:
                message = self._conn.recv()
                with self._changed:
                    self._last = time.monotonic()
                    if message[0] == "available":
                        self._available = message[1]
                    else:
                        self._results[message[0]] = message[1:]
                    self._changed.notify_all()
        except BaseException as exc:  # noqa: BLE001  (whatever ends the reading ends the host's answers)
            ended = isinstance(exc, (EOFError, OSError, ValueError))
            with self._changed:
                self._stopped = self._stopped or ("its process ended" if ended else
                                                  f"an answer of its could not be read ({type(exc).__name__}: {exc})")
                self._changed.notify_all()

    def _wait(self, ready, first: bool, meanwhile=None) -> bool:
        """Wait until ``ready()`` (under the lock) or the host stops answering; whether it is
        ready.  ``meanwhile()``, called while it is not, does some other work of the
        judge's and says whether there was any (then it is called again, else waited)."""
        limit = max(self._limit, START_TIME_LIMIT) if first else self._limit
        while True:
            with self._changed:
                if ready() or self._stopped:
                    return ready()
            if meanwhile is None or not meanwhile():
                break
        with self._changed:
            while not ready() and not self._stopped:
                left = None if not limit else self._last + limit - time.monotonic()
                if left is not None and left <= 0:
                    self._stopped = f"no answer within {limit:g} s"
                    break
                self._changed.wait(left)
            return ready()

    def available(self, name: str) -> str | None | bool:
        """The host's answer to whether oracle ``name`` runs there (None, or the reason it
        cannot), or False when it gave none (it stopped: ask in the judge)."""
        if not self._wait(lambda: self._available is not None, first=True):
            self.close()
            return False
        return self._available.get(name, False)

    def take(self, case, name: str, meanwhile=None):
        """The host's result of implementation ``name`` on ``case``, None when it has none
        (not one of its jobs, or it stopped answering first: evaluate it in the judge);
        while it is not there, ``meanwhile()`` does the judge's other work (``_wait``).

        Raises:
            RaisedElsewhere: the implementation raised in the host.
        """
        i = self._index.pop((case, name), None)
        return None if i is None else self._answer(i, meanwhile)

    def offered(self, case, name: str):
        """The host's result of spare job ``(case, name)`` (``submit``) where it has come
        already, else None: the judge computes it, and the host is told to leave it and the
        spare jobs before it (the judge goes through them in order, the host from the end).

        Raises:
            RaisedElsewhere: the implementation raised in the host.
        """
        i = self._spare.pop((case, name), None)
        if i is None:
            return None
        with self._changed:
            answer = self._results.pop(i, None)
            if answer is None and (self._stopped or i <= self._claimed):
                return None
        if answer is None:
            self._claimed = i
            try:
                with self._sending:
                    self._conn.send(("claimed", i))
            except (OSError, ValueError):
                self.close()
            return None
        outcome, value = answer
        if outcome == "fault":
            raise RaisedElsewhere(*value)
        return value

    def ask(self, case, name: str, inputs, precision: str):
        """Implementation ``name``'s result on these ``inputs`` of ``case`` at matmul
        ``precision``, computed in the host before its next job; None when it no longer
        answers (evaluate it in the judge).

        Raises:
            RaisedElsewhere: the implementation raised in the host.
        """
        with self._changed:
            if self._stopped:
                return None
            i, self._asked = self._asked, self._asked - 1
            self._last = time.monotonic()  # an idle host's time to answer counts from here
        try:
            with self._sending:
                self._conn.send((i, case, name, inputs, precision))
        except (OSError, ValueError):
            self.close()
            return None
        return self._answer(i)

    def _answer(self, i: int, meanwhile=None):
        try:
            ready = self._wait(lambda: i in self._results, first=self._available is None, meanwhile=meanwhile)
        except BaseException:  # a time limit, Ctrl-C: a late answer is no one's, and the host may be stuck
            self.close()
            raise
        if not ready:
            self.close()
            return None
        outcome, value = self._results.pop(i)
        if outcome == "fault":
            raise RaisedElsewhere(*value)
        return value

    def close(self) -> None:
        """Stop the host (at once: what it computes from here on is not needed)."""
        with self._changed:
            self._stopped = self._stopped or "closed"
            self._changed.notify_all()
        try:
            self._conn.close()
        except OSError:
            pass
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001  (interpreter shutdown)
            pass


def host_pays(oracle, device: str) -> bool:
    """Whether an oracle that compiles per shape (``Oracle.compiles``: JAX) is better
    computed in a process of its own (``gradmatrix.oracle_host``) than here: on the CPU, with
    a core to spare, its framework not yet imported here (where it is, its compiled functions
    are in this process's memory, and a new process would import and compile again)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return device == "cpu" and cores > 1 and not any(m in sys.modules for m in oracle.requires)


_EARLY: dict = {}  # the hosts ``start_early`` started: {"settings": ..., "hosts": {oracle name: host}}


def _hosts_for(oracles: tuple, device: str, precision: str, case_timeout: float, workers: int) -> dict:
    """Host processes for the oracles that compile per shape (JAX), started now, where a run
    in one process will compute all their results (an empty store) in a process of their own
    (``host_pays``; one process runs the whole plan, on the CPU, at the default matmul
    precision), the first with the oracles that import no framework for spare work; by
    oracle name."""
    from gradmatrix.oracles import reference_store
    from gradmatrix.oracles.implementations import NO_FRAMEWORK, REGISTRY

    if workers or device != "cpu" or precision != "default" or not reference_store.empty():
        return {}
    hosts = {}
    spare = tuple(name for name in NO_FRAMEWORK if name in oracles)
    for name in oracles:
        oracle = REGISTRY.get(name)
        if oracle is not None and oracle.compiles and host_pays(oracle, "cpu"):
            try:
                hosts[name] = OracleHost(None, (name, *spare), "cpu", "default", case_timeout, keep_functions=False)
            except OSError:
                pass  # started later, or computed in the judge
            spare = ()
    return hosts


def start_early(oracles: tuple, device: str, precision: str, case_timeout: float, workers: int = 0) -> None:
    """Start the host processes a run with these settings (``gradmatrix.engine.Request``'s)
    will want, before anything heavy is imported (the command calls it as soon as it has
    parsed its arguments): each imports its framework while the judge imports its own and
    the candidate loads.  ``early_hosts`` hands them to the run; the process's end stops any
    left unclaimed (its end of their sockets closes)."""
    settings = (tuple(oracles), device, precision, case_timeout, workers)
    if _EARLY.get("settings") != settings:
        close_early()
        _EARLY.update(settings=settings, hosts=_hosts_for(*settings))


def close_early() -> None:
    """Stop the hosts ``start_early`` started that no run has claimed (a run refused)."""
    for host in _EARLY.pop("hosts", {}).values():
        host.close()
    _EARLY.clear()


def early_hosts(request) -> dict:
    """The host processes for a run of ``request`` (``gradmatrix.engine.Request``): those
    ``start_early`` started with its settings, else started now (none for a part of -n);
    by oracle name."""
    if request.part:
        return {}
    settings = (tuple(request.oracles), request.device, request.matmul_precision, request.case_timeout,
                request.workers)
    if _EARLY.get("settings") == settings:
        _EARLY.pop("settings")
        return _EARLY.pop("hosts")
    return _hosts_for(*settings)


def _serve(conn: Connection) -> None:
    """The host: the jobs, then each job's outcome as it is done (see the module docstring),
    until the judge closes its end (it may do so at any moment: what is left is not needed)."""
    try:
        _answer_all(conn)
    except (EOFError, OSError):  # the judge closed its end (a broken pipe included)
        pass


def _answer_all(conn: Connection) -> None:
    import signal

    from gradmatrix.oracles import modes
    from gradmatrix.oracles.cases import draw_inputs
    from gradmatrix.oracles.devices import matmul_precision
    from gradmatrix.oracles.implementations import ON_DEVICE, oracle, unavailable_reason
    from gradmatrix.oracles.result import short_traceback

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the judge's to handle: it stops the host
    oracles, device, precision, keep_functions, case_limit = conn.recv()
    if not keep_functions:
        from gradmatrix.oracles import jax_store

        jax_store.SAVE = False
    impls = {name: oracle(name, **({"device": device} if name in ON_DEVICE and device != "cpu" else {}))
             for name in oracles}
    unavailable = {name: unavailable_reason(impl) for name, impl in impls.items()}
    conn.send(("available", unavailable))
    by_kind = {kind: modes.implementations(kind, impls, None) for kind in modes.MODE_KINDS}

    def answer(i: int, case, name: str, inputs, at: str) -> tuple:
        try:
            if isinstance(inputs, Exception):  # drawing them failed
                raise inputs
            impl = (by_kind[case.kind] if case.kind in by_kind else impls)[name]
            with matmul_precision(at):
                return i, "result", impl.evaluate(inputs)
        except Exception as exc:  # noqa: BLE001  (an oracle's failure is the record's business, in the judge)
            return i, "fault", (type(exc).__name__, str(exc), short_traceback(exc))

    pending: list = []
    spare: list = []  # jobs the judge also does: taken from the last, once the others are done
    claimed = -1  # the judge has done the spare jobs up to this one itself
    drawn: dict = {}  # the last case's inputs: a case's implementations come one after another
    while True:
        while not (pending or spare) or conn.poll(0):  # the judge's messages first; with no job left, wait for one
            message = conn.recv()
            if message[0] == "jobs":
                _, jobs, spares, expected = message
                pending = [job for job in enumerate(jobs) if not unavailable[modes.base_name(job[1][1])]]
                for name, impl in impls.items():  # the oracle may compile several of its functions at once
                    impl.expect([case for case, job_name in expected if modes.base_name(job_name) == name])
                pending.reverse()  # popped from the end: in the plan's order
                spare = [job for job in enumerate(spares, start=len(jobs))
                         if not unavailable[modes.base_name(job[1][1])]]
            elif message[0] == "claimed":
                claimed = max(claimed, message[1])
            else:
                conn.send(answer(*message))
        is_spare = not pending
        if pending:
            i, (case, name) = pending.pop()
        else:
            i, (case, name) = spare.pop()
            if i <= claimed:  # the judge got here first: it has done this one and those before
                spare.clear()
                continue
        if case not in drawn:
            drawn.clear()
            try:
                drawn[case] = draw_inputs(case)
            except Exception as exc:  # noqa: BLE001
                drawn[case] = exc
        started = time.monotonic()
        outcome = answer(i, case, name, drawn[case], precision)
        if is_spare and case_limit and time.monotonic() - started > case_limit:
            continue  # past the case time limit: the judge computes it under its own, as without a host
        conn.send(outcome)


if __name__ == "__main__":  # python -m gradmatrix.oracle_host FD
    _serve(Connection(int(sys.argv[1])))
