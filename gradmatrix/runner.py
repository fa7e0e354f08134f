"""The matrix: which comparisons a run makes, and the runner that makes them.

A comparison is a case and an ordered pair of implementation names.  The runner evaluates
each implementation at most once per case (results are cached across the pairs of a case),
hands each pair to ``reports.compare.compare`` and returns its record.  "jvp" and "hvp"
cases have their own implementations and pairs (``oracles.modes``), built on the same
candidate and oracles.  An implementation
that is unavailable makes its comparisons "skipped" with the reason (and the run fails: see
``reports.document``); one that raises, or runs past the per-case time limit, makes them
"error" with a short traceback, and the run goes on.  At kink cases each implementation's
gradient is also measured against the op's subdifferential (``oracles.kinks``).
"""

from __future__ import annotations

import importlib
import itertools
from collections import OrderedDict, deque
from dataclasses import dataclass, replace

import numpy as np

from gradmatrix.oracles.candidate import Candidate, provided_ops
from gradmatrix.oracles.contract import ContractError
from gradmatrix.oracle_host import OracleHost, RaisedElsewhere, host_pays
from gradmatrix.oracles.catalog import CATALOG, SKIPS_ORACLES, spec_of
from gradmatrix.oracles.cases import LOW_PRECISION_KIND, Case, CaseInputs, draw_inputs, matrix_cases
from gradmatrix.oracles.implementations import LOW_PRECISION, NO_FRAMEWORK, ON_DEVICE, ORACLES, findable, unavailable_reason  # ON_DEVICE: the oracles --device moves
from gradmatrix.oracles import modes, reference_store
from gradmatrix.oracles.modes import run_implementations as implementations
from gradmatrix.oracles.result import DEFAULT_CASE_TIMEOUT, CandidateFault, CaseTimeout, short_traceback
from gradmatrix.oracles.timelimit import time_limit
from gradmatrix.oracles.devices import PRECISIONS, matmul_precision
from gradmatrix.reports.compare import (DISAGREE, ERROR, SKIPPED, base_record, compare, gradients_readable,
                                       with_reproduce)
from gradmatrix.reports.framework_checks import low_precision_record
from gradmatrix.reports.severity import extreme_inputs


@dataclass(frozen=True)
class Comparison:
    """One case and an ordered pair (a, b) of implementation names; b is the reference."""

    case: Case
    pair: tuple

    @property
    def id(self) -> str:
        """e.g. ``affine-N8-Dx6-M3-seed1-float32-manual~torch``."""
        return f"{self.case.id}-{self.pair[0]}~{self.pair[1]}"


def pairs(candidate: str, oracles, kind: str = "random") -> list[tuple]:
    """The pairs of a case of ``kind``: for reverse mode ("random", "kink") every pair among
    the candidate and the oracles, candidate first and numeric last; for "jvp" and "hvp"
    the pairs of ``oracles.modes.mode_pairs``."""
    if kind in modes.MODE_KINDS:
        return modes.mode_pairs(kind, candidate, oracles)
    if kind == LOW_PRECISION_KIND:  # the candidate against each framework at its dtype (numeric is float64 only)
        return [(candidate, o) for o in ORACLES if o in oracles and o in LOW_PRECISION]
    names = [candidate] + [o for o in ORACLES if o in oracles]
    return list(itertools.combinations(names, 2))



def plan(cases, candidate: str, oracles, only: str | None = None) -> list[Comparison]:
    """The comparisons of ``cases`` across their pairs, optionally just the one with id ``only``.

    Raises:
        ValueError: ``only`` names no comparison of this matrix.
    """
    comparisons = [Comparison(c, p) for c in cases for p in pairs(candidate, _oracles_for(c.spec, oracles), c.kind)]
    if only:
        comparisons = [c for c in comparisons if c.id == only]
        if not comparisons:
            raise ValueError(f"no comparison {only!r} in this matrix (check its matrix, ops, dtypes, seeds and modes)")
    return comparisons


def _oracles_for(spec, oracles) -> list:
    """The oracles that have a forward for ``spec`` (a declared layer without a reference:
    only the numeric one, differentiating the layer's own forward)."""
    return [o for o in oracles if spec.oracles is None or o in spec.oracles]


