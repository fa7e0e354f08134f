"""Candidates: any module that provides some of ``manual``'s functions, ``manual`` first.

A candidate is checked exactly as ``manual`` is: for each op in the catalog whose contract
functions the module defines (``oracles.contract``), and for each layer the module declares
itself (``oracles.declared``: ``@gradmatrix.layer``), the op's contract runs it on fresh
copies of the case's inputs.  A candidate that writes into its inputs or the upstream gradient is caught
here (the copies are compared with the originals afterwards), and it cannot corrupt what
other implementations see.  What it returns is copied on receipt: a candidate may reuse a
module-level buffer across calls, or keep its ``out`` in the cache and work on it in backward.

Candidate names live in their own namespace: a module whose name is an oracle's (a file
``numeric.py``, ``torch.py`` or ``jax.py``) or looks like a derived implementation
(``x.fd``) goes by ``candidate:<name>``, so no candidate can stand in for an oracle.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import os
import site
import sys
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np

from gradmatrix.oracles.cases import CaseInputs, draw_inputs
from gradmatrix.oracles.catalog import CATALOG, join
from gradmatrix.oracles.contract import ContractError, Layer, signature_score
from gradmatrix.oracles.contracts import COURSE_SPECS
from gradmatrix.oracles.declared import declarations_in, specs_of
from gradmatrix.oracles.implementations import ORACLES
from gradmatrix.oracles.modes import SUFFIXES
from gradmatrix.oracles.result import WROTE_INTO_ARGUMENT, CandidateFault, Result
from gradmatrix.oracles import scripts


DECOY_SEED = 7919  # the decoy inputs of a case are those of seed + this (another draw, the same shapes)
_FILE_PREFIX = "gradmatrix_candidate_"  # module names given to candidates loaded from files
NAMESPACE = "candidate:"  # the prefix of a candidate name that would read as an oracle's


def _ended(target: str, exc: BaseException) -> ImportError:
    """The ImportError for a candidate that tried to end the process while importing."""
    return ImportError(f"importing {target} raised SystemExit({exc.code!r}) (it calls sys.exit or runs a test "
                       f"main such as unittest.main() at import; guard that with if __name__ == '__main__':)")


class _FromSource(importlib.machinery.SourceFileLoader):
    """A candidate's file, compiled from its source at every load. Python's cached bytecode
    stands for a source while its size and its modification time in whole seconds are
    unchanged, so a one-character fix saved within the second of the last check (``gradmatrix
    watch``) would be checked as it was before."""

    def get_code(self, fullname):
        return self.source_to_code(self.get_data(self.path), self.path)


class _FromSourceUnder(importlib.abc.MetaPathFinder):
    """Modules under the candidate's folders (a sibling it imports, its package) load from
    their source too, never from bytecode that any process cached for an earlier edit;
    installed packages load as usual."""

    def __init__(self, folders: list):
        installed = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages(), site.getusersitepackages()}
        self.folders = tuple(os.path.join(folder, "") for folder in folders)
        self.installed = tuple(os.path.join(os.path.realpath(p), "") for p in installed)

    def find_spec(self, name, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        origin = getattr(spec, "origin", None) or ""
        if (spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader
                or not os.path.realpath(origin).startswith(self.folders)
                or os.path.realpath(origin).startswith(self.installed)):
            return None
        spec.loader = _FromSource(name, origin)
        return spec


def compile_from_source(target: str) -> None:
    """In a candidate's worker, before ``load_module(target)``: what is imported from the
    candidate's folders is compiled from its source (``_FromSourceUnder``)."""
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target).resolve()
        folder = path.parent
        parts, root = _package_root(folder)
        sys.meta_path.insert(0, _FromSourceUnder([str(folder), str(root)] if parts else [str(folder)]))


