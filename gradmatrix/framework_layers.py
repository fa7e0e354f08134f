"""``check_layer(..., framework="torch" | "jax")``: a function with its own backward in a framework.

::

    gradmatrix.check_layer(MyGelu.apply, None, {"x": (4, 5)}, framework="torch",
                           reference=gelu_reference, dtypes=("float64", "float32", "bfloat16"))

At float64 and float32 the function goes the declared-layer path (``own_layers``): its
gradient by its own rule (``oracles.framework.Framework.contract``) against float64 numeric
differences of the same function, the reference's plain autodiff (torch autograd,
``jax.vjp``) and their forward modes.  Beside those records this module adds the checks of
``reports.framework_checks``: low precision (float16, bfloat16) judged by the reference's own
error at that dtype, the backward run again on the same inputs (``nondet_tol``), and, where
the backward can be differentiated, the gradient of ``<grad, v>`` against the reference's.
One document holds them all, so the console, the reports and ``raise_for_failures`` read
them as any check's.

Each of those checks is split in two: ``Measures`` calls the user's function and reference
and returns data (float64 arrays, or what raised, by name and message), and ``_Extra``
plans the checks and judges that data into records.  ``check_layer`` measures in the
caller's process; ``gradmatrix check`` on a module measures in the module's worker process
(``gradmatrix.isolation``, message ``"framework-check"``) and judges in the judge's.
"""

from __future__ import annotations

import time
from dataclasses import replace

from gradmatrix.oracles import devices
from gradmatrix.oracles.cases import Case, count_option, draw_inputs, matrix_cases, names_option
from gradmatrix.oracles.catalog import CATALOG, DTYPES
from gradmatrix.oracles.declared import DeclarationError, Integers, _argument_order, _check_passing, build, declare
from gradmatrix.oracles.framework import LOW_PRECISION, NoSecondOrder, framework_of, function_name
from gradmatrix.oracles.result import CaseTimeout
from gradmatrix.reports import document as documents
from gradmatrix.reports import environment
from gradmatrix.reports import framework_checks as checks

DEFAULT_RUNS = 3  # runs of the backward on the same inputs (the first, and two more)
SUPPORT = "second-order-support"  # what ``Measures.measure`` is asked at planning: can the backward be differentiated


def check_options(dtypes=None, nondet_tol: float = 0.0, runs: int = DEFAULT_RUNS, second_order=None) -> dict:
    """The options of a framework function's own checks, validated where they enter
    (``check_layer`` and ``gradmatrix.layer``).

    Args:
        dtypes: the dtypes to check in, of "float64", "float32", "float16", "bfloat16"
            (None: float64 and float32, or the command's ``--dtypes``).
        nondet_tol: the absolute difference allowed between runs of the backward.
        runs: runs of the backward on the same inputs, >= 1.
        second_order: True, False or None (wherever the backward can be differentiated).

    Returns:
        {"dtypes": [...] or None, "nondet_tol", "runs", "second_order"}.

    Raises:
        TypeError, ValueError: an option of the wrong type or value, naming it.
    """
    dtypes = names_option(dtypes, "dtypes", (*DTYPES, *LOW_PRECISION), "dtype")
    runs = count_option(runs, "runs", least=1)
    if isinstance(nondet_tol, bool) or not isinstance(nondet_tol, (int, float)) or not nondet_tol >= 0:
        raise TypeError(f"nondet_tol must be a number >= 0 (the absolute difference allowed between runs), "
                        f"got {nondet_tol!r}")
    if second_order not in (None, True, False):
        raise TypeError(f"second_order must be True, False or None (where the backward supports it), "
                        f"got {second_order!r}")
    return {"dtypes": dtypes, "nondet_tol": float(nondet_tol), "runs": runs, "second_order": second_order}


