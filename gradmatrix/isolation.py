"""The code under test in a process of its own: the judge never shares a process with it.

``IsolatedCandidate`` stands where a ``Candidate`` stands in the runner, but the candidate
module is imported, probed and run in a worker process.  Inputs go to the worker and what
the candidate returned comes back as data (a ``Result``: arrays, notes, warnings), copied
on receipt by the pipe itself.  The oracles, the comparison, the verdict and the report
writers stay in the judge's process, where nothing the candidate does can reach them:
patching ``reports.tolerances``, ``np.seterr(all="raise")``, ``os.chdir``, changing NumPy's
defaults, ``sys.exit`` or ``os._exit`` affect only the worker.

One worker lives as long as its candidate and serves all its cases.  The per-case time limit
is the judge's: past it the worker is killed (whatever the candidate catches, in any thread
the judge runs in), the case is an error, and the next case starts a new worker.  A worker
that ends on its own (``os._exit``, a crash) makes the case an error naming how it ended.
Loading the module and probing its stubs run under the same limit.

Layers declared with ``@gradmatrix.layer`` carry the user's own forward, which the oracles
run too (the numeric oracle differentiates it); a module that declares layers is checked
in the judge's process, as ``check_layer`` always is; the report records it (``run.isolated``).
"""

from __future__ import annotations

import signal
import os
import socket
import subprocess
import sys
import traceback
from multiprocessing.connection import Connection

from gradmatrix.oracles.declared import spec_of
from gradmatrix.oracles.contract import ContractError
from gradmatrix.oracles.result import CandidateFault, CaseTimeout

IMPORT_TIME_LIMIT = 60.0  # seconds a worker may take to start and import the candidate, at least


class DeclaresLayers(Exception):
    """The candidate module declares layers: it cannot be judged from another process."""


class _ProbeTimeout(Exception):
    """An op's stub probe at load ran past the time limit."""

    def __init__(self, op: str):
        super().__init__(op)
        self.op = op


class WorkerEnded(CandidateFault):
    """The candidate's worker process ended while it ran the candidate."""


def _serve(conn, target: str, skip_probe=()) -> None:
    """The worker: import the candidate, say what it provides, then evaluate cases until told
    to stop.  Everything sent back is data: a Result, or a fault's text."""
    from gradmatrix.oracles.candidate import Candidate, account, load_module
    from gradmatrix.oracles.declared import declarations_in

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the judge's to handle: it stops the worker
    try:
        module = load_module(target)
        if list(declarations_in(module)):
            conn.send(("declares-layers", None))
            return
        conn.send(("imported", None))
        candidate = Candidate(module, on_probe=lambda op: conn.send(("probing", op)), skip_probe=skip_probe)
        info = {
            "name": candidate.name,
            "ops": candidate.ops,
            # catalog and course ops only (no declared layers here): a contract by its place in the op's entry
            "contracts": {op: spec_of(op).contracts.index(c) for op, c in candidate.contracts.items()},
            "unchecked": candidate.unchecked,
            "accounting": account(candidate),
            "skipped": candidate.skipped,
        }
    except ImportError as exc:
        conn.send(("import-error", str(exc)))
        return
    except ValueError as exc:  # a declaration that cannot be built (oracles.declared.DeclarationError)
        conn.send(("value-error", str(exc)))
        return
    except BaseException as exc:  # noqa: BLE001  (SystemExit at import included: reported, never raised here)
        conn.send(("import-error", f"loading {target} raised {type(exc).__name__}: {exc}"))
        return
    conn.send(("loaded", info))
    while True:
        try:
            message, payload = conn.recv()
        except (EOFError, OSError):
            return
        if message == "stop":
            return
        try:
            conn.send(("result", candidate.evaluate(payload)))
        except CandidateFault as exc:
            cause = exc.__cause__
            raised = None if cause is None or isinstance(cause, ContractError) else type(cause).__name__
            conn.send(("fault", (str(exc), getattr(exc, "user_traceback", None), raised)))
        except BaseException as exc:  # noqa: BLE001  (whatever the candidate raised: data for the judge)
            conn.send(("fault", (f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc)), None)))


