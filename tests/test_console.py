"""What ``gradmatrix check`` prints for a module with one classic mistake: the verdict, one short
block per finding with its likely cause, then the report paths; no pytest output.

Each module has exactly one bug (a missing 1/N, a missing transpose, a sum over the wrong
axis, a sign error, float32 inside a float64 computation); the console must name the cause
in at most 25 lines.
"""

from pathlib import Path

import pytest

from gradmatrix.reports.console import plural, verdict_text
from cli_helpers import gradmatrix as gradmatrix_cli

HERE = Path(__file__).parent
MAX_LINES = 25


def check(path: Path, op: str, cwd: Path, *extra):
    return gradmatrix_cli("check", path, "--op", op, "--progress", "lines", *extra, cwd=cwd)


@pytest.mark.parametrize("module, op, status, cause", [
    pytest.param("mutants/softmax_missing_1_over_n.py", "softmax_loss", 1,
                 "likely cause: a missing 1/N: dscores is N times the reference", id="missing-1-over-N"),
    pytest.param("mutants/affine_missing_transpose.py", "affine", 2,
                 "likely cause: a missing transpose: dw is the reference transposed", id="missing-transpose"),
    pytest.param("mutants/affine_db_wrong_axis.py", "affine", 2,
                 "likely cause: a sum or mean over the wrong axis: db has shape (", id="wrong-axis"),
    pytest.param("one_bug/relu_sign_error.py", "relu", 1,
                 "likely cause: a sign error: dx is -1 times the reference", id="sign-error"),
    pytest.param("mutants/affine_dw_in_float32.py", "affine", 1,
                 "likely cause: float32 arithmetic inside a float64 computation", id="float32-in-float64"),
])
def test_one_bug_module_console_names_the_cause_in_few_lines(module, op, status, cause, tmp_path):
    result = check(HERE / module, op, tmp_path)
    lines = (result.stdout + result.stderr).rstrip("\n").splitlines()
    assert result.returncode == status, result.stdout + result.stderr
    assert len(lines) <= MAX_LINES, "\n".join(lines)
    verdicts = [i for i, line in enumerate(lines) if line.startswith(("FAIL: ", "ERROR: "))]
    assert verdicts, "\n".join(lines)
    # the first finding comes right after the verdict, and states the cause
    assert lines[verdicts[0] + 1].startswith("1. ") and op in lines[verdicts[0] + 1]
    assert lines[verdicts[0] + 2].strip().startswith(cause), "\n".join(lines)
    assert "references agree among themselves" in result.stdout
    assert lines[-1].startswith("report: ") and lines[-1].endswith("agreement.html")
    # nothing of pytest's own report
    assert "FAILURES" not in result.stdout and "short test summary" not in result.stdout
    assert "test_agreement[" not in result.stdout and "exit status" not in result.stdout + result.stderr


def test_plurals_and_verdicts():
    assert plural(1, "comparison") == "1 comparison" and plural(2, "comparison") == "2 comparisons"
    one = {"summary": {"complete": True, "comparisons": 2, "expected": 2, "missing": 0, "agree": 2, "convention": 0,
                       "disagree": 0, "error": 0, "skipped": 0, "interrupted": ""},
           "run": {"candidate": "mine"},
           "verdict": {"candidate": {"comparisons": 1, "agree": 1, "disagree": 0, "error": 0, "skipped": 0,
                                     "cannot_check": 0}}}
    assert verdict_text(one) == "PASS: mine agrees in its 1 comparison"
    one["verdict"]["candidate"].update(comparisons=3, agree=3)
    assert verdict_text(one) == "PASS: mine agrees in all 3 comparisons"


def test_progress_gives_no_time_estimate_from_the_first_comparisons():
    from gradmatrix.pytest_plugin import Progress

    progress = Progress(config=None, mode="lines")
    progress.total, progress.done, progress.bad = 1000, 1, 1
    first = progress._status()
    assert first.startswith("1/1000 comparisons, 1 discrepancy, ") and "left" not in first
    progress.done, progress.bad = 100, 2
    assert progress._status().startswith("100/1000 comparisons, 2 discrepancies, ") and "s left" in progress._status()
    progress.done = 1000
    assert "left" not in progress._status()


def test_an_error_against_a_zero_reference_renders_in_every_format():
    # the reference gradient is exactly 0, so the relative error is infinite (stored as null
    # in agreement.json): every report still renders, and says "inf"
    import numpy as np

    import gradmatrix
    from gradmatrix.reports import console, html, markdown
    from gradmatrix.reports.schema import validate

    def flat_forward(x):
        return x * 0.0, None

    def flat_backward(dout, cache):
        return np.ones_like(dout)

    result = gradmatrix.check_layer(flat_forward, flat_backward, {"x": (2, 3)}, seeds=1, dtypes=["float64"])
    assert not result.passed
    document = result.document
    validate(document)
    assert "error inf relative" in "\n".join(console.render(document, []))
    assert "inf" in markdown.render(document) and "inf" in html.render(document)
