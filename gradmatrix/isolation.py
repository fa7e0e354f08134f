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

Layers a module declares (``@gradmatrix.layer``, ``gradmatrix.layer(...)``) are the user's
code through and through: building their spec runs the forward (the output's shape), their
inputs are drawn by the user's draws and samplers, and the oracles run the user's reference
(or, without one, differentiate the user's forward).  So all of it runs in the worker too:
the worker builds the specs (each layer's build under the case time limit) and sends each as
data (``oracles.declared.describe``), from which the judge makes a spec of its own holding no
function of the user's; the judge asks the worker for a case's inputs (``draw``) and for
each implementation's result on them, the oracles' and the modes' included
(``evaluate_as``), all under the one time limit that kills the worker.  The comparison, the
verdict and the reports stay here.  The catalog's and the courses' ops (gradmatrix's own
code) keep drawing and running their oracles in the judge.

A framework function (``@gradmatrix.layer(..., framework="torch" | "jax")``,
``gradmatrix.framework_layers``) is such a layer, with checks of its own beside the matrix
(low precision, the backward run again, the double backward) that call the user's torch or
JAX function and reference.  The worker computes their values (``framework_layers.Measures``:
float64 arrays, or the exception raised, by name and message) when the judge asks
(``"framework-check"``, through the same time limit); the judge plans those checks from the
declarations sent as data (``framework_functions``) and makes their records itself
(``reports.framework_checks``).  ``check_layer`` and a module object passed in run in the
caller's process (``run.isolated`` false).
"""

from __future__ import annotations

import signal
import os
import socket
import subprocess
import sys
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import NamedTuple

from gradmatrix import forkserver
from gradmatrix.oracles.cases import Case, CaseInputs, draw_inputs
from gradmatrix.oracles.catalog import CATALOG, join, spec_of
from gradmatrix.oracles.contract import ContractError
from gradmatrix.oracles.contracts import COURSE_SPECS
from gradmatrix.oracles.declared import DeclarationError, from_description
from gradmatrix.oracles.devices import matmul_precision
from gradmatrix.oracles.implementations import ORACLES, unavailable_reason
from gradmatrix.oracles.result import CandidateFault, CaseTimeout, Result
from gradmatrix.oracles.modes import run_implementations as implementations
from gradmatrix.oracles.result import short_traceback

IMPORT_TIME_LIMIT = 60.0  # seconds a worker may take to start and import the candidate, at least
END_GRACE = 5.0  # seconds a worker whose check is done has to flush what the candidate printed


class _BuildTimeout(Exception):
    """Building a declared layer (its forward on inputs of each declared shape) ran past the
    time limit."""

    def __init__(self, layer: str):
        super().__init__(layer)
        self.layer = layer


class _ProbeTimeout(Exception):
    """An op's stub probe at load ran past the time limit."""

    def __init__(self, op: str):
        super().__init__(op)
        self.op = op


class WorkerEnded(CandidateFault):
    """The candidate's worker process ended while it ran the candidate."""


def _serve(conn, target: str, skip_probe=()) -> None:
    """The worker: import the candidate, build the layers it declares, say what it provides,
    then answer the judge until told to stop: a case's result of the candidate
    (``"evaluate"``); for a declared layer's case, its inputs (``"draw"``), whether an
    oracle can run here (``"unavailable"``) and any implementation's result on them
    (``"evaluate-as"``); for a declared framework function's own checks, their values
    (``"framework-check"``, ``framework_layers.Measures.measure``).  Everything sent back is
    data: a Result, inputs, arrays, or a fault's text."""
    from gradmatrix.oracles.candidate import Candidate, account, compile_from_source, load_module
    from gradmatrix.oracles.declared import describe, specs_of

    from gradmatrix.progress import guard_standard_streams

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the judge's to handle: it stops the worker
    guard_standard_streams()  # a candidate printing to a reader that stopped reading is not at fault
    # the candidate's modules are compiled from their source, none kept as bytecode: cached by
    # any process, a module it imports would stand for an edit of the same size saved within
    # the same second (``gradmatrix watch``)
    sys.dont_write_bytecode = True
    compile_from_source(target)
    try:
        module = load_module(target)
        conn.send(("imported", None))
        declared = specs_of(module, on_build=lambda layer: conn.send(("building", layer)))
        conn.send(("built", None))
        candidate = Candidate(module, on_probe=lambda op: conn.send(("probing", op)), skip_probe=skip_probe)
        frameworks = {}  # their own checks' values, made here
        if declared:  # a framework function is a declared layer: only a module declaring one imports
            # framework_layers (and the report modules it needs), which a worker starting for a
            # catalog op's candidate would otherwise import for nothing on every start
            from gradmatrix.framework_layers import framework_functions

            frameworks = framework_functions(module, candidate.catalog)
        info = {
            "name": candidate.name,
            "ops": candidate.ops,
            # a catalog or course op's contract by its place in the op's entry; a declared layer's
            # in its spec's description
            "contracts": {op: None if op in declared else spec_of(op).contracts.index(c)
                          for op, c in candidate.contracts.items()},
            "declared": {name: describe(spec) for name, (spec, _) in declared.items()},
            "framework_functions": {name: data for name, (data, _) in frameworks.items()},
            "unchecked": candidate.unchecked,
            "accounting": account(candidate),
            "skipped": candidate.skipped,
        }
    except ImportError as exc:
        conn.send(("import-error", str(exc)))
        return
    except ValueError as exc:  # a declaration that cannot be built (oracles.declared.DeclarationError)
        conn.send(("declaration-error", str(exc)))
        return
    except BaseException as exc:  # noqa: BLE001  (SystemExit at import included: reported, never raised here)
        conn.send(("import-error", f"loading {target} raised {type(exc).__name__}: {exc}"))
        return
    conn.send(("loaded", info))
    others = _Implementations(candidate)
    while True:
        try:
            message, payload = conn.recv()
        except (EOFError, OSError):
            return
        if message == "stop":  # the check is done: what the candidate printed goes out before the judge stops us
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            conn.send(("stopped", None))
            return
        try:
            if message == "draw":
                answer = draw_inputs(_here(candidate.catalog, payload))
            elif message == "unavailable":
                answer = others.unavailable(*payload)
            elif message == "evaluate-as":
                name, inputs, device, precision = payload
                answer = others.evaluate(name, _here(candidate.catalog, inputs), device, precision)
            elif message == "kink-rule":  # a declared layer's own rule at its kink cases (grads, inputs, dout)
                op, rule, grads, arrays, dout = payload
                answer = getattr(candidate.catalog[op], rule)(grads, arrays, dout)
            elif message == "framework-check":
                what, case, at, runs = payload
                measures = frameworks[case.op][1]
                answer = measures.measure(what, _here(candidate.catalog, case), _here(candidate.catalog, at), runs)
            else:  # "evaluate"
                answer = candidate.evaluate(_here(candidate.catalog, payload))
            conn.send(("result", answer))
        except CandidateFault as exc:
            cause = exc.__cause__
            raised = None if cause is None or isinstance(cause, ContractError) else cause
            conn.send(("fault", (str(exc), getattr(exc, "user_traceback", None),
                                 None if raised is None else type(raised).__name__,
                                 None if raised is None else str(raised))))
        except BaseException as exc:  # noqa: BLE001  (whatever the candidate or an oracle raised: data for the judge)
            conn.send(("fault", (f"{type(exc).__name__}: {exc}", short_traceback(exc), type(exc).__name__, str(exc))))


def _here(catalog, value):
    """A case, or a case's inputs, with this process's spec of its op attached: a case
    travels by its op's name (``Case.__reduce__``), and a declared layer's spec with the
    user's functions exists only here."""
    if isinstance(value, Case):
        return replace(value, entry=catalog[value.op])
    return replace(value, case=_here(catalog, value.case))


class _Implementations:
    """The worker's implementations of a declared layer's cases: the candidate, every
    oracle and the modes built on them (``oracles.modes.run_implementations``), one set per device."""

    def __init__(self, candidate):
        self.candidate = candidate
        self._by_device: dict = {}

    def _on(self, device: str) -> tuple:
        if device not in self._by_device:
            self._by_device[device] = implementations(self.candidate, ORACLES, device)
        return self._by_device[device]

    def unavailable(self, name: str, device: str) -> str | None:
        """None when oracle ``name`` can run in this process, else the reason it cannot."""
        return unavailable_reason(self._on(device)[0][name])

    def evaluate(self, name: str, inputs, device: str, precision: str):
        """Implementation ``name``'s result on ``inputs``, in a case of their case's kind."""
        impls, by_kind = self._on(device)
        kind = inputs.case.kind
        with matmul_precision(precision):
            return (by_kind[kind] if kind in by_kind else impls)[name].evaluate(inputs)


class _Where(NamedTuple):
    """What a request is about, for the messages and time-outs of ``IsolatedCandidate._ask``
    where it concerns an op rather than one case."""

    op: str
    id: str


class IsolatedCandidate:
    """A candidate module run in a worker process (see the module docstring); the runner's
    ``Candidate`` interface: ``name``, ``ops``, ``contracts``, ``catalog``, ``unchecked``,
    ``accounting``, ``evaluate``; for the layers it declares (``hosted``), ``draw``,
    ``unavailable_as`` and ``evaluate_as``; for the framework functions among them
    (``framework_functions``), ``measure_framework``."""

    def __init__(self, target: str, case_timeout: float = 0.0):
        """
        Args:
            target: a dotted module name or a path to a ``.py`` file.
            case_timeout: seconds one case may take (0: no limit); importing gets at least
                ``IMPORT_TIME_LIMIT``, each op's stub probe at load the case's limit.

        Raises:
            ImportError: the module cannot be imported (it raised, ended its process, or
                took too long).
            oracles.declared.DeclarationError: a layer it declares cannot be built (its
                forward raised, or ran past the case time limit).
        """
        self.target = target
        self.case_timeout = case_timeout
        self._process = None
        self._conn = None
        self.timed_out: dict = {}  # op -> why its cases are not run (past the time limit, or its process ended)
        info = self._start()
        self.name = info["name"]
        self.ops = info["ops"]
        # the layers the module declares, as the judge knows them: data, no function of the user's
        declared = {name: from_description(data, self.kink_rule) for name, data in info["declared"].items()}
        self.hosted = frozenset(declared)  # drawn and evaluated in the worker (runner.Runner)
        # the framework functions it declares, as data: their own checks are planned and judged here
        self.framework_functions = info["framework_functions"]
        self.contracts = {op: declared[op].contracts[0] if i is None else spec_of(op).contracts[i]
                          for op, i in info["contracts"].items()}
        # this run's catalog, as ``Candidate.catalog``: the catalog's ops, the courses' it follows, its layers
        self.catalog = join([COURSE_SPECS[op] for op in self.contracts if op in COURSE_SPECS], declared.values(),
                            base=CATALOG)
        self.unchecked = info["unchecked"]
        self.accounting = info["accounting"]
        self.skipped = info["skipped"]  # a script's top-level statements not run (oracles.scripts)

    def _start(self) -> dict:
        """Start a worker and load the candidate in it: the import within ``IMPORT_TIME_LIMIT``
        (or the case time limit where larger); each declared layer's build and each op's
        one-call stub probe within the case time limit.  An op whose probe runs past it is not
        probed again (a new worker is started without it) and each of its cases is an error at
        once (``timed_out``); a layer whose build runs past it cannot be checked at all.

        Raises:
            DeclarationError: a declared layer's build ran past the time limit.
        """
        while True:
            try:
                return self._load()
            except _ProbeTimeout as exc:
                self.timed_out[exc.op] = (f"its probe call at load ran past the time limit of "
                                          f"{self.case_timeout:g} s (--case-timeout); its process was stopped")
            except _BuildTimeout as exc:
                raise DeclarationError(
                    f"building layer {exc.layer!r} runs its forward on inputs of each declared shape, and that ran "
                    f"past the time limit of {self.case_timeout:g} s (--case-timeout); its process was stopped"
                ) from None

    def _load(self) -> dict:
        # a fresh interpreter started as a command (or forked from one, gradmatrix.forkserver),
        # not multiprocessing's spawn: that would import the judge's __main__ again (a user's
        # script calling gradmatrix.check would run once more in the worker)
        ours, theirs = socket.socketpair()
        env = forkserver.worker_environment()
        # forked from a process that has imported what a worker needs, where it can be
        # (gradmatrix.forkserver: the same worker, started in a fraction of the time)
        try:
            self._process = forkserver.spawn(self.target, tuple(self.timed_out), env, theirs.fileno())
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        importing = max(IMPORT_TIME_LIMIT, self.case_timeout) if self.case_timeout else None
        stage = None  # ("building", layer) or ("probing", op): under the case time limit
        while True:
            limit = importing if stage is None else (self.case_timeout or None)
            if not self._conn.poll(limit):
                self.close()
                if stage is not None:
                    raise (_BuildTimeout if stage[0] == "building" else _ProbeTimeout)(stage[1])
                raise ImportError(f"importing {self.target} took longer than {limit:g} s (its process was stopped)")
            try:
                message, payload = self._conn.recv()
            except (EOFError, OSError):
                code = self._ended()
                at = f"while {stage[0]} {stage[1]}" if stage else "at import"
                raise ImportError(f"loading {self.target} ended its process ({code}) {at}: it calls os._exit or "
                                  f"sys.exit, or crashes") from None
            if message in ("imported", "built"):
                stage = None
                continue
            if message in ("building", "probing"):
                stage = (message, payload)
                continue
            break
        if message == "loaded":
            if payload["declared"]:  # its worker runs the oracles: the next ones likely will too
                forkserver.preload(env)
            return payload
        self.close()
        if message == "declaration-error":
            raise DeclarationError(payload)
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
        if code is None:
            return "its status is unknown: the fork server that started it ended too"
        return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"

    def available(self) -> None:
        """A loaded candidate is always available."""

    def evaluate(self, inputs: CaseInputs) -> Result:
        """The candidate's result on ``inputs``, computed in the worker.

        Raises:
            CandidateFault: the candidate raised, broke its contract, or its worker ended.
            CaseTimeout: it ran past the time limit (the worker was killed).
        """
        return self._ask("evaluate", inputs, inputs.case, self.name)

    def draw(self, case: Case) -> CaseInputs:
        """The inputs of a case of a declared layer (``hosted``), drawn in the worker by the
        layer's own draws; they carry ``case`` itself (the judge's spec).

        Raises:
            CandidateFault, CaseTimeout: as ``evaluate``.
        """
        return replace(self._ask("draw", case, case, "drawing the inputs"), case=case)

    def evaluate_as(self, name: str, inputs: CaseInputs, device: str, precision: str) -> Result:
        """Implementation ``name``'s result on the inputs of a declared layer's case
        (``hosted``), computed in the worker: an oracle (on ``device``, at matmul
        ``precision``) running the layer's reference or forward, or a mode implementation
        (``oracles.modes``) of the case's kind.

        Raises:
            CandidateFault: it raised (``raised`` names the exception), or the worker ended.
            CaseTimeout: as ``evaluate``.
        """
        return self._ask("evaluate-as", (name, inputs, device, precision), inputs.case, name)

    def measure_framework(self, what: str, case: Case, at: Case, runs: int) -> dict:
        """The values of one of a declared framework function's own checks
        (``framework_layers.Measures.measure``: arrays, or what the function or its
        reference raised, as data), computed in the worker on ``case``'s inputs at ``at``.

        Raises:
            CandidateFault, CaseTimeout: as ``evaluate``.
        """
        return self._ask("framework-check", (what, case, at, runs), at, f"{case.op}'s {what} check")

    def kink_rule(self, op: str, rule: str):
        """Declared layer ``op``'s kink rule ``rule`` (``oracles.declared.KINK_RULES``: how
        far gradients lie outside its subdifferential, the derivative they take at its
        kinks) as a function ``(grads, inputs, dout)`` that the worker applies: the rule is
        the user's code, declared beside the layer's reference.

        The function raises CandidateFault or CaseTimeout, as ``evaluate``."""
        where = _Where(op, f"{op}'s kink cases")

        def apply(grads, arrays, dout):
            return self._ask("kink-rule", (op, rule, grads, arrays, dout), where, f"its {rule.replace('_', ' ')}")
        return apply

    def unavailable_as(self, name: str, case: Case, device: str) -> str | None:
        """None when oracle ``name`` can run in the worker (on ``device``) for a declared
        layer's ``case``, else the reason it cannot (``Runner.unavailable``).  Finding out
        imports the oracle's framework: it gets the import's time limit, as at load.

        Raises:
            CandidateFault, CaseTimeout: as ``evaluate``.
        """
        importing = max(IMPORT_TIME_LIMIT, self.case_timeout) if self.case_timeout else 0.0
        return self._ask("unavailable", (name, device), case, f"{name}'s availability", importing)

    def _ask(self, message: str, payload, case: Case | _Where, who: str, limit: float | None = None):
        """The worker's answer to ``message`` about ``case``: the one path of every request
        of a case, under the case time limit or ``limit`` seconds (0: none); ``who`` names
        what runs, in messages."""
        seconds = self.case_timeout if limit is None else limit
        option = " (--case-timeout)" if limit is None else ""
        op = case.op
        if op in self.timed_out:  # one time-out per op: a loop is not waited for again on every case
            raise CandidateFault(f"{op} not run: {self.timed_out[op]}")
        if self._process is None:
            self._start()  # the previous worker was stopped (a time limit) or ended
        try:
            self._conn.send((message, payload))
            if not self._conn.poll(seconds or None):
                raise CaseTimeout(f"{who} on {case.id} took longer than the time limit of {seconds:g} s{option}; "
                                  f"its process was stopped")
            message, payload = self._conn.recv()
        except (EOFError, OSError):
            how = self._ended()
            self.timed_out[op] = f"its process ended ({how}) on {case.id}"  # not restarted for each case
            raise WorkerEnded(f"{self.name}'s process ended ({how}) while it ran {who} on "
                              f"{case.id}: the code under test ended it (os._exit, a crash)") from None
        except BaseException as exc:
            # a time limit (ours, or the runner's), Ctrl-C: the worker may still be running the
            # case, and its late answer must never be read as the next case's
            self.close()
            if isinstance(exc, CaseTimeout):
                self.timed_out[op] = f"{case.id} ran past the time limit ({exc})"
            raise
        if message == "result":
            return payload
        text, user_traceback, raised, said = payload
        fault = CandidateFault(text)
        fault.user_traceback = user_traceback
        fault.raised = raised  # the exception the candidate's own code raised, by name (None: a contract problem)
        fault.said = said  # ... and its text
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

    def finish(self) -> None:
        """The check is done: the worker flushes what the candidate printed (its standard
        streams may be block-buffered pipes) and says so, within ``END_GRACE`` seconds; then
        it is stopped, as ``close`` stops it."""
        if self._conn is not None and self._process is not None:
            try:
                self._conn.send(("stop", None))
                if self._conn.poll(END_GRACE):
                    self._conn.recv()
            except (EOFError, OSError):
                pass
        self.close()

    def __del__(self):
        self.close()


def open_candidate(module, case_timeout: float = 0.0):
    """The candidate for a check: a module object as it is (already in the caller's process),
    ``gradmatrix.manual`` in-process (the project's own reference code), any other dotted
    name or path in a worker process (``IsolatedCandidate``), its declared layers and
    framework functions included (see the module docstring).

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
    return IsolatedCandidate(module, case_timeout), True


def accounting(candidate) -> list:
    """Every function and class of the candidate's module, checked or not and why
    (``oracles.candidate.account``), wherever the module was imported."""
    from gradmatrix.oracles.candidate import account

    return candidate.accounting if hasattr(candidate, "accounting") else account(candidate)


if __name__ == "__main__":  # the worker: python -m gradmatrix.isolation FD TARGET [OP ...]
    _serve(Connection(int(sys.argv[1])), sys.argv[2], tuple(sys.argv[3:]))
