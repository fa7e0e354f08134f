"""Candidates: any module that provides some of ``manual``'s functions, ``manual`` first.

A candidate is checked exactly as ``manual`` is: for each op in the catalog whose contract
functions the module defines, the op's ``call_candidate`` runs it on fresh copies of the
case's inputs.  A candidate that writes into its inputs or the upstream gradient is caught
here (the copies are compared with the originals afterwards), and it cannot corrupt what
other implementations see.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

import numpy as np

from gradmatrix.oracles.cases import CaseInputs
from gradmatrix.oracles.catalog import CATALOG
from gradmatrix.oracles.result import CandidateFault, Result


_FILE_PREFIX = "gradmatrix_candidate_"  # module names given to candidates loaded from files


def load_module(target: str) -> ModuleType:
    """Import a candidate from a dotted module name or a path to a ``.py`` file.

    Raises:
        ImportError: the module cannot be found or raised while importing.
    """
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.is_file():
            raise ImportError(f"no such file: {target}")
        name = f"{_FILE_PREFIX}{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise ImportError(f"importing {target} raised {type(exc).__name__}: {exc}") from exc
        return module
    try:
        return importlib.import_module(target)
    except ImportError:
        raise
    except Exception as exc:
        raise ImportError(f"importing {target} raised {type(exc).__name__}: {exc}") from exc


def display_name(module: ModuleType) -> str:
    """The name a candidate goes by in ids and reports: its module name, ``manual`` for
    gradmatrix's own, a file's stem for a candidate loaded from a file."""
    if module.__name__ == "gradmatrix.manual":
        return "manual"
    return module.__name__.removeprefix(_FILE_PREFIX)


def provided_ops(module: ModuleType) -> list[str]:
    """The catalog ops whose contract functions ``module`` defines, in catalog order."""
    return [name for name, spec in CATALOG.items() if all(callable(getattr(module, fn, None)) for fn in spec.contract)]


class Candidate:
    """An implementation backed by a module following the ``manual`` contract."""

    def __init__(self, module: ModuleType, name: str | None = None):
        self.module = module
        self.name = name or display_name(module)
        self.ops = provided_ops(module)

    def available(self) -> None:
        """A loaded module is always available; ops it lacks are filtered by ``ops``."""

    def evaluate(self, inputs: CaseInputs) -> Result:
        """Run the candidate on private copies of the inputs.

        Raises:
            CandidateFault: the candidate raised, returned the wrong structure, or wrote into
                an input or the upstream gradient.
        """
        case = inputs.case
        spec = case.spec
        mine = inputs.copy()
        calls = _Recorder(self.module)
        try:
            forward, grads = spec.call_candidate(calls, mine.arrays, mine.dout, case.dim_map)
        except Exception as exc:
            raise _fault(exc, spec.contract, calls) from exc
        written = [k for k, v in inputs.arrays.items() if not np.array_equal(v, mine.arrays[k])]
        if inputs.dout is not None and not np.array_equal(inputs.dout, mine.dout):
            written.append("dout")
        if written:
            raise CandidateFault(f"{' / '.join(spec.contract)} wrote into its argument(s) {', '.join(written)}")
        if not isinstance(grads, dict):
            raise CandidateFault(f"{spec.contract[-1]} returned {type(grads).__name__}, expected gradients")
        try:
            return Result(self.name, np.asarray(forward), {k: np.asarray(v) for k, v in grads.items()})
        except Exception as exc:
            raise CandidateFault(f"{spec.contract[-1]} returned values that are not arrays: {exc}") from exc


class _Recorder:
    """The candidate module as the op's adapter sees it: each function it calls is noted with
    what it returned, so that a result the adapter cannot unpack is blamed on the function
    that returned it (``relu_forward must return (out, cache)``), not on the harness; a list
    returned where the contract has a tuple is passed on as the tuple."""

    def __init__(self, module: ModuleType):
        self._module = module
        self.last: tuple | None = None  # (function name, what it returned)

    def __getattr__(self, name: str):
        value = getattr(self._module, name)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            returned = value(*args, **kwargs)
            self.last = (name, returned)
            # the contract's tuples are read by position: a list of the same length is as good
            return tuple(returned) if isinstance(returned, list) else returned

        return call


_HARNESS = Path(__file__).resolve().parent  # the adapters live here; frames here are not the candidate's


def _describe_value(value) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return "None" if value is None else f"a {type(value).__name__}"


def _user_frames(exc: BaseException) -> list:
    """The frames of the traceback in the candidate's own code (not the harness's, not a library's)."""
    frames = traceback.extract_tb(exc.__traceback__)
    library = ("site-packages", "dist-packages", f"{Path(traceback.__file__).parent}")
    return [f for f in frames if not Path(f.filename).resolve().is_relative_to(_HARNESS)
            and not any(part in f.filename for part in library)]


def _fault(exc: Exception, contract: tuple, calls: _Recorder) -> CandidateFault:
    """A CandidateFault for an exception while running the candidate: which of its functions
    raised, where in its code, or which returned a result of the wrong structure."""
    mine = _user_frames(exc)
    unpacking = isinstance(exc, (ValueError, TypeError)) and ("unpack" in str(exc) or "iterable" in str(exc))
    if not mine and unpacking and calls.last is not None:
        name, returned = calls.last
        due = "(out, cache)" if name.endswith("_forward") else "its documented tuple"
        fault = CandidateFault(f"{name} must return {due}, got {_describe_value(returned)} ({exc})")
        fault.user_traceback = ""
        return fault
    if not mine and isinstance(exc, TypeError) and " must return " in str(exc):
        return CandidateFault(str(exc))  # the adapter's own account of a wrong structure
    if mine:
        entry = next((f.name for f in mine if f.name in contract), mine[0].name)
        last = mine[-1]
        where = f" at {Path(last.filename).name}:{last.lineno}" + (f" in {last.name}" if last.name != entry else "")
        fault = CandidateFault(f"{entry} raised {type(exc).__name__}: {exc} ({where.strip()})")
        fault.user_traceback = "".join(traceback.format_list(mine)) + f"{type(exc).__name__}: {exc}\n"
        return fault
    return CandidateFault(f"{' / '.join(contract)} raised {type(exc).__name__}: {exc}")
