"""The pytest side of the matrix: options, parametrization, record collection, reports.

Installed as a ``pytest11`` entry point, so every pytest session in an environment with
gradmatrix has the ``--gm-*`` options (``pytest --help``, section "gradmatrix") and the
fixtures ``gm_comparisons`` (the comparisons of one case), ``gm_runner`` and
``gm_reproduce``.  Loading it is cheap: it imports neither torch nor JAX, and it plans
nothing.  A session pays for the matrix only when it collects a matrix test (one that takes
``gm_comparisons``, such as
``gradmatrix.matrix_test.test_agreement``, which a suite can import to collect it): only
then is the candidate imported, the matrix planned and, when the session has run some of
it, the agreement report written.  ``--collect-only`` writes no report.

Each matrix test (one per case) attaches its comparisons' records to its report as user
properties; the controlling process (the only one, or pytest-xdist's controller) collects
them from the reports, so no result is lost across workers, and writes the agreement
reports when the session ends, interrupted (Ctrl-C or SIGTERM) or not.  The report records
the run's plan (its comparison ids, shard and matrix), and the report directory is locked
and marked in progress from the moment the matrix is collected until the reports are written
(``reports.writers``): the session takes the directory's lock, and another writer of it
meanwhile (a ``gradmatrix`` command, another session) is a usage error.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from gradmatrix.cli import seconds
from gradmatrix.oracles.cases import MODES
from gradmatrix.oracles.catalog import DTYPES, MATRICES
from gradmatrix.oracles.devices import DEVICES, PRECISIONS
from gradmatrix.oracles.implementations import ORACLES
from gradmatrix.oracles.result import DEFAULT_CASE_TIMEOUT

PROPERTY = "gradmatrix"
LAST_DOCUMENT: dict | None = None  # the document of the last session in this process (for the CLI)
TEST_NAME = "test_agreement["


def _csv(value: str | None) -> list | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def pytest_addoption(parser):
    group = parser.getgroup("gradmatrix", "gradmatrix agreement matrix")
    group.addoption("--gm-matrix", default="default", choices=MATRICES, help="matrix size (default: default)")
    group.addoption("--gm-ops", default=None, help="comma-separated ops (default: all the candidate provides)")
    group.addoption("--gm-dtypes", default=None, help=f"comma-separated dtypes (default: {','.join(DTYPES)})")
    group.addoption("--gm-oracles", default=",".join(ORACLES), help="comma-separated oracles (default: all)")
    group.addoption("--gm-seeds", default=None, type=int, help="seeds per shape (default: the matrix's)")
    group.addoption("--gm-modes", default=",".join(MODES),
                    help=f"comma-separated checks: reverse (gradients), jvp (forward mode), hvp (Hessian-vector "
                         f"products of the losses) (default: {','.join(MODES)})")
    group.addoption("--gm-candidate", default="gradmatrix.manual", help="module to check: dotted name or .py path")
    group.addoption("--gm-only", default=None, help="run only the comparison with this id")
    group.addoption("--gm-out", default="gradmatrix-report", help="report directory (default: ./gradmatrix-report)")
    group.addoption("--gm-formats", default="json,md", help="report formats (json,md,html)")
    group.addoption("--gm-strict-kinks", action="store_true", help="fail on differences at kinks (default: report them)")
    group.addoption("--gm-shard", default=None, metavar="I/N",
                    help="run shard I of N (0-based; a case's comparisons stay in one shard), for CI job matrices")
    group.addoption("--gm-progress", default="none", choices=("auto", "bar", "lines", "none"),
                    help="progress display: a live bar on a terminal, plain lines under CI (auto), or pytest's own")
    group.addoption("--gm-no-report", action="store_true", help="write no report files")
    group.addoption("--gm-device", default="cpu", choices=DEVICES,
                    help="where the torch and JAX oracles compute; manual and numeric stay on the CPU (default: cpu)")
    group.addoption("--gm-case-timeout", default=DEFAULT_CASE_TIMEOUT, type=seconds, metavar="SECONDS",
                    help=f"time limit of one implementation on one case; past it the comparison is an error "
                         f"(default: {DEFAULT_CASE_TIMEOUT:g}; 0: none)")
    group.addoption("--gm-matmul-precision", default="default", choices=PRECISIONS,
                    help="float32 matmul precision of torch and JAX: their default, high (TF32 allowed) or highest")


class MatrixSession:
    """Per-process state: the run's options, its candidate, and the collected records."""

    def __init__(self, config):
        from gradmatrix.oracles import devices
        from gradmatrix.oracles.candidate import Candidate, load_module

        self.config = config
        opt = config.option
        self.oracles = _csv(opt.gm_oracles) or []
        unknown = [o for o in self.oracles if o not in ORACLES]
        if unknown:
            raise pytest.UsageError(f"unknown oracle(s) {unknown}; choose from {list(ORACLES)}")
        try:
            module = load_module(opt.gm_candidate)
        except ImportError as exc:
            raise pytest.UsageError(f"cannot import candidate {opt.gm_candidate!r}: {exc}") from None
        self.candidate = Candidate(module)
        self.modes = _csv(opt.gm_modes) or list(MODES)
        try:
            self.device = devices.resolve(opt.gm_device)
        except devices.DeviceUnavailable as exc:
            raise pytest.UsageError(str(exc)) from None
        self.matrix_ids: list = []
        self.comparisons = self._plan()
        self.by_case = _by_case(self.comparisons)
        self.in_test = {case.id: len(group) for case, group in self.by_case.items()}  # comparisons per test
        self.records: dict = {}
        self.expected: int | None = None
        self.started = time.time()
        self.written: list = []
        self.progress: Progress | None = None
        self.document: dict | None = None
        self.framework_import: threading.Thread | None = None
        self.environment: dict | None = None  # under pytest-xdist: the environment a worker sent
        self.out: Path | None = None  # the report directory, once marked in progress
        self.lock = None  # the report directory's lock (reports.writers.DirectoryLock) while it is written
        self.kept = ""  # a sentence on a complete report kept beside this one

    def _plan(self):
        from gradmatrix.engine import nothing_selected, shard
        from gradmatrix.runner import default_plan

        opt = self.config.option
        try:
            matrix = default_plan(opt.gm_matrix, _csv(opt.gm_ops), _csv(opt.gm_dtypes), opt.gm_seeds,
                                  self.oracles, self.candidate, None, self.modes)
            comparisons = default_plan(opt.gm_matrix, _csv(opt.gm_ops), _csv(opt.gm_dtypes), opt.gm_seeds,
                                       self.oracles, self.candidate, opt.gm_only, self.modes) if opt.gm_only else matrix
            if not matrix:
                raise ValueError("nothing to compare: " + nothing_selected(
                    opt.gm_matrix, _csv(opt.gm_ops), _csv(opt.gm_dtypes), opt.gm_seeds, self.modes, self.oracles,
                    self.candidate))
            self.matrix_ids = [c.id for c in matrix]  # the whole matrix, which a shard or --only is cut from
            return shard(comparisons, opt.gm_shard) if opt.gm_shard else comparisons
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None

    def plan(self) -> dict:
        """The plan the report records: this run's comparison ids, its shard, its matrix."""
        from gradmatrix.reports.document import make_plan

        return make_plan([c.id for c in self.comparisons], self.matrix_ids, self.config.option.gm_shard)

    def reproduce(self, comparison) -> str:
        from gradmatrix.engine import reproduce_command

        opt = self.config.option
        return reproduce_command(None if opt.gm_candidate == "gradmatrix.manual" else opt.gm_candidate, opt.gm_matrix,
                                 comparison.id, comparison.case, strict_kinks=opt.gm_strict_kinks,
                                 device=opt.gm_device, matmul_precision=opt.gm_matmul_precision)

    def run_info(self) -> dict:
        opt = self.config.option
        return {
            "candidate": self.candidate.name,
            "candidate_module": opt.gm_candidate,
            "candidate_ops": self.candidate.ops,
            "candidate_functions": {op: list(c.functions) for op, c in self.candidate.contracts.items()},
            "accounting": _accounting(self.candidate),
            "matrix": opt.gm_matrix,
            "ops": _csv(opt.gm_ops),
            "dtypes": _csv(opt.gm_dtypes) or list(DTYPES),
            "oracles": self.oracles,
            "seeds": opt.gm_seeds,
            "modes": self.modes,
            "only": opt.gm_only,
            "strict_kinks": opt.gm_strict_kinks,
            "shard": opt.gm_shard,
            "device": self.device,
            "matmul_precision": opt.gm_matmul_precision,
            "case_timeout": opt.gm_case_timeout,
        }


