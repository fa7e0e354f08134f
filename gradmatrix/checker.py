"""Check your own implementation against every oracle, from Python.

A candidate is any module providing some of ``manual``'s functions with the same names and
signatures; it goes through exactly the path ``manual`` does.  Inside your own test suite::

    import gradmatrix

    def test_my_layers():
        gradmatrix.check("my_layers.py", ops=["affine"]).raise_for_failures()

``raise_for_failures`` raises an ``AssertionError`` with what the console prints: the
findings grouped by mistake, each with the function at fault, its likely cause, its worst
element and the command that reproduces it, and a verdict line per op.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from types import ModuleType

from gradmatrix.engine import Request, Session
from gradmatrix.oracles import devices
from gradmatrix.oracles.cases import MODES, count_option, names_option
from gradmatrix.oracles.catalog import BATCH_SIZES, DTYPES
from gradmatrix.oracles.framework import LOW_PRECISION
from gradmatrix.oracles.implementations import ORACLES
from gradmatrix.oracles.result import DEFAULT_CASE_TIMEOUT
from gradmatrix.reports import document as documents
from gradmatrix.reports import console, html
from gradmatrix.reports.compare import DISAGREE, ERROR
from gradmatrix.reports.per_op import per_op as per_op_verdicts
from gradmatrix.reports.tolerances import VACUOUS_FRACTION

REPR_LINES = 15  # repr(result) in a REPL or notebook
MAX_FAILURE_LINES = 30  # the AssertionError of raise_for_failures


@dataclass(repr=False)
class CheckResult:
    """The outcome of checking a candidate: the agreement document and helpers to read it."""

    document: dict

    @property
    def passed(self) -> bool:
        return self.document["summary"]["passed"]

    @property
    def status(self) -> int:
        """0 all agree, 1 something disagrees, 2 the candidate could not be checked."""
        return documents.check_status(self.document)

    @property
    def failures(self) -> list:
        return [r for r in self.document["comparisons"] if r["verdict"] in (DISAGREE, ERROR)]

    def per_op(self) -> dict:
        """op -> {"verdict": ..., "comparisons": n, "failures": n, "agreeing": n (the candidate's
        own comparisons), "references_failing": n (the references' among themselves), "worst":
        record or None, "notes": [...], "line": the op's verdict line}.

        The verdict is "agree", "disagree" or "error" by the op's records; "not run" when
        none of its comparisons ran, "skipped" when the candidate was compared with nothing
        (every comparison it is in skipped), "incomplete" when what ran agrees but the run
        as a whole is incomplete or has problems (``summary.problems``): never "agree" for 0/0.
        ``worst`` is the comparison using the largest share of its allowance (errors and the
        candidate's plain gradients first, as the console's first finding); its ``message``
        is never empty, for a passing op too.
        """
        return per_op_verdicts(self.document)

    def wrong_tensors(self, op: str) -> list[str]:
        """The tensors of ``op`` (its output, ``dx``, ...) that disagree in some comparison,
        in the order they first fail."""
        wrong: list[str] = []
        for record in self.document["comparisons"]:
            if record["op"] == op and record["verdict"] in (DISAGREE, ERROR):
                wrong += [e["tensor"] for e in record.get("tensors", ()) if not e.get("agree", True)
                          and e["tensor"] not in wrong]
        return wrong

    def lines(self, limit: int | None = None) -> list[str]:
        """What the console prints for this result (``reports.console.render``, the ops that
        pass on one line), cut to ``limit`` lines with a last line saying how many more."""
        lines = console.render(self.document, compact=True)
        if limit is not None and len(lines) > limit:
            lines = lines[: limit - 1] + [f"... {len(lines) - limit + 1} more lines: print(result) shows them all"]
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        """At most ``REPR_LINES`` lines: the verdict, the first findings, a line per op."""
        return "\n".join([f"<CheckResult of {self.document['run'].get('candidate')}: status {self.status}>"]
                         + self.lines(REPR_LINES - 1))

    def _repr_html_(self) -> str:
        """A notebook's view: the HTML report's verdict, findings and verdict per op."""
        return html.summary(self.document)

    def raise_for_failures(self, limit: int = MAX_FAILURE_LINES) -> "CheckResult":
        """Raise an ``AssertionError`` with what the console prints (grouped findings, the
        function at fault, the likely cause, a line per op), at most ``limit`` lines; else
        return self.  In a pytest test the failure shows this text, not gradmatrix's frames."""
        __tracebackhide__ = True
        if self.passed:
            return self
        raise AssertionError("\n".join(self.lines(limit)))


# --- the options of check and check_layer, validated where they enter: a wrong type or
# value is a TypeError or ValueError naming the option, before anything is imported or run


def option_choice(value, argument: str, choices) -> str:
    """A one-name option (matrix, device, matmul_precision) among ``choices``.

    Raises:
        TypeError: not a str.
        ValueError: not one of ``choices``.
    """
    if not isinstance(value, str):
        raise TypeError(f"{argument} must be a str, one of {list(choices)}, got {type(value).__name__} {value!r}")
    if value not in choices:
        raise ValueError(f"{argument}: unknown {value!r}; choose from {list(choices)}")
    return value


def option_flag(value, argument: str) -> bool:
    """A True/False option (strict_kinks); a string such as "no" would be true.

    Raises:
        TypeError: not a bool.
    """
    if not isinstance(value, bool):
        raise TypeError(f"{argument} must be True or False, got {type(value).__name__} {value!r}")
    return value


def option_seconds(value, argument: str) -> float:
    """A time limit in seconds (case_timeout): a finite number >= 0, 0 for no limit.

    Raises:
        TypeError: not a real number (a bool, a string).
        ValueError: negative, NaN or infinite (no limit is 0).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argument} must be a number of seconds, got {type(value).__name__} {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{argument} must be a finite number of seconds >= 0 (0: no limit), got {value!r}")
    return seconds


OVERRIDE_DTYPES = DTYPES  # the dtypes the table has entries for (float16 and bfloat16 are judged otherwise)


def _bound(value, argument: str) -> float | dict | None:
    """One bound of an override: None, a finite number >= 0, or a dict by dtype name."""
    if value is None:
        return None
    if isinstance(value, dict):
        unknown = [k for k in value if k not in OVERRIDE_DTYPES]
        if unknown:
            raise ValueError(f"{argument}: unknown dtype(s) {unknown}; an override names {list(OVERRIDE_DTYPES)} "
                             f"(float16 and bfloat16 are judged by the frameworks' own error)")
        return {k: _bound(v, f"{argument}[{k!r}]") for k, v in value.items()}
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argument} must be a number or a dict by dtype such as {{'float32': 1e-4}}, "
                        f"got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{argument} must be a finite number >= 0, got {value!r}")
    return float(value)


def tolerance_override(rtol=None, atol=None, reason=None, scope: str = "call") -> dict | None:
    """A tolerance override as data, ``{"rtol", "atol", "reason", "scope"}``, or None when
    neither bound is given.  Merged into the table's tolerance by the larger bound
    (``reports.tolerances.tolerance_for``) and recorded with its reason in every record it
    loosens and in the run section.

    Args:
        rtol: relative to the tensor's largest element, as the table's: a number for every
            dtype, or ``{"float32": 1e-3}`` for some; below ``VACUOUS_FRACTION`` (0.1).
        atol: an absolute allowance per element, the same forms.
        reason: why the table's tolerance does not fit, required with either bound.
        scope: "call" (``check``, ``check_layer``, the command) or "layer"
            (``@gradmatrix.layer``).

    Raises:
        TypeError: a bound that is not a number or a dict, a reason that is not a str.
        ValueError: a negative, infinite or vacuous bound (rtol >= 0.1 would pass an all-zeros
            gradient), an unknown dtype, a bound without a reason or a reason without a bound.
    """
    rtol, atol = _bound(rtol, "rtol"), _bound(atol, "atol")
    if rtol is None and atol is None:
        if reason is not None:
            raise ValueError("reason is given without rtol or atol: it explains an override")
        return None
    if reason is None or not isinstance(reason, str) or not reason.strip():
        raise TypeError(f"reason must be given with rtol or atol (a str saying why the table's tolerance does not "
                        f"fit, shown in the report), got {reason!r}")
    for value in (rtol.values() if isinstance(rtol, dict) else [rtol]):
        if value is not None and value >= VACUOUS_FRACTION:
            raise ValueError(f"rtol {value:g} allows {VACUOUS_FRACTION:.0%} or more of a gradient's largest element: "
                             f"it cannot tell a wrong gradient (an all-zeros one is off by 100%) from rounding; "
                             f"give rtol below {VACUOUS_FRACTION:g}")
    return {"rtol": rtol, "atol": atol, "reason": reason.strip(), "scope": scope}


def _module_argument(module) -> ModuleType | str:
    """A module object, or a dotted name or path (str or ``os.PathLike``) as a str.

    Raises:
        TypeError: anything else.
    """
    if isinstance(module, ModuleType):
        return module
    if isinstance(module, os.PathLike):
        module = os.fspath(module)
    if not isinstance(module, str) or not module:
        raise TypeError(f"module must be a module, a dotted module name or a path to a .py file, "
                        f"got {type(module).__name__} {module!r}")
    return module


def check(module: ModuleType | str, ops=None, *, matrix: str = "default", dtypes=None, seeds=None,
          oracles=ORACLES, strict_kinks: bool = False, strict: bool = False, progress=None, modes=None,
          device: str = "cpu",
          matmul_precision: str = "default", case_timeout: float = DEFAULT_CASE_TIMEOUT,
          workers: int = 0, rtol=None, atol=None, reason: str | None = None) -> CheckResult:
    """Check a candidate module against the oracles across the matrix.

    Args:
        module: the candidate, a module object, a dotted module name or a ``.py`` path
            (a str or a ``pathlib.Path``).
        ops: ops to check (default: every op of the catalog the module provides).
        matrix, dtypes, seeds: as for ``gradmatrix run`` ("float16" and "bfloat16" are
            low-precision cases, judged by the frameworks' own error at that dtype).
        oracles: oracles to compare with (default, or None: torch, jax, numeric).
        A list option (ops, dtypes, oracles, modes) takes one name as a str too
        (``ops="relu"``); a name given twice counts once.
        strict_kinks: fail on differences at kinks instead of reporting the convention.
        strict: fail on warnings too (``reports.severity``: a promoted dtype, a shape
            differing by size-1 axes, a write into an argument, an overflow at extreme
            inputs), which by default are shown and pass.
        modes: checks, of "reverse", "jvp", "hvp" (default: all).  In "jvp" the module's
            gradients meet forward mode; in "hvp" central differences of its gradient are
            the reference the frameworks' Hessian-vector products are compared with.
        progress: optional callable ``(done, total, failures)`` called after each comparison.
        device: where the torch and JAX oracles compute: "cpu", "cuda" or "auto".
        matmul_precision: "default", "high" or "highest" for torch and JAX float32 matmuls.
        workers: worker processes to split the matrix among (0: run it in this process);
            each takes whole shapes, so JAX compiles each function once.
        case_timeout: seconds one implementation may take on one case before the
            comparison is an error (0: no limit; enforced in the main thread only).
        rtol, atol, reason: a tolerance override for this call (``tolerance_override``): a
            number, or a dict by dtype (``{"float32": 1e-3}``), with the reason required;
            merged with the table by the larger bound and recorded with its reason.

    Returns:
        A CheckResult; its ``document`` is what ``agreement.json`` would hold.

    Raises:
        TypeError: an argument of the wrong type, naming it (before the module is imported).
        ValueError: an argument's value out of range or unknown, naming it (before the
            module is imported); the module provides no op of the catalog, or an op asked
            for is not provided. The module providing nothing to check is
            ``gradmatrix.engine.NothingToCheck`` (a ``ValueError``), whose message names the
            starter's stubs when those are all it provides.
        ImportError: the module cannot be imported.
        oracles.devices.DeviceUnavailable: ``device="cuda"`` and torch sees no GPU.
    """
    module = _module_argument(module)
    ops = names_option(ops, "ops", None, "op")
    option_choice(matrix, "matrix", BATCH_SIZES)
    dtypes = names_option(dtypes, "dtypes", (*DTYPES, *LOW_PRECISION), "dtype")
    seeds = None if seeds is None else count_option(seeds, "seeds")
    oracles = names_option(oracles, "oracles", ORACLES, "oracle") or list(ORACLES)
    strict_kinks = option_flag(strict_kinks, "strict_kinks")
    strict = option_flag(strict, "strict")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a function (done, total, failures) or None, got {type(progress).__name__}")
    modes = names_option(modes, "modes", MODES, "mode")
    option_choice(device, "device", devices.DEVICES)
    option_choice(matmul_precision, "matmul_precision", devices.PRECISIONS)
    case_timeout = option_seconds(case_timeout, "case_timeout")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise TypeError(f"workers must be an int >= 0, got {type(workers).__name__} {workers!r}")
    tolerance = tolerance_override(rtol, atol, reason)
    request = Request(target=module if isinstance(module, str) else getattr(module, "__name__", "module"),
                      matrix=matrix, ops=tuple(ops) if ops else None, dtypes=tuple(dtypes) if dtypes else None,
                      seeds=seeds, oracles=tuple(oracles), modes=tuple(modes) if modes else None,
                      strict_kinks=strict_kinks, strict=strict, device=device, matmul_precision=matmul_precision,
                      case_timeout=case_timeout, workers=workers, tolerance=tolerance)
    return CheckResult(Session(request, module=None if isinstance(module, str) else module).run(progress))
