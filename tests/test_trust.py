"""Never a false PASS: each way the harness once said "agree" for a wrong gradient, or
mistreated correct code, as a test (issue "Never a false PASS", scenarios numbered there)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import gradmatrix
from gradmatrix import manual
from gradmatrix.oracles.candidate import Candidate, candidate_name, load_module
from gradmatrix.runner import Runner

QUICK = dict(oracles=("torch", "numeric"), seeds=1, modes=["reverse"])
WRONG_DB = ("from gradmatrix.manual import affine_forward\n"
            "from gradmatrix.manual import affine_backward as _ab\n\n"
            "def affine_backward(dout, cache):\n"
            "    dx, dw, db = _ab(dout, cache)\n"
            "    return dx, dw, db * 1.5  # wrong by 1.5x\n")


def test_an_edit_keeping_the_file_s_size_and_second_is_the_code_checked(tmp_path, monkeypatch):
    # Python's cached bytecode stands for a source of the same size and modification second:
    # a sign fixed within the second of the last check must still be what is checked
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "signs.py"
    for sign in ("+", "-"):
        target.write_text(f"def relu_backward(dout, cache):\n    return {sign}dout\n")
        os.utime(target, ns=(1_700_000_000_000_000_000,) * 2)
        module = load_module("signs.py")
        assert module.relu_backward(np.ones(2), None).tolist() == ([1.0, 1.0] if sign == "+" else [-1.0, -1.0])
    # its tracebacks name the file wherever the process goes next
    assert module.relu_backward.__code__.co_filename == str(target)


# 1. a candidate never stands in for an oracle of the same name -------------------------

@pytest.mark.parametrize("stem", ["numeric", "torch", "jax", "mylayers"])
def test_a_candidate_named_like_an_oracle_is_still_checked(tmp_path, stem):
    path = tmp_path / f"{stem}.py"
    path.write_text(WRONG_DB)
    result = gradmatrix.check(str(path), ["affine"], **QUICK)
    name = result.document["run"]["candidate"]
    assert name == (stem if stem == "mylayers" else f"candidate:{stem}")
    assert result.status == 1 and not result.passed
    mine = [r for r in result.document["comparisons"] if r["pair"][0] == name]
    assert {r["pair"][1] for r in mine} == {"torch", "numeric"}
    assert any("db (" in r["message"] for r in mine if r["verdict"] == "disagree")


def test_a_candidates_folder_never_shadows_a_framework_imported_later(tmp_path):
    # a student's folder holding a jax.py: after checking a file there, `import jax` in the
    # same process (the JAX oracle, loaded later) must still find the installed framework
    (tmp_path / "jax.py").write_text("raise ImportError('the student file, not the framework')\n")
    (tmp_path / "helpers.py").write_text("def twice(x):\n    return 2 * x\n")
    (tmp_path / "mine.py").write_text("from helpers import twice\n")
    module = load_module(str(tmp_path / "mine.py"))
    assert module.twice(3) == 6
    assert Path(importlib.util.find_spec("jax").origin).parent != tmp_path
    assert str(tmp_path) in sys.path  # still importable from, behind the installed packages


def test_candidate_names_keep_out_of_the_oracles_namespace():
    assert [candidate_name(n) for n in ("numeric", "torch", "jax", "x.fd", "a~b", "layers", "manual")] == [
        "candidate:numeric", "candidate:torch", "candidate:jax", "candidate:x.fd", "candidate:a-b", "layers", "manual"]
    assert Candidate(manual, "numeric").name == "candidate:numeric"


def test_a_runner_refuses_a_candidate_named_like_an_oracle():
    impostor = Candidate(manual)
    impostor.name = "numeric"
    with pytest.raises(ValueError, match="is an oracle's"):
        Runner(impostor, ("torch", "numeric"))


# 8. what a candidate returns is copied on receipt ---------------------------------------

REUSES_BUFFERS = '''
import numpy as np
from gradmatrix.manual import sigmoid_forward as _sf

_BUFFERS = {}


def _buffer(tag, like):
    key = (tag, like.shape, like.dtype.str)
    if key not in _BUFFERS:
        _BUFFERS[key] = np.empty_like(like)
    return _BUFFERS[key]


def sigmoid_forward(x):
    out = _buffer("out", x)  # one output buffer per shape, reused by every call
    out[...] = _sf(x)[0]
    return out, (out,)


def sigmoid_backward(dout, cache):
    (out,) = cache
    out *= 1 - out  # works on the cached output in place: it is this module's scratch
    out *= dout
    return out
'''


def test_a_candidate_reusing_a_module_buffer_as_its_cache_is_caught(tmp_path):
    # its results are copied on receipt, so no comparison sees a later call's values; but its
    # cache points at a buffer the next forward overwrites, and its backward changes that
    # buffer: in a net of two such layers the first one's backward reads the second's output
    path = tmp_path / "buffers.py"
    path.write_text(REUSES_BUFFERS)
    result = gradmatrix.check(str(path), ["sigmoid"], oracles=("torch", "numeric"), seeds=2)
    assert result.status == 1
    first = result.document["findings"][0]
    assert (first["tensor"], first["pattern"]) == ("dx", "state-outside-cache")
    # the forward's values, copied on receipt, agree everywhere
    assert all(t["agree"] for r in result.document["comparisons"] for t in r["tensors"] if t["role"] == "forward")


# 3. a kink takes a derivative from the subdifferential, or it is a wrong gradient ---------

def test_relu_subgradient_distances_to_the_digit():
    from gradmatrix.oracles.kinks import relu_subgradient

    x = np.array([0.0, -0.0, 0.0, 0.0, 1.0])
    dout = np.array([2.0, 2.0, -2.0, 2.0, 1.0])
    inside = relu_subgradient({"x": np.array([0.0, 2.0, -1.0, 1.0, 5.0])}, {"x": x}, dout)["x"]
    assert inside.tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]  # away from the kink (x = 1) nothing is judged
    outside = relu_subgradient({"x": np.array([34.0, -1.0, 1.0, 2.5, 0.0])}, {"x": x}, dout)["x"]
    assert outside.tolist() == [32.0, 1.0, 1.0, 0.5, 0.0]


def test_max_pool_tie_shares_must_add_up_to_the_upstream_gradient():
    from gradmatrix.oracles.kinks import max_pool_subgradient

    x = np.array([[[[1.0, 3.0], [3.0, 2.0]]]])  # one 2x2 window, maximum 3 tied twice
    dout = np.array([[[[4.0]]]])
    for routed, expected in (([[0, 4], [0, 0]], [[0, 0], [0, 0]]),  # all to one maximum
                             ([[0, 1], [3, 0]], [[0, 0], [0, 0]]),  # split 1/4, 3/4
                             ([[0, 4], [4, 0]], [[0, 4], [4, 0]]),  # both get all: adds up to 8
                             ([[0, 5], [-1, 0]], [[0, 1], [1, 0]])):  # a negative share
        distance = max_pool_subgradient({"x": np.array([[routed]], float)}, {"x": x}, dout)["x"]
        assert distance[0, 0].tolist() == expected, routed


# 5. compared with nothing, or an oracle asked for missing: not a pass --------------------

def _record(cid, pair, verdict, op="relu", ratio=0.5):
    tensors = [] if verdict in ("skipped", "error") else [
        {"tensor": "out", "role": "forward", "agree": ratio <= 1, "of_allowed": ratio, "rtol": 1e-5,
         "metrics": {"normwise_rel_err": ratio * 1e-5}}]
    return {"id": cid, "case": cid, "op": op, "case_kind": "random", "dims": {}, "seed": 0, "dtype": "float64",
            "pair": list(pair), "kind": "autodiff", "tensors": tensors, "verdict": verdict, "message": ""}


RUN = {"candidate": "mine", "candidate_ops": ["relu"], "matrix": "default", "oracles": ["torch", "numeric"]}


def test_skipped_comparisons_are_never_a_pass():
    from gradmatrix.reports import document

    records = [_record("a", ("mine", "numeric"), "agree"),
               _record("b", ("mine", "torch"), "skipped") | {"message": "torch unavailable: not importable"}]
    s = document.build(records, {}, RUN)["summary"]
    assert not s["passed"] and s["complete"] and s["agree"] == 1 and s["skipped"] == 1
    assert s["problems"] == ["1 comparison(s) skipped, an implementation asked for is unavailable "
                             "(torch unavailable: not importable)"]


def test_a_candidate_compared_with_nothing_is_not_a_pass():
    from gradmatrix.reports import document

    only_oracles = [_record("a", ("torch", "numeric"), "agree")]
    s = document.build(only_oracles, {}, RUN)["summary"]
    assert not s["passed"] and s["problems"] == ["mine was compared with nothing for relu"]
    assert document.build([], {}, RUN)["summary"]["problems"][-1] == "no comparison ran"
    with_candidate = [_record("a", ("torch", "numeric"), "agree"), _record("b", ("mine.fd", "torch"), "agree")]
    assert document.build(with_candidate, {}, RUN)["summary"]["passed"]


def test_diff_calls_losing_a_comparison_to_a_skip_worse():
    from gradmatrix.reports import diff, document

    old = document.build([_record("a", ("mine", "torch"), "agree")], {}, RUN)
    new = document.build([_record("a", ("mine", "torch"), "skipped")], {}, RUN)
    result = diff.diff(old, new)
    assert result["worse"] and result["lost"] == [{"id": "a", "was": "agree", "now": "skipped", "message": ""}]
    assert diff.render(result).startswith("gradmatrix diff: WORSE")


# 7. an op that never ran says so --------------------------------------------------------

def test_an_op_that_never_ran_is_not_reported_as_agreeing():
    from gradmatrix.checker import CheckResult
    from gradmatrix.reports import console, document

    run = dict(RUN, candidate_ops=["relu", "affine"], ops=["relu", "affine"])
    records = [_record("a", ("mine", "torch"), "agree"), _record("b", ("mine", "torch"), "skipped", op="affine")]
    doc = document.build(records, {}, run)
    per_op = CheckResult(doc).per_op()
    assert per_op["relu"]["verdict"] == "incomplete" and per_op["affine"]["verdict"] == "skipped"
    assert console.render(doc)[0].startswith("NOT A PASS: ") and "mine was compared with nothing for affine" in console.render(doc)[0]
    doc = document.build(records[:1], {}, run, expected=2)
    per_op = CheckResult(doc).per_op()
    assert per_op["affine"] == {"verdict": "not run", "comparisons": 0, "failures": 0, "agreeing": 0, "worst": None,
                                "references_failing": 0, "notes": [],
                                "line": "affine: NOT RUN, 0 of 0 comparisons agree; not a pass"}
    lines = console.render(doc)
    assert lines[:2] == ["INCOMPLETE: 1 of 2 comparisons did not run; this is not a pass", "affine: did not run (0 comparisons)"]
    assert not any("AGREE" in line or "0/0" in line for line in lines)


def test_an_op_line_counts_the_candidate_s_comparisons_and_the_references_apart():
    from gradmatrix.checker import CheckResult
    from gradmatrix.reports import document

    def record(cid, pair, verdict, ratio=0.5):
        made = _record(cid, pair, verdict, ratio=ratio)
        made["tensors"][0]["metrics"].update(a_value=1.0, b_value=1.0, max_abs_err=0.0, rel_error=0.0, ref_scale=1.0,
                                             worst_index=[0])
        return made

    records = [record("a", ("mine", "torch"), "agree"), record("b", ("mine", "numeric"), "agree"),
               record("c", ("torch", "numeric"), "disagree", ratio=3.0)]
    relu = CheckResult(document.build(records, {}, RUN)).per_op()["relu"]
    assert (relu["verdict"], relu["comparisons"], relu["failures"], relu["references_failing"]) == ("disagree", 2, 0, 1)
    assert relu["line"] == ("relu: FAIL, 2 of 2 comparisons agree, but the references disagree or fail among "
                            "themselves in 1")
    records[0] = record("a", ("mine", "torch"), "disagree", ratio=2.0)
    relu = CheckResult(document.build(records, {}, RUN)).per_op()["relu"]
    assert relu["line"].startswith("relu: FAIL, 1 of 2 comparisons disagree; the references among themselves in 1 more")


# 4, 9, 10: the command line: processes that end, hang or get stopped; where reports go -----

import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

from cli_helpers import command, gradmatrix as gradmatrix_cli  # noqa: E402

RELU = ["--ops", "relu", "--seeds", "1", "--oracles", "numeric", "--modes", "reverse", "--progress", "lines",
        "--format", "json", "md"]
GOOD = "from gradmatrix.manual import relu_forward, relu_backward\n"




def _backward(body: str) -> str:
    return ("import os, sys, time\nfrom gradmatrix.manual import relu_forward\n"
            "from gradmatrix.manual import relu_backward as _rb\n\n"
            f"def relu_backward(dout, cache):\n{body}    return _rb(dout, cache)\n")


def test_a_candidate_ending_the_process_is_an_error_and_leaves_no_stale_pass(tmp_path):
    (tmp_path / "good.py").write_text(GOOD)
    assert gradmatrix_cli("check", "good.py", *RELU, cwd=tmp_path).returncode == 0
    assert json.loads((tmp_path / "gradmatrix-report" / "agreement.json").read_text())["summary"]["passed"]
    # os._exit in a function ends the candidate's worker process, not the check: its cases are errors
    (tmp_path / "quits.py").write_text(_backward("    if dout.shape[0] > 1:\n        os._exit(0)\n"))
    run = gradmatrix_cli("check", "quits.py", *RELU, cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    out = tmp_path / "gradmatrix-report"
    doc = json.loads((out / "agreement.json").read_text())
    errors = [r for r in doc["comparisons"] if r["verdict"] == "error"]
    assert errors and all("process ended (exit status 0)" in r["message"] or "not run" in r["message"] for r in errors)
    assert not doc["summary"]["passed"] and not (out / "agreement.in-progress").exists()
    # ending the process at import: no verdict, and the directory says so
    for name, body in (("exits.py", "import sys\nsys.exit(0)\n"),
                       ("tests_main.py", "import unittest\nunittest.main()\n")):
        # in a module the file imports: its own top-level calls are not run (oracles/scripts.py)
        (tmp_path / f"quits_{name}").write_text(body)
        (tmp_path / name).write_text(GOOD + f"import quits_{name[:-3]}\n")
        run = gradmatrix_cli("check", name, *RELU, cwd=tmp_path)
        assert run.returncode == 2 and "SystemExit(" in run.stderr, run.stdout + run.stderr
        assert not (out / "agreement.json").exists() and (out / "agreement.in-progress").exists()
    (tmp_path / "exits_late.py").write_text(_backward("    sys.exit(0)\n"))
    run = gradmatrix_cli("check", "exits_late.py", *RELU, cwd=tmp_path)
    assert run.returncode == 2 and "a candidate must return, not end the process" in run.stdout, run.stdout


def test_a_hanging_candidate_becomes_an_error_record(tmp_path):
    (tmp_path / "hangs.py").write_text(_backward("    while dout.shape[0] > 1:\n        time.sleep(0.05)\n"))
    run = gradmatrix_cli("check", "hangs.py", *RELU, "--case-timeout", "2", cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    doc = json.loads((tmp_path / "gradmatrix-report" / "agreement.json").read_text())
    errors = [r for r in doc["comparisons"] if r["verdict"] == "error"]
    assert errors and all(r["dims"]["N"] > 1 for r in errors)
    assert all("time limit of 2 s" in r["message"] for r in errors)
    assert doc["summary"]["complete"] and doc["summary"]["agree"] > 0 and not doc["summary"]["passed"]


def test_an_unwritable_out_is_refused_before_running(tmp_path):
    (tmp_path / "taken").write_text("a file where the directory would go\n")
    run = gradmatrix_cli("run", *RELU, "--out", "taken", cwd=tmp_path)
    assert run.returncode == 2 and "cannot write reports to taken" in run.stderr
    assert "comparisons" not in run.stdout  # nothing ran


def test_reports_get_ordinary_permissions(tmp_path):
    from gradmatrix.reports.writers import write_atomic

    for umask, mode in ((0o022, 0o644), (0o027, 0o640)):
        old = os.umask(umask)
        try:
            path = write_atomic(tmp_path / f"r{umask:o}.json", "{}\n")
        finally:
            os.umask(old)
        assert path.stat().st_mode & 0o777 == mode


def test_only_and_sigterm_keep_the_complete_report_beside_theirs(tmp_path):
    # slow only where a run must still be going when SIGTERM comes
    (tmp_path / "slow.py").write_text(_backward("    time.sleep(float(os.environ.get('SLOW_BACKWARD', '0')))\n"))
    full = gradmatrix_cli("check", "slow.py", *RELU, cwd=tmp_path)
    assert full.returncode == 0, full.stdout + full.stderr
    out = tmp_path / "gradmatrix-report"
    complete = json.loads((out / "agreement.json").read_text())
    one = complete["comparisons"][0]["id"]
    only = gradmatrix_cli("check", "slow.py", *RELU, "--only", one, cwd=tmp_path)
    assert only.returncode == 0 and "report is kept in" in only.stdout, only.stdout
    assert [r["id"] for r in json.loads((out / "agreement.json").read_text())["comparisons"]] == [one]
    assert json.loads((out / "previous" / "agreement.json").read_text())["created"] == complete["created"]
    # SIGTERM, as from a CI runner cancelling the job: an incomplete report, the complete one still beside it
    proc = subprocess.Popen(command("check", "slow.py", *RELU), cwd=tmp_path, env={**os.environ, "SLOW_BACKWARD": "0.3"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = ""
    deadline = time.time() + 300
    while "gradmatrix: 1/" not in seen and time.time() < deadline:
        seen += proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, seen + rest
    doc = json.loads((out / "agreement.json").read_text())
    assert not doc["summary"]["complete"] and not doc["summary"]["passed"] and "SIGTERM" in doc["summary"]["interrupted"]
    assert "PASS:" not in rest and "report is kept in" in rest
    assert json.loads((out / "previous" / "agreement.json").read_text())["created"] == complete["created"]
    assert not (out / "agreement.in-progress").exists()


def test_a_check_of_another_module_into_the_same_folder_says_what_it_kept(tmp_path):
    (tmp_path / "first.py").write_text(_backward(""))
    (tmp_path / "second.py").write_text(_backward(""))
    assert gradmatrix_cli("check", "first.py", *RELU, cwd=tmp_path).returncode == 0
    first = json.loads((tmp_path / "gradmatrix-report" / "agreement.json").read_text())
    second = gradmatrix_cli("check", "second.py", *RELU, cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    # a complete check of its own: it replaces the report, and the one before is kept, named
    [note] = [line for line in second.stdout.splitlines() if line.startswith("note: ")]
    assert note.startswith(f"note: the complete report of {first['created']} here before, of first (")
    assert "does not replace" not in note and note.endswith("is kept in " + str(tmp_path / "gradmatrix-report" / "previous"))
    assert json.loads((tmp_path / "gradmatrix-report" / "agreement.json").read_text())["run"]["candidate"] == "second"


def test_a_report_written_without_its_json_is_never_dropped_for_a_partial_run(tmp_path):
    (tmp_path / "mine.py").write_text(_backward(""))
    options = [o for o in RELU if o not in ("--format", "json", "md")]
    assert gradmatrix_cli("check", "mine.py", *options, "--format", "md", cwd=tmp_path).returncode == 0
    out = tmp_path / "gradmatrix-report"
    markdown = (out / "agreement.md").read_text()
    one = "relu-N1-D1-seed0-float64-mine~numeric"
    for _ in range(2):  # partial runs, one after the other: the complete md report stays
        only = gradmatrix_cli("check", "mine.py", *RELU, "--only", one, cwd=tmp_path)
        assert only.returncode == 0, only.stdout + only.stderr
        assert f"are kept in {out / 'previous'}" in only.stdout, only.stdout
        assert (out / "previous" / "agreement.md").read_text() == markdown


def test_an_edit_to_a_module_the_candidate_imports_is_the_code_checked(tmp_path):
    # a helper module fixed within the second of the last check, at the same size, is checked
    # as it now is, whoever cached its bytecode before (the check, with bytecode written as by
    # default, or the user's own python)
    import py_compile

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    (tmp_path / "layers.py").write_text(
        "import numpy as np\nfrom helper import relu_grad\n\n\ndef relu_forward(x):\n    return np.maximum(0, x), x\n"
        "\n\ndef relu_backward(dout, cache):\n    return relu_grad(dout, cache)\n")
    helper = tmp_path / "helper.py"
    for sign, status in (("+", 0), ("-", 1)):
        helper.write_text(f"def relu_grad(dout, x):\n    return {sign}dout * (x > 0)\n")
        os.utime(helper, ns=(1_700_000_000_000_000_000,) * 2)
        if sign == "+":
            py_compile.compile(str(helper), cfile=importlib.util.cache_from_source(str(helper)), doraise=True)
        run = gradmatrix_cli("check", "layers.py", *RELU, cwd=tmp_path, env=env)
        assert run.returncode == status, run.stdout + run.stderr