def _needs_reference(name: str, low: list, second_order, has_reference: bool) -> None:
    """Refuse checks that have nothing to compare with.

    Raises:
        DeclarationError: low-precision dtypes or second_order=True without a reference.
    """
    if low and not has_reference:
        raise DeclarationError(f"dtypes: {low} need reference= for {name}: at low precision the allowance is the "
                               f"reference's own error at that dtype against float64 (numeric differences of a "
                               f"{low[0]} function are no ground truth)")
    if second_order and not has_reference:
        raise DeclarationError(f"second_order: checking the double backward of {name} needs reference= to "
                               f"compare with")


def framework_declaration(function, shapes, *, framework: str, reference=None, params=None, wrt=None, name=None,
                          device: str = "cpu", checks_asked: dict | None = None):
    """A framework function as a declared layer: ``(declaration, framework)``.

    The declaration's forward and backward run ``function`` through its own rule
    (``Framework.contract``); ``reference`` becomes that framework's plain-autodiff oracle
    and the numeric oracle differentiates ``function`` itself.  ``checks_asked``
    (``check_options``) is what ``gradmatrix check`` runs beside the matrix
    (``declared_checks``): low precision at its dtypes, runs again, second order.

    Raises:
        ValueError: an unknown framework.
        DeclarationError: an argument that cannot be used, naming it.
    """
    fw = framework_of(framework, device)
    if not callable(function):
        raise DeclarationError(f"forward must be a function of {framework} arrays, got {type(function).__name__}")
    if reference is not None and not callable(reference):
        raise DeclarationError(f"reference must be a {framework} function (*arrays, **params) -> out computing the "
                               f"same values by plain autodiff, got {type(reference).__name__}")
    if name is None:
        name = function_name(function)
        name = f"{name}_layer" if name in CATALOG else name
    if isinstance(shapes, dict):  # the order the function takes its arguments in, where it names them
        shapes = {n: shapes[n] for n in _argument_order(function, list(shapes))}
        _check_passing(function, list(shapes), ", with its parameters after them (params= passes those by name)")
    probe = declare(function, None, shapes, params=params, wrt=wrt, name=name)  # validates shapes, params, wrt
    forward, backward = fw.contract(function, probe.name, tuple(probe.shapes[0]), probe.wrt)
    declaration = declare(forward, backward, shapes, params=params,
                          reference=None if reference is None else {framework: reference}, wrt=probe.wrt,
                          name=probe.name)
    declaration.framework = (fw, function, reference)
    declaration.framework_checks = checks_asked or check_options()
    _needs_reference(declaration.name, declaration.framework_checks["dtypes"] or [],
                     declaration.framework_checks["second_order"], reference is not None)
    return declaration, fw


