"""One engine for every entry point: plan, run, records, document.

::

    Request (what to check, with which options)
      -> plan: the candidate opened (its module in a worker process, gradmatrix.isolation),
         the matrix's cases (oracles.cases) and their pairs (runner.default_plan), cut to
         --only or a --shard
      -> run: each comparison made by a Runner (oracles and comparison in this process; a
         layer the module declares is drawn and its oracles run in the candidate's worker), in
         this process or split by shape among worker processes of the engine's own (-n)
      -> records, one per comparison (reports.compare)
      -> the document (reports.document.build): summary, verdict, findings, warnings

``gradmatrix.check``, ``gradmatrix run`` / ``check`` and the pytest matrix are thin layers
over it; the reports are written from the document (``reports.writers``).  No pytest runs on
the command's path: a user's pytest configuration, plugins or version cannot change what
``gradmatrix check`` decides.

With ``workers`` > 0 the plan is split by shape group (an op, its dims, kind and dtype: the
cases that share JAX's compiled functions) among that many processes, each ``python -m
gradmatrix.engine`` running its part and sending its records back as JSON lines; each gets
its share of the cores for torch's and BLAS's thread pools.
"""

from __future__ import annotations

import itertools
import json
import os
import selectors
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace

from gradmatrix import framework_layers
from gradmatrix.isolation import accounting, open_candidate
from gradmatrix.oracle_host import early_hosts
from gradmatrix.oracles import devices, reference_store
from gradmatrix.oracles.cases import LOW_PRECISION_KIND, MODES
from gradmatrix.oracles.catalog import CATALOG, SEEDS
from gradmatrix.oracles.framework import LOW_PRECISION as LOW_PRECISION_DTYPES
from gradmatrix.oracles.implementations import LOW_PRECISION, ORACLES
from gradmatrix.oracles.result import DEFAULT_CASE_TIMEOUT
from gradmatrix.reports import document as documents
from gradmatrix.reports import environment
from gradmatrix.reports.compare import DISAGREE, ERROR
from gradmatrix.runner import Runner, default_plan

INTERRUPTED = "interrupted (Ctrl-C or SIGTERM)"
WORKER_EXIT_WAIT = 60.0  # seconds a worker process that sent all its records may take to exit
THREAD_SETTINGS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")  # torch's, NumPy's BLAS


@dataclass(frozen=True)
class Request:
    """What to check and how (validated where it enters: the command's parser, ``check``)."""

    target: str = "gradmatrix.manual"  # a dotted module name or a .py path
    verb: str = "check"  # "run" (manual), "check" or "check_layer": how a comparison is reproduced
    matrix: str = "default"
    ops: tuple | None = None
    dtypes: tuple | None = None
    seeds: int | None = None
    oracles: tuple = tuple(ORACLES)
    modes: tuple | None = None
    only: str | None = None
    shard: str | None = None
    strict_kinks: bool = False
    strict: bool = False
    device: str = "cpu"
    matmul_precision: str = "default"
    case_timeout: float = DEFAULT_CASE_TIMEOUT
    workers: int = 0
    tolerance: dict | None = None  # the call's override (gradmatrix.checker.tolerance_override)
    part: tuple | None = field(default=None, compare=False)  # (i, n): the part a worker process runs