def load_module(target: str) -> ModuleType:
    """Import a candidate from a dotted module name or a path to a ``.py`` file.

    Raises:
        ImportError: the module cannot be found or raised while importing.
    """
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.is_file():
            raise ImportError(f"no such file: {target}")
        script = _script(path)  # Python2Source (an ImportError) for a Python 2 file
        entries = _folders_on_path(path)
        try:
            package = _import_context(path)
            name = f"{package}.{path.stem}" if package else f"{_FILE_PREFIX}{path.stem}"
            spec = importlib.util.spec_from_file_location(name, path, loader=_FromSource(name, os.path.abspath(path)))
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                if script is None:
                    spec.loader.exec_module(module)
                else:  # a script: its definitions only (oracles.scripts), what was skipped on the module
                    tree, planned, source, skipped = script
                    setattr(module, scripts.SKIPPED, skipped)
                    scripts.execute(module, tree, planned, source, path, skipped)
            except SystemExit as exc:
                del sys.modules[name]
                raise _ended(target, exc) from None
            except Exception as exc:
                del sys.modules[name]
                raise ImportError(f"importing {target} raised {type(exc).__name__}: {exc}{import_hint(exc)}") from exc
            return module
        finally:
            # the candidate's folders stay importable (a sibling imported later, inside a
            # function), but behind every installed package: a student's jax.py or torch.py
            # must never stand in for the framework an oracle imports later in this process
            for entry in entries:
                while entry in sys.path:
                    sys.path.remove(entry)
                sys.path.append(entry)
    try:
        return importlib.import_module(target)
    except ImportError:
        raise
    except SystemExit as exc:
        raise _ended(target, exc) from None
    except Exception as exc:
        raise ImportError(f"importing {target} raised {type(exc).__name__}: {exc}") from exc


def _script(path: Path):
    """How to load the file at ``path``: None to import it as it is (a module: nothing at
    its top level but definitions and assignments that call nothing), or ``(tree, planned,
    source, skipped)`` for ``oracles.scripts.execute`` (``skipped`` holds the IPython magic
    lines blanked), where a statement that fails is skipped and said.

    Raises:
        oracles.scripts.Python2Source: a file written for Python 2.
    """
    source = importlib.util.decode_source(path.read_bytes())
    try:
        tree, skipped = scripts.parse(source, path)
    except scripts.Python2Source:
        raise
    except (SyntaxError, ValueError):  # the import reports it, as Python says it
        return None
    planned = scripts.plan(tree)
    kept = [statement for statement, action, _, _ in planned if action != scripts.SKIP]
    python2 = scripts.python2_names(tree, kept, path, source)
    if python2:
        raise scripts.Python2Source(python2)
    calls = [statement for statement, action, _, _ in planned if action == scripts.GUARD
             and any(isinstance(node, ast.Call) for node in ast.walk(statement))]
    if not skipped and not calls and all(action != scripts.SKIP for _, action, _, _ in planned):
        return None
    return tree, planned, source, skipped


def _package_root(folder: Path) -> tuple[list, Path]:
    """The packages a folder is inside (outermost first) and the folder above them."""
    parts, root = [], folder
    while (root / "__init__.py").is_file():
        parts.insert(0, root.name)
        root = root.parent
    return parts, root


def _folders_on_path(path: Path) -> list:
    """The folders ``_import_context`` puts at the front of ``sys.path`` for a file, that
    were not on it already."""
    folder = path.resolve().parent
    parts, root = _package_root(folder)
    return [e for e in dict.fromkeys((str(folder), str(root)) if parts else (str(folder),)) if e not in sys.path]


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
    parts, root = _package_root(folder)
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
    gradmatrix's own, a file's stem for a candidate loaded from a file; in the candidates'
    namespace (``candidate_name``)."""
    if module.__name__ == "gradmatrix.manual":
        return "manual"
    return candidate_name(module.__name__.removeprefix(_FILE_PREFIX))


def candidate_name(name: str) -> str:
    """``name``, or ``candidate:<name>`` where it could be taken for an oracle or for an
    implementation derived from one: an oracle's name (``numeric``), a name with a
    mode suffix (``torch.jvp``, ``x.fd``), or one holding the pair separator ``~``."""
    if name in ORACLES or name.endswith(SUFFIXES) or "~" in name or not name:
        return f"{NAMESPACE}{name.replace('~', '-')}"
    return name


def receive(value):
    """What a candidate function returned, its arrays copied: the top-level array, or the
    arrays directly inside a returned tuple, list or dict (``(out, cache)``, ``(dx, dw, db)``).
    A cache's own contents stay the candidate's business."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, tuple):
        return tuple(v.copy() if isinstance(v, np.ndarray) else v for v in value)
    if isinstance(value, list):
        return [v.copy() if isinstance(v, np.ndarray) else v for v in value]
    if isinstance(value, dict):
        return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in value.items()}
    return value


