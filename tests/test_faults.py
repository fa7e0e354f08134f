"""Faults never produce a false "all agree": missing frameworks, raising code, interruptions,
dead workers, crashes while writing, and hostile strings."""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from gradmatrix import manual
from gradmatrix.oracles import modes, torch_oracle
from gradmatrix.oracles.candidate import Candidate
from gradmatrix.runner import Runner, default_plan
from gradmatrix.reports import document as documents
from gradmatrix.reports import environment, html, markdown
from gradmatrix.reports.writers import safe_path, write_atomic, write_reports
from cli_helpers import gradmatrix, gradmatrix_process, start

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--ops", "relu", "--seeds", "2", "--oracles", "torch", "numeric", "--progress", "lines"]




def test_missing_framework_is_reported_and_its_cases_skipped(tmp_path, read_report):
    # a sitecustomize that makes `import jax` fail, as on a machine without it
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoJax:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'jax' or name.startswith('jax.') or name == 'jaxlib':\n"
        "            raise ImportError('No module named ' + repr(name) + ' (blocked for this test)')\n"
        "sys.meta_path.insert(0, _NoJax())\n")
    env = dict(os.environ, PYTHONPATH=f"{blocker}{os.pathsep}{ROOT}")
    run = gradmatrix_process("run", "--ops", "relu", "--seeds", "1", "--oracles", "torch", "jax", "numeric", cwd=tmp_path, env=env)
    doc = read_report(tmp_path / "gradmatrix-report" / "agreement.json")
    s = doc["summary"]
    assert s["skipped"] > 0 and s["skipped"] + s["agree"] + s["convention"] == s["comparisons"] == s["expected"]
    assert any("jax unavailable: jax is not importable" in u for u in s["unavailable"])
    with_jax = [r for r in doc["comparisons"] if "jax" in {modes.base_name(n) for n in r["pair"]}]  # jax.jvp too
    assert with_jax and all(r["verdict"] == "skipped" for r in with_jax)
    assert all(r["verdict"] != "skipped" for r in doc["comparisons"] if r not in with_jax)
    # the candidate still meets a J v in forward mode's cases: torch's
    assert any(r["pair"] == ["manual", "torch.jvp"] and r["verdict"] == "agree" for r in doc["comparisons"])
    md = (tmp_path / "gradmatrix-report" / "agreement.md").read_text()
    assert "not run: jax unavailable" in md and "skipped" in md
    # what ran agrees, but an oracle asked for is missing: shown, and never a pass
    assert not s["passed"] and any("skipped, an implementation asked for is unavailable" in p for p in s["problems"])
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert any(line.startswith("NOT A PASS: ") and "skipped, an implementation asked for is unavailable" in line
               for line in lines), run.stdout
    assert not any(line.startswith("PASS") for line in lines), run.stdout


def test_an_oracle_raising_mid_run_is_an_error_and_the_rest_continue(monkeypatch):
    real = torch_oracle.FORWARDS["relu"]

    def flaky(t, dims):
        if t["x"].shape[0] > 1:
            raise RuntimeError("simulated oracle failure")
        return real(t, dims)

    monkeypatch.setitem(torch_oracle.FORWARDS, "relu", flaky)
    # the store keys results on the oracles' source, not on a forward patched at run time
    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", "off")
    runner = Runner(Candidate(manual, "manual"), ("torch", "numeric"))
    records = [runner.run(c) for c in default_plan("default", ["relu"], ["float64"], 1, ("torch", "numeric"))]
    errors = [r for r in records if r["verdict"] == "error"]
    assert errors and all(r["dims"]["N"] > 1 and any(n.split(".")[0] == "torch" for n in r["pair"]) for r in errors)
    assert all("simulated oracle failure" in r["message"] and "RuntimeError" in r["traceback"] for r in errors)
    assert all(r["verdict"] in ("agree", "convention") for r in records if r not in errors)
    doc = documents.build(records, environment.collect(), {"candidate": "manual", "matrix": "default", "oracles": []})
    assert not doc["summary"]["passed"] and doc["summary"]["error"] == len(errors)


