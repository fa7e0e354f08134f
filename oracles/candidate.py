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
        package = _import_context(path)
        name = f"{package}.{path.stem}" if package else f"{_FILE_PREFIX}{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise ImportError(f"importing {target} raised {type(exc).__name__}: {exc}{import_hint(exc)}") from exc
        return module
    try:
        return importlib.import_module(target)
    except ImportError:
        raise
    except Exception as exc:
        raise ImportError(f"importing {target} raised {type(exc).__name__}: {exc}") from exc


def _import_context(path: Path) -> str | None:
    """Make a file's imports work as they do in the course's tree, and name its package.

    The file's directory goes on ``sys.path`` (``from layers import *``, a sibling module);
    where the directory is a package (it holds ``__init__.py``, as the course's ``cs231n/``
    and ``cs231n/classifiers/`` do), the folder above the outermost package goes on the path
    too (``from cs231n.layers import *``) and the package is returned, so that the file is
    loaded as ``cs231n.layer_utils`` and ``from .layers import *`` resolves.  A package of
    the same name imported before from another folder is forgotten first.
    """
    folder = path.resolve().parent
    parts, root = [], folder
    while (root / "__init__.py").is_file():
        parts.insert(0, root.name)
        root = root.parent
    for entry in (str(folder), str(root)) if parts else (str(folder),):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    if not parts:
        return None
    top = sys.modules.get(parts[0])
    if top is not None and Path(getattr(top, "__file__", "") or "").resolve().parent != root / parts[0]:
        for loaded in [m for m in sys.modules if m == parts[0] or m.startswith(parts[0] + ".")]:
            del sys.modules[loaded]
    package = ".".join(parts)
    importlib.import_module(package)
    return package


def import_hint(exc: BaseException) -> str:
    """A hint for the import problems the course's files meet, or "" (``"; hint: ..."``)."""
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "past":
        return ("; hint: 'past' (past.builtins, used by the course's older files) comes with the "
                "'future' package: pip install future")
    if isinstance(exc, ImportError) and "relative import" in str(exc):
        return ("; hint: a relative import (from .layers import *) needs the file's folder to be a package: "
                "keep the course's __init__.py beside it")
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return (f"; hint: {exc.name!r} is neither installed nor a sibling of the file; check the file sits in "
                f"its assignment's folder (the folder above cs231n/ is put on the path)")
    return ""


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
                  if (score := signature_score(c, lambda fn: getattr(module, fn))) is not None
                  and _defines_any(module, c.functions)]
        if scored:
            found[name] = max(scored, key=lambda t: (t[0], -t[1]))[2]
    return found


def defined_here(module: ModuleType, name: str) -> bool:
    """Whether ``module`` itself defines ``name`` (a plain module: not one it imported)."""
    value = getattr(module, name, None)
    return getattr(value, "__module__", module.__name__) == module.__name__


def _defines_any(module: ModuleType, functions) -> bool:
    """Whether a plain module defines at least one of an op's functions: what ``from .layers
    import *`` brings into ``layer_utils.py`` is layers.py's to answer for (a mutant that
    imports one half of a pair and writes the other is still checked; ``manual``, a
    package, re-exports its own)."""
    return hasattr(module, "__path__") or any(defined_here(module, f) for f in functions)


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
