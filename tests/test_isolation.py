"""The code under test runs in a process of its own (``gradmatrix.isolation``): nothing it does
at import or in its functions reaches the judge, and a hang or an exit ends as an error of
its own cases (issue "One engine", isolation)."""

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import gradmatrix
from cli_helpers import gradmatrix as gradmatrix_cli
from gradmatrix.isolation import IsolatedCandidate
from gradmatrix.reports import tolerances

HERE = Path(__file__).parent / "isolation"
QUICK = dict(modes=["reverse"], oracles=("torch", "numeric"), seeds=1)
# the time limit of the hangs of a catalog op's candidate: the worker runs only its NumPy code
# (milliseconds a case), and each hang spins a core until the limit
LIMIT = 1.5


# each scenario for a catalog op (relu) and for a layer the module declares itself (square)
@pytest.mark.parametrize("module, op", [("tamper_tolerances.py", "relu"), ("tamper_tolerances_layer.py", "square")])
def test_a_candidate_cannot_loosen_the_judges_tolerances(module, op):
    before = dict(tolerances.TOLERANCES)
    result = gradmatrix.check(str(HERE / module), **QUICK)
    assert result.status == 1 and not result.passed
    assert {r["op"] for r in result.failures} == {op}
    assert dict(tolerances.TOLERANCES) == before
    assert result.document["run"]["isolated"] is True


@pytest.mark.parametrize("module", ["seterr_raise.py", "seterr_raise_layer.py"])
def test_numpys_error_state_set_by_a_candidate_stays_in_its_process(module):
    before = np.geterr()
    result = gradmatrix.check(str(HERE / module), **QUICK)
    assert result.status == 0, [r["message"] for r in result.failures[:2]]
    assert result.document["run"]["isolated"] is True
    assert np.geterr() == before


@pytest.mark.parametrize("module", ["chdir_and_dtype.py", "chdir_layer.py"])
def test_a_candidate_changing_directory_changes_only_its_own(module):
    here = os.getcwd()
    result = gradmatrix.check(str(HERE / module), **QUICK)
    assert result.status == 0 and os.getcwd() == here
    assert result.document["run"]["isolated"] is True
    assert np.get_printoptions()["precision"] == 8


def test_a_probe_that_loops_forever_swallowing_interrupts_ends_at_the_time_limit():
    started = time.monotonic()
    result = gradmatrix.check(str(HERE / "probe_hang.py"), case_timeout=LIMIT, **QUICK)
    assert time.monotonic() - started < 30
    assert result.status == 2
    assert all(f"time limit of {LIMIT:g} s" in r["message"] for r in result.failures)


def test_a_backward_that_loops_forever_in_its_cases_ends_at_the_time_limit():
    started = time.monotonic()
    result = gradmatrix.check(str(HERE / "loops_in_backward.py"), case_timeout=LIMIT, **QUICK)
    assert time.monotonic() - started < 30
    assert result.status == 2
    mine = [r for r in result.document["comparisons"] if r["pair"][0] == "loops_in_backward"]
    # the cases before the first time-out were checked; after it, the op's cases are errors at
    # once (one time-out per op, not one per case), each saying why
    assert any(r["verdict"] in ("agree", "convention") for r in mine if r["dims"]["N"] <= 8)
    assert all("time limit" in r["message"] for r in mine if r["verdict"] == "error")
    assert any(r["verdict"] == "error" for r in mine if r["dims"]["N"] > 8)


@pytest.mark.parametrize("module", ["loops_in_backward.py", "probe_hang.py"])  # in its cases; in the probe at load
def test_the_time_limit_holds_when_the_check_runs_in_another_thread(module):
    results = []
    thread = threading.Thread(target=lambda: results.append(
        gradmatrix.check(str(HERE / module), case_timeout=LIMIT, ops=["relu"], **QUICK)))
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


# --- a module that declares layers of its own: all its code runs in the worker ---

