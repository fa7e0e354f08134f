"""One engine under every entry point (``gradmatrix.engine``): the command runs no pytest, so
a folder's pytest configuration or another suite's properties cannot touch its verdict; the
code under test cannot reach the judge; a run that ends without a verdict leaves its report
directory marked (issue "One engine", each scenario there)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gradmatrix
from cli_helpers import gradmatrix as gradmatrix_cli
from gradmatrix.engine import Request, Session, parts

HERE = Path(__file__).parent
GOOD = "from gradmatrix.manual import relu_forward, relu_backward\n"
QUICK = ["--ops", "relu", "--seeds", "1", "--oracles", "torch", "numeric", "--modes", "reverse",
         "--progress", "none", "--format", "json"]


@pytest.mark.parametrize("ini", [
    '[pytest]\naddopts = -k "not kink"\n',
    "[pytest]\naddopts = --lf\n",
    "[pytest]\npython_functions = check_*\n",
    "[pytest]\naddopts = -x -p no:randomly --strict-markers\n",
], ids=["addopts-k", "addopts-lf", "python-functions", "addopts-x"])
def test_a_folders_pytest_configuration_changes_nothing(tmp_path, ini):
    (tmp_path / "pytest.ini").write_text(ini)
    (tmp_path / "good.py").write_text(GOOD)
    run = gradmatrix_cli("check", "good.py", *QUICK, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS: good agrees in all" in run.stdout
    document = json.loads((tmp_path / "gradmatrix-report" / "agreement.json").read_text())
    assert document["summary"]["complete"] and document["summary"]["passed"]


def test_a_declared_layer_with_a_bracket_in_its_params_is_checked(tmp_path):
    (tmp_path / "labelled.py").write_text(
        "import numpy as np\nimport gradmatrix\n\n"
        "@gradmatrix.layer(shapes={'x': (3, 4)}, params={'label': 'v[1]'})\n"
        "def scaled_forward(x, label):\n    return 2.0 * x, None\n\n"
        "def scaled_backward(dout, cache):\n    return 2.0 * dout\n")
    run = gradmatrix_cli("check", "labelled.py", "--progress", "none", "--format", "json", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "INCOMPLETE" not in run.stdout and "PASS" in run.stdout


def test_another_suites_record_property_is_left_alone(tmp_path):
    (tmp_path / "test_other.py").write_text(
        "import json\n\n"
        "def test_version(record_property):\n    record_property('gradmatrix', 'version 2')\n\n"
        "def test_json(record_property):\n"
        "    record_property('gradmatrix', json.dumps({'id': 'x', 'verdict': 'agree'}))\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_other.py"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "INTERNALERROR" not in run.stdout and not (tmp_path / "gradmatrix-report").exists()


def test_a_candidate_loosening_the_judges_tolerances_fails(tmp_path):
    run = gradmatrix_cli("check", HERE / "isolation" / "tamper_tolerances.py", *QUICK, cwd=tmp_path)
    assert run.returncode == 1 and "FAIL:" in run.stdout, run.stdout + run.stderr


FORGE = (
    "import atexit, json, os\nimport numpy as np\n\n"
    "def forge():\n"
    "    # 0 wherever the judge might keep a verdict or exit status, and a passing report where it writes its own\n"
    "    for name, value in os.environ.items():\n"
    "        if 'GRADMATRIX' in name and os.path.isabs(value):\n"
    "            try:\n"
    "                open(value, 'w').write('0')\n"
    "            except OSError:  # a folder (the store's, GRADMATRIX_JAX_CACHE): the next one\n"
    "                pass\n"
    "    os.makedirs('gradmatrix-report', exist_ok=True)\n"
    "    with open(os.path.join('gradmatrix-report', 'agreement.json'), 'w') as f:\n"
    "        json.dump({'summary': {'passed': True, 'complete': True}, 'findings': []}, f)\n\n"
    "def relu_forward(x):\n    return np.maximum(0, x), x\n\n")


@pytest.mark.parametrize("module, status, said", [
    # wrong everywhere; forges as it runs, and at its process's end forges again and exits 0
    (FORGE + "def relu_backward(dout, cache):\n    forge()\n    return -dout\n\n"
             "atexit.register(lambda: (forge(), os._exit(0)))\n", 1, "FAIL: forges disagrees"),
    # wrong on the small cases; ends its process (status 0) in the backward of the others
    (FORGE + "def relu_backward(dout, cache):\n    forge()\n    if cache.shape[0] > 4:\n        os._exit(0)\n"
             "    return -dout\n", 2, "its process ended (exit status 0)"),
], ids=["at-exit", "in-backward"])
def test_a_candidate_writing_an_exit_status_for_the_judge_cannot_set_it(tmp_path, module, status, said):
    # what the candidate does in its worker ends with the worker: the judge's status and
    # report are its own, written once the worker is gone
    (tmp_path / "forges.py").write_text(module)
    run = gradmatrix_cli("check", "forges.py", *QUICK, cwd=tmp_path)
    assert run.returncode == status and said in run.stdout and "PASS" not in run.stdout, run.stdout + run.stderr
    document = json.loads((tmp_path / "gradmatrix-report" / "agreement.json").read_text())
    assert not document["summary"]["passed"] and document["findings"]


@pytest.mark.parametrize("module", ["seterr_raise.py", "chdir_and_dtype.py"])
def test_what_a_candidate_changes_at_import_stays_in_its_process(tmp_path, module):
    run = gradmatrix_cli("check", HERE / "isolation" / module, *QUICK, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "gradmatrix-report" / "agreement.json").exists()  # --out resolved before the import
    assert not (tmp_path / "gradmatrix-report" / "agreement.in-progress").exists()


@pytest.mark.parametrize("module", ["probe_hang.py", "loops_in_backward.py"])
def test_a_hang_ends_at_the_time_limit(tmp_path, module):
    started = time.monotonic()
    # the scenario as it was reported: --case-timeout 3 ends each within 30 s, exit 2
    run = gradmatrix_cli("check", HERE / "isolation" / module, *QUICK, "--case-timeout", "3", cwd=tmp_path)
    assert time.monotonic() - started < 30  # a new interpreter, its frameworks, the cases up to the limit
    assert run.returncode == 2, run.stdout + run.stderr
    assert "time limit of 3 s" in (tmp_path / "gradmatrix-report" / "agreement.json").read_text()


@pytest.mark.parametrize("body", ["import sys\nsys.exit(0)\n", "import unittest\nunittest.main()\n"],
                         ids=["sys-exit", "unittest-main"])
def test_ending_the_process_at_import_leaves_no_unmarked_pass(tmp_path, body):
    # the process ends in a module the file imports (a top-level call of the file itself is
    # not run: oracles/scripts.py)
    (tmp_path / "good.py").write_text(GOOD)
    assert gradmatrix_cli("check", "good.py", *QUICK, cwd=tmp_path).returncode == 0
    (tmp_path / "quits.py").write_text(body)
    (tmp_path / "good.py").write_text(GOOD + "import quits\n")
    run = gradmatrix_cli("check", "good.py", *QUICK, cwd=tmp_path)
    assert run.returncode == 2 and "SystemExit" in run.stderr, run.stdout + run.stderr
    out = tmp_path / "gradmatrix-report"
    assert not (out / "agreement.json").exists() and (out / "agreement.in-progress").exists()
    assert json.loads((out / "previous" / "agreement.json").read_text())["summary"]["passed"]


def test_the_command_and_the_api_give_the_same_records(tmp_path):
    path = HERE / "one_bug" / "relu_sign_error.py"
    run = gradmatrix_cli("check", path, *QUICK, cwd=tmp_path)
    assert run.returncode == 1
    command = json.loads((tmp_path / "gradmatrix-report" / "agreement.json").read_text())["comparisons"]
    api = gradmatrix.check(str(path), ops="relu", seeds=1, oracles=("torch", "numeric"), modes="reverse")
    assert [(r["id"], r["verdict"]) for r in command] == [(r["id"], r["verdict"]) for r in api.document["comparisons"]]


def test_parts_keep_each_shape_whole_and_cover_the_plan():
    session = Session(Request(ops=("relu", "affine"), modes=("reverse",)))
    try:
        split = parts(session.comparisons, 3)
    finally:
        session.close()
    assert sorted(c.id for p in split for c in p) == sorted(c.id for c in session.comparisons)
    groups = [{f"{c.case.op}{c.case.dims}{c.case.dtype}{c.case.kind}" for c in p} for p in split]
    assert all(not a & b for i, a in enumerate(groups) for b in groups[i + 1:])


def test_worker_processes_give_the_records_of_one_process(tmp_path):
    path = str(HERE / "one_bug" / "relu_sign_error.py")
    options = dict(ops="relu", seeds=1, oracles=("torch", "numeric"), modes="reverse")
    one = gradmatrix.check(path, **options)
    two = gradmatrix.check(path, workers=2, **options)
    assert two.document["summary"]["complete"]
    strip = lambda d: [{k: v for k, v in r.items() if k != "at_highest_precision"} for r in d["comparisons"]]  # noqa: E731
    assert strip(one.document) == strip(two.document)


def test_worker_processes_keep_what_a_candidate_prints_out_of_the_records(tmp_path):
    path = tmp_path / "chatty.py"
    path.write_text("import numpy as np\nprint('at import {')\n\n"
                    "def relu_forward(x):\n    print('forward', x.shape)\n    return np.maximum(0, x), x\n\n"
                    "def relu_backward(dout, cache):\n    print('backward {')\n    return dout * (cache > 0)\n")
    result = gradmatrix.check(str(path), workers=2, ops="relu", seeds=1, oracles=("numeric",), modes="reverse")
    summary = result.document["summary"]
    assert result.status == 0 and summary["complete"] and not summary["interrupted"], summary


def test_n_names_how_many_worker_processes():
    from gradmatrix import cli

    assert [cli._worker_count(v) for v in (None, "0", "1", "3")] == [0, 0, 1, 3]
    assert cli._worker_count("auto") == (os.cpu_count() or 1)