def default_plan(matrix="default", ops=None, dtypes=None, seeds=None, oracles=ORACLES,
                 candidate: Candidate | None = None, only=None, modes=None) -> list[Comparison]:
    """The comparisons of a matrix for a candidate (default: ``manual``), limited to its ops.

    Args:
        modes: of "reverse", "jvp", "hvp" (default: all; see ``oracles.cases.MODES``).

    Raises:
        ValueError: an unknown op, dtype, mode or matrix, an op the candidate does not
            provide, or an ``only`` id that is not in the matrix.
    """
    unknown = [o for o in oracles if o not in ORACLES]
    if unknown:
        raise ValueError(f"unknown oracle(s) {unknown}; choose from {list(ORACLES)}")
    if candidate is not None:
        unknown = [o for o in ops or () if o not in CATALOG and o not in candidate.ops]
        if unknown:
            raise ValueError(f"unknown op(s) {unknown}; choose from {list(CATALOG)}")
        missing = [o for o in ops or () if o not in candidate.ops]
        if missing:
            raise ValueError(f"{candidate.name} does not provide {missing}; it provides {candidate.ops}")
        ops = ops or candidate.ops
        if not ops:
            raise ValueError(f"{candidate.name} provides no op of the catalog (looked for {_contracts()})")
    if candidate is None and not ops:  # manual's ops: the catalog also holds the course's, which manual lacks
        ops = provided_ops(importlib.import_module("gradmatrix.manual"))
    name = candidate.name if candidate is not None else "manual"
    oracles = [o for o in oracles if o not in SKIPS_ORACLES.get(matrix, ())]
    # the run's catalog: the catalog's ops, the courses' and the layers the candidate declares
    # (None: the catalog and the courses, a candidate in another process declaring none)
    catalog = getattr(candidate, "catalog", None)
    return plan(matrix_cases(matrix, ops, dtypes, seeds, modes, catalog=catalog), name, oracles, only)


def _contracts() -> str:
    return ", ".join("/".join(spec.functions) for spec in CATALOG.values())




