"""Files that are scripts: their definitions, without the top-level code that trains, plots
or crashes; and Python 2 files, named as such.

Students' files are rarely clean modules.  A notebook exported to ``.py`` ends in training
and plotting cells (``get_ipython().run_line_magic(...)``, or ``%matplotlib inline`` lines
pasted as they were); a "Neural Networks from Scratch" file calls ``nnfs.init()``, which
makes ``np.dot`` compute in float32 for the whole process, then trains; a course file runs
its tests at the bottom with no ``if __name__ == "__main__":`` guard.  Importing such a file
trains, plots, reads data files that are not there, or ends the process.

``plan`` reads the file with ``ast`` and sorts its top-level statements:

- definitions run: ``def``, ``class``, ``import`` (in a script, an import that fails is
  skipped: the plotting or data library its training code needs);
- simple statements run guarded: an assignment (``EPS = 1e-8``, ``rng =
  np.random.default_rng(0)``, ``globals().update(...)``, ``sys.path.insert(0, ...)``), an
  ``if`` or ``try`` made only
  of such statements; one that
  raises, ends the process (``sys.exit``) or runs past ``STATEMENT_TIME_LIMIT`` is skipped;
- the rest is skipped, never run: calls (``nnfs.init()``, ``plt.show()``,
  ``solver.train()``), loops, ``with`` blocks, assertions, IPython magics, and assignments
  that call a function or class the file defines itself (``model = TwoLayerNet()``: test
  or training code).

A file with nothing to skip and no assignment that calls something is imported as it is
(``load_module``), so a module's errors read as Python gives them.  What was skipped is
data: ``{"line", "statement", "reason"}`` entries on the module (``SKIPPED``), which the
report records and the console summarises in one line.

A file that does not parse and shows Python 2 syntax (a ``print x`` statement, ``except E,
e``), or whose definitions use a Python 2 name (``xrange``) they never bind, is refused with
one line naming the first such place and the fix (``Python2Source``).
"""

from __future__ import annotations

import __future__
import ast
import io
import re
import tokenize
from pathlib import Path
from types import ModuleType

from gradmatrix.oracles.timelimit import time_limit

SKIPPED = "__gradmatrix_skipped__"  # the module attribute listing the statements not run
STATEMENT_TIME_LIMIT = 10.0  # seconds a guarded top-level statement of a script may take
SHOWN = 60  # characters of a statement quoted in a report

RUN, GUARD, SKIP = "run", "guard", "skip"

_KIND = {  # why a top-level statement of these types is not run
    ast.Expr: "a top-level call", ast.For: "a loop", ast.While: "a loop", ast.AsyncFor: "a loop",
    ast.With: "a with block", ast.AsyncWith: "a with block", ast.Assert: "an assertion",
    ast.Delete: "a del statement", ast.Raise: "a raise statement", ast.If: "an if block that runs code",
    ast.Try: "a try block that runs code", ast.Global: "a global statement", ast.Nonlocal: "a nonlocal statement",
}
# IPython line and cell magics and shell escapes pasted from a notebook (a name follows at once:
# "% 2" continuing an expression is Python)
_MAGIC = re.compile(r"^[ \t]*(%%?|!)[A-Za-z]")

# Python 2 syntax, by line: (pattern, what it is, the Python 3 spelling)
_PYTHON2 = (
    (re.compile(r"^\s*print\b(?!\s*\()(?!\s*$)(?!\s*[=.,)\]])"), "a print statement", "print(...)"),
    (re.compile(r"^\s*except\s+[\w.()\s,]+?,\s*\w+\s*:"), "except E, e", "except E as e"),
    (re.compile(r"^\s*raise\s+[\w.]+\s*,"), "raise E, message", "raise E(message)"),
    (re.compile(r"^\s*exec\s+[\"'\w]"), "an exec statement", "exec(...)"),
)
# names Python 2 had and Python 3 has not, with what replaces them
_PYTHON2_NAMES = {"xrange": "range", "raw_input": "input", "unicode": "str", "basestring": "str",
                  "unichr": "chr", "execfile": "exec(open(...).read())"}