class Progress:
    """Comparisons done of total, discrepancies so far and time left: a live bar or plain lines."""

    def __init__(self, config, mode: str):
        self.config = config
        self.mode = mode
        self._writer = None
        self.total = 0
        self.done = 0
        self.bad = 0
        self.started = time.time()
        self.next_line = time.time() + self.LINE_EVERY

    @property
    def writer(self):
        if self._writer is None:  # the terminal reporter exists only after configuration
            self._writer = self.config.get_terminal_writer()
        return self._writer

    @property
    def bar(self) -> bool:
        if self.mode != "auto":
            return self.mode == "bar"
        stream = getattr(self.writer, "_file", None)  # the terminal pytest writes to
        return bool(stream is not None and stream.isatty() and not os.environ.get("CI"))

    def update(self, verdict: str) -> None:
        self.done += 1
        self.bad += verdict in ("disagree", "error")
        if self.bar:
            self._bar()
        elif (self.done == 1 or time.time() >= self.next_line) and self.done < self.total:
            # plain lines go to logs: the first comparison (the run has started), then one every
            # LINE_EVERY seconds
            self.writer.line(f"gradmatrix: {self._status()}")
            self.next_line = time.time() + self.LINE_EVERY

    LINE_EVERY = 15.0  # seconds between plain progress lines

    def _status(self) -> str:
        elapsed = time.time() - self.started
        total = self.total or "?"
        status = (f"{self.done}/{total} comparisons, {self.bad} {'discrepancy' if self.bad == 1 else 'discrepancies'}, "
                  f"{elapsed:.0f} s elapsed")
        # the first comparisons pay for importing the frameworks and compiling: an estimate
        # from them would be far off, so none until a tenth of the run is done
        if self.total and self.done >= max(2, self.total // 10) and self.done < self.total:
            left = elapsed / self.done * (self.total - self.done)
            status += f", about {left:.0f} s left"
        return status

    def _bar(self) -> None:
        width = 30
        filled = int(width * self.done / self.total) if self.total else 0
        self.writer.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self._status()}  ", flush=True)

    def close(self) -> None:
        if self.bar and self.done:
            self.writer.write("\n")


