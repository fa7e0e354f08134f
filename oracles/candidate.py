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
        try:
            forward, grads = spec.call_candidate(self.module, mine.arrays, mine.dout, case.dim_map)
        except Exception as exc:
            raise CandidateFault(f"{' / '.join(spec.contract)} raised {type(exc).__name__}: {exc}") from exc
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