class Python2Source(ImportError):
    """A file written for Python 2: the message names the first place and the fix."""


class _TimeUp(Exception):
    """A guarded statement ran past ``STATEMENT_TIME_LIMIT``."""


def python2_message(path: Path, what: str, line: int, text: str, fix: str) -> str:
    return (f"written for Python 2: {what} at line {line} (`{text.strip()[:SHOWN]}`); convert it with "
            f"`2to3 -w {path.name}` (Python 3.12 or older) or write {fix}")


def _string_lines(source: str) -> set:
    """The lines inside multi-line strings (docstrings), where Python 2 syntax is only words."""
    inside = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.STRING and token.end[0] > token.start[0]:
                inside.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass
    return inside


def python2_syntax(source: str, path: Path) -> str | None:
    """The message for the first line of ``source`` in Python 2 syntax, or None."""
    strings = _string_lines(source)
    for number, line in enumerate(source.splitlines(), 1):
        if line.lstrip().startswith("#") or number in strings:
            continue
        for pattern, what, fix in _PYTHON2:
            if pattern.search(line):
                return python2_message(path, what, number, line, fix)
    return None


def _bound(tree: ast.AST) -> set:
    """Every name the file binds anywhere (assigned, imported, defined, a parameter)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def python2_names(tree: ast.Module, kept: list, path: Path, source: str) -> str | None:
    """The message for the first use, in the statements that run, of a Python 2 name the
    file never binds (``xrange``), or None."""
    bound = _bound(tree)
    lines = source.splitlines()
    uses = [node for statement in kept for node in ast.walk(statement)
            if isinstance(node, ast.Name) and node.id in _PYTHON2_NAMES and node.id not in bound]
    if not uses:
        return None
    first = min(uses, key=lambda n: (n.lineno, n.col_offset))
    return python2_message(path, f"`{first.id}`", first.lineno, lines[first.lineno - 1], _PYTHON2_NAMES[first.id])


def _own_names(tree: ast.Module) -> set:
    """The functions and classes the file defines at top level."""
    return {s.name for s in tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _called_own(node: ast.AST, own: set) -> str | None:
    """The first function or class of the file that ``node`` calls (``TwoLayerNet(...)``,
    ``initialize_parameters(...)``), or None."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            root = sub.func
            while isinstance(root, (ast.Attribute, ast.Call, ast.Subscript)):
                root = root.value if not isinstance(root, ast.Call) else root.func
            if isinstance(root, ast.Name) and root.id in own:
                return root.id
    return None


def _is_main_guard(statement: ast.stmt) -> bool:
    """``if __name__ == "__main__":``, which an import never runs anyway."""
    test = getattr(statement, "test", None)
    return (isinstance(statement, ast.If) and isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)
            and {ast.dump(test.left), ast.dump(test.comparators[0])}
            == {ast.dump(ast.Name("__name__", ast.Load())), ast.dump(ast.Constant("__main__"))})


