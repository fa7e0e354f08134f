"""One finding model, read where people work: ``repr`` in a REPL, a notebook's HTML, a failing
pytest test, the console's verdict per op, ``--version``.

The one-bug module is a batchnorm backward without the branch through the mean (the error
is the same in every row of dx), written as students write it; its correct twin must pass
everywhere the bug is caught.
"""

from __future__ import annotations

import pydoc
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gradmatrix
from cli_helpers import gradmatrix as gradmatrix_cli
from gradmatrix.reports import console
from gradmatrix.reports.document import worst_ratio
from gradmatrix.reports.metrics import constant_down_columns

MUTANT = Path(__file__).parent / "mutants" / "batchnorm_missing_mean_branch.py"
SMALL = {"dtypes": ["float64", "float32"], "modes": ["reverse"]}

CORRECT = '''\
import numpy as np


def batchnorm_forward(x, gamma, beta, eps):
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    std = np.sqrt(var + eps)
    xhat = (x - mu) / std
    out = gamma * xhat + beta
    return out, (xhat, gamma, std)


def batchnorm_backward(dout, cache):
    xhat, gamma, std = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    dx = (N * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0)) / (N * std)
    return dx, dgamma, dbeta
'''


@pytest.fixture(scope="module")
def one_bug():
    return gradmatrix.check(MUTANT, **SMALL)


@pytest.fixture(scope="module")
def correct(tmp_path_factory):
    path = tmp_path_factory.mktemp("correct") / "my_batchnorm.py"
    path.write_text(CORRECT)
    return gradmatrix.check(path, **SMALL)


def test_repr_is_short_and_names_the_function_and_the_cause(one_bug):
    text = repr(one_bug)
    assert len(text.splitlines()) <= 15, text
    assert "in batchnorm_backward" in text and "likely cause: a missing term that is the same in every row of dx" in text
    assert "batchnorm: FAIL" in text
    assert str(one_bug).splitlines()[0].startswith("FAIL: batchnorm_missing_mean_branch disagrees")


def test_repr_of_a_passing_check_has_its_verdict_line_per_op(correct):
    assert correct.passed, str(correct)
    lines = repr(correct).splitlines()
    assert len(lines) <= 15 and lines[1].startswith("PASS: my_batchnorm agrees in all")
    assert any(line.startswith("batchnorm: PASS,") for line in lines), lines


def test_notebook_html_is_short_escaped_and_names_the_function(one_bug):
    page = one_bug._repr_html_()
    assert len(page) < 20_000 and page.startswith("<div class='gradmatrix'>")
    assert "In batchnorm_backward" in page and "batchnorm: FAIL" not in page  # a table, not console lines
    assert "body{" not in page  # the notebook's own page keeps its styles


def test_per_op_worst_is_the_worst_and_a_passing_op_has_a_message(one_bug, correct):
    entry = one_bug.per_op()["batchnorm"]
    plain = [r for r in one_bug.failures if r.get("case_kind") in ("random", "kink")]
    assert worst_ratio(entry["worst"]) == max(worst_ratio(r) for r in plain)
    assert entry["worst"]["id"] == one_bug.document["findings"][0]["worst"]["id"]  # the console's worst
    passing = correct.per_op()["batchnorm"]
    assert passing["verdict"] == "agree" and passing["worst"]["message"]
    assert "agrees, max rel err" in passing["worst"]["message"] and "of the allowed" in passing["worst"]["message"]


def test_help_shows_the_keyword_arguments():
    for function, names in ((gradmatrix.check_layer, ("reference=None", "seeds", "strict_kinks")),
                            (gradmatrix.check, ("matrix", "case_timeout", "workers"))):
        text = pydoc.render_doc(function, renderer=pydoc.plaintext)
        assert "**options" not in text and all(name in text for name in names), text[:400]


def test_raise_for_failures_in_pytest_is_short_grouped_and_without_our_frames(tmp_path, one_bug):
    test = tmp_path / "test_student.py"
    test.write_text(textwrap.dedent(f"""\
        import gradmatrix

        def test_batchnorm():
            gradmatrix.check({str(MUTANT)!r}, dtypes=["float64", "float32"], modes=["reverse"]).raise_for_failures()
        """))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", str(test)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout.splitlines()
    start = next(i for i, line in enumerate(out) if "test_batchnorm" in line and line.startswith("_"))
    end = next(i for i, line in enumerate(out) if "short test summary" in line)
    failure = out[start:end]
    assert len(failure) <= 30, "\n".join(failure)
    shown = "\n".join(failure)
    assert "in batchnorm_backward" in shown and "likely cause: a missing term" in shown
    assert "checker.py" not in shown and "CheckResult(document=" not in shown
    # the same text as the console
    errors = [line[1:].strip().removeprefix("AssertionError: ") for line in failure if line.startswith("E ")]
    assert errors == [line.strip() for line in one_bug.lines(30)], "\n".join(failure)


def test_console_prints_a_verdict_line_for_each_op_and_the_version(tmp_path):
    module = tmp_path / "my_batchnorm.py"
    module.write_text(CORRECT)
    run = gradmatrix_cli("check", module, "--modes", "reverse", "--out", tmp_path / "r", "--format", "json",
                         "--progress", "none", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert any(line.startswith("batchnorm: PASS, ") for line in run.stdout.splitlines()), run.stdout
    version = gradmatrix_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"gradmatrix {gradmatrix.__version__}"


def test_an_error_constant_down_each_column_is_seen_and_nothing_else_is():
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((6, 4))
    assert constant_down_columns(reference + rng.standard_normal(4), reference, 1e-12)
    assert not constant_down_columns(reference + rng.standard_normal((6, 4)), reference, 1e-12)
    assert not constant_down_columns(reference, reference, 1e-12)  # no error at all
    assert not constant_down_columns(reference[:1] + 1.0, reference[:1], 1e-12)  # one row says nothing
    assert not constant_down_columns(reference * 2.0, reference, 1e-12)  # a factor varies by row


def test_the_missing_mean_cause_holds_for_the_mutant_and_the_correct_module_has_no_finding(one_bug, correct):
    cause = one_bug.document["findings"][0]["cause"]
    assert cause["kind"] == "constant-down-columns" and "N rows" in cause["evidence"]
    assert correct.document["findings"] == []