def check(function, shapes, *, framework: str, reference=None, params=None, wrt=None, name=None,
          dtypes=("float64", "float32"), seeds: int = 3, oracles=None, modes=None, strict_kinks=False, strict=False,
          only=None, device="cpu", matmul_precision="default", nondet_tol: float = 0.0, runs: int = DEFAULT_RUNS,
          second_order: bool | None = None):
    """``check_layer`` for a framework function; see ``own_layers.check_layer``."""
    from gradmatrix.own_layers import FrameworkLayerResult, check_layer

    options = check_options(dtypes, nondet_tol, runs, second_order)
    dtypes, runs = options["dtypes"] or list(DTYPES), options["runs"]
    seeds = count_option(seeds, "seeds")
    devices.resolve(device)
    declaration, fw = framework_declaration(function, shapes, framework=framework, reference=reference,
                                            params=params, wrt=wrt, name=name, device=device,
                                            checks_asked={**options, "dtypes": None})
    _needs_reference(declaration.name, [d for d in dtypes if d in LOW_PRECISION], second_order,
                     reference is not None)
    started = time.time()
    spec, _ = build(declaration)
    measures = Measures(fw, function, reference, spec, declaration.params, declaration.wrt)  # in this process
    extra = _Extra(fw.name, spec, reference is not None, measures.measure, seeds, dtypes, nondet_tol, runs,
                   second_order)
    standard = [d for d in dtypes if d in DTYPES]
    own_only = only is not None and only in extra.ids
    if only is not None and not own_only and not standard:
        raise ValueError(f"only: no comparison {only!r} in this check")
    document = None
    if standard and not own_only:
        result = check_layer(declaration.forward, declaration.backward, list(declaration.shapes),
                             params=declaration.params, reference=declaration.reference, wrt=declaration.wrt,
                             name=declaration.name, dtypes=standard, seeds=seeds, oracles=oracles, modes=modes,
                             strict_kinks=strict_kinks, strict=strict, only=only, device=device,
                             matmul_precision=matmul_precision)
        document = result.document
    records = [] if only is not None and not own_only else extra.records(only)
    if document is None:
        env = environment.collect(devices.resolve(device), matmul_precision)
        run = {"candidate": "candidate", "candidate_module": f"check_layer({declaration.name})",
               "candidate_ops": [declaration.name], "ops": None, "oracles": [fw.name], "seeds": seeds,
               "only": only, "strict_kinks": strict_kinks, "strict": strict, "device": device,
               "matmul_precision": matmul_precision, "isolated": False}
        ids, interrupted = [], ""
    else:
        env, run, ids = document["environment"], dict(document["run"]), list(document["plan"]["ids"])
        interrupted = document["summary"].get("interrupted", "")
    run.update(matrix=None, dtypes=list(dtypes), framework=fw.name, nondet_tol=nondet_tol, runs=runs,
               second_order=extra.second_order_note)
    ids += [r["id"] for r in records]
    document = documents.build(records + (document["comparisons"] if document else []), env, run, started=started,
                               interrupted=interrupted, plan=documents.make_plan(ids))
    return FrameworkLayerResult(document)


class Measures:
    """The user's side of a framework function's own checks: every call of its function and
    reference, returning data only (float64 arrays, an exception by name and message), so
    that it can run in the candidate's worker process (``gradmatrix.isolation``) or, for
    ``check_layer``, in the caller's.  ``_Extra`` judges what it returns.

    ``measure(what, case, at, runs)`` answers one check of the plan:

    * ``SUPPORT``: {"why": None} where the double backward can be run, else {"why": reason};
    * ``checks.RERUN``: {"runs": [{input: gradient}, ...]}, the backward ``runs`` times;
    * ``checks.SECOND_ORDER``: {"mine": {...}, "theirs": {...}}, the gradient of
      ``<grad, v>`` by the function and by the reference;
    * ``checks.LOW_PRECISION``: {"tensors": [(tensor, role, value, reference's value at the
      dtype, float64 truth), ...]}, the forward output, then each gradient;

    or, where the function or the reference raised, {"raised": {"impl": None (the
    function) or the framework's name (the reference), "exception", "message"}}.
    """

    def __init__(self, fw, function, reference, spec, params, wrt):
        self.fw, self.function, self.reference = fw, function, reference
        self.spec, self.params, self.wrt = spec, params, wrt

    def measure(self, what: str, case: Case, at: Case, runs: int = DEFAULT_RUNS) -> dict:
        """The values check ``what`` judges on ``case`` (float64 draws) at ``at`` (its dtype
        and kind); see the class docstring."""
        try:
            if what == SUPPORT:
                return {"why": self._second_order_support(case)}
            return self._values(what, case, at, runs)
        except ReferenceFailed as exc:
            raised = exc.exception
            return {"raised": {"impl": exc.impl, "exception": type(raised).__name__, "message": str(raised)}}
        except Exception as exc:  # noqa: BLE001  the function raised: the judge makes an error record of it
            return {"raised": {"impl": None, "exception": type(exc).__name__, "message": str(exc)}}

    def _second_order_support(self, case: Case) -> str | None:
        """None where the function's double backward runs on ``case``'s inputs, else why not."""
        inputs = draw_inputs(case)
        try:
            self.fw.second_order(self.function, inputs.arrays, self.wrt, inputs.dout, self._directions(case),
                                 "float64", self.params)
        except NoSecondOrder as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001  the first-order checks record what the function raised
            return f"the double backward raised {type(exc).__name__}: {exc}"
        return None

    def _directions(self, case: Case) -> dict:
        rng = replace(case, kind=checks.SECOND_ORDER).rng()
        shapes = {s.name: s.shape for s in self.spec.inputs}
        dims = case.dim_map
        return {n: rng.standard_normal(self.spec.shape_of(shapes[n], dims)) for n in self.wrt}

    def _reference(self, call, *args):
        """``call(self.reference, *args)``; an exception there is the reference's, never the
        function's (``ReferenceFailed``)."""
        try:
            return call(self.reference, *args)
        except Exception as exc:
            raise ReferenceFailed(self.fw.name, exc) from exc

    def _values(self, what: str, case: Case, at: Case, runs: int) -> dict:
        inputs = draw_inputs(case)  # float64 draws; rounded to the dtype below
        fw, dtype = self.fw, at.dtype
        arrays = {n: (fw.rounded(a, dtype) if a.dtype.kind == "f" else a) for n, a in inputs.arrays.items()}
        dout = fw.rounded(inputs.dout, dtype)
        if what == checks.RERUN:
            return {"runs": [fw.value_and_grads(self.function, arrays, self.wrt, dout, dtype, self.params)[1]
                             for _ in range(runs)]}
        if what == checks.SECOND_ORDER:
            directions = {n: fw.rounded(v, dtype) for n, v in self._directions(case).items()}
            theirs = self._reference(fw.second_order, arrays, self.wrt, dout, directions, dtype, self.params)
            mine = fw.second_order(self.function, arrays, self.wrt, dout, directions, dtype, self.params)
            return {"mine": mine, "theirs": theirs}
        ref_out, ref_grads = self._reference(fw.value_and_grads, arrays, self.wrt, dout, dtype, self.params)
        true_out, true_grads = self._reference(fw.value_and_grads, arrays, self.wrt, dout, "float64", self.params)
        out, grads = fw.value_and_grads(self.function, arrays, self.wrt, dout, dtype, self.params)
        tensors = [(self.spec.output, "forward", out, ref_out, true_out)]
        tensors += [(f"d{n}", "gradient", grads[n], ref_grads[n], true_grads[n]) for n in self.wrt]
        return {"tensors": tensors}