def _simple(statement: ast.stmt, own: set) -> bool:
    """Whether a statement may run guarded inside an ``if`` or ``try``: a definition, an
    import, an assignment calling nothing of the file's own, ``pass``, a docstring, a print."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom,
                              ast.Pass)):
        return True
    if isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        return _called_own(statement, own) is None
    if isinstance(statement, ast.Expr):
        value = statement.value
        return (isinstance(value, ast.Constant) or isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                and value.func.id == "print")
    if isinstance(statement, (ast.If, ast.Try)):
        inner = statement.body + statement.orelse + getattr(statement, "finalbody", [])
        inner += [s for h in getattr(statement, "handlers", []) for s in h.body]
        return all(_simple(s, own) for s in inner)
    return False


def _completes_own(statement: ast.stmt, own: set) -> bool:
    """A top-level call of a method of a function or class the file defines, with nothing
    else of the file's called in its arguments: it completes that definition
    (``centre.defvjp(fwd, bwd)`` after ``@jax.custom_vjp def centre``, ``gelu.defjvps(...)``,
    ``Layer.register(...)``), as a decorator would, so it runs guarded; ``model.train()``
    calls a method of a value, not of a definition, and stays skipped."""
    call = statement.value if isinstance(statement, ast.Expr) else None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name) and call.func.value.id in own):
        return False
    return all(_called_own(argument, own) is None for argument in [*call.args, *(k.value for k in call.keywords)])


def _defines_names(statement: ast.stmt) -> bool:
    """A top-level call that the definitions depend on: one that defines the module's names
    (``globals().update(...)``) or sets where its imports are found (``sys.path.insert(0,
    ...)``, before ``from word2vec import sigmoid``): run guarded, as an assignment is."""
    call = statement.value if isinstance(statement, ast.Expr) else None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
        return False
    target = call.func.value
    if call.func.attr == "update":
        return (isinstance(target, ast.Call) and isinstance(target.func, ast.Name)
                and target.func.id in ("globals", "vars") and not target.args)
    return (call.func.attr in ("insert", "append", "extend") and isinstance(target, ast.Attribute)
            and target.attr == "path" and isinstance(target.value, ast.Name) and target.value.id == "sys")


def _ipython(statement: ast.stmt) -> bool:
    """A call into IPython (``get_ipython().run_line_magic(...)``), which only a notebook has."""
    for node in ast.walk(statement):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "get_ipython":
            return True
    return False


def plan(tree: ast.Module) -> list:
    """Each top-level statement with what to do with it: ``(statement, RUN | GUARD | SKIP,
    reason, detail)`` (see the module docstring); ``if __name__ == "__main__":`` is left out."""
    own = _own_names(tree)
    planned = []
    for i, statement in enumerate(tree.body):
        if _is_main_guard(statement):
            continue
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom,
                                  ast.Pass)):
            planned.append((statement, RUN, "", ""))
        elif i == 0 and isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            planned.append((statement, RUN, "", ""))  # the module's docstring
        elif _ipython(statement):
            planned.append((statement, SKIP, "an IPython call", ""))
        elif not (_simple(statement, own) or isinstance(statement, (ast.Expr, ast.Assign, ast.AnnAssign,
                                                                      ast.AugAssign))):
            planned.append((statement, SKIP, _KIND.get(type(statement), "top-level code"), ""))
        elif _called_own(statement, own) and not _completes_own(statement, own):
            # the file's own functions or classes called at top level: its tests or training
            planned.append((statement, SKIP, "test or training code",
                            f"calls {_called_own(statement, own)}, defined in this file"))
        else:
            # assignments and calls of other code (sys.path.insert, loading a sibling file,
            # defvjp, a plot): run guarded, skipped where they raise, end the process, run
            # too long or change numpy for the whole process
            planned.append((statement, GUARD, "", ""))
    return planned


def parse(source: str, path: Path) -> tuple[ast.Module, list]:
    """The file's syntax tree, and the IPython magic lines blanked to parse it (``%matplotlib
    inline``, ``!pip install ...``) as skipped entries.

    Raises:
        Python2Source: it does not parse and shows Python 2 syntax.
        SyntaxError: it does not parse otherwise.
    """
    try:
        return ast.parse(source, str(path)), []
    except SyntaxError as first:
        lines = source.splitlines(keepends=True)
        magics = [i for i, line in enumerate(lines) if _MAGIC.match(line)]
        blanked = "".join("\n" if i in magics else line for i, line in enumerate(lines))
        try:
            tree = ast.parse(blanked, str(path))
        except SyntaxError:
            why = python2_syntax(source, path)
            if why:
                raise Python2Source(why) from None
            raise first from None
        return tree, [entry(i + 1, lines[i], "an IPython magic") for i in magics]


def entry(line: int, text: str, reason: str, detail: str = "") -> dict:
    """One skipped statement, as the report holds it: its line, its first line of source,
    why (a short kind: "a loop", "the import failed") and the detail ("" or the error)."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return {"line": line, "statement": first[:SHOWN] + ("..." if len(first) > SHOWN else ""), "reason": reason,
            "detail": detail}