def shard(comparisons: list, spec: str) -> list:
    """The comparisons of shard ``I/N``: cases dealt round-robin in plan order.

    Raises:
        ValueError: a malformed spec, I outside [0, N), or a shard that gets no case (N
            larger than the number of cases).
    """
    try:
        index, count = (int(v) for v in spec.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like I/N (for example 0/4), got {spec!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {spec}: need 0 <= I < N")
    cases = list(dict.fromkeys(c.case for c in comparisons))
    if index >= len(cases):
        raise ValueError(f"--shard {spec}: the selection has {len(cases)} case(s), so shard {index} would run "
                         f"nothing; split it into at most {len(cases)} shard(s)")
    mine = set(cases[index::count])
    return [c for c in comparisons if c.case in mine]


def nothing_selected(matrix: str, ops, dtypes, seeds, modes, oracles, candidate) -> str:
    """Why a selection that plans no comparison plans none.

    Args:
        matrix, ops, dtypes, seeds, modes, oracles: the selection, as ``runner.default_plan``
            takes it (None: the default).
        candidate: the ``oracles.candidate.Candidate`` checked.

    Returns:
        One sentence: the modes that make no case of these ops, or the oracles that make no pair.
    """
    from gradmatrix.oracles.cases import MODES, matrix_cases

    ops = list(ops or candidate.ops)
    modes = list(modes or MODES)
    if not matrix_cases(matrix, ops, dtypes, seeds, modes, catalog=getattr(candidate, "catalog", None)):
        why = f"the modes {' '.join(modes)} make no case of {', '.join(ops)} in the {matrix} matrix"
        if "hvp" in modes:
            losses = [op for op, spec in CATALOG.items() if spec.second_order]
            why += f" (hvp covers only the ops with a second-order loss: {', '.join(losses)})"
        return why
    return (f"the oracles chosen ({', '.join(oracles)}) make no pair with {candidate.name} on the "
            f"{', '.join(modes)} cases of {', '.join(ops)}")


def unplanned_dtypes(request: Request, matrix: list, extras: list) -> str:
    """Why dtypes the request names make no comparison ("" when each makes one): float16 and
    bfloat16 are judged against torch or JAX only (their own error at the dtype)."""
    planned = {c.case.dtype for c in matrix} | {d for extra in extras for d in extra.dtypes}
    missing = [d for d in request.dtypes or () if d not in planned]
    if not missing:
        return ""
    low = [d for d in missing if d in LOW_PRECISION_DTYPES]
    if low and not any(o in LOW_PRECISION for o in request.oracles):
        return (f"dtypes {missing}: no comparison is made at {', '.join(missing)}: float16 and bfloat16 are judged "
                f"against torch or JAX (their own error at the dtype), and the oracles chosen are "
                f"{', '.join(request.oracles)}")
    return f"dtypes {missing}: no op of this selection has cases at {', '.join(missing)}"


def shape_group(case) -> str:
    """The cases that share JAX's compiled functions: an op, its dims, kind and dtype (not the seed)."""
    return f"{case.op}-{case.kind}-{case.dims}-{case.dtype}"


def parts(comparisons: list, count: int) -> list[list]:
    """The comparisons split into ``count`` parts by shape group, each group whole, the
    largest groups first onto the part with the fewest comparisons (deterministic)."""
    groups: dict = {}
    for c in comparisons:
        groups.setdefault(shape_group(c.case), []).append(c)
    split = [[] for _ in range(count)]
    for group in sorted(groups.values(), key=len, reverse=True):
        min(split, key=len).extend(group)
    order = {c.id: i for i, c in enumerate(comparisons)}
    return [sorted(p, key=lambda c: order[c.id]) for p in split if p]


class NothingToCheck(ValueError):
    """The candidate provides no op of the catalog and declares no layer, or provides only
    the starter's unimplemented stubs: ``candidate`` says what it holds instead (its
    accounting), ``stubs`` the stubs' reasons."""

    def __init__(self, candidate):
        from gradmatrix.isolation import accounting

        self.candidate = candidate
        self.stubs = [e["reason"] for e in accounting(candidate) if e.get("stub")]
        if self.stubs:
            message = f"{candidate.name}: nothing to check yet: {'; '.join(self.stubs)}"
        else:
            message = f"{candidate.name} provides no op of the catalog and declares no layer of its own"
        super().__init__(message)


def reproduce_command(target: str | None, matrix: str, comparison_id: str, case=None, *, strict_kinks: bool = False,
                      strict: bool = False, device: str = "cpu", matmul_precision: str = "default",
                      tolerance: dict | None = None, case_timeout: float | None = None) -> str:
    """The command that makes one comparison again as this run judged it: ``gradmatrix run``
    (``target`` None) or ``check TARGET``, the matrix, what puts the comparison's case in the
    plan (the dtype of a low-precision case, the mode of a forward-mode or second-order one,
    ``--seeds`` past the matrix's own seeds) and the options that change a verdict."""
    words = ["gradmatrix", "run" if target is None else f"check {shlex.quote(target)}", "--matrix", matrix]
    if case is not None:
        if case.dtype in LOW_PRECISION_DTYPES:  # asked for by its dtype, never a default
            words += ["--dtypes", case.dtype]
        if case.kind in MODES and case.kind != "reverse":  # forward mode, second order
            words += ["--modes", case.kind]
        if case.seed >= SEEDS.get(matrix, 0):
            words += ["--seeds", str(case.seed + 1)]
    words += ["--strict-kinks"] * strict_kinks + ["--strict"] * strict
    if device != "cpu":
        words += ["--device", device]
    if matmul_precision != "default":
        words += ["--matmul-precision", matmul_precision]
    if case_timeout is not None and case_timeout != DEFAULT_CASE_TIMEOUT:
        words += ["--case-timeout", repr(case_timeout)]
    for bound in ("rtol", "atol"):
        value = (tolerance or {}).get(bound)
        if value is not None:
            words += [f"--{bound}", *([f"{d}={v!r}" for d, v in value.items()] if isinstance(value, dict)
                                      else [repr(value)])]
    if tolerance:
        words += ["--reason", shlex.quote(tolerance["reason"])]
    return " ".join([*words, "--only", shlex.quote(comparison_id)])


class Session:
    """A request planned: its candidate open, its comparisons known.  ``run`` makes them."""

    def __init__(self, request: Request, module=None, candidate=None):
        """
        Args:
            request: what to check.
            module: a module object to check in this process instead of ``request.target``.
            candidate: a candidate already made (``check_layer``'s declared layer), checked
                in this process.

        Raises:
            ImportError: the candidate cannot be imported.
            ValueError: an option the plan refuses (an unknown op, an --only not in the
                matrix, a shard with no case), or a layer the module declares cannot be built.
            oracles.devices.DeviceUnavailable: a device asked for is not there.
        """
        self.request = request
        self._lost: list = []  # worker processes of -n that ended before their part was done
        self._stopping = False
        # an empty store: every JAX result will be computed, by a host started now, importing
        # its framework while the candidate loads (its jobs come with the plan)
        self._hosts = early_hosts(request) if candidate is None and module is None else {}
        if candidate is not None:
            self.candidate, self.isolated = candidate, False
        else:
            try:
                self.candidate, self.isolated = open_candidate(module if module is not None else request.target,
                                                               request.case_timeout)
            except BaseException:
                self.close()
                raise
        # the oracles' results go to the store only from a process that holds no code under
        # test: a candidate in its worker, or manual (oracles.reference_store)
        self.store_writes = self.isolated or (candidate is None and module is None
                                              and request.target == "gradmatrix.manual")
        try:
            if not self.candidate.ops:
                raise NothingToCheck(self.candidate)
            unknown = [o for o in request.ops or () if o not in CATALOG and o not in self.candidate.ops]
            if unknown:
                raise ValueError(f"ops: unknown op(s) {unknown}; choose from "
                                 f"{list(dict.fromkeys([*CATALOG, *self.candidate.ops]))}")
            self.device = devices.resolve(request.device)
            matrix = default_plan(request.matrix, list(request.ops) if request.ops else None,
                                  list(request.dtypes) if request.dtypes else None, request.seeds,
                                  list(request.oracles), self.candidate,
                                  modes=list(request.modes) if request.modes else None)
            # framework functions the module declares: their own checks beside the matrix
            # (gradmatrix.framework_layers), made after it: measured where the module runs
            # (its worker, when isolated), judged here
            self.extras = framework_layers.declared_checks(
                self.candidate, request.ops, request.dtypes, request.seeds, request.modes) if not request.part else []
            extra_ids = [i for extra in self.extras for i in extra.ids]
            # a framework function is checked by the matrix at the dtypes it declares, never at
            # float16 / bfloat16: its own low-precision check judges it there (under the same
            # case id), and the matrix's case would run it on NumPy arrays
            at = framework_layers.declared_dtypes(self.candidate)
            planned = matrix
            matrix = [c for c in matrix if c.case.op not in at or c.case.kind != LOW_PRECISION_KIND
                      and (at[c.case.op] is None or c.case.dtype in at[c.case.op])]
            if planned and not matrix and not extra_ids:
                declared = "; ".join(f"{op}: {' '.join(dtypes)}" for op, dtypes in at.items() if dtypes)
                raise ValueError(f"nothing to compare: the framework functions of this selection are checked only at "
                                 f"the dtypes they declare ({declared})")
            if not matrix and not extra_ids:
                raise ValueError("nothing to compare: " + nothing_selected(
                    request.matrix, request.ops, request.dtypes, request.seeds, request.modes, request.oracles,
                    self.candidate))
            unjudged = unplanned_dtypes(request, matrix, self.extras)
            if unjudged:  # a dtype asked for and silently left out would read as checked
                raise ValueError(unjudged)
            self.matrix_ids = [c.id for c in matrix] + extra_ids
            comparisons = matrix
            self.extra_ids = extra_ids
            if request.only:
                comparisons = [c for c in matrix if c.id == request.only]
                self.extra_ids = [i for i in extra_ids if i == request.only]
                if not comparisons and not self.extra_ids:
                    raise ValueError(f"no comparison {request.only!r} in this matrix (check its matrix, ops, dtypes, "
                                     f"seeds and modes)")
            if request.shard:
                comparisons = shard(comparisons, request.shard) if comparisons else []
                if not request.shard.startswith("0/"):
                    self.extra_ids = []  # the framework functions' own checks are shard 0's
            self.comparisons = comparisons
            self.run_info = self._run_info()
            if self.extras:
                self.run_info["framework_checks"] = {extra.spec.name: extra.describe() for extra in self.extras}
        except BaseException:
            self.close()
            raise

    def _run_info(self) -> dict:
        r, c = self.request, self.candidate
        return {"candidate": c.name, "candidate_module": r.target if isinstance(r.target, str) else c.name,
                "candidate_ops": c.ops,
                "candidate_functions": {op: list(contract.functions) for op, contract in c.contracts.items()},
                "matrix": r.matrix, "ops": list(r.ops) if r.ops else None, "dtypes": list(r.dtypes) if r.dtypes else None,
                "oracles": list(r.oracles), "seeds": r.seeds, "modes": list(r.modes) if r.modes else None,
                "only": r.only, "shard": r.shard, "strict_kinks": r.strict_kinks, "strict": r.strict,
                "device": self.device, "matmul_precision": r.matmul_precision, "case_timeout": r.case_timeout,
                "isolated": self.isolated, "accounting": accounting(c), "tolerance_override": r.tolerance,
                "skipped_statements": list(getattr(c, "skipped", ()))}

    def plan(self) -> dict:
        """The plan the report records (``reports.document.make_plan``)."""
        return documents.make_plan([c.id for c in self.comparisons] + self.extra_ids, self.matrix_ids,
                                   self.request.shard)

    def reproduce(self, comparison) -> str:
        r = self.request
        if r.verb == "check_layer":
            return f"check_layer(..., only={comparison.id!r})"
        return reproduce_command(None if r.verb == "run" else r.target, r.matrix, comparison.id, comparison.case,
                                 **self._judged_as())

    def _judged_as(self) -> dict:
        """The options of this run that change a comparison's verdict (``reproduce_command``)."""
        r = self.request
        return {"strict_kinks": r.strict_kinks, "strict": r.strict, "device": r.device,
                "matmul_precision": r.matmul_precision, "tolerance": r.tolerance, "case_timeout": r.case_timeout}

    def records(self, comparisons=None):
        """Make ``comparisons`` (default: the plan's) in this process, yielding each record."""
        comparisons = self.comparisons if comparisons is None else comparisons
        r = self.request
        runner = Runner(self.candidate, list(r.oracles), device=self.device, strict_kinks=r.strict_kinks,
                        matmul_precision=r.matmul_precision, case_timeout=r.case_timeout, tolerance=r.tolerance,
                        store_writes=self.store_writes,
                        # a part of -n is one of several processes already: no host process beside each
                        oracle_host=False if r.part else None, hosts=self._hosts)
        self._hosts = {}  # the runner's now
        try:
            runner.compile_ahead(comparisons)
            for comparison in comparisons:
                yield runner.run(comparison, reproduce=self.reproduce(comparison))
        finally:
            runner.close()

    def run(self, progress=None) -> dict:
        """Make every comparison of the plan and return the document; Ctrl-C (or SIGTERM
        raised as KeyboardInterrupt) ends the run with an incomplete document.

        Args:
            progress: optional ``(done, total, failures)``, called after each comparison.
        """
        started = time.time()
        records, failures, interrupted = [], 0, ""
        source = self._parallel() if self.request.workers > 0 and len(self.comparisons) > 1 else self.records()
        total = len(self.comparisons) + len(self.extra_ids)
        try:
            for record in itertools.chain(source, self._extra_records()):
                records.append(record)
                failures += record["verdict"] in (DISAGREE, ERROR)
                if progress:
                    progress(len(records), total, failures)
        except KeyboardInterrupt:
            interrupted = INTERRUPTED
            self._stopping = True
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
            self.close()
        if self._lost and not interrupted:
            interrupted = "; ".join(self._lost)
        with devices.matmul_precision(self.request.matmul_precision):
            env = environment.collect(self.device, self.request.matmul_precision)
        return documents.build(records, env, self.run_info, started=started, interrupted=interrupted,
                               plan=self.plan())

    def _extra_records(self):
        """The records of the framework functions' own checks planned (``extra_ids``)."""
        wanted = set(self.extra_ids)
        for extra in self.extras:
            for case_id in extra.ids:
                if case_id in wanted:
                    yield from extra.records(case_id, reproduce=self._reproduce_id)

    def _reproduce_id(self, case_id: str, case) -> str:
        return reproduce_command(self.request.target, self.request.matrix, case_id, case, **self._judged_as())

    def _parallel(self):
        """The plan's records from worker processes, one per part (see the module docstring)."""
        self.close()  # the candidate's worker of the plan: each part opens its own
        split = parts(self.comparisons, self.request.workers)
        cores = os.cpu_count() or 1
        env = dict(os.environ)
        for name in THREAD_SETTINGS:
            env.setdefault(name, str(max(1, cores // len(split))))
        children = []
        done = False
        selector = selectors.DefaultSelector()
        try:
            for i in range(len(split)):
                request = replace(self.request, workers=0, part=(i, len(split)))
                child = subprocess.Popen([sys.executable, "-m", "gradmatrix.engine", json.dumps(asdict(request))],
                                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, text=True)
                children.append(child)
                selector.register(child.stdout, selectors.EVENT_READ, child)
            open_streams = len(children)
            while open_streams:
                for key, _ in selector.select():
                    line = key.fileobj.readline()
                    if not line:
                        selector.unregister(key.fileobj)
                        open_streams -= 1
                        continue
                    yield json.loads(line)
            done = True  # every part sent all it had: each worker is ending on its own
        finally:
            for i, child in enumerate(children):
                if child.poll() is None and not done:
                    child.terminate()  # stopped early (Ctrl-C, an error here): the workers too
                try:
                    code = child.wait(WORKER_EXIT_WAIT if done else None)
                except subprocess.TimeoutExpired:
                    child.kill()
                    code = child.wait()
                if code and not self._stopping:
                    how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
                    self._lost.append(f"worker process {i + 1} of {len(children)} ended ({how}) before its part "
                                      f"of the plan was done")
            selector.close()

    def close(self) -> None:
        while self._hosts:  # started early, never given to a runner
            self._hosts.popitem()[1].close()
        # a worker whose check is done ends as a process ends (IsolatedCandidate.finish)
        candidate = getattr(self, "candidate", None)
        getattr(candidate, "finish", getattr(candidate, "close", lambda: None))()


def _serve_part(request: Request) -> None:
    """A worker process of ``Session.run``: the records of its part as JSON lines on stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the engine's; it stops its workers
    # the records get a descriptor of their own; what the oracles, the candidate or its worker
    # process (which inherits descriptor 1) print goes to stderr, never among the records
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    session = Session(request)
    try:
        index, count = request.part
        mine = parts(session.comparisons, count)[index]
        for record in session.records(mine):
            out.write(json.dumps(record) + "\n")
            out.flush()
    finally:
        session.close()


if __name__ == "__main__":  # a worker process: python -m gradmatrix.engine REQUEST_JSON
    fields = json.loads(sys.argv[1])
    _serve_part(Request(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}))