class IsolatedCandidate:
    """A candidate module run in a worker process (see the module docstring); the runner's
    ``Candidate`` interface: ``name``, ``ops``, ``contracts``, ``unchecked``, ``accounting``,
    ``evaluate``."""

    def __init__(self, target: str, case_timeout: float = 0.0):
        """
        Args:
            target: a dotted module name or a path to a ``.py`` file.
            case_timeout: seconds one case may take (0: no limit); importing gets at least
                ``IMPORT_TIME_LIMIT``, each op's stub probe at load the case's limit.

        Raises:
            ImportError: the module cannot be imported (it raised, ended its process, or
                took too long).
            ValueError: a layer it declares cannot be built.
            DeclaresLayers: it declares layers (check it in-process).
        """
        self.target = target
        self.case_timeout = case_timeout
        self.functions: dict = {}  # declared layers' functions: none here
        self._process = None
        self._conn = None
        self.timed_out: dict = {}  # op -> why its cases are not run (past the time limit, or its process ended)
        info = self._start()
        self.name = info["name"]
        self.ops = info["ops"]
        self.contracts = {op: spec_of(op).contracts[i] for op, i in info["contracts"].items()}
        self.unchecked = info["unchecked"]
        self.accounting = info["accounting"]
        self.skipped = info["skipped"]  # a script's top-level statements not run (oracles.scripts)

    def _start(self) -> dict:
        """Start a worker and load the candidate in it: the import within ``IMPORT_TIME_LIMIT``
        (or the case time limit where larger), each op's one-call stub probe within the case
        time limit.  An op whose probe runs past it is not probed again (a new worker is
        started without it) and each of its cases is an error at once (``timed_out``)."""
        while True:
            try:
                return self._load()
            except _ProbeTimeout as exc:
                self.timed_out[exc.op] = (f"its probe call at load ran past the time limit of "
                                          f"{self.case_timeout:g} s (--case-timeout); its process was stopped")

    def _load(self) -> dict:
        # a fresh interpreter started as a command, not multiprocessing's spawn: that would
        # import the judge's __main__ again (a user's script calling gradmatrix.check would run
        # once more in the worker)
        ours, theirs = socket.socketpair()
        command = [sys.executable, "-m", "gradmatrix.isolation", str(theirs.fileno()), self.target,
                   *self.timed_out]
        # no window: a check never needs one, and a script's top-level plt.show() would block
        # on a desktop until someone closes it (it runs guarded: oracles.scripts)
        env = {**os.environ, "MPLBACKEND": "Agg"}
        self._process = subprocess.Popen(command, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env)
        theirs.close()
        self._conn = Connection(ours.detach())
        importing = max(IMPORT_TIME_LIMIT, self.case_timeout) if self.case_timeout else None
        probing = None
        while True:
            limit = importing if probing is None else (self.case_timeout or None)
            if not self._conn.poll(limit):
                self.close()
                if probing is not None:
                    raise _ProbeTimeout(probing)
                raise ImportError(f"importing {self.target} took longer than {limit:g} s (its process was stopped)")
            try:
                message, payload = self._conn.recv()
            except (EOFError, OSError):
                code = self._ended()
                at = f"while probing {probing}" if probing else "at import"
                raise ImportError(f"loading {self.target} ended its process ({code}) {at}: it calls os._exit or "
                                  f"sys.exit, or crashes") from None
            if message == "imported":
                continue
            if message == "probing":
                probing = payload
                continue
            break
        if message == "loaded":
            return payload
        self.close()
        if message == "declares-layers":
            raise DeclaresLayers(self.target)
        if message == "value-error":
            raise ValueError(payload)
        raise ImportError(payload)

    def _ended(self) -> str:
        """How the worker ended, in words; it is joined and forgotten."""
        process, self._process = self._process, None
        if process is None:
            return "not running"
        try:
            code = process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return "killed"
        return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"

    def available(self) -> None:
        """A loaded candidate is always available."""

    def evaluate(self, inputs):
        """The candidate's result on ``inputs``, computed in the worker.

        Raises:
            CandidateFault: the candidate raised, broke its contract, or its worker ended.
            CaseTimeout: it ran past the time limit (the worker was killed).
        """
        op = inputs.case.op
        if op in self.timed_out:  # one time-out per op: a loop is not waited for again on every case
            raise CandidateFault(f"{op} not run: {self.timed_out[op]}")
        if self._process is None:
            self._start()  # the previous worker was stopped (a time limit) or ended
        try:
            self._conn.send(("evaluate", inputs))
            if not self._conn.poll(self.case_timeout or None):
                raise CaseTimeout(f"{self.name} on {inputs.case.id} took longer than the time limit of "
                                  f"{self.case_timeout:g} s (--case-timeout); its process was stopped")
            message, payload = self._conn.recv()
        except (EOFError, OSError):
            how = self._ended()
            self.timed_out[op] = f"its process ended ({how}) on {inputs.case.id}"  # not restarted for each case
            raise WorkerEnded(f"{self.name}'s process ended ({how}) while it ran {op} on "
                              f"{inputs.case.id}: the code under test ended it (os._exit, a crash)") from None
        except BaseException as exc:
            # a time limit (ours, or the runner's), Ctrl-C: the worker may still be running the
            # case, and its late answer must never be read as the next case's
            self.close()
            if isinstance(exc, CaseTimeout):
                self.timed_out[op] = f"{inputs.case.id} ran past the time limit ({exc})"
            raise
        if message == "result":
            return payload
        text, user_traceback, raised = payload
        fault = CandidateFault(text)
        fault.user_traceback = user_traceback
        fault.raised = raised  # the exception the candidate's own code raised, by name (None: a contract problem)
        raise fault

    def close(self) -> None:
        """Stop the worker (at once: it may be running a loop that never ends)."""
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def __del__(self):
        self.close()


def open_candidate(module, case_timeout: float = 0.0):
    """The candidate for a check: a module object as it is (already in the caller's process),
    ``gradmatrix.manual`` in-process (the project's own reference code), any other dotted
    name or path in a worker process (``IsolatedCandidate``), or in-process where it declares
    layers of its own.

    Returns:
        (candidate, isolated: bool).

    Raises:
        ImportError, ValueError: as ``IsolatedCandidate`` and ``oracles.candidate.load_module``.
    """
    from gradmatrix.oracles.candidate import Candidate, load_module

    if not isinstance(module, str):
        return Candidate(module), False
    if module == "gradmatrix.manual":
        return Candidate(load_module(module)), False
    try:
        return IsolatedCandidate(module, case_timeout), True
    except DeclaresLayers:
        return Candidate(load_module(module)), False


def accounting(candidate) -> list:
    """Every function and class of the candidate's module, checked or not and why
    (``oracles.candidate.account``), wherever the module was imported."""
    from gradmatrix.oracles.candidate import account

    return candidate.accounting if hasattr(candidate, "accounting") else account(candidate)


if __name__ == "__main__":  # the worker: python -m gradmatrix.isolation FD TARGET [OP ...]
    _serve(Connection(int(sys.argv[1])), sys.argv[2], tuple(sys.argv[3:]))