def _state(config) -> MatrixSession:
    """The session's matrix state, made the first time something needs it (a matrix test
    collected here, or on a pytest-xdist worker)."""
    state = config.stash.get(_KEY, None)
    if state is None:
        state = MatrixSession(config)
        config.stash[_KEY] = state
        if config.option.gm_progress != "none" and not hasattr(config, "workerinput"):
            state.progress = Progress(config, config.option.gm_progress)
            _PROGRESS[:] = [state.progress]
        if not hasattr(config, "workerinput") and config.pluginmanager.get_plugin("dsession") is None:
            # the report records each framework's device and precision settings, read from
            # the frameworks themselves: imported in the background while the tests run.
            # Under pytest-xdist the first worker, which runs them, sends its environment
            # (``_ENVIRONMENT``) and the controller imports no framework
            state.framework_import = threading.Thread(target=_import_frameworks, args=(state.oracles,), daemon=True)
            state.framework_import.start()
    return state


_KEY = pytest.StashKey["MatrixSession"]()
_ENVIRONMENT = "gradmatrix_environment"  # the report's environment, as the worker gw0 sends it to its controller


def pytest_configure(config):
    config.addinivalue_line("markers", "xdist_group(name): keep a shape's comparisons on one pytest-xdist worker")


def _import_frameworks(oracles) -> None:
    from gradmatrix.oracles.implementations import REGISTRY

    for name, cls in REGISTRY.items():
        if name in oracles and cls.on_device:  # the frameworks (numeric is NumPy only)
            try:
                importlib.import_module(cls.module)
            except Exception:  # an oracle that cannot load is reported by its own cases
                pass


def _shape_group(case) -> str:
    """The pytest-xdist group of a case: its op, dims and dtype, without the seed.  Each
    worker then compiles a JAX function for a shape once and runs every seed of it, and a
    case's results stay cached on the worker that runs all of its pairs."""
    return f"{case.op}-{case.kind}-{case.dims}-{case.dtype}"


def _by_case(comparisons) -> dict:
    """The comparisons grouped by case, in plan order: one matrix test each."""
    groups: dict = {}
    for comparison in comparisons:
        groups.setdefault(comparison.case, []).append(comparison)
    return groups


def pytest_generate_tests(metafunc):
    if "gm_comparisons" not in metafunc.fixturenames:
        return
    groups = _state(metafunc.config).by_case
    metafunc.parametrize(
        "gm_comparisons",
        [pytest.param(tuple(group), id=case.id, marks=pytest.mark.xdist_group(_shape_group(case)))
         for case, group in groups.items()],
    )


