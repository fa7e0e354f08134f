"""The code under test runs in a process of its own (``gradmatrix.isolation``): nothing it does
at import or in its functions reaches the judge, and a hang or an exit ends as an error of
its own cases (issue "One engine", isolation)."""

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import gradmatrix
from gradmatrix.isolation import IsolatedCandidate
from gradmatrix.reports import tolerances

HERE = Path(__file__).parent / "isolation"
QUICK = dict(modes=["reverse"], oracles=("torch", "numeric"), seeds=1)


def test_a_candidate_cannot_loosen_the_judges_tolerances():
    before = dict(tolerances.TOLERANCES)
    result = gradmatrix.check(str(HERE / "tamper_tolerances.py"), **QUICK)
    assert result.status == 1 and not result.passed
    assert dict(tolerances.TOLERANCES) == before
    assert result.document["run"]["isolated"] is True


def test_numpys_error_state_set_by_a_candidate_stays_in_its_process():
    before = np.geterr()
    result = gradmatrix.check(str(HERE / "seterr_raise.py"), **QUICK)
    assert result.status == 0, [r["message"] for r in result.failures[:2]]
    assert np.geterr() == before


def test_a_candidate_changing_directory_changes_only_its_own():
    here = os.getcwd()
    result = gradmatrix.check(str(HERE / "chdir_and_dtype.py"), **QUICK)
    assert result.status == 0 and os.getcwd() == here
    assert np.get_printoptions()["precision"] == 8


def test_a_probe_that_loops_forever_swallowing_interrupts_ends_at_the_time_limit():
    started = time.monotonic()
    result = gradmatrix.check(str(HERE / "probe_hang.py"), case_timeout=3, **QUICK)
    assert time.monotonic() - started < 30
    assert result.status == 2
    assert all("time limit of 3 s" in r["message"] for r in result.failures)


def test_a_backward_that_loops_forever_in_its_cases_ends_at_the_time_limit():
    started = time.monotonic()
    result = gradmatrix.check(str(HERE / "loops_in_backward.py"), case_timeout=3, **QUICK)
    assert time.monotonic() - started < 30
    assert result.status == 2
    mine = [r for r in result.document["comparisons"] if r["pair"][0] == "loops_in_backward"]
    # the cases before the first time-out were checked; after it, the op's cases are errors at
    # once (one time-out per op, not one per case), each saying why
    assert any(r["verdict"] in ("agree", "convention") for r in mine if r["dims"]["N"] <= 8)
    assert all("time limit" in r["message"] for r in mine if r["verdict"] == "error")
    assert any(r["verdict"] == "error" for r in mine if r["dims"]["N"] > 8)


def test_the_time_limit_holds_when_the_check_runs_in_another_thread():
    results = []
    thread = threading.Thread(target=lambda: results.append(
        gradmatrix.check(str(HERE / "loops_in_backward.py"), case_timeout=3, ops=["relu"], **QUICK)))
    started = time.monotonic()
    thread.start()
    thread.join(60)
    assert not thread.is_alive() and time.monotonic() - started < 30
    assert results[0].status == 2


def test_a_candidate_ending_its_process_is_an_error_of_its_cases_and_the_judge_goes_on():
    result = gradmatrix.check(str(HERE / "exits_in_backward.py"), **QUICK)
    assert result.status == 2
    ended = [r for r in result.failures if "process ended (exit status 0)" in r["message"]]
    assert ended
    # the references' comparisons of the same cases are all there
    assert all(r["verdict"] in ("agree", "convention") for r in result.document["comparisons"]
               if "exits_in_backward" not in r["pair"])


def test_sys_exit_at_import_is_an_import_error(tmp_path):
    (tmp_path / "quits.py").write_text("import sys\nsys.exit(0)\n")
    path = tmp_path / "exits_at_import.py"
    path.write_text("import quits\n")  # a top-level sys.exit of the file itself is not run (oracles/scripts.py)
    with pytest.raises(ImportError, match="SystemExit"):
        IsolatedCandidate(str(path))


def test_an_isolated_candidate_gives_the_same_records_as_one_in_process():
    from gradmatrix.oracles.candidate import load_module

    path = str(Path(__file__).parent / "one_bug" / "relu_sign_error.py")
    isolated = gradmatrix.check(path, **QUICK)
    in_process = gradmatrix.check(load_module(path), **QUICK)
    assert isolated.document["run"]["isolated"] and not in_process.document["run"]["isolated"]
    # the same records but for the module's name in the commands that reproduce them
    named = ("message", "reproduce", "at_highest_precision")
    strip = lambda d: [{k: v for k, v in r.items() if k not in named} for r in d["comparisons"]]  # noqa: E731
    assert strip(isolated.document) == strip(in_process.document)


def test_a_script_calling_check_without_a_main_guard_runs_once(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "my_check.py"
    script.write_text("import gradmatrix\n"
                      "print('top level')\n"
                      f"r = gradmatrix.check({str(Path(__file__).parent / 'one_bug' / 'relu_sign_error.py')!r}, "
                      "modes=['reverse'], oracles=('numeric',), seeds=1)\n"
                      "print('status', r.status)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.stdout.splitlines() == ["top level", "status 1"], done.stdout + done.stderr


def test_the_worker_never_opens_a_window(tmp_path):
    # a script's top-level plt.show() runs guarded (oracles.scripts); with a display it would
    # block until closed, so the worker's matplotlib backend is one without windows
    (tmp_path / "plots.py").write_text(
        "import os\nimport numpy as np\n\n\ndef relu_forward(x):\n"
        "    assert os.environ.get('MPLBACKEND') == 'Agg', os.environ.get('MPLBACKEND')\n"
        "    return np.maximum(0, x), x\n\n\ndef relu_backward(dout, x):\n    return dout * (x > 0)\n")
    result = gradmatrix.check(str(tmp_path / "plots.py"), **QUICK)
    assert result.status == 0, [r["message"] for r in result.failures][:2]