class _Receiving:
    """A candidate module seen through ``receive``: each function's result is copied as it
    returns, before the candidate runs again (its next call, or its backward)."""

    def __init__(self, module: ModuleType):
        self._module = module
        self.__name__ = module.__name__
        self.__doc__ = module.__doc__

    def __getattr__(self, name: str):
        value = getattr(self._module, name)
        if not callable(value) or isinstance(value, type):
            return value
        return _receiving(value)


def _receiving(function):
    """``function`` with its results copied as it returns (``receive``)."""
    @functools.wraps(function)
    def received(*args, **kwargs):
        return receive(function(*args, **kwargs))

    return received


def contracts_of(module: ModuleType) -> dict:
    """op -> the contract ``module`` follows for it, for the catalog ops whose functions it
    defines with a fitting signature (the best-fitting contract where an op has several),
    in catalog order, then the layers it declares (``oracles.declared``), in its order.

    Raises:
        oracles.declared.DeclarationError: a declared layer cannot be built.
    """
    found = {}
    for name, spec in CATALOG.items():
        scored = [(score, i, c) for i, c in enumerate(spec.contracts)
                  if (score := signature_score(c, lambda fn: getattr(module, fn))) is not None
                  and _defines_any(module, c.functions)]
        if scored:
            found[name] = max(scored, key=lambda t: (t[0], -t[1]))[2]
    courses = {name: spec.contracts[0] for name, spec in COURSE_SPECS.items()
               if signature_score(spec.contracts[0], lambda fn: getattr(module, fn)) is not None
               and _defines_any(module, spec.contracts[0].functions)}
    taken = {fn for contract in found.values() for fn in contract.functions}
    for name, contract in courses.items():
        if taken.intersection(contract.functions):
            continue  # a function a catalog op checks (CS231n's relu_backward) is that op's, not a course's
        # a name two courses use (``sigmoid``, ``relu_backward``): the contract that uses more of
        # the module's functions is the one it follows (deeplearning.ai's ``sigmoid(Z)`` comes
        # with ``sigmoid_backward(dA, cache)``, CS224n's alone)
        if not any(set(contract.functions) < set(other.functions) for other in courses.values()):
            found[name] = contract
    for name, (spec, _) in specs_of(module).items():
        found[name] = spec.contracts[0]
    return found


def defined_here(module: ModuleType, name: str) -> bool:
    """Whether ``module`` itself defines ``name`` (a function or class it did not import)."""
    value = getattr(module, name, None)
    return getattr(value, "__module__", module.__name__) == module.__name__


def _from_sibling(module: ModuleType, name: str) -> bool:
    """Whether ``module.name`` was imported from a module of the same folder (the course's
    ``from .layers import *`` in ``layer_utils.py``)."""
    origin = sys.modules.get(getattr(getattr(module, name, None), "__module__", None) or "")
    here, there = getattr(module, "__file__", None), getattr(origin, "__file__", None)
    return (origin is not module and here is not None and there is not None
            and Path(here).resolve().parent == Path(there).resolve().parent)


def _defines_any(module: ModuleType, functions) -> bool:
    """Whether an op is the module's own: not every one of its functions was imported from a
    sibling module (what ``from .layers import *`` brings into ``layer_utils.py`` is
    layers.py's to answer for; a package such as ``manual`` re-exports its own, and a module
    that imports half of a pair from an installed package and writes the other half, or
    re-exports gradmatrix's own, is still checked)."""
    return hasattr(module, "__path__") or not all(_from_sibling(module, f) for f in functions)


def provided_ops(module: ModuleType) -> list[str]:
    """The catalog ops ``module`` provides, in catalog order."""
    return list(contracts_of(module))