class Runner:
    """Evaluates implementations on cases (each once per case) and compares pairs.

    A layer that a candidate in a worker process declares (``gradmatrix.isolation``) is the
    user's code through and through: its inputs are drawn, and every implementation of its
    cases (the oracles run its reference or its forward) is evaluated, in that process
    (``hosted``); only the comparison is made here.
    """

    CACHE_SIZE = 64  # results kept; a case's pairs run one after another

    def __init__(self, candidate: Candidate, oracles=ORACLES, device: str = "cpu", strict_kinks: bool = False,
                 matmul_precision: str = "default", case_timeout: float = DEFAULT_CASE_TIMEOUT,
                 tolerance: dict | None = None, store_writes: bool = False, oracle_host: bool | None = None,
                 hosts: dict | None = None):
        """
        Args:
            candidate: the implementation under test.
            oracles: oracle names to compare with.
            device: where the torch and JAX oracles compute ("cpu" or "cuda"); the
                candidate and the numeric oracle stay on the CPU.
            strict_kinks: fail differences at kinks instead of reporting the convention.
            matmul_precision: "default", "high" or "highest" (``oracles.devices``), in force
                while the torch and JAX oracles compute.
            case_timeout: seconds one implementation may take on one case before its
                comparisons become errors (0: no limit).  Enforced with SIGALRM, so only
                when the runner runs in the main thread (as under pytest and the CLI).
            tolerance: the call's tolerance override (``reports.compare.compare``'s ``override``).
            store_writes: write the oracles' results to the store (``oracles.reference_store``);
                only where no code under test has been imported into this process (an
                isolated candidate, ``manual``): code in the process could change what the
                oracles compute, and a result stored would carry that into later runs.
                Reading the store is always allowed.
            oracle_host: compute the oracles that compile per shape (JAX) in a process of
                their own (``gradmatrix.oracle_host``); None: where that pays (``host_pays``).
            hosts: such processes started before the plan was known (``gradmatrix.engine``),
                by oracle: ``compile_ahead`` gives them their jobs (closed where none).
        """
        if matmul_precision not in PRECISIONS:
            raise ValueError(f"unknown matmul precision {matmul_precision!r}; choose from {', '.join(PRECISIONS)}")
        if candidate.name in ORACLES or candidate.name.endswith(modes.SUFFIXES):
            # names key the implementations of a run: a candidate must never replace an oracle
            raise ValueError(f"candidate name {candidate.name!r} is an oracle's; candidates go by "
                             f"oracles.candidate.candidate_name")
        self.candidate = candidate
        self.strict_kinks = strict_kinks
        self.tolerance = tolerance
        self.device = device
        self.precision = matmul_precision
        if case_timeout < 0:
            raise ValueError(f"case_timeout must be >= 0 seconds, got {case_timeout}")
        self.case_timeout = case_timeout
        self.impls, self.mode_impls = implementations(candidate, oracles, device)
        self._unavailable: dict = {}  # name -> None or why it cannot run here, asked when first needed
        self._cache: OrderedDict = OrderedDict()
        self._explicit: set = set()  # cases run on inputs given to ``run``: their results are never stored
        self._findable: dict = {}  # oracle -> whether its framework is found here (implementations.findable)
        self._keys: dict = {}  # (case, name, precision) -> its store key, made once (a run asks three times)
        self.store_writes = store_writes
        if store_writes:  # the source as the oracles run it: a file edited later in a long session is not taken for it
            reference_store.fingerprint()
        self._ahead: list = []  # background compilations (compile_ahead)
        self.oracle_host = oracle_host
        self._hosts: dict = {}  # oracle name -> its host process (gradmatrix.oracle_host), computing ahead
        self._spare_host: OracleHost | None = None  # a host that also computes NO_FRAMEWORK oracles' results, as spare work
        self._started: dict = dict(hosts or {})  # oracle name -> a host started early, still without jobs
        self._upcoming: deque = deque()  # (case, name) of the oracles here, in the plan's order (_meanwhile)
        self._ready: dict = {}  # their results computed while a host worked, until their comparison

    def unavailable(self, name: str, case: Case | None = None) -> str | None:
        """None when implementation ``name`` (a base name: the candidate or an oracle) can
        run here, else the reason it cannot; asked the first time it is needed, so that a run
        whose references are all stored (``oracles.reference_store``) never imports a framework.
        For a hosted ``case`` the worker that would run it is asked (this process then never
        imports a framework for a declared layer).  A failure to answer is the reason."""
        hosted = case is not None and self.hosted(case) and name != self.candidate.name
        key = ("hosted", name) if hosted else name
        if key not in self._unavailable:
            answer = self._hosts[name].available(name) if not hosted and name in self._hosts else False
            if answer is not False:  # the oracle's host process said (its framework is not imported here)
                self._unavailable[key] = answer
            elif not hosted:
                self._unavailable[key] = unavailable_reason(self.impls[name])
            else:
                try:  # under the worker's own time limit for imports (gradmatrix.isolation)
                    self._unavailable[key] = self.candidate.unavailable_as(name, case, self.device)
                except (Exception, CaseTimeout) as exc:  # the worker ended or hung: nothing runs there
                    return f"{type(exc).__name__}: {exc}"
        return self._unavailable[key]

    def compile_ahead(self, comparisons) -> None:
        """Let the oracles that compile per shape (JAX) start on these comparisons' cases
        while the run goes on, in their order: in a process of their own that computes
        their results (``gradmatrix.oracle_host``) where that pays, else compiling on a
        thread here (``oracles.jax_oracle.compile_ahead``).  Only at the default matmul
        precision: the functions compiled ahead are keyed by it.  ``close()`` stops both."""
        started, self._started = self._started, {}
        try:
            self._compile_ahead(comparisons, started)
        finally:
            for host in started.values():  # started early for nothing
                host.close()

    def _compile_ahead(self, comparisons, started: dict) -> None:
        if self.precision != "default":
            return
        cases = [case for case in dict.fromkeys(c.case for c in comparisons) if not self.hosted(case)]
        wanted = {(c.case, name) for c in comparisons for name in c.pair}
        for name, impl in self.impls.items():
            if not getattr(impl, "compiles", False):
                continue
            needed = [case for case in cases if not self._all_stored(case, name, wanted)]
            if not needed:
                continue
            if self._host_pays(impl):
                self._start_host(name, comparisons, started.pop(name, None))
            elif not self.unavailable(name):
                ahead = impl.compile_ahead(needed)
                if ahead is not None:
                    self._ahead.append(ahead)
        if self._hosts:  # what the judge can compute while it waits on a host: the oracles it runs itself
            self._upcoming = deque(dict.fromkeys(
                (c.case, name) for c in comparisons if self._computed_here(c.case) for name in c.pair
                if self._base(c.case, name) in ORACLES and self._base(c.case, name) not in self._hosts))

    def _computed_here(self, case: Case) -> bool:
        """Whether this process draws ``case``'s inputs alone and computes its oracles: not a
        declared layer's case (its worker's), a low-precision one, or one whose inputs the
        candidate draws (its oracles wait for the candidate's result)."""
        return not (self.hosted(case) or case.kind == LOW_PRECISION_KIND
                    or any(s.drawn_by_candidate for s in case.spec.inputs))

    def _host_pays(self, impl) -> bool:
        """Whether oracle ``impl`` is computed in a process of its own: asked for
        (``oracle_host``), else where that pays (``host_pays``)."""
        return self.oracle_host if self.oracle_host is not None else host_pays(impl, self.device)

    def _start_host(self, oracle_name: str, comparisons, started: OracleHost | None = None) -> None:
        """Start a host process on every result of ``oracle_name`` these comparisons need
        that is not stored: of the catalog's and the courses' own ops, on inputs the
        judge draws alone (a case whose inputs the candidate draws waits for its result).
        The first host also gets the results of the oracles that import no framework
        (``NO_FRAMEWORK``: numeric) as spare work, taken from the plan's end while the
        judge works from its start (``OracleHost.offered``)."""
        spare_oracles = () if self._spare_host is not None else tuple(
            name for name in NO_FRAMEWORK if name in self.impls and (started is None or name in started.oracles))
        jobs, spare = {}, {}
        asked = {}  # what it will be asked on the candidate's own draw (``ask``): compiled with the jobs
        for comparison in comparisons:
            case = comparison.case
            if not _own_entry(case) or self.hosted(case):
                continue
            for name in comparison.pair:
                base = self._base(case, name)
                if not self._computed_here(case):
                    if base == oracle_name and any(s.drawn_by_candidate for s in case.spec.inputs):
                        asked[(case, name)] = None
                    continue
                wanted = jobs if base == oracle_name else spare if base in spare_oracles else None
                if wanted is not None and (case, name) not in wanted:
                    key = self._store_key(case, name, self.precision)
                    if key is None or not reference_store.has(key):
                        wanted[(case, name)] = None
                        if wanted is jobs:
                            asked[(case, name)] = None
        if not jobs:
            if started is not None:
                started.close()
            return
        if started is not None:
            host = started
            host.submit(list(jobs), list(spare), list(asked))
        else:
            try:
                host = OracleHost(list(jobs), (oracle_name, *spare_oracles), self.device, self.precision,
                                  self.case_timeout, keep_functions=not self.store_writes, spare=list(spare),
                                  expected=list(asked))
            except OSError:
                return  # it is evaluated here, as without a host
        self._hosts[oracle_name] = host
        if spare:
            self._spare_host = host

    def _all_stored(self, case: Case, oracle_name: str, wanted: set) -> bool:
        """Whether every result of oracle ``oracle_name`` on ``case`` that the plan wants
        (``wanted``: its (case, implementation name) pairs; a jvp case wants ``jax.jvp``, not
        the reverse mode it could also give) is in the store.  A case whose inputs the
        candidate draws (the course's dropout mask) counts as stored: its key is known only
        once the candidate has run, and its functions are compiled when first needed."""
        if any(s.drawn_by_candidate for s in case.spec.inputs):
            return True
        names = [n for n in (self.mode_impls[case.kind] if case.kind in self.mode_impls else self.impls)
                 if self._base(case, n) == oracle_name and (case, n) in wanted]
        keys = [reference_store.key(case, n, self.precision, self.device) for n in names]
        return all(k is not None and reference_store.has(k) for k in keys)

    def close(self) -> None:
        """Stop compiling ahead (after the function being compiled), wait for the results
        being stored, and stop the candidate's worker process where it has one
        (``gradmatrix.isolation``)."""
        while self._ahead:
            self._ahead.pop().stop()
        while self._hosts:
            self._hosts.popitem()[1].close()
        self._spare_host = None
        while self._started:
            self._started.popitem()[1].close()
        reference_store.flush()  # the results this run stored are on disk when it ends
        # the worker ends as a process ends, what it printed flushed (IsolatedCandidate.finish)
        getattr(self.candidate, "finish", getattr(self.candidate, "close", lambda: None))()

    def _base(self, case: Case, name: str) -> str:
        """The implementation a name stands on in a case of this kind: ``torch.jvp`` -> ``torch``
        in a mode case (``oracles.modes.base_name``), the name itself elsewhere."""
        return modes.base_name(name) if case.kind in self.mode_impls else name

    def _impl(self, case: Case, name: str):
        """The implementation called ``name`` in a case of this kind."""
        return (self.mode_impls[case.kind] if case.kind in self.mode_impls else self.impls)[name]

    def hosted(self, case: Case) -> bool:
        """Whether ``case`` is drawn and evaluated in the candidate's worker process: its op
        is a layer the candidate's module declares (the class docstring)."""
        return case.op in getattr(self.candidate, "hosted", ())

    def _evaluate(self, case: Case, name: str, inputs: CaseInputs, precision: str):
        """Implementation ``name``'s result on ``inputs`` (of ``case``) at matmul ``precision``:
        here, in the candidate's worker process for a hosted case (every implementation
        but the candidate's own reverse mode, which is its ``evaluate`` wherever it runs), or
        in its oracle's host process where it has one (``gradmatrix.oracle_host``)."""
        if self.hosted(case) and (name != self.candidate.name or case.kind in self.mode_impls):
            return self.candidate.evaluate_as(name, inputs, self.device, precision)
        host = self._hosts.get(self._base(case, name))
        if host is not None and _own_entry(case):  # its oracle's host process, while it answers
            result = host.ask(case, name, inputs, precision)
            if result is not None:
                return result
        with matmul_precision(precision):
            return self._impl(case, name).evaluate(inputs)

    def _inputs(self, case: Case):
        key = (case, None)
        if key not in self._cache:
            self._cache[key] = self.candidate.draw(case) if self.hosted(case) else draw_inputs(case)
        self._cache.move_to_end(key)
        return self._cache[key]

    def _result(self, case: Case, name: str, precision: str | None = None):
        precision = precision or self.precision
        key = (case, name, precision)
        if key in self._ready:  # computed while a host worked (_meanwhile)
            self._cache[key] = self._ready.pop(key)
            self._trim()
        if key not in self._cache:
            # the key first: where the candidate draws an input, it digests the same draw the
            # oracle is then given (the candidate's result, just computed, is in the cache)
            store_key = self._store_key(case, name, precision)
            stored = self._stored(case, name, precision, store_key)
            if stored is not None:
                return stored
            self._cache[key] = self._compute(case, name, precision, store_key)
            self._trim()
        self._cache.move_to_end(key)  # least recently used goes first
        return self._cache[key]

    def _compute(self, case: Case, name: str, precision: str, store_key: dict | None):
        """Implementation ``name``'s result on ``case`` (taken from its host, else evaluated),
        stored where it may be; the exception instead where it raised or ran past the time
        limit (recorded as an error for every pair it is in)."""
        try:
            result = self._from_host(case, name, precision)
            if result is None:
                inputs = self._inputs_for(case, name, precision)  # drawn by the user's code, for a hosted case
                with _time_limit(self.case_timeout, f"{name} on {case.id}"):
                    result = self._evaluate(case, name, inputs, precision)
        except (Exception, CaseTimeout) as exc:
            return exc
        if store_key is not None and self.store_writes:
            reference_store.save(store_key, result)
        return result

    def _meanwhile(self) -> bool:
        """While a host works towards the result waited for: compute the next result the
        plan needs of an oracle evaluated here (``_upcoming``), kept for its comparison
        (``_ready``); False when none is left."""
        while self._upcoming:
            case, name = self._upcoming.popleft()
            key = (case, name, self.precision)
            base = self._base(case, name)
            if key in self._cache or key in self._ready or self.unavailable(base):
                continue
            store_key = self._store_key(case, name, self.precision)
            if store_key is not None and reference_store.has(store_key):
                continue
            self._ready[key] = self._compute(case, name, self.precision, store_key)
            return True
        return False

    def _from_host(self, case: Case, name: str, precision: str):
        """The result a host process computed ahead (``gradmatrix.oracle_host``), or None:
        none has it, or its host stopped answering (then it is evaluated here).

        Raises:
            RaisedElsewhere: the implementation raised there.
        """
        base = self._base(case, name)
        if precision != self.precision:
            return None
        host = self._hosts.get(base)
        if host is None:  # computed here, unless a host has done it already as spare work
            return self._spare_host.offered(case, name) if self._spare_host is not None else None
        return host.take(case, name, meanwhile=self._meanwhile)

    def _trim(self) -> None:
        while len(self._cache) > self.CACHE_SIZE:
            self._cache.popitem(last=False)

    def _store_key(self, case: Case, name: str, precision: str) -> dict | None:
        """The key of an oracle's result in the store (``oracles.reference_store``), or None:
        the candidate's own results and what is computed from them, results on inputs given
        to ``run``, and a spec that is not gradmatrix's own are never stored."""
        base = self._base(case, name)
        if base == self.candidate.name or base not in ORACLES or case in self._explicit:
            return None
        if base not in self._findable:
            self._findable[base] = findable(base)
        if not self._findable[base] or not reference_store.ours(case.spec):
            return None
        if any(s.drawn_by_candidate for s in case.spec.inputs):  # the key follows the candidate's draw
            own = self._result(case, self.candidate.name, precision)
            mask = getattr(own, "drawn", None)
            drawn = reference_store.digest_arrays(mask) if mask else None
            return reference_store.key(case, name, precision, self.device, drawn)
        made = (case, name, precision)
        if made not in self._keys:
            self._keys[made] = reference_store.key(case, name, precision, self.device)
        return self._keys[made]

    def _stored(self, case: Case, name: str, precision: str, store_key: dict | None = None):
        """An oracle's result read from the store into this runner's cache, or None
        (``store_key``: its key, where already known)."""
        store_key = store_key or self._store_key(case, name, precision)
        result = reference_store.load(store_key) if store_key is not None else None
        if result is not None:
            self._cache[(case, name, precision)] = result
            self._trim()
        return result

    def _inputs_for(self, case: Case, name: str, precision: str) -> CaseInputs:
        """The case's inputs as implementation ``name`` sees them: where the candidate draws
        an input itself (``InputSpec.drawn_by_candidate``), the one recovered from its
        forward replaces the case's own draw for every oracle; the case's draw stays when
        the candidate failed."""
        inputs = self._inputs(case)
        if name == self.candidate.name or not any(s.drawn_by_candidate for s in case.spec.inputs):
            return inputs
        own = self._result(case, self.candidate.name, precision)
        drawn = getattr(own, "drawn", None)
        return replace(inputs, arrays={**inputs.arrays, **drawn}) if drawn else inputs

    def run(self, comparison: Comparison, reproduce: str = "", inputs=None) -> dict:
        """Make one comparison and return its record (verdict agree/disagree/error/skipped).

        Args:
            comparison: the case and pair.
            reproduce: command quoted in messages.
            inputs: explicit ``CaseInputs`` for the case (hypothesis draws its own); by
                default they are drawn from the case's generator.
        """
        case, (a, b) = comparison.case, comparison.pair
        if inputs is not None and self._cache.get((case, None)) is not inputs:
            # new explicit inputs: results computed on other inputs are forgotten; the same
            # inputs again (the next pair of the case) keep the results already computed
            self._cache = OrderedDict({(case, None): inputs})
            self._explicit.add(case)
        for name in (a, b):
            key = (case, name, self.precision)
            if key in self._cache or key in self._ready or self._stored(case, name, self.precision) is not None:
                continue  # computed or stored: it can run here
            base = self._base(case, name)
            reason = self.unavailable(base, case)
            if reason:
                return _record(comparison, SKIPPED, f"{name} unavailable: {reason}")
        if case.kind == LOW_PRECISION_KIND:
            return self._low_precision(comparison, reproduce)
        results = {}
        for name in (a, b):
            result = self._result(case, name)
            if isinstance(result, BaseException):
                return _record(comparison, ERROR, _describe(name, result, reproduce), short_traceback(result),
                               reproduce=reproduce, error=_error(name, result))
            results[name] = result
        inputs = self._inputs(case)
        conventions, outside = {}, {}
        if case.kind == "kink":
            try:  # a declared layer's rules are its author's code (run in its worker when isolated)
                with _time_limit(self.case_timeout, f"the kink rules of {case.op} on {case.id}"):
                    conventions = {n: _convention(case, results[n], inputs) for n in (a, b)}
                    outside = {n: _outside(case, results[n], inputs) for n in (a, b)}
            except (Exception, CaseTimeout) as exc:
                return _rules_failed(comparison, exc, reproduce)
        record = compare(case, results[a], results[b], reproduce, inputs.kink_masks, self.strict_kinks, conventions,
                         outside, extreme=extreme_inputs(inputs.arrays, case.dtype), override=self.tolerance)
        if record["verdict"] == DISAGREE and self._precision_may_explain(case, (a, b)):
            record["at_highest_precision"] = self._recheck_at_highest(comparison, reproduce)
        return record

    def _low_precision(self, comparison: Comparison, reproduce: str) -> dict:
        """A float16 / bfloat16 comparison: the candidate and the reference at the dtype
        against the reference in float64 on the same dtype-rounded inputs (the truth), the
        candidate allowed K times the reference's own error (``reports.framework_checks``).
        An exception in the reference or the truth is the reference's."""
        case, (a, b) = comparison.case, comparison.pair
        truth_case = replace(case, dtype="float64", kind="random")
        inputs = self._inputs(case)
        labels = {s.name for s in case.spec.inputs if s.is_label}
        rounded = CaseInputs(truth_case, {k: v if k in labels else v.astype(np.float64)
                                          for k, v in inputs.arrays.items()},
                             None if inputs.dout is None else inputs.dout.astype(np.float64))
        key = (case, b, "truth")
        if key not in self._cache:
            try:
                with _time_limit(self.case_timeout, f"{b} on {truth_case.id}"):
                    self._cache[key] = self._evaluate(truth_case, b, rounded, "highest")
            except (Exception, CaseTimeout) as exc:
                self._cache[key] = exc
        results = {a: self._result(case, a), b: self._result(case, b), "truth": self._cache[key]}
        for name, result in results.items():
            if isinstance(result, BaseException):
                blamed = b if name == "truth" else name
                return _record(comparison, ERROR, _describe(blamed, result, reproduce), short_traceback(result),
                               reproduce=reproduce, error=_error(blamed, result))
        mine, truth = results[a], results["truth"]
        # the reference's own error is the larger of the frameworks' at this dtype: torch's CPU
        # half-precision kernels compute elementwise steps in float32, which is no measure of
        # the rounding of code that rounds every step in the dtype (NumPy, a fused kernel)
        references = [results[b]] + [r for o in LOW_PRECISION if o not in (a, b) and o in self.impls
                                     and not self.unavailable(o, case)
                                     and not isinstance(r := self._result(case, o), BaseException)]
        spec = case.spec
        try:
            at = _rounding_kinks(spec, truth, rounded)  # ties the rounding made: conventions, not errors
        except (Exception, CaseTimeout) as exc:
            return _rules_failed(comparison, exc, reproduce)

        def worst(of, kink=None):  # the reference value farthest from the truth (off the kinks)
            return max((of(r) for r in references), key=lambda v: _distance(v, of(truth), kink))

        tensors = [(spec.output, "forward", mine.forward, worst(lambda r: r.forward), truth.forward)]
        tensors += [(f"d{n}", "gradient", mine.grads.get(n), worst(lambda r, n=n: r.grads.get(n), at.get(n)),
                     truth.grads.get(n)) for n in spec.differentiable]
        for tensor, _, value, _, expected in tensors:
            shape = None if value is None else np.shape(value)
            if shape != np.shape(expected):
                return _record(comparison, ERROR, with_reproduce(f"{tensor} ({a}, {case.dtype}): shape {shape}, "
                                                                 f"expected {np.shape(expected)}", reproduce),
                               reproduce=reproduce, error={"impl": a, "exception": None})
        kinks = {}
        if at:  # how far the candidate lies outside the derivative's set there
            try:
                outside = spec.kink_subgradient({n: np.asarray(g, dtype=np.float64) for n, g in mine.grads.items()},
                                                rounded.arrays, _upstream(rounded))
            except (Exception, CaseTimeout) as exc:
                return _rules_failed(comparison, exc, reproduce)
            kinks = {f"d{n}": (m, np.asarray(outside[n])) for n, m in at.items()}
        return low_precision_record(case, a, b, tensors, reproduce, kinks=kinks)

    def _precision_may_explain(self, case: Case, pair: tuple) -> bool:
        """A float32 disagreement involving torch or JAX while they may use reduced-precision
        matmuls (TF32 on a GPU): worth repeating at the highest precision."""
        on_device = {n for n in pair if self._base(case, n) in ON_DEVICE}
        return case.dtype == "float32" and self.precision != "highest" and bool(on_device)

    def _recheck_at_highest(self, comparison: Comparison, reproduce: str) -> dict:
        """The verdict of the same comparison with torch and JAX at matmul precision
        "highest": "agree" there means the cause is the frameworks' reduced-precision float32
        matmul, not a wrong gradient."""
        case, (a, b) = comparison.case, comparison.pair
        results = {n: self._result(case, n, "highest") for n in (a, b)}
        failed = [n for n, r in results.items() if isinstance(r, BaseException)]
        if failed:
            return {"verdict": ERROR, "message": _describe(failed[0], results[failed[0]], reproduce)}
        inputs = self._inputs(case)
        outside = {n: _outside(case, results[n], inputs) for n in (a, b)} if case.kind == "kink" else {}
        again = compare(case, results[a], results[b], reproduce, inputs.kink_masks, self.strict_kinks, None, outside,
                        extreme=extreme_inputs(inputs.arrays, case.dtype), override=self.tolerance)
        return {"verdict": again["verdict"], "message": again["message"]}