class _Extra:
    """The framework-only checks of one declared function, planned (``ids``) and judged
    (``records``) here; the function's values come from ``measure`` (``Measures.measure``,
    in this process or in the candidate's worker), as data."""

    def __init__(self, framework: str, spec, has_reference: bool, measure, seeds, dtypes, nondet_tol, runs,
                 second_order, name="candidate"):
        """
        Args:
            framework: the framework's name ("torch", "jax").
            spec: the layer's ``OpSpec`` (the judge's: its cases and names).
            has_reference: whether the declaration has a reference to compare with.
            measure: ``measure(what, case, at, runs) -> dict`` (``Measures.measure``); it
                may raise where it runs elsewhere (a time limit, a worker that ended).
            seeds, dtypes, nondet_tol, runs, second_order: the checks asked for.
            name: the candidate's name in ids and pairs.
        """
        self.name = name
        self.framework, self.spec, self.measure = framework, spec, measure
        self.has_reference = has_reference
        self.dtypes, self.nondet_tol, self.runs = dtypes, nondet_tol, runs
        self.cases = matrix_cases("default", [spec.name], ["float64"], seeds, ["reverse"], catalog={spec.name: spec})
        self.second_order_note = self._second_order_support(second_order)
        self.ids = [case_id for case_id, _ in self._plan()]

    def describe(self) -> dict:
        """What the report records of these checks (``run.framework_checks``)."""
        return {"framework": self.framework, "dtypes": list(self.dtypes), "nondet_tol": self.nondet_tol,
                "runs": self.runs, "second_order": self.second_order_note}

    def _second_order_support(self, asked) -> dict:
        """Whether the double backward is checked, and why not where it is not."""
        if asked is False or not self.has_reference or not self.cases:
            why = "not asked" if asked is False else "no reference to compare with"
            return {"checked": False, "why": why}
        if asked is None:
            case = self.cases[0]
            try:
                why = self.measure(SUPPORT, case, case, self.runs)["why"]
            except (Exception, CaseTimeout) as exc:  # its process failed: the first-order checks say how
                why = f"finding out raised {type(exc).__name__}: {exc}"
            if why is not None:
                return {"checked": False, "why": why}
        return {"checked": True}

    def _plan(self) -> list:
        """(comparison id, (what, case at its dtype)) for each check."""
        planned = []
        for case in self.cases:
            for dtype in self.dtypes:
                if self.runs > 1:
                    at = replace(case, dtype=dtype, kind=checks.RERUN)
                    planned.append((f"{at.id}-{self.name}{checks.RERUN_SUFFIX}~{self.name}", (checks.RERUN, case, at)))
                if dtype in LOW_PRECISION:
                    at = replace(case, dtype=dtype, kind=checks.LOW_PRECISION)
                    planned.append((f"{at.id}-{self.name}~{self.framework}", (checks.LOW_PRECISION, case, at)))
                elif self.second_order_note["checked"]:
                    at = replace(case, dtype=dtype, kind=checks.SECOND_ORDER)
                    planned.append((f"{at.id}-{self.name}~{self.framework}", (checks.SECOND_ORDER, case, at)))
        return planned

    def records(self, only: str | None = None, reproduce=None) -> list:
        """The records of the planned checks (of the one with id ``only``).

        Args:
            only: a comparison id, or None for all.
            reproduce: ``reproduce(id, case) -> str``, the call quoted in messages (default:
                ``check_layer(..., only=id)``).
        """
        made = []
        for case_id, (what, case, at) in self._plan():
            if only is not None and case_id != only:
                continue
            again = reproduce(case_id, at) if reproduce is not None else f"check_layer(..., only={case_id!r})"
            try:
                values = self.measure(what, case, at, self.runs)
            except (Exception, CaseTimeout) as exc:  # its process failed (a time limit, it ended): the candidate's
                made.append(_error_record(at, case_id, None, type(exc).__name__, str(exc), again))
                continue
            if "raised" in values:  # the candidate (or reference) failed: an error record, and the rest goes on
                raised = values["raised"]
                made.append(_error_record(at, case_id, raised["impl"], raised["exception"], raised["message"], again))
            else:
                made.append(self._record(what, at, values, again))
        return made

    def _record(self, what: str, at: Case, values: dict, reproduce: str) -> dict:
        """The record judging ``values`` (``Measures.measure``'s) of check ``what``."""
        if what == checks.RERUN:
            return checks.rerun_record(at, self.name, values["runs"], self.nondet_tol, reproduce)
        if what == checks.SECOND_ORDER:
            return checks.second_order_record(at, self.name, self.framework, values["mine"], values["theirs"],
                                              reproduce)
        return checks.low_precision_record(at, self.name, self.framework, values["tensors"], reproduce)