def _comparisons_in(config, nodeids) -> int:
    """How many comparisons the collected matrix tests ``nodeids`` make."""
    in_test = _state(config).in_test
    return sum(in_test.get(_case_id(i), 0) for i in nodeids if TEST_NAME in i)


def _case_id(nodeid: str) -> str:
    """The case id of a matrix test, ``...::test_agreement[ID]``, also where pytest-xdist's
    ``--dist loadgroup`` has appended the test's group (``...[ID]@GROUP``, as xdist splits it)."""
    if nodeid.rfind("@") > nodeid.rfind("]"):
        nodeid = nodeid[:nodeid.rfind("@")]
    return nodeid.rsplit("[", 1)[1].rstrip("]")


@pytest.fixture(scope="session")
def gm_runner(request):
    """The session's runner (``gradmatrix.runner.Runner``): the candidate and the chosen oracles."""
    from gradmatrix.runner import Runner

    state = _state(request.config)
    opt = request.config.option
    # the store is written only for manual: another candidate is imported into this process
    runner = Runner(state.candidate, state.oracles, device=state.device, strict_kinks=opt.gm_strict_kinks,
                    matmul_precision=opt.gm_matmul_precision, case_timeout=opt.gm_case_timeout,
                    store_writes=opt.gm_candidate == "gradmatrix.manual")
    if not hasattr(request.config, "workerinput"):
        # one process runs the whole plan, in order: JAX can compile ahead of it (a
        # pytest-xdist worker does not know which cases it will be sent)
        runner.compile_ahead(state.comparisons)
        request.addfinalizer(runner.close)
    return runner


@pytest.fixture
def gm_reproduce(request):
    """A function giving the command that reruns a comparison."""
    return _state(request.config).reproduce


def pytest_collection_finish(session):
    if any(TEST_NAME in item.nodeid for item in session.items) and not hasattr(session.config, "workerinput"):
        count = _comparisons_in(session.config, [item.nodeid for item in session.items])
        _set_expected(session.config, count)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    if any(TEST_NAME in i for i in ids) and _state(node.config).expected is None:
        _set_expected(node.config, _comparisons_in(node.config, ids))


def _set_expected(config, count: int) -> None:
    state = _state(config)
    state.expected = count
    if state.progress:
        state.progress.total = count
    opt = config.option
    if not opt.collectonly and not opt.gm_no_report and state.out is None:
        _take_out(config, state)
        _handle_termination()


def _take_out(config, state: "MatrixSession") -> None:
    """Take the report directory for this run: its lock (``reports.writers.lock``), then mark
    it in progress (``reports.writers.begin``) until the reports are written: no stale PASS
    survives.

    Raises:
        pytest.UsageError: it cannot be written, or another command is writing it.
    """
    from gradmatrix.reports.writers import DirectoryBusy, begin, check_writable, lock

    opt = config.option
    out = Path(config.invocation_params.dir) / opt.gm_out
    what = f"gradmatrix ({state.candidate.name})"
    try:
        check_writable(out)
        state.lock = lock(out, what)
    except DirectoryBusy as exc:
        raise pytest.UsageError(str(exc)) from None
    except OSError as exc:
        raise pytest.UsageError(f"cannot write reports to {opt.gm_out}: {exc.strerror or exc}") from None
    try:
        begin(out, what)
    except OSError as exc:
        _release(state)
        raise pytest.UsageError(f"cannot write reports to {opt.gm_out}: {exc.strerror or exc}") from None
    state.out = out


def _release(state: "MatrixSession") -> None:
    if state.lock is not None:
        state.lock.release()
        state.lock = None


def _handle_termination() -> None:
    """SIGTERM ends the run as Ctrl-C does: the incomplete report is written.  A signal
    repeated within a second (a terminal's Ctrl-C reaches both ``gradmatrix`` and the
    process it runs the matrix in, which forwards it too) counts once."""
    if threading.current_thread() is not threading.main_thread():
        return
    last = [0.0]

    def interrupt(signum, frame):
        now = time.monotonic()
        if now - last[0] < 1.0:
            return
        last[0] = now
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    for sig in (signal.SIGINT, signal.SIGTERM):
        _HANDLERS.setdefault(sig, signal.signal(sig, interrupt))


_HANDLERS: dict = {}  # the signal handlers in force before the run, restored when it ends


def _restore_handlers() -> None:
    while _HANDLERS:
        sig, handler = _HANDLERS.popitem()
        signal.signal(sig, handler)