LAYERS = Path(__file__).parent / "layers"
NAMED = ("message", "reproduce", "at_highest_precision")  # the module's name is in these


def _records(document) -> list:
    return [{k: v for k, v in r.items() if k not in NAMED} for r in document["comparisons"]]


def _gelu_and_its_broken_twin(folder: Path) -> Path:
    path = folder / "my_layers.py"
    path.write_text((LAYERS / "gelu.py").read_text() + '\ngelu_broken = gradmatrix.layer(gelu_forward, '
                    'gelu_backward_wrong_sign, shapes={"x": (4, 5)}, name="gelu_broken")\n')
    return path


@pytest.mark.parametrize("module, status", [("gelu_and_broken", 1), ("huber", 0), ("reference_raises", 1)])
def test_a_declared_layer_checked_in_its_worker_gives_the_records_it_gets_in_process(module, status, tmp_path):
    from gradmatrix.oracles.candidate import load_module

    path = str({"gelu_and_broken": _gelu_and_its_broken_twin(tmp_path), "huber": LAYERS / "huber.py",
                "reference_raises": HERE / "reference_raises_layer.py"}[module])
    # every mode (jvp and hvp cases, <candidate>.fd) and, for the loss, low precision against float64
    options = dict(seeds=1, dtypes=["float64", "float32", "bfloat16"] if module == "huber" else None)
    isolated = gradmatrix.check(path, **options)
    in_process = gradmatrix.check(load_module(path), **options)
    assert isolated.document["run"]["isolated"] is True and in_process.document["run"]["isolated"] is False
    assert isolated.status == in_process.status == status
    assert _records(isolated.document) == _records(in_process.document)
    kinds = {r["case_kind"] for r in isolated.document["comparisons"]}
    assert {"random", "jvp"} <= kinds and ("hvp" in kinds) == ("low-precision" in kinds) == (module == "huber")
    if module == "gelu_and_broken":
        assert {r["op"] for r in isolated.failures} == {"gelu_broken"}
    if module == "reference_raises":  # the reference's exception, as data: named, with its frames
        errors = [r for r in isolated.failures if r["verdict"] == "error"]
        assert errors and all(r["dtype"] == "float32" and r["error"]["exception"] == "ValueError" for r in errors)
        assert all("written for float64 only" in r["message"] and "square_reference" in r["traceback"]
                   for r in errors)


def test_no_code_of_a_declaring_module_runs_in_the_judges_process(tmp_path, monkeypatch):
    notes = tmp_path / "notes.txt"
    monkeypatch.setenv("GRADMATRIX_TEST_NOTES", str(notes))
    result = gradmatrix.check(str(HERE / "layer_notes_its_process.py"), seeds=1)
    assert result.status == 0, [r["message"] for r in result.failures][:2]
    assert result.document["run"]["isolated"] is True
    assert result.document["run"]["candidate_ops"] == ["softplus", "scaled"]
    noted = [line.split() for line in notes.read_text().splitlines()]
    assert {what for what, _ in noted} == {"draw", "reference", "forward", "backward", "sampler"}
    assert str(os.getpid()) not in {pid for _, pid in noted}