class ReferenceFailed(Exception):
    """The reference raised in a check of its own: the error is the reference's."""

    def __init__(self, impl: str, exc: Exception):
        super().__init__(f"{type(exc).__name__}: {exc}")
        self.impl, self.exception = impl, exc


def _error_record(case: Case, case_id: str, impl: str | None, exception: str, message: str, reproduce: str) -> dict:
    """The error record of a check where ``impl`` (the reference's name; None: the
    candidate) raised ``exception`` (its type's name) saying ``message``."""
    from gradmatrix.reports.compare import ERROR, base_record, with_reproduce

    pair = case_id[len(case.id) + 1:].split("~")
    if impl is not None:  # the reference raised: blame it, not the candidate
        what = f"the reference {impl} failed"
    else:
        impl = pair[0].split(".")[0]
        what = f"{pair[0]} failed"
    record = base_record(case, tuple(pair), ERROR, with_reproduce(f"{what}: {exception}: {message}", reproduce))
    record.update(kind=case.kind, reproduce=reproduce, error={"impl": impl, "exception": exception, "said": message})
    return record


def framework_functions(module, catalog) -> dict:
    """The framework functions ``module`` declares (``@gradmatrix.layer(...,
    framework=...)``), found where the module was imported (the candidate's worker, or the
    caller's process for a module object).

    Args:
        module: the candidate module.
        catalog: the candidate's catalog, holding each declared layer's spec.

    Returns:
        name -> (what the judge plans from, as data: {"framework": its name, "reference":
        whether it has one, "checks": ``check_options``'s dict}; its ``Measures``).
    """
    from gradmatrix.oracles.declared import declarations_in

    found = {}
    for declaration in declarations_in(module):
        framework = getattr(declaration, "framework", None)
        if framework is None or declaration.name not in catalog:
            continue
        fw, function, reference = framework
        data = {"framework": fw.name, "reference": reference is not None, "checks": declaration.framework_checks}
        found[declaration.name] = (data, Measures(fw, function, reference, catalog[declaration.name],
                                                  declaration.params, declaration.wrt))
    return found