def pytest_report_teststatus(report, config):
    """With our own progress display, matrix tests print no letter of their own."""
    state = config.stash.get(_KEY, None)
    if state and state.progress and TEST_NAME in report.nodeid and report.when == "call":
        return report.outcome, "", ""
    return None


def pytest_runtest_logreport(report):
    if TEST_NAME not in report.nodeid:
        return  # only the records of our own matrix test: another test's record_property is its own business
    for name, value in getattr(report, "user_properties", ()):
        if name == PROPERTY and report.when in ("call", "setup"):
            try:
                record = json.loads(value)
            except (TypeError, ValueError):
                continue
            if not isinstance(record, dict) or not isinstance(record.get("id"), str) or "verdict" not in record:
                continue
            if record["id"] not in _CONFIG_RECORDS and _PROGRESS:
                _PROGRESS[0].update(record["verdict"])
            _CONFIG_RECORDS[record["id"]] = record


_CONFIG_RECORDS: dict = {}  # records seen by this process's reports (hooks get no config here)
_PROGRESS: list = []  # the controller's Progress, if any


def _environment(device: str, precision: str) -> dict:
    """The environment, with the frameworks' settings as the oracles had them in force."""
    from gradmatrix.oracles import devices
    from gradmatrix.reports import environment

    with devices.matmul_precision(precision):
        return environment.collect(device, precision)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    environment = getattr(node, "workeroutput", {}).get(_ENVIRONMENT)
    state = node.config.stash.get(_KEY, None)
    if environment is not None and state is not None and state.environment is None:
        state.environment = environment


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if hasattr(config, "workerinput"):
        state = config.stash.get(_KEY, None)
        if state is not None and _CONFIG_RECORDS and config.workerinput.get("workerid") == "gw0":
            _import_frameworks(state.oracles)  # most often imported already, by the matrix tests it ran
            config.workeroutput[_ENVIRONMENT] = _environment(state.device, config.option.gm_matmul_precision)
        return
    if config.stash.get(_KEY, None) is None and not _CONFIG_RECORDS:
        return  # no matrix test in this session: nothing planned, nothing to report
    state = _state(config)
    _restore_handlers()
    state.records = dict(_CONFIG_RECORDS)
    _CONFIG_RECORDS.clear()
    if state.progress:
        state.progress.close()
        _PROGRESS.clear()
    if config.option.collectonly or (not state.expected and not state.records):
        return  # only collected, or no matrix in this session: a report would claim a run
    from gradmatrix.reports import document
    environment = state.environment
    if environment is None:  # no pytest-xdist, or its first worker ended before it could send it
        if state.framework_import is None:
            _import_frameworks(state.oracles)
        else:
            state.framework_import.join()
        environment = _environment(state.device, config.option.gm_matmul_precision)

    interrupted = "interrupted (Ctrl-C or SIGTERM)" if exitstatus == pytest.ExitCode.INTERRUPTED else ""
    planned = {c.id for c in state.comparisons}
    selected = state.expected is not None and state.expected < len(planned)
    if selected and not interrupted:  # pytest's -k, -m or --deselect ran part of the plan: never a pass
        interrupted = f"pytest selected {state.expected} of the {len(planned)} planned comparisons"
    state.document = document.build(
        list(state.records.values()),
        environment,
        state.run_info(),
        started=state.started,
        interrupted=interrupted,
        plan=state.plan(),
    )
    global LAST_DOCUMENT
    LAST_DOCUMENT = state.document
    opt = config.option
    if not opt.gm_no_report:
        from gradmatrix.reports.writers import finish

        try:
            if state.out is None:
                _take_out(config, state)
            state.written, state.kept = finish(state.document, state.out, tuple(_csv(opt.gm_formats) or ("json",)))
        except pytest.UsageError as exc:
            state.kept = f"no report written: {exc}"
        finally:
            _release(state)


def pytest_unconfigure(config):
    state = config.stash.get(_KEY, None)
    if state is not None:
        _release(state)  # a session that ended before its reports: the directory is free again


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state = config.stash.get(_KEY, None)
    if state is None or state.document is None:
        return
    from gradmatrix.reports import console

    if terminalreporter.verbosity >= -1:
        terminalreporter.section("gradmatrix")
    for line in console.render(state.document, state.written):
        terminalreporter.write_line(line)
    if state.kept:
        terminalreporter.write_line(f"note: {state.kept}")


def _accounting(candidate) -> list:
    """Every function and class of the candidate module, checked or not and why (``oracles.candidate.account``)."""
    from gradmatrix.oracles.candidate import account

    return account(candidate)