def _own_entry(case: Case) -> bool:
    """Whether a case's spec is the catalog's or a course's entry of its name, as a case
    that travels by name is rebuilt in another process (``Case.__reduce__``)."""
    try:
        return spec_of(case.op) is case.spec
    except KeyError:
        return False


def _time_limit(seconds: float, what: str):
    """Raise ``CaseTimeout`` in the main thread after ``seconds`` (none when 0 or when not
    in the main thread, where no signal can be delivered)."""
    return time_limit(seconds, lambda: CaseTimeout(
        f"{what} took longer than the time limit of {seconds:g} s (--case-timeout)"))


def _outside(case: Case, result, inputs) -> dict | None:
    """How far ``result``'s gradients lie outside the subdifferential at the case's kinks
    (``OpSpec.kink_subgradient``); None when the op declares none or the gradients cannot
    be read that way (a wrong shape or type: the comparison names that problem itself, so
    a result outside nothing is never inside the subdifferential)."""
    if case.spec.kink_subgradient is None or not gradients_readable(case, result):
        return None
    return case.spec.kink_subgradient(result.grads, inputs.arrays, inputs.dout)


def _rules_failed(comparison: Comparison, exc: BaseException, reproduce: str) -> dict:
    """The record of a comparison whose op's kink rules (``OpSpec.kink_subgradient`` or
    ``kink_convention``) raised: a declared layer's are its author's code, applied in its
    worker when isolated; the failure is the declaration's, as its reference's would be."""
    text = str(exc) if isinstance(exc, CandidateFault) else f"{type(exc).__name__}: {exc}"
    error = _error(comparison.pair[1], exc)
    error["exception"] = error["exception"] or type(exc).__name__  # a worker's fault names its cause
    return _record(comparison, ERROR, f"the kink rules {comparison.case.op} declares (its subgradient or convention) "
                   f"failed: {text}", getattr(exc, "user_traceback", None) or short_traceback(exc),
                   reproduce=reproduce, error=error)