def _declared(candidate) -> dict:
    """name -> (its data, its ``measure``) of each framework function ``candidate`` declares."""
    if hasattr(candidate, "measure_framework"):  # isolated: data here, the user's code in its worker
        return {name: (data, candidate.measure_framework) for name, data in candidate.framework_functions.items()}
    source = getattr(candidate, "source", None)
    return {} if source is None else {name: (data, measures.measure)
                                      for name, (data, measures) in framework_functions(source, candidate.catalog).items()}


def declared_dtypes(candidate) -> dict:
    """op -> the dtypes it declares (None: any) of each framework function ``candidate``
    declares: the matrix checks it at those only, and never at float16 or bfloat16, where
    its own low-precision check judges it (``declared_checks``)."""
    return {name: data["checks"]["dtypes"] or None for name, (data, _) in _declared(candidate).items()}


def declared_checks(candidate, ops=None, dtypes=None, seeds=None, modes=None) -> list:
    """The framework functions a candidate module declares (``@gradmatrix.layer(...,
    framework=...)``), each with its own checks planned as ``gradmatrix check`` runs them
    beside the matrix, at the declaration's ``dtypes`` (the command's ``--dtypes`` choose
    among them), else at the command's: at float64 / float32, rerun and second order; at
    float16 / bfloat16, low precision and rerun.  ``_Extra.dtypes`` are the dtypes the
    layer is checked at (the matrix's cases of other dtypes are not its).

    Args:
        candidate: an ``oracles.candidate.Candidate`` (the module in this process: its
            ``Measures`` run here) or a ``gradmatrix.isolation.IsolatedCandidate`` (its
            ``framework_functions`` as data; the values are measured in its worker,
            ``measure_framework``, and judged here).
        ops, dtypes, seeds, modes: the command's selection (None: its default); the checks
            are part of reverse mode, so ``modes`` without "reverse" plans none.

    Returns:
        A list of ``_Extra``, each with ``ids`` and ``records(only, reproduce)``.

    Raises:
        DeclarationError: a low-precision dtype asked for a function without a reference.
    """
    if modes and "reverse" not in modes:
        return []
    found = []
    for name, (data, measure) in _declared(candidate).items():
        if name not in candidate.ops or (ops and name not in ops):
            continue
        asked = data["checks"]
        wanted = asked["dtypes"] or list(dtypes or DTYPES)
        wanted = [d for d in wanted if not dtypes or d in dtypes]
        if not wanted:
            continue
        _needs_reference(name, [d for d in wanted if d in LOW_PRECISION], None, data["reference"])
        found.append(_Extra(data["framework"], candidate.catalog[name], data["reference"], measure, seeds, wanted,
                            asked["nondet_tol"], asked["runs"], asked["second_order"], name=candidate.name))
    return found


__all__ = ["Measures", "check", "check_options", "declared_checks", "framework_declaration", "framework_functions",
           "Integers"]