class Candidate:
    """An implementation backed by a module following the ``manual`` contract."""

    def __init__(self, module: ModuleType, name: str | None = None, on_probe=None, skip_probe=()):
        """
        Args:
            module: the candidate module.
            name: its name in ids and reports (default ``display_name``); kept in the
                candidates' namespace (``candidate_name``).
            on_probe: called with each op's name before its functions are probed for stubs
                (a worker process says so to the judge, which holds the time limit).
            skip_probe: ops not to probe (one whose probe ran past the time limit before).
        """
        self.source = module
        self.module = _Receiving(module)  # what the adapters call: results copied on receipt
        self.name = candidate_name(name) if name else display_name(module)
        self.contracts = contracts_of(module)
        declared = specs_of(module)
        # this run's catalog: the catalog's ops, the courses' it follows and the layers it declares
        self.catalog = join([COURSE_SPECS[op] for op in self.contracts if op in COURSE_SPECS],
                            [spec for spec, _ in declared.values()], base=CATALOG)
        # ops whose functions are unimplemented stubs (or need what the course's notebook
        # needs too, such as the compiled im2col extension): op -> reason; not checked.
        # A stub fails the module (``stubs``); a missing dependency only leaves the op unchecked
        self.unchecked = {}
        self.stubs = {}  # op -> its functions left as the starter's stub
        # a declared layer's functions by the names its contract calls them (a lambda has none
        # of its own; ``Function.apply`` goes by its class's name, which is not the function)
        self.functions = {name: functions for name, (_, functions) in declared.items()}
        for op, contract in self.contracts.items():
            if op in skip_probe:
                continue
            if on_probe is not None:
                on_probe(op)
            found = _stub_reason(functools.partial(self.function, op, module), op, contract, self.catalog)
            if found:
                self.unchecked[op], stubbed = found
                if stubbed:
                    self.stubs[op] = stubbed
        self.contracts = {op: c for op, c in self.contracts.items() if op not in self.unchecked}
        self.ops = list(self.contracts)
        # a script's top-level statements that were not run (oracles.scripts), as data
        self.skipped = list(getattr(module, scripts.SKIPPED, ()))

    def available(self) -> None:
        """A loaded module is always available; ops it lacks are filtered by ``ops``."""

    def function(self, op: str, module, name: str) -> Callable:
        """The function ``op``'s contract calls ``name``: a declared layer's own (a lambda,
        another module's function, a ``Function.apply`` going by its class's name), results
        copied on receipt, else ``module``'s attribute of that name (a layer declared by its
        functions' names, a catalog op)."""
        own = self.functions.get(op, {})
        return _receiving(own[name]) if name in own else getattr(module, name)

    def evaluate(self, inputs: CaseInputs) -> Result:
        """Run the candidate on private copies of the inputs.  A layer's backward is also run
        after a forward on other inputs (a decoy) and twice on one cache (``Result.repeats``);
        a write into an argument or the upstream gradient is a warning (``Result.warnings``).

        Raises:
            CandidateFault: the candidate raised, ended the process, or returned the wrong
                structure.
        """
        case = inputs.case
        spec = case.spec
        mine = inputs.copy()
        contract = self.contracts[spec.name]
        writes: list = []  # (function, parameter, the array written), as the watched functions see them
        lookup = lambda fn: _watching(self.function(spec.name, self.module, fn), fn, writes)  # noqa: E731
        notes: list = []  # conventions the contract recognised (an L2 factor), for the report
        order = {}
        if isinstance(contract, Layer) and case.kind in ("random", "kink"):
            # forward on a decoy between the forward and the backward judged, and backward twice
            # (``Layer.call``): a backward reading state outside its cache shows
            order = dict(decoy=draw_inputs(replace(case, seed=case.seed + DECOY_SEED)).arrays, repeats={})
        try:
            forward, grads = contract.call(lookup, mine.arrays, mine.dout, case.dim_map, notes=notes, **order)
        except ContractError as exc:  # a wrong return structure, named by the contract
            raise CandidateFault(str(exc)) from exc
        except SystemExit as exc:  # sys.exit, or a test main run from inside a function
            raise CandidateFault(f"{' / '.join(contract.functions)} raised SystemExit({exc.code!r}): a candidate "
                                 f"must return, not end the process") from exc
        except Exception as exc:
            raise _fault(exc, contract.functions) from exc
        warnings = _write_warnings(self.name, contract, writes, inputs, mine)
        try:  # copied again: a contract may return what the candidate returned inside a structure
            result = Result(self.name, np.array(forward), {k: np.array(v) for k, v in grads.items()}, notes=notes,
                            warnings=warnings, repeats=order.get("repeats", {}))
        except Exception as exc:
            raise CandidateFault(f"{contract.functions[-1]} returned values that are not arrays: {exc}") from exc
        recover = getattr(contract, "recover", None)
        if recover is not None:
            try:
                result.drawn, recovered = recover(result.forward, inputs.arrays, case.dim_map)
                result.notes = notes + list(recovered)
            except ContractError as exc:
                raise CandidateFault(str(exc)) from exc
        return result


