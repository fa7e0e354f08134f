"""Candidates: any module that provides some of ``manual``'s functions, ``manual`` first.

A candidate is checked exactly as ``manual`` is: for each op in the catalog whose contract
functions the module defines (``oracles.contract``), the op's contract runs it on fresh copies of the
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
from gradmatrix.oracles.contract import ContractError, signature_score
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


def contracts_of(module: ModuleType) -> dict:
    """op -> the contract ``module`` follows for it, for the catalog ops whose functions it
    defines with a fitting signature (the best-fitting contract where an op has several),
    in catalog order."""
    found = {}
    for name, spec in CATALOG.items():
        scored = [(score, i, c) for i, c in enumerate(spec.contracts)
                  if (score := signature_score(c, lambda fn: getattr(module, fn))) is not None]
        if scored:
            found[name] = max(scored, key=lambda t: (t[0], -t[1]))[2]
    return found


def provided_ops(module: ModuleType) -> list[str]:
    """The catalog ops ``module`` provides, in catalog order."""
    return list(contracts_of(module))


class Candidate:
    """An implementation backed by a module following the ``manual`` contract."""

    def __init__(self, module: ModuleType, name: str | None = None):
        self.module = module
        self.name = name or display_name(module)
        self.contracts = contracts_of(module)
        self.ops = list(self.contracts)

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
        contract = self.contracts[spec.name]
        try:
            forward, grads, *notes = contract.call(lambda fn: getattr(self.module, fn), mine.arrays, mine.dout,
                                                   case.dim_map)
        except ContractError as exc:
            raise CandidateFault(str(exc)) from exc
        except Exception as exc:
            raise CandidateFault(f"{' / '.join(contract.functions)} raised {type(exc).__name__}: {exc}") from exc
        written = [k for k, v in inputs.arrays.items() if not np.array_equal(v, mine.arrays[k])]
        if inputs.dout is not None and not np.array_equal(inputs.dout, mine.dout):
            written.append("dout")
        if written:
            raise CandidateFault(f"{' / '.join(contract.functions)} wrote into its argument(s) {', '.join(written)}")
        try:
            return Result(self.name, np.asarray(forward), {k: np.asarray(v) for k, v in grads.items()},
                          notes=list(notes[0]) if notes else [])
        except Exception as exc:
            raise CandidateFault(f"{contract.functions[-1]} returned values that are not arrays: {exc}") from exc
