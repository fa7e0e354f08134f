"""Course staff's batch mode (``gradmatrix check --class``, ``gradmatrix.classroom``,
``reports/classroom.py``): a class of submissions, correct, buggy, crashing, hanging, a
notebook export and a Python 2 file, checked two at a time; the class table in CSV and HTML,
and each submission's results in Gradescope's ``results.json`` format, validated against
the autograder specification."""

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from cli_helpers import gradmatrix as gradmatrix_cli
from gradmatrix import classroom as runner
from gradmatrix.reports import classroom

HERE = Path(__file__).parent
CLASS = HERE / "class_submissions"
QUICK = ["--ops", "relu", "affine", "--seeds", "1", "--dtypes", "float64", "--oracles", "torch", "numeric",
         "--modes", "reverse"]
EXPECTED = {  # submission -> (affine, relu), as the class table must give them
    "alice": ("pass", "pass"),
    "bob": ("fail", "pass"),            # db averaged over the batch
    "carol": ("not checked", "not checked"),  # imports a module she never submitted
    "dave": ("pass", "error"),          # relu_backward never returns
    "erin": ("pass", "pass"),           # a notebook export that trains and plots at the bottom
    "frank": ("not checked", "not checked"),  # Python 2
    "gina": ("error", "pass"),          # affine_backward ends its process
}


def validate_gradescope(results: dict) -> None:
    """``results.json`` as Gradescope's autograder specification describes it: a total
    ``score`` (or one per test), optional ``execution_time`` (seconds), ``output``,
    ``visibility``, ``stdout_visibility``, ``extra_data``, and ``tests``, each with a
    ``score``, ``max_score``, optional ``status`` (passed / failed), ``name``, ``number``,
    ``output``, ``tags``, ``visibility``."""
    allowed = {"score", "execution_time", "output", "output_format", "visibility", "stdout_visibility",
               "extra_data", "tests", "leaderboard"}
    assert set(results) <= allowed, set(results) - allowed
    assert "score" in results or all("score" in t for t in results.get("tests", []))
    if "score" in results:
        assert isinstance(results["score"], (int, float))
    if "execution_time" in results:
        assert isinstance(results["execution_time"], int) and results["execution_time"] >= 0
    assert isinstance(results.get("output", ""), str)
    for test in results.get("tests", []):
        assert set(test) <= {"score", "max_score", "status", "name", "name_format", "number", "output",
                             "output_format", "tags", "visibility", "extra_data"}, test
        assert isinstance(test["score"], (int, float)) and isinstance(test["max_score"], (int, float))
        assert 0 <= test["score"] <= test["max_score"]
        assert test.get("status", "passed") in classroom.GRADESCOPE_STATUS
        assert test.get("visibility", "visible") in classroom.GRADESCOPE_VISIBILITY
        assert isinstance(test["name"], str) and isinstance(test.get("output", ""), str)
        assert isinstance(test.get("number", ""), str)
    if "score" in results and results.get("tests"):
        assert results["score"] == sum(t["score"] for t in results["tests"])


@pytest.fixture(scope="module")
def class_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("class") / "report"
    # dave's relu loops forever: it spins a core until the limit (its NumPy cases take milliseconds)
    run = gradmatrix_cli("check", "--class", CLASS, "-n", "2", "--out", out, *QUICK, "--case-timeout", "1.5")
    return run, out


def test_the_class_runs_to_its_end_whatever_the_submissions_do(class_run):
    run, out = class_run
    assert run.returncode == 0, run.stdout + run.stderr
    assert "class: 2 pass, 1 fail, 2 error, 2 could not be checked, of 7 submissions" in run.stdout
    rows = json.loads((out / "class.json").read_text())["submissions"]
    assert [r["submission"] for r in rows] == sorted(EXPECTED)
    got = {r["submission"]: (classroom.cell(r, "affine")["verdict"], classroom.cell(r, "relu")["verdict"])
           for r in rows}
    assert got == EXPECTED