def test_a_declaring_module_changing_directory_leaves_the_reports_where_asked(tmp_path):
    run = gradmatrix_cli("check", HERE / "chdir_layer.py", "--seeds", "1", "--modes", "reverse", "--out", "report",
                         "--format", "json", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads((tmp_path / "report" / "agreement.json").read_text())["run"]["isolated"] is True


def test_a_declaring_module_ending_its_process_at_import_is_not_checked(tmp_path):
    (tmp_path / "quits.py").write_text("import sys\nsys.exit(0)\n")
    path = tmp_path / "declares_then_quits.py"
    path.write_text("import gradmatrix\n\n\n@gradmatrix.layer(shapes={'x': (3,)})\ndef double_forward(x):\n"
                    "    return 2 * x, None\n\n\ndef double_backward(dout, cache):\n    return 2 * dout\n\n\n"
                    "import quits  # noqa: E402\n")
    run = gradmatrix_cli("check", path, cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "SystemExit" in run.stderr
    assert not any("PASS" in line for line in run.stdout.splitlines()), run.stdout


@pytest.mark.parametrize("module, said", [
    ("loops_in_forward_layer.py", "building layer 'stuck' runs its forward"),  # at load: the output's shape
    ("loops_in_reference_layer.py", "time limit of 3 s"),  # in the oracles, on the cases
])
def test_a_declared_layer_looping_forever_ends_at_the_time_limit(module, said, tmp_path):
    started = time.monotonic()
    run = gradmatrix_cli("check", HERE / module, "--case-timeout", "3", "--seeds", "1", "--format", "json",
                         cwd=tmp_path)
    assert time.monotonic() - started < 30
    assert run.returncode == 2, run.stdout + run.stderr
    assert said in run.stdout + run.stderr
    if module == "loops_in_reference_layer.py":
        document = json.loads((tmp_path / "gradmatrix-report" / "agreement.json").read_text())
        assert document["run"]["isolated"] is True
        assert not any(line.startswith("PASS") for line in run.stdout.splitlines())


@pytest.mark.xdist_group("framework_functions")
@pytest.mark.parametrize("module, status", [("framework_functions_right.py", 0), ("framework_functions_wrong.py", 1)])
def test_a_module_declaring_framework_functions_is_checked_in_its_worker_with_the_records_of_one_in_process(
        module, status, framework_functions_checked):
    # their own checks (low precision, rerun, second order) are measured in the worker and
    # judged here (gradmatrix.isolation's docstring): the same ids and verdicts as in-process.
    # The isolated check is the command's (the same check test_custom_backward reads), the
    # records of gradmatrix.check's (test_engine shows the command and the API give the same)
    from gradmatrix.checker import CheckResult
    from gradmatrix.oracles.candidate import load_module

    isolated = CheckResult(framework_functions_checked(module)[1])
    in_process = gradmatrix.check(load_module(str(LAYERS / module)), seeds=1)
    assert isolated.document["run"]["isolated"] is True and in_process.document["run"]["isolated"] is False
    assert isolated.status == in_process.status == status
    verdicts = lambda d: [(r["id"], r["verdict"]) for r in d["comparisons"]]  # noqa: E731
    assert verdicts(isolated.document) == verdicts(in_process.document)
    assert _records(isolated.document) == _records(in_process.document)
    assert isolated.document["run"]["framework_checks"] == in_process.document["run"]["framework_checks"]
    kinds = {r["case_kind"] for r in isolated.document["comparisons"]}
    assert {"low-precision", "rerun", "second-order"} <= kinds


def test_a_framework_function_s_reference_raising_in_its_worker_comes_back_as_data_blamed_on_it(tmp_path):
    # the exception raised in the worker's check travels by name and message; the judge
    # blames the reference (framework_layers._error_record), as in-process
    (tmp_path / "raising_reference.py").write_text(
        "import sys\nsys.path.insert(0, " + repr(str(LAYERS)) + ")\n"
        "from custom_backward import Gelu\n\nimport gradmatrix\n\n\n"
        "def raising_reference(x):\n    raise RuntimeError(\"the reference's own bug\")\n\n\n"
        "gelu = gradmatrix.layer(Gelu.apply, shapes={'x': (4, 5)}, reference=raising_reference, framework='torch',\n"
        "                        dtypes=('bfloat16',), runs=1, name='gelu')\n")
    result = gradmatrix.check(str(tmp_path / "raising_reference.py"), seeds=1)
    assert result.document["run"]["isolated"] is True and result.status == 1
    (record,) = [r for r in result.document["comparisons"] if r["case_kind"] == "low-precision"]
    assert record["verdict"] == "error" and record["error"] == {"impl": "torch", "exception": "RuntimeError",
                                                           "said": "the reference's own bug"}
    assert record["message"].startswith("the reference torch failed: RuntimeError: the reference's own bug")