def _future_flags(tree: ast.Module) -> int:
    """The compiler flags of the file's ``from __future__ import ...`` statements, for
    compiling its statements one at a time."""
    flags = 0
    for statement in tree.body:
        if isinstance(statement, ast.ImportFrom) and statement.module == "__future__":
            for alias in statement.names:
                feature = getattr(__future__, alias.name, None)
                flags |= getattr(feature, "compiler_flag", 0)
    return flags


def _numpy_state() -> tuple:
    """What a statement could change in numpy for every later caller: its functions (``nnfs.init()``
    replaces ``np.dot`` with one computing in float32) and its floating-point error handling."""
    import numpy

    return dict(vars(numpy)), numpy.geterr()


def _restore_numpy(before: tuple) -> str:
    """Undo a change to numpy since ``before``; the change in words ("" for none)."""
    import numpy

    names, errors = before
    replaced = sorted(k for k, v in names.items() if vars(numpy).get(k) is not v)
    for k in replaced:
        setattr(numpy, k, names[k])
    said = [f"replaces numpy.{', numpy.'.join(replaced[:3])}{' ...' if len(replaced) > 3 else ''}"] if replaced else []
    if numpy.geterr() != errors:
        numpy.seterr(**errors)
        said.append("sets numpy.seterr")
    return "; ".join(said)


def execute(module: ModuleType, tree: ast.Module, planned: list, source: str, path: Path, skipped: list) -> None:
    """Run the planned statements of a file into ``module``, appending to ``skipped`` each one
    not run and why.  A definition that raises propagates (the module is not loaded), as does
    a failing import unless the file is a script (top-level code beyond definitions)."""
    lines = source.splitlines()
    flags = _future_flags(tree)
    # a script: top-level code beyond definitions and plain assignments (a module's failing
    # import is its error, as Python gives it; a script's is skipped)
    script = bool(skipped) or any(action == SKIP or action == GUARD and any(isinstance(n, ast.Call)
                                                                             for n in ast.walk(statement))
                                  for statement, action, _, _ in planned)
    for statement, action, reason, detail in planned:
        text = "\n".join(lines[statement.lineno - 1:statement.end_lineno])
        if action == SKIP:
            skipped.append(entry(statement.lineno, text, reason, detail))
            continue
        code = compile(ast.Module([statement], type_ignores=[]), str(path), "exec", flags=flags, dont_inherit=True)
        before = _numpy_state()
        if action == RUN:
            try:
                exec(code, module.__dict__)  # noqa: S102  (the candidate's own definitions)
            except ImportError as exc:
                if not script or not isinstance(statement, (ast.Import, ast.ImportFrom)):
                    raise  # a module's import error: as Python gives it
                skipped.append(entry(statement.lineno, text, "the import failed", f"{type(exc).__name__}: {exc}"))
            changed = _restore_numpy(before)  # a sibling imported that changes numpy (calls nnfs.init())
            if changed:
                skipped.append(entry(statement.lineno, text, "it changes numpy for the whole process",
                                     f"{changed}; undone"))
            continue
        try:
            with time_limit(STATEMENT_TIME_LIMIT, _TimeUp):
                exec(code, module.__dict__)  # noqa: S102
            changed = _restore_numpy(before)
            if changed:
                skipped.append(entry(statement.lineno, text, "it changes numpy for the whole process",
                                     f"{changed}; undone"))
        except _TimeUp:
            skipped.append(entry(statement.lineno, text, "it ran too long", f"stopped after {STATEMENT_TIME_LIMIT:g} s"))
        except SystemExit as exc:
            skipped.append(entry(statement.lineno, text, "it ended the process", f"SystemExit({exc.code!r})"))
        except Exception as exc:  # noqa: BLE001  (the script's own top-level code failing: skipped, said)
            skipped.append(entry(statement.lineno, text, "it raised", f"{type(exc).__name__}: {str(exc)[:SHOWN]}"))