def _rounding_kinks(spec, truth, inputs: CaseInputs) -> dict:
    """``{input: elements of its gradient whose derivative is a set}`` where the (dtype-rounded)
    ``inputs`` lie on a kink of the op (``OpSpec.kink_subgradient``); {} where none does.

    Rounding to float16 or bfloat16 ties values a float64 draw kept apart (``max(x, y)`` with
    x == y): there the reference and the truth take their framework's convention, which no
    candidate has to share.  The elements are those where the op's own subdifferential
    reports a gradient far off every value as outside it (elsewhere it is one point, of
    which it reports nothing)."""
    if spec.kink_subgradient is None or not truth.grads:
        return {}
    dout = _upstream(inputs)
    far = 1e6 * (1.0 + float(np.max(np.abs(dout), initial=0.0)))
    probe = {n: np.full(np.shape(g), far) for n, g in truth.grads.items()}
    try:
        outside = spec.kink_subgradient(probe, inputs.arrays, dout)
    except (ValueError, IndexError, CandidateFault) as exc:  # one written for its kink cases' layout (max_pool's)
        if isinstance(exc, CandidateFault) and getattr(exc, "raised", None) not in ("ValueError", "IndexError"):
            raise  # a declared layer's rule, applied in its worker: only its layout errors mean "cannot read"
        return {}  # cannot read these inputs: every element is judged by value, as before
    at = {n: np.asarray(o) > 0 for n, o in outside.items()}
    return {n: m for n, m in at.items() if m.any()}