def test_a_candidate_raising_mid_run_cannot_be_checked(tmp_path, read_report):
    flaky = tmp_path / "flaky.py"
    flaky.write_text("from gradmatrix.manual import relu_forward\nfrom gradmatrix.manual import relu_backward as _rb\n\n"
                     "def relu_backward(dout, cache):\n"
                     "    if dout.shape[0] > 1:\n"
                     "        raise ValueError('my bug')\n"
                     "    return _rb(dout, cache)\n")
    run = gradmatrix("check", flaky, *SMALL, cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    doc = read_report(tmp_path / "gradmatrix-report" / "agreement.json")
    errors = [r for r in doc["comparisons"] if r["verdict"] == "error"]
    # the function that raised, and where in the candidate's own code; the traceback shows its frames only
    assert errors and all("relu_backward raised ValueError: my bug (at flaky.py:6)" in r["message"] for r in errors)
    assert all('flaky.py", line 6, in relu_backward' in r["traceback"] and "my bug" in r["traceback"]
               and "catalog.py" not in r["traceback"] for r in errors)
    assert doc["summary"]["agree"] > 0 and not doc["summary"]["passed"]


def test_sigint_writes_an_incomplete_report_that_does_not_pass(tmp_path, read_report):
    slow = tmp_path / "slow.py"
    slow.write_text("import time\nfrom gradmatrix.manual import relu_forward\nfrom gradmatrix.manual import relu_backward as _rb\n\n"
                    "def relu_backward(dout, cache):\n    time.sleep(0.05)\n    return _rb(dout, cache)\n")
    proc = start("check", slow, "--ops", "relu", "--seeds", "5", "--oracles", "torch", "numeric", "--progress", "lines",
                 cwd=tmp_path, stderr=subprocess.STDOUT)
    seen = ""
    deadline = time.time() + 120
    while "comparisons" not in seen.split("gradmatrix: 1/")[-1] and time.time() < deadline:
        seen += proc.stdout.readline()
        if "gradmatrix: 1/" in seen:  # the first progress line: the run has started
            break
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, seen + out
    doc = read_report(tmp_path / "gradmatrix-report" / "agreement.json")
    s = doc["summary"]
    assert not s["complete"] and not s["passed"] and s["missing"] > 0
    assert s["comparisons"] + s["missing"] == s["expected"] and "interrupted" in s["interrupted"]
    assert "INCOMPLETE" in (tmp_path / "gradmatrix-report" / "agreement.md").read_text()


def test_a_dead_worker_process_leaves_an_incomplete_report(tmp_path, read_report):
    # the candidate (in its own process) kills the engine's worker process that runs it, as an
    # out-of-memory kill would: that worker's part of the plan is missing, and the run says so
    killer = tmp_path / "killer.py"
    # (the judge started its candidate's worker itself, or had its fork server fork it)
    killer.write_text("import os, signal, sys\nfrom gradmatrix.manual import relu_forward\n"
                      "from gradmatrix.manual import relu_backward as _rb\n\n"
                      "def judge():\n"
                      "    parent = os.getppid()\n"
                      "    if sys.platform.startswith('linux'):\n"
                      "        with open(f'/proc/{parent}/cmdline', 'rb') as f:\n"
                      "            if b'gradmatrix.forkserver' in f.read():\n"
                      "                with open(f'/proc/{parent}/stat') as g:\n"
                      "                    return int(g.read().rsplit(')', 1)[1].split()[1])\n"
                      "    return parent\n\n"
                      "def relu_backward(dout, cache):\n"
                      "    if dout.shape[0] > 1:\n"
                      "        os.kill(judge(), signal.SIGKILL)\n"
                      "    return _rb(dout, cache)\n")
    run = gradmatrix("check", killer, *SMALL, "-n", "2", cwd=tmp_path)
    assert run.returncode != 0
    doc = read_report(tmp_path / "gradmatrix-report" / "agreement.json")
    s = doc["summary"]
    assert not s["complete"] and not s["passed"] and s["missing"] >= 1
    assert s["comparisons"] + s["missing"] == s["expected"]
    assert "killed by SIGKILL" in s["interrupted"]


def test_a_crash_while_writing_keeps_the_previous_report(tmp_path, monkeypatch):
    target = tmp_path / "agreement.json"
    write_atomic(target, "previous\n")

    def crash(fd):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "half of a new report")
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agreement.json"]  # no temporary file left behind