def test_the_csv_gives_each_function_of_each_submission_with_its_cause(class_run):
    _, out = class_run
    table = list(csv.DictReader(io.StringIO((out / "class.csv").read_text())))
    assert len(table) == 2 * len(EXPECTED) and tuple(table[0]) == classroom.CSV_COLUMNS
    by = {(r["submission"], r["function"]): r for r in table}
    assert by["bob", "affine"]["verdict"] == "fail" and "an extra 1/N" in by["bob", "affine"]["cause"]
    assert "gradmatrix check" in by["bob", "affine"]["reproduce"]
    assert "written for Python 2" in by["frank", "relu"]["cause"] and "2to3" in by["frank", "relu"]["cause"]
    assert "layer_helpers" in by["carol", "affine"]["cause"]
    assert "time limit of 1.5 s" in by["dave", "relu"]["cause"]
    assert "process ended" in by["gina", "affine"]["cause"]
    assert by["alice", "affine"]["functions"] == "affine_forward affine_backward"
    assert by["alice", "relu"]["score"] == "1.0" and by["bob", "affine"]["score"] == "0.0"


def test_each_submission_gets_a_gradescope_results_json(class_run):
    _, out = class_run
    for name, verdicts in EXPECTED.items():
        results = json.loads((out / "submissions" / name / "results.json").read_text())
        validate_gradescope(results)
        tests = {t["name"].split()[0]: t for t in results["tests"]}
        assert list(tests) == ["relu", "affine"] or list(tests) == ["affine", "relu"]
        for op, verdict in zip(("affine", "relu"), verdicts):
            assert tests[op]["status"] == ("passed" if verdict == "pass" else "failed"), (name, op)
            assert tests[op]["score"] == (1.0 if verdict == "pass" else 0.0)
    erin = json.loads((out / "submissions" / "erin" / "results.json").read_text())
    assert "top-level statements of the file were not run" in erin["output"] and "np.load(" in erin["output"]
    frank = json.loads((out / "submissions" / "frank" / "results.json").read_text())
    assert frank["score"] == 0 and "written for Python 2" in frank["output"]


def test_the_html_table_reads_on_a_phone(class_run):
    _, out = class_run
    page = (out / "class.html").read_text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert ".scroll { overflow-x: auto" in page and "position: sticky" in page
    assert page.count("<tr><td><a href=") == len(EXPECTED)
    assert 'class="fail" title="affine db: wrong values' in page


def test_the_gradescope_validator_catches_what_gradescope_refuses():
    good = {"score": 1.0, "execution_time": 3, "output": "", "tests": [
        {"name": "relu", "score": 1.0, "max_score": 1.0, "status": "passed", "output": ""}]}
    validate_gradescope(good)
    for broken in ({**good, "tests": [{**good["tests"][0], "status": "ok"}]},
                   {**good, "tests": [{**good["tests"][0], "score": 2.0}]},
                   {**good, "score": "1"},
                   {**good, "tests": [{**good["tests"][0], "visibility": "public"}]}):
        with pytest.raises(AssertionError):
            validate_gradescope(broken)


def test_files_given_one_by_one_are_named_by_their_folders(tmp_path):
    paths = [CLASS / "alice" / "layers.py", CLASS / "bob" / "layers.py"]
    assert [(n, w) for n, _, w in runner.from_paths(paths)] == [("alice", ""), ("bob", "")]
    named = runner.from_paths([CLASS / "alice" / "layers.py", HERE / "scripts" / "nnfs_layers.py"])
    assert len({n for n, _, _ in named}) == 2
    with pytest.raises(runner.ClassError, match="no such file"):
        runner.from_paths([tmp_path / "nobody.py"])


def test_a_submission_folder_with_several_files_asks_for_file(tmp_path):
    shutil.copytree(CLASS / "alice", tmp_path / "alice")
    (tmp_path / "alice" / "solver.py").write_text("x = 1\n")
    (tmp_path / "bob").mkdir()
    [(_, _, why)] = [s for s in runner.from_folder(tmp_path) if s[0] == "alice"]
    assert "several .py files" in why and "--file" in why
    chosen = {n: w for n, _, w in runner.from_folder(tmp_path, "layers.py")}
    assert chosen == {"alice": "", "bob": "no layers.py in the submission"}


def test_a_hanging_submission_is_stopped_whole(tmp_path):
    (tmp_path / "hangs").mkdir()
    (tmp_path / "hangs" / "layers.py").write_text(
        "import time\n\ndef relu_forward(x):\n    while True:\n        time.sleep(0.05)\n\n"
        "def relu_backward(dout, cache):\n    return dout\n")
    run = gradmatrix_cli("check", "--class", tmp_path, "--out", tmp_path / "out", *QUICK,
                         "--submission-timeout", "4", "--case-timeout", "0")  # it never returns until then
    assert run.returncode == 0, run.stdout + run.stderr
    [row] = json.loads((tmp_path / "out" / "class.json").read_text())["submissions"]
    assert row["message"].startswith("stopped after 4 s (--submission-timeout)")
