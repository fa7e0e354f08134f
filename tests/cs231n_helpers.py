"""Shared by the CS231n tests: where the course-style fixtures live and how a mutant is judged.

``tests/cs231n`` holds independent, correct implementations with the course's names and
signatures (``rnn_layers.py``, ``softmax.py``, ``linear_svm.py``); ``tests/cs231n/mutants``
holds one-function mutants of them, each carrying one classic mistake, listed in the
``MUTANTS`` tables of ``test_cs231n_layers.py``, ``test_cs231n_rnn.py`` and
``test_cs231n_classifiers.py``.
"""

from __future__ import annotations

import functools
import importlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import gradmatrix
from gradmatrix.checker import CheckResult
from cli_helpers import gradmatrix as gradmatrix_cli

FIXTURES = Path(__file__).parent / "cs231n"
MUTANTS = FIXTURES / "mutants"
# the mutants are judged against torch and the float64 numeric oracle only: both are the
# same reference forward as JAX's (test_catalog shows JAX runs it), and leaving JAX out
# saves a compilation per op, dims and dtype
MUTANT_ORACLES = ("torch", "numeric")


@dataclass(frozen=True)
class Mutant:
    """A mutant file, the op it breaks, the function at fault and the tensors that must fail."""

    file: str
    op: str
    function: str
    wrong: tuple[str, ...]  # tensors (output or gradients) every check must find wrong


def cli(*args, out: Path | None = None) -> subprocess.CompletedProcess:
    """``gradmatrix ...`` as a student would run it (``cli_helpers.gradmatrix``: the command
    in this process, the student's file in a worker process of its own), its report written
    to ``out`` when given."""
    extra = ("--out", out) if out is not None else ()
    return gradmatrix_cli(*args, *extra, cwd=FIXTURES)


def reported(out: Path) -> CheckResult:
    """The result a ``gradmatrix check --out out`` wrote, read back from its JSON report."""
    return CheckResult(json.loads((Path(out) / "agreement.json").read_text()))


def finding_lines(stdout: str) -> list[str]:
    """The console's numbered finding lines (``1. rnn dWh: wrong values in ...``)."""
    return [line for line in stdout.splitlines() if line[:1].isdigit() and ". " in line]


@functools.lru_cache(maxsize=None)  # the catch-rate test reuses the per-mutant checks of its process
def check_mutant(mutant: Mutant):
    """Check every op the mutant file provides (its other ops are correct), one seed, float64."""
    return gradmatrix.check(str(MUTANTS / mutant.file), seeds=1, dtypes=["float64"], oracles=MUTANT_ORACLES)


def assert_caught(mutant: Mutant) -> None:
    """The mutant's op fails on at least the tensors named; every other op it provides agrees."""
    result = check_mutant(mutant)
    assert result.status in (1, 2), f"{mutant.file} was not caught"
    verdicts = result.per_op()
    assert verdicts[mutant.op]["verdict"] in ("disagree", "error"), verdicts[mutant.op]
    missing = [t for t in mutant.wrong if t not in result.wrong_tensors(mutant.op)]
    assert not missing, f"{mutant.file}: {missing} not found wrong (found {result.wrong_tensors(mutant.op)})"
    others = {op: v["verdict"] for op, v in verdicts.items() if op != mutant.op}
    assert all(v == "agree" for v in others.values()), f"{mutant.file}: correct ops flagged: {others}"


def course_mutants() -> list[Mutant]:
    """The course-style mutant tables: ``MUTANTS`` of every ``tests/test_cs231n_*.py`` that
    lists files of ``tests/cs231n/mutants`` (each of whose entries is held to being caught
    there); ``test_cs231n_models.py``'s table names model files of ``tests/cs231n``."""
    tables = [getattr(importlib.import_module(path.stem), "MUTANTS", ())
              for path in sorted(Path(__file__).parent.glob("test_cs231n_*.py"))]
    return [m for table in tables if not isinstance(table, dict) for m in table]


def course_mutant_ops() -> set[str]:
    """The ops the course-style mutant tables cover."""
    return {m.op for m in course_mutants()}