def test_output_paths_stay_inside_the_output_directory(tmp_path):
    assert safe_path(tmp_path, "agreement.json") == (tmp_path / "agreement.json").resolve()
    for name in ("../escape.json", "/etc/passwd", "sub/../../x.json", "sub/inner.json"):
        with pytest.raises(ValueError, match="would leave the output directory"):
            safe_path(tmp_path, name)


def test_two_runs_with_the_same_options_give_identical_reports(tmp_path):
    for out in ("one", "two"):
        assert gradmatrix("run", *SMALL, "--out", out, cwd=tmp_path).returncode == 0

    def stable(path):
        doc = json.loads(path.read_text())
        doc.pop("created")
        doc.pop("duration_s")
        return doc

    assert stable(tmp_path / "one" / "agreement.json") == stable(tmp_path / "two" / "agreement.json")
    assert (tmp_path / "one" / "agreement.md").read_text() == (tmp_path / "two" / "agreement.md").read_text()

    def page(path):
        return "\n".join(line for line in path.read_text().splitlines() if "created " not in line)

    assert page(tmp_path / "one" / "agreement.html") == page(tmp_path / "two" / "agreement.html")


HOSTILE = "<script>alert('x')</script> `code` | **bold** [link](javascript:alert(1)) <img src=x onerror=alert(1)>"


def test_hostile_strings_are_escaped_in_html_and_markdown(tmp_path):
    record = {
        "id": f"relu-N1-D1-seed0-float64-{HOSTILE}~torch", "case": "relu-N1-D1-seed0-float64", "op": HOSTILE,
        "case_kind": "random", "dims": {"N": 1, "D": 1}, "seed": 0, "dtype": "float64", "pair": [HOSTILE, "torch"],
        "kind": "autodiff", "tensors": [], "verdict": "error", "message": f"{HOSTILE} failed: {HOSTILE}",
        "traceback": f"Traceback\n  {HOSTILE}\n```\n{HOSTILE}",
    }
    doc = documents.build([record], environment.collect(), {"candidate": HOSTILE, "matrix": "default", "oracles": ["torch"]})
    page = html.render(doc)
    assert "<script" not in page and "<img src=x" not in page and "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;" in page
    md = markdown.render(doc)
    # Markdown shows a hostile string verbatim only inside code (a fenced block, or an inline
    # span whose fence the string cannot close): CommonMark renders code as text, never HTML
    outside = re.sub(r"^(`{3,})\n.*?^\1$", "", md, flags=re.S | re.M)  # a fence longer than any run inside
    outside = re.sub(r"(`+) .*? \1|`[^`\n]*`", "", outside)
    # elsewhere every markup character is backslash-escaped
    for raw in (r"<script>", r"<img src=x", r"\]\(javascript:", r"\*\*bold", r"\n```\n<"):
        assert not re.search(r"(?<!\\)" + raw, outside), raw
    assert HOSTILE.replace("\n", " ") in md  # shown, not dropped
    written = write_reports(doc, tmp_path, ("json", "md", "html"))
    assert sorted(p.name for p in written) == ["agreement.html", "agreement.json", "agreement.md"]
    assert all(p.parent == tmp_path.resolve() for p in written)
    assert json.loads((tmp_path / "agreement.json").read_text())["comparisons"][0]["message"].startswith(HOSTILE)
