"""Files that are scripts, and Python 2 files (``oracles/scripts.py``): a notebook exported to
``.py`` with its training and plotting cells, a "Neural Networks from Scratch" file calling
``nnfs.init()`` and training at import, tests run at the bottom with no ``__main__`` guard,
are checked on their definitions, and the report says which statements did not run; a
Python 2 file gets one line naming the problem and the fix, exit status 2."""

import json
import shutil
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from cli_helpers import gradmatrix as gradmatrix_cli
from gradmatrix.oracles import scripts
from gradmatrix.oracles.candidate import Candidate, load_module

HERE = Path(__file__).parent
SCRIPTS = HERE / "scripts"
QUICK = ["--ops", "relu", "affine", "--seeds", "1", "--dtypes", "float64", "--oracles", "torch", "numeric",
         "--modes", "reverse", "--progress", "none", "--format", "json"]
RELU = ("import numpy as np\n\n\ndef relu_forward(x):\n    return np.maximum(0, x), x\n\n\n"
        "def relu_backward(dout, cache):\n    return dout * (cache > 0)\n")


def _skipped(tmp_path, source: str, name: str = "student.py") -> tuple:
    """Load ``source`` as a file: (the module, its skipped statements by line)."""
    path = tmp_path / name
    path.write_text(source)
    module = load_module(str(path))
    return module, {e["line"]: e for e in Candidate(module).skipped}


def test_a_notebook_export_is_checked_on_its_definitions(tmp_path):
    run = gradmatrix_cli("check", SCRIPTS / "notebook_layers.py", *QUICK, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS: notebook_layers agrees" in run.stdout
    line = next(l for l in run.stdout.splitlines() if "is a script" in l)
    assert "top-level statements not run" in line and "an IPython call" in line
    document = json.loads((tmp_path / "gradmatrix-report" / "agreement.json").read_text())
    skipped = {e["statement"]: e for e in document["run"]["skipped_statements"]}
    assert skipped["solver.train()"]["reason"] == "it raised"  # solver = Solver(...) found no data: never made
    assert skipped["get_ipython().run_line_magic('matplotlib', 'inline')"]["line"] == 18
    assert skipped["for k, v in list(data.items()):"]["reason"] == "a loop"
    assert skipped["out, _ = affine_forward(x, w, b)"]["detail"] == "calls affine_forward, defined in this file"
    assert document["run"]["candidate_ops"] == ["relu", "affine"]


def test_names_defined_by_globals_update_are_kept(tmp_path):
    module, skipped = _skipped(tmp_path, "from gradmatrix import manual\n"
                               "globals().update({k: getattr(manual, k) for k in ('relu_forward', 'relu_backward')})\n"
                               "print(relu_forward)\n")
    assert Candidate(module).ops == ["relu"] and set(skipped) == set()


def test_calls_the_definitions_depend_on_are_kept(tmp_path):
    # a sibling module found through sys.path.insert, and a custom_vjp rule completed by
    # defvjp: both run; the training call on a value and the print beside them do not
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "shared.py").write_text(RELU)
    module, skipped = _skipped(tmp_path, "import os, sys\n"
                               "sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'helpers'))\n"
                               "from shared import relu_forward, relu_backward\n"
                               "import jax, jax.numpy as jnp\n\n"
                               "@jax.custom_vjp\ndef scale(x):\n    return 2 * x\n\n"
                               "scale.defvjp(lambda x: (2 * x, None), lambda _, g: (2 * g,))\n"
                               "model = {}\nmodel.clear()\nprint(scale(1.0))\n")
    assert Candidate(module).ops == ["relu"]
    assert float(jax.grad(module.scale)(1.0)) == 2.0  # the rule was defined
    assert set(skipped) == {13}  # print(scale(1.0)) calls the file's own function: test code


def test_a_clean_module_is_imported_as_it_is(tmp_path):
    module, skipped = _skipped(tmp_path, RELU + "EPS = 1e-8\nif __name__ == '__main__':\n    print(1)\n")
    assert skipped == {} and module.EPS == 1e-8
    assert not hasattr(module, scripts.SKIPPED)  # no script loading at all
    # the course's files are modules: nothing skipped
    assert Candidate(load_module(str(HERE / "cs231n" / "layers.py"))).skipped == []


def test_top_level_code_that_trains_reads_or_exits_does_not_run(tmp_path):
    marker = tmp_path / "trained.txt"
    source = RELU + (
        "import sys\n"
        "data = np.load('cifar10_train.npy')\n"                 # 11: a data file that is not there
        f"with open({str(marker)!r}, 'w') as f:\n"              # 12: writes a file
        "    f.write('trained')\n"
        "while True:\n"                                          # 14: would never end
        "    pass\n"
        "out, cache = relu_forward(np.ones(3))\n"               # 16: the file's own test code
        "sys.exit(main())\n"                                     # 17: no __main__ guard
        "SCALE = 2.0\n")
    module, skipped = _skipped(tmp_path, source)
    assert not marker.exists() and module.SCALE == 2.0 and callable(module.relu_backward)
    assert skipped[11]["reason"] == "it raised" and "FileNotFoundError" in skipped[11]["detail"]
    assert skipped[12]["reason"] == "a with block" and skipped[14]["reason"] == "a loop"
    assert skipped[16]["reason"] == "test or training code"
    assert skipped[17]["reason"] == "it raised"  # sys.exit(main()): no main here, NameError
    assert set(skipped) == {11, 12, 14, 16, 17}