def _upstream(inputs: CaseInputs) -> np.ndarray:
    """The case's upstream gradient in float64 (1 for a loss)."""
    return np.float64(1.0) if inputs.dout is None else inputs.dout.astype(np.float64)


def _convention(case: Case, result, inputs) -> float | None:
    """The derivative ``result`` takes at the case's kinks (``OpSpec.kink_convention``), for
    the record; None when the op declares no convention or the gradients are unreadable."""
    if case.spec.kink_convention is None or not gradients_readable(case, result):
        return None
    return case.spec.kink_convention(result.grads, inputs.arrays, inputs.dout)


def _describe(name: str, exc: BaseException, reproduce: str) -> str:
    what = str(exc) if isinstance(exc, (CandidateFault, RaisedElsewhere)) else f"{type(exc).__name__}: {exc}"
    return with_reproduce(f"{name} failed: {what}", reproduce)


def _error(impl: str, exc: BaseException) -> dict:
    """A record's ``error``, as data: which implementation failed, the exception it raised by
    name and what that exception said (NumPy's words for a matrix product of mismatched
    operands: a finding reads them there, never in the record's message).  A candidate's
    exception is its own code's, inside the ``CandidateFault`` that names the function; one
    that broke the contract without raising (a wrong return structure) raised none."""
    if isinstance(exc, (RaisedElsewhere, CandidateFault)) and hasattr(exc, "raised"):
        raised, said = exc.raised, getattr(exc, "said", None)  # sent back by a host or a candidate's worker
    else:
        cause = exc.__cause__ if isinstance(exc, CandidateFault) else exc
        contract = cause is None or isinstance(exc, CandidateFault) and isinstance(cause, ContractError)
        raised, said = (None, None) if contract else (type(cause).__name__, str(cause))
    error = {"impl": impl, "exception": raised}
    if raised is not None and said is not None:
        error["said"] = said
    return error


def _distance(value, truth, skip=None) -> float:
    """max |value - truth| in float64, leaving out the elements of ``skip`` (inf where they
    cannot be compared)."""
    value, truth = np.asarray(value, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if value.shape != truth.shape:
        return float("inf")
    gap = np.abs(value - truth)
    return float(np.max(gap if skip is None else np.where(skip, 0.0, gap), initial=0.0))


def _record(comparison: Comparison, verdict: str, message: str, trace: str = "", reproduce: str = "",
            error: dict | None = None) -> dict:
    """A record that measured nothing; ``error``: which implementation failed and with what
    exception, as data (the findings group by it, never by the message's words)."""
    record = base_record(comparison.case, comparison.pair, verdict, message)
    if trace:
        record["traceback"] = trace
    if reproduce:
        record["reproduce"] = reproduce
    if error:
        record["error"] = error
    return record