def _unchanged(before: np.ndarray, after: np.ndarray) -> bool:
    try:
        return bool(np.array_equal(before, after, equal_nan=before.dtype.kind in "fc"))
    except TypeError:  # an object array
        return bool(np.array_equal(before, after))


def _watching(function, name: str, writes: list):
    """``function`` noting each array argument it writes into, by its own parameter name:
    ``(name, parameter, the array)`` appended to ``writes`` (``dout[x <= 0] = 0`` in
    ``relu_backward`` is a write into its parameter ``dout``)."""
    if not callable(function) or isinstance(function, type):
        return function

    @functools.wraps(function)
    def watched(*args, **kwargs):
        before = [(i, a, a.copy()) for i, a in enumerate(args) if isinstance(a, np.ndarray)]
        before += [(k, a, a.copy()) for k, a in kwargs.items() if isinstance(a, np.ndarray)]
        value = function(*args, **kwargs)
        for where, array, copy in before:
            if not _unchanged(copy, array):
                writes.append((name, _parameter_name(function, args, kwargs, where), array))
        return value

    return watched


def _parameter_name(function, args: tuple, kwargs: dict, where) -> str:
    """The name ``function`` gives its argument at position or keyword ``where``."""
    if isinstance(where, str):
        return where
    try:
        names = list(inspect.signature(function).bind(*args, **kwargs).arguments)
        return names[where]
    except (TypeError, ValueError, IndexError):  # no signature, or *args
        return f"argument {where + 1}"


def _write_warnings(impl: str, contract, writes: list, inputs: CaseInputs, mine: CaseInputs) -> list:
    """The writes a candidate made, as warnings (``reports.severity``): each function and
    parameter written once, then the inputs changed some other way (through the cache
    ``backward`` received)."""
    warnings, seen = [], set()
    for function, parameter, _ in writes:
        if (function, parameter) not in seen:
            seen.add((function, parameter))
            warnings.append({"kind": WROTE_INTO_ARGUMENT, "impl": impl, "function": function, "parameter": parameter})
    changed = [(k, v, mine.arrays[k]) for k, v in inputs.arrays.items()]
    if inputs.dout is not None:
        changed.append(("dout", inputs.dout, mine.dout))
    for key, original, own in changed:
        if _unchanged(original, own) or any(np.shares_memory(array, own) for _, _, array in writes):
            continue
        warnings.append({"kind": WROTE_INTO_ARGUMENT, "impl": impl, "function": contract.functions[-1],
                         "parameter": f"{key} (through its cache)" if key != "dout" else "the upstream gradient"})
    return warnings


_HARNESS = Path(__file__).resolve().parent  # the contracts live here; frames here are not the candidate's


def _user_frames(exc: BaseException) -> list:
    """The frames of the traceback in the candidate's own code (not the harness's, not a library's)."""
    frames = traceback.extract_tb(exc.__traceback__)
    library = ("site-packages", "dist-packages", f"{Path(traceback.__file__).parent}")
    return [f for f in frames if not Path(f.filename).resolve().is_relative_to(_HARNESS)
            and not any(part in f.filename for part in library)]


def _fault(exc: Exception, functions: tuple) -> CandidateFault:
    """A CandidateFault for an exception raised in the candidate: which of its functions
    raised, and where in its own code (file, line and the frames there)."""
    mine = _user_frames(exc)
    if mine:
        entry = next((f.name for f in mine if f.name in functions), mine[0].name)
        last = mine[-1]
        where = f" at {Path(last.filename).name}:{last.lineno}" + (f" in {last.name}" if last.name != entry else "")
        fault = CandidateFault(f"{entry} raised {type(exc).__name__}: {exc} ({where.strip()})")
        fault.user_traceback = "".join(traceback.format_list(mine)) + f"{type(exc).__name__}: {exc}\n"
        return fault
    return CandidateFault(f"{' / '.join(functions)} raised {type(exc).__name__}: {exc}")


# --- accounting: every function and class of a candidate module, checked or not, and why -------