def test_an_assignment_that_ends_the_process_or_runs_too_long_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(scripts, "STATEMENT_TIME_LIMIT", 0.5)
    source = RELU + ("import argparse, time\n"
                     "args = argparse.ArgumentParser().parse_args(['--epochs', '3'])\n"  # 11: SystemExit(2)
                     "slept = time.sleep(30)\n"                                          # 12: past the limit
                     "rng = np.random.default_rng(0)\n")                                 # 13: runs
    module, skipped = _skipped(tmp_path, source)
    assert skipped[11]["reason"] == "it ended the process" and skipped[11]["detail"] == "SystemExit(2)"
    assert skipped[12]["reason"] == "it ran too long"
    assert isinstance(module.rng, np.random.Generator) and set(skipped) == {11, 12}


def test_ipython_magic_lines_are_skipped(tmp_path):
    module, skipped = _skipped(tmp_path, "%matplotlib inline\n!pip install nnfs\n" + RELU
                               + "x = (3\n% 2)\n")  # a % continuing an expression is Python, not a magic
    assert skipped[1]["reason"] == skipped[2]["reason"] == "an IPython magic"
    assert set(skipped) == {1, 2} and module.x == 1


def test_a_failing_import_is_skipped_in_a_script_only(tmp_path):
    module, skipped = _skipped(tmp_path, "import matplotlib_not_here.pyplot as plt\n" + RELU + "plt.show()\n")
    assert skipped[1]["reason"] == "the import failed" and "matplotlib_not_here" in skipped[1]["detail"]
    with pytest.raises(ImportError, match="matplotlib_not_here"):  # a module: the import error, as before
        _skipped(tmp_path, "import matplotlib_not_here\n" + RELU, "module.py")


def test_nnfs_init_at_import_is_not_run(tmp_path):
    """``nnfs.init()`` makes ``np.dot`` compute in float32: run at import, a correct float64
    affine layer would fail; skipped, it passes."""
    for name in ("nnfs_layers.py", "nnfs"):
        copy = shutil.copytree if name == "nnfs" else shutil.copy
        copy(SCRIPTS / name, tmp_path / name)
    run = gradmatrix_cli("check", "nnfs_layers.py", *QUICK, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    document = json.loads((tmp_path / "gradmatrix-report" / "agreement.json").read_text())
    assert {e["statement"]: e["reason"] for e in document["run"]["skipped_statements"]} == {
        "nnfs.init()": "it changes numpy for the whole process", "for epoch in range(101):": "a loop"}
    # the class, not the example: the change is undone however the file makes it (an
    # assignment, a sibling module it imports), and the file still passes
    (tmp_path / "setup_nnfs.py").write_text("import nnfs\nnnfs.init()\n")
    for variant, change in (("assigned", "_ = nnfs.init()"), ("imported", "import setup_nnfs")):
        text = (tmp_path / "nnfs_layers.py").read_text().replace("nnfs.init()", change)
        (tmp_path / f"nnfs_{variant}.py").write_text(text)
        run = gradmatrix_cli("check", f"nnfs_{variant}.py", *QUICK, cwd=tmp_path)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "it changes numpy for the whole process" in run.stdout


def test_nnfs_init_does_change_numpy_for_the_process():
    """The control: what the stand-in does is what the book's package does, a float32 np.dot."""
    sys.path.insert(0, str(SCRIPTS))
    dot = np.dot
    try:
        import nnfs

        nnfs.init()
        assert np.dot(np.ones((2, 2)), np.ones(2)).dtype == np.float32
    finally:
        np.dot = dot
        sys.path.remove(str(SCRIPTS))


def test_a_sibling_that_ends_the_process_at_import_still_stops_the_check(tmp_path):
    (tmp_path / "helpers.py").write_text("import sys\nsys.exit(0)\n")
    (tmp_path / "student.py").write_text("from helpers import *\n" + RELU + "relu_forward(np.ones(2))\n")
    run = gradmatrix_cli("check", "student.py", *QUICK, cwd=tmp_path)
    assert run.returncode == 2 and "SystemExit(0)" in run.stderr, run.stdout + run.stderr


@pytest.mark.parametrize("name, says", [
    ("python2_layers.py", "written for Python 2: except E, e at line 28 (`except ValueError, e:`)"),
    ("xrange_only.py", "written for Python 2: `xrange` at line 11"),
])
def test_a_python2_file_gets_one_line_with_the_fix(tmp_path, name, says):
    run = gradmatrix_cli("check", SCRIPTS / name, *QUICK, cwd=tmp_path)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and f"2to3 -w {name}" in lines[0], run.stderr
    assert "Traceback" not in run.stderr + run.stdout


@pytest.mark.parametrize("line, what", [
    ("    print 'loss', loss", "a print statement"),
    ("    raise ValueError, 'bad shape'", "raise E, message"),
    ("    exec 'x = 1'", "an exec statement"),
])
def test_python2_syntax_is_named_by_line(tmp_path, line, what):
    source = f'def f(loss):\n    """print this and that\n    print a docstring line"""\n{line}\n'
    with pytest.raises(scripts.Python2Source, match=f"{what} at line 4"):
        scripts.parse(source, tmp_path / "old.py")


def test_python3_syntax_errors_stay_syntax_errors(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text(RELU + "def oops(:\n    pass\n")
    with pytest.raises(ImportError, match="SyntaxError") as caught:
        load_module(str(path))
    assert not isinstance(caught.value, scripts.Python2Source)
    # a print that is a function call, with a space, is Python 3
    assert scripts.python2_syntax("print (x)\nprint(x, file=f)\nprint = 3\n", path) is None