def _raised_in(exc: BaseException, functions: tuple, lookup: Callable[[str], Callable]) -> tuple:
    """The contract's functions ``exc`` was raised in (the innermost), or all of them: known
    by the code each runs (a declared framework function's frames go by ``forward`` and
    ``backward``, not by the names its contract gives them), else by name."""
    codes = {}
    for name in functions:
        try:
            codes[getattr(inspect.unwrap(lookup(name)), "__code__", None)] = name
        except Exception:  # noqa: BLE001  (a name the module lacks: known by name only)
            continue
    for tb in reversed(list(_tracebacks(exc.__traceback__))):
        code = tb.tb_frame.f_code
        if code in codes or code.co_name in functions:
            return (codes.get(code, code.co_name),)
    return tuple(functions)


def _tracebacks(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _stub_reason(lookup: Callable[[str], Callable], op: str, contract, catalog) -> tuple[str, tuple] | None:
    """Why an op's functions cannot be checked as written, from one call on the op's first
    case of its functions as the run finds them (``lookup``): an unimplemented stub (raises
    NotImplementedError, returns None, or a model whose params or gradients are still
    empty), or a dependency the course's notebook needs as well (the compiled
    ``im2col_cython``).  None when the call says nothing of the kind (a
    function that raises otherwise is reported by the run); with it, the functions that are
    stubs (none for a missing dependency): the one that raised, or returned None, where the
    call tells them apart, else all of the op's."""
    from gradmatrix.oracles.cases import draw_inputs, matrix_cases

    inputs = draw_inputs(matrix_cases("default", [op], ["float64"], 1, ["reverse"], catalog=catalog)[0])
    try:
        forward, grads = contract.call(lookup, inputs.arrays, inputs.dout, inputs.case.dim_map)
    except NotImplementedError as exc:
        return "unimplemented stub: raises NotImplementedError", _raised_in(exc, contract.functions, lookup)
    except ContractError as exc:
        if "has []" in str(exc) or "gradients for []" in str(exc):
            return f"unimplemented stub: {exc}", tuple(contract.functions)
        return None
    except NameError as exc:
        if "cython" in str(exc).lower():
            return (f"needs the course's compiled Cython extension, as the notebook does ({exc}); "
                    "build it in cs231n/ (python setup.py build_ext --inplace)"), ()
        return None
    except (Exception, SystemExit):  # the run reports it, SystemExit included, as an error record
        return None
    functions = tuple(contract.functions)
    if forward is None:
        return f"unimplemented stub: {functions[0]} returns None", functions[:1]
    if any(g is None for g in grads.values()):
        return f"unimplemented stub: {functions[-1]} returns None", functions[-1:]
    if _zeros_where_reference_is_not(inputs, forward, grads):
        return "unimplemented stub: returns zeros (the reference's output is not zero)", functions
    return None


def _zeros_where_reference_is_not(inputs, forward, grads: dict) -> bool:
    """Whether everything returned is zero (``loss = 0.0; grad = np.zeros(...)``, the
    starter code left as it was) on a case where the op's reference forward is not."""
    try:
        returned = [np.asarray(forward, dtype=np.float64), *(np.asarray(g, dtype=np.float64) for g in grads.values())]
    except (TypeError, ValueError):
        return False
    if any(np.any(r != 0) for r in returned):
        return False
    try:
        reference = inputs.case.spec.forward_for("numeric", np)(inputs.arrays, inputs.case.dim_map)
    except Exception:  # no reference forward of the spec's own (the catalog's per-oracle ones): no judgement
        return False
    return bool(np.any(np.asarray(reference) != 0))


def account(candidate: "Candidate") -> list[dict]:
    """Every function and class a candidate module defines, in source order: ``{"name",
    "kind": "function" | "class", "checked": bool, "op"}`` and, when not checked, ``"reason"``
    (an unimplemented stub, a name no op of the catalog uses, a signature no contract fits,
    the other half of a pair missing)."""
    module = candidate.source
    checked: dict = {}
    for op, c in candidate.contracts.items():  # a model class may serve several ops (its options)
        for fn in c.functions:
            checked[fn] = f"{checked[fn]}, {op}" if fn in checked else op
    stubs = getattr(candidate, "stubs", {})
    stubbed = {fn: (op, candidate.unchecked[op], fn in stubs.get(op, ())) for op in candidate.unchecked
               for fn in contracts_of(module)[op].functions} if candidate.unchecked else {}
    known = {fn: (op, spec) for op, spec in (*CATALOG.items(), *COURSE_SPECS.items())
             for c in spec.contracts for fn in c.functions}
    helpers = _declared_helpers(module, candidate.ops)
    unchecked_helpers = _declared_helpers(module, candidate.unchecked)  # of a layer left unchecked

    def unchecked(name: str) -> dict:
        op, reason, stub = stubbed[name]
        if op in stubs and not stub:  # the implemented half of a pair whose other half is a stub
            reason = f"its partner {' / '.join(stubs[op])} is the starter's stub"
        return dict(checked=False, op=op, reason=reason, **({"stub": True} if stub else {}))  # a stub fails the module

    entries = []
    for name, value in vars(module).items():
        if not (inspect.isfunction(value) or inspect.isclass(value)) or not defined_here(module, name):
            continue
        if name.startswith("_"):  # a private helper: checked through the public functions that call it
            continue
        entry = {"name": name, "kind": "class" if inspect.isclass(value) else "function"}
        if name in checked:
            entry.update(checked=True, op=checked[name])
        elif name in helpers:
            entry.update(checked=True, op=helpers[name])
        elif name in stubbed:
            entry.update(unchecked(name))
        elif name in unchecked_helpers:
            op = unchecked_helpers[name]
            entry.update(checked=False, op=op, reason=f"used by layer {op!r}, not checked: {candidate.unchecked[op]}")
        elif name in known:
            op, spec = known[name]
            partners = sorted({fn for c in spec.contracts if name in c.functions for fn in c.functions} - {name})
            absent = [fn for fn in partners if not callable(getattr(module, fn, None))]
            why = (f"its partner {' / '.join(absent)} is missing" if absent and len(absent) == len(partners)
                   else f"its signature fits none of the contracts of op {op!r}")
            entry.update(checked=False, op=op, reason=why)
        else:
            entry.update(checked=False, op=None, reason="unknown name: no op of gradmatrix's catalog uses it")
        entries.append(entry)
    # the functions of a layer it declares that it does not define itself (another module's,
    # ``gradmatrix.layer(lib.f, lib.f_backward, ...)``; a lambda) are checked, or left
    # unchecked, as its own are
    listed = {entry["name"] for entry in entries}
    for functions in getattr(candidate, "functions", {}).values():
        for name, function in functions.items():
            if name in listed:
                continue
            if name in stubbed:  # a stub is named wherever it is defined
                entries.append({"name": name, "kind": _kind(function), **unchecked(name)})
            elif (name in checked and name.split(".")[0] not in listed  # ``Gelu.backward``: its class is listed
                  and not name.startswith(("_", "<")) and getattr(function, "__module__", None) != module.__name__):
                entries.append({"name": name, "kind": _kind(function), "checked": True, "op": checked[name]})
            listed.add(name)
    return entries


def _kind(function) -> str:
    """"class" for a declared layer's function that stands for a class (a ``Function.apply``
    declared as a framework function, a layer written as a class), else "function"."""
    framework = getattr(function, "__gradmatrix_framework__", None)
    target = framework[1] if framework else function
    return "class" if inspect.isclass(target) or inspect.isclass(getattr(target, "__self__", None)) else "function"


def _declared_helpers(module: ModuleType, ops) -> dict:
    """name -> layer, for what a checked declared layer runs besides its own functions: its
    reference forwards (the oracles run them) and the class of a ``Function.apply`` it
    declares (``gradmatrix.layer(MyGelu.apply, ...)``: the class's forward and backward are
    the ones checked)."""
    used = {}
    for declaration in declarations_in(module):
        if declaration.name not in ops:
            continue
        reference = declaration.reference
        functions = list(reference.values()) if isinstance(reference, dict) else [reference]
        framework = getattr(declaration, "framework", None)
        if framework is not None:
            functions += [framework[1], framework[2]]
        for function in functions:
            owner = getattr(function, "__self__", None)  # Function.apply is bound to its class
            function = owner if isinstance(owner, type) else function
            name = getattr(function, "__name__", None)
            if name and getattr(module, name, None) is function:
                used.setdefault(name, declaration.name)
    return used
