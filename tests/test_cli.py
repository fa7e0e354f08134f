"""The gradmatrix command on real runs: run, check, report, diff, merge, and the HTML report."""

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import gradmatrix

MUTANTS = Path(__file__).parent / "mutants"
# small, JAX-free slices keep these end-to-end runs to a few seconds each
SMALL = ["--ops", "relu", "--seeds", "2", "--oracles", "torch", "numeric", "--progress", "lines"]




def test_run_writes_all_formats_and_shows_progress(tmp_path, read_report):
    run = gradmatrix("run", *SMALL, "--out", "out", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    # a progress line when the run starts (no time estimate from one comparison), the verdict
    # and the report paths; no pytest output
    assert "gradmatrix: 1/" in run.stdout and "s left" not in run.stdout.split("gradmatrix: 1/")[1].splitlines()[0]
    assert "PASS: manual agrees in all" in run.stdout and "report: " in run.stdout, run.stdout
    assert "passed" not in run.stdout and "=====" not in run.stdout
    doc = read_report(tmp_path / "out" / "agreement.json")
    assert doc["summary"]["passed"] and doc["summary"]["comparisons"] == doc["summary"]["expected"] > 0
    assert (tmp_path / "out" / "agreement.md").read_text().startswith("# gradmatrix agreement report")
    assert "data:image/svg+xml;base64," in (tmp_path / "out" / "agreement.html").read_text()


def test_progress_none_prints_the_verdict_and_nothing_while_it_runs(tmp_path):
    run = gradmatrix("check", "gradmatrix.manual", *SMALL, "--progress", "none", "--out", "out", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    # what the check provides, then the verdict and what follows it; no progress, no dots
    assert lines[0].startswith("gradmatrix check: ") and lines[1].startswith("PASS: manual agrees in all"), lines
    assert not any(" comparisons, " in line or set(line) <= set(". ") for line in lines), lines
    assert not run.stderr, run.stderr


def test_run_usage_errors_exit_2_with_a_reason(tmp_path):
    for args, reason in ((["run", "--ops", "nope"], "unknown op"), (["run", "--shard", "3/2"], "--shard"),
                         (["run", "--only", "no-such-id"], "no comparison"), (["diff", "missing.json", "x.json"], "no such file")):
        result = gradmatrix(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert reason in result.stdout + result.stderr


def test_check_reports_per_op_verdicts_and_exit_codes(tmp_path, read_report):
    good = gradmatrix("check", "gradmatrix.manual", *SMALL, cwd=tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "PASS: manual agrees in all" in good.stdout
    bad = gradmatrix("check", MUTANTS / "affine_missing_transpose.py", "--op", "affine", "--seeds", "1",
                     "--dtypes", "float64", "--oracles", "torch", cwd=tmp_path)
    assert bad.returncode == 2, bad.stdout  # wrong shape of dw for non-square weights: cannot be checked
    assert "ERROR: affine_missing_transpose could not be checked" in bad.stdout, bad.stdout
    assert "likely cause: a missing transpose: dw is the reference transposed" in bad.stdout
    assert "worst: " in bad.stdout and "reproduce: gradmatrix check" in bad.stdout
    nothing = tmp_path / "empty.py"
    nothing.write_text("x = 1\n")
    result = gradmatrix("check", nothing, cwd=tmp_path)
    assert result.returncode == 2 and "provides no op" in result.stderr
    broken = tmp_path / "broken.py"
    # a definition that raises (a top-level raise statement of a script is not run: oracles/scripts.py)
    broken.write_text("class Layer:\n    raise RuntimeError('boom')\n")
    result = gradmatrix("check", broken, cwd=tmp_path)
    assert result.returncode == 2 and "boom" in result.stderr


def _write_module(directory: Path, body: str) -> Path:
    directory.mkdir()
    path = directory / "layers.py"
    path.write_text(body)
    return path


def test_diff_detects_an_injected_regression(tmp_path, read_report):
    correct = _write_module(tmp_path / "v1", "from gradmatrix.manual import relu_forward, relu_backward\n")
    regressed = _write_module(tmp_path / "v2", (
        "import numpy as np\nfrom gradmatrix.manual import relu_forward\nfrom gradmatrix.manual import relu_backward as _rb\n\n"
        "def relu_backward(dout, cache):\n"
        "    dx = _rb(dout, cache)\n"
        "    return dx * dx.dtype.type(1 + 1e-6) if dx.size > 8 else dx  # regression on larger batches only\n"))
    for path, out in ((correct, "old"), (regressed, "new")):
        gradmatrix("check", path, *SMALL, "--out", out, cwd=tmp_path)
    same = gradmatrix("diff", "old/agreement.json", "old/agreement.json", cwd=tmp_path)
    assert same.returncode == 0 and "not worse" in same.stdout
    diff = gradmatrix("diff", "old/agreement.json", "new/agreement.json", "--json", cwd=tmp_path)
    assert diff.returncode == 1, diff.stdout + diff.stderr
    result = json.loads(diff.stdout)
    assert result["worse"] and result["new_discrepancies"] and not result["fixed"]
    assert all("layers~" in d["id"] and "float64" in d["id"] for d in result["new_discrepancies"])
    assert any(g["new"] > 1e-7 for g in result["grown"])
    back = gradmatrix("diff", "new/agreement.json", "old/agreement.json", cwd=tmp_path)
    assert back.returncode == 0 and "fixed:" in back.stdout


def test_merge_of_two_shards_equals_the_unsharded_run(tmp_path, read_report):
    for shard in ("0/2", "1/2"):
        run = gradmatrix("run", *SMALL, "--shard", shard, "--out", f"shard{shard[0]}", cwd=tmp_path)
        assert run.returncode == 0, run.stdout + run.stderr
    assert gradmatrix("run", *SMALL, "--out", "whole", cwd=tmp_path).returncode == 0
    merged = gradmatrix("merge", "shard0/agreement.json", "shard1/agreement.json", "-o", "all/agreement.json", cwd=tmp_path)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    all_doc, whole = read_report(tmp_path / "all" / "agreement.json"), read_report(tmp_path / "whole" / "agreement.json")
    s0 = read_report(tmp_path / "shard0" / "agreement.json")["summary"]["comparisons"]
    assert 0 < s0 < whole["summary"]["comparisons"]
    assert all_doc["comparisons"] == whole["comparisons"]
    assert all_doc["summary"]["comparisons"] == all_doc["summary"]["expected"] == whole["summary"]["comparisons"]
    assert all_doc["summary"]["passed"] and all_doc["groups"] == whole["groups"]
    # the same shard twice: overlaps are shown, not silently dropped, and half the matrix is no pass
    twice = gradmatrix("merge", "shard0/agreement.json", "shard0/agreement.json", "-o", "twice/agreement.json", cwd=tmp_path)
    assert "overlapping (identical)" in twice.stdout
    assert twice.returncode == 1 and "shard(s) 0/2 given more than once" in twice.stdout and "PASS" not in twice.stdout
    doc = read_report(tmp_path / "twice" / "agreement.json")
    assert doc["merge"]["overlaps"] and not doc["summary"]["passed"] and not doc["summary"]["complete"]
    # one shard of two: incomplete
    half = gradmatrix("merge", "shard0/agreement.json", "-o", "half/agreement.json", cwd=tmp_path)
    assert half.returncode == 1 and "shard(s) 1/2 missing" in half.stdout and "INCOMPLETE" in half.stdout
    # a shard of another run (other seeds: another matrix) is refused, and nothing is written
    assert gradmatrix("run", *SMALL, "--seeds", "1", "--shard", "1/2", "--out", "other", cwd=tmp_path).returncode == 0
    unrelated = gradmatrix("merge", "shard0/agreement.json", "other/agreement.json", "-o", "u/agreement.json", cwd=tmp_path)
    assert unrelated.returncode == 2 and "not a shard of the same run" in unrelated.stderr
    assert not (tmp_path / "u" / "agreement.json").exists()
    # a shard that disagrees with another about the same comparison: a conflict, and the merge fails; the
    # edited record (agree, with 1e12 of its allowed error) counts by its metrics, as a disagreement
    altered = json.loads((tmp_path / "shard0" / "agreement.json").read_text())
    altered["comparisons"][0]["tensors"][0]["of_allowed"] = 1e12
    altered["environment"]["python"] = "0.0"
    (tmp_path / "altered.json").write_text(json.dumps(altered))
    conflict = gradmatrix("merge", "altered.json", "shard1/agreement.json", "-o", "c/agreement.json", cwd=tmp_path)
    assert conflict.returncode == 1 and "environment:" in conflict.stdout and "PASS" not in conflict.stdout
    assert "verdict does not match their metrics" in conflict.stdout
    assert read_report(tmp_path / "c" / "agreement.json")["summary"]["disagree"] == 1
    clash = gradmatrix("merge", "shard0/agreement.json", "altered.json", "-o", "d/agreement.json", cwd=tmp_path)
    assert clash.returncode == 1 and "conflict:" in clash.stdout


def test_report_renders_a_saved_run_again(tmp_path, read_report):
    assert gradmatrix("run", *SMALL, "--out", "a", "--format", "json", cwd=tmp_path).returncode == 0
    again = gradmatrix("report", "a/agreement.json", "--format", "md", "html", "json", "--out", "b", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert read_report(tmp_path / "b" / "agreement.json")["comparisons"] == read_report(tmp_path / "a" / "agreement.json")["comparisons"]
    assert (tmp_path / "b" / "agreement.md").read_text() == (tmp_path / "b" / "agreement.md").read_text()
    # the summary is recomputed from the records and the plan, never trusted
    doc = json.loads((tmp_path / "a" / "agreement.json").read_text())
    edited = dict(doc, comparisons=[dict(r, verdict="disagree") for r in doc["comparisons"]])
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    result = gradmatrix("report", "edited.json", "--out", "e", cwd=tmp_path)
    assert result.returncode == 1 and "FAIL" in result.stdout and "PASS" not in result.stdout
    assert "verdict does not match their metrics" in result.stdout
    cut = dict(doc, comparisons=doc["comparisons"][:3])
    (tmp_path / "cut.json").write_text(json.dumps(cut))
    result = gradmatrix("report", "cut.json", "--out", "f", cwd=tmp_path)
    missing = doc["summary"]["comparisons"] - 3
    assert result.returncode == 1 and f"INCOMPLETE, {missing} of {doc['summary']['comparisons']}" in result.stdout
    assert "INCOMPLETE" in (tmp_path / "f" / "agreement.md").read_text()
    (tmp_path / "bad.json").write_text("{\"schema\": \"other\"}")
    bad = gradmatrix("report", "bad.json", cwd=tmp_path)
    assert bad.returncode == 2 and "not a valid agreement report" in bad.stderr


def test_every_verb_has_help_with_an_example(tmp_path):
    for verb in ("run", "check", "report", "diff", "merge"):
        result = gradmatrix(verb, "--help", cwd=tmp_path)
        assert result.returncode == 0 and "examples:" in result.stdout and f"gradmatrix {verb}" in result.stdout


def test_arguments_for_pytest_are_refused_with_the_way_to_run_pytest(tmp_path):
    run = gradmatrix("run", *SMALL, "--format", "json", "--", "--junitxml=matrix.xml", cwd=tmp_path)
    assert run.returncode == 2 and len(run.stderr.splitlines()) == 1
    assert "pytest --pyargs gradmatrix.matrix_test" in run.stderr and not (tmp_path / "matrix.xml").exists()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian package chromium)")
def test_html_report_loads_in_headless_chromium_with_its_figures(tmp_path):
    assert gradmatrix("run", *SMALL, "--out", "r", "--format", "json", "html", cwd=tmp_path).returncode == 0
    page = (tmp_path / "r" / "agreement.html").read_text()
    assert "http://" not in page and "https://" not in page  # self-contained: nothing to fetch
    # a copy with a probe script: the title becomes the number of figures that decoded
    probe = page.replace("</body>", "<script>window.addEventListener('load',()=>{const ok=[...document.images]"
                                    ".filter(i=>i.complete&&i.naturalWidth>100).length;"
                                    "document.title='figures:'+ok+'/'+document.images.length;});</script></body>")
    (tmp_path / "probe.html").write_text(probe)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", f"file://{tmp_path / 'probe.html'}"],
                         capture_output=True, text=True, timeout=120)
    images = page.count("<img ")
    assert images >= 1 and f"<title>figures:{images}/{images}</title>" in dom.stdout, dom.stderr[-2000:]
    assert "PASS: manual agrees in all" in dom.stdout and "Agreement per op" in dom.stdout
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *flags, "--window-size=1200,1600", f"--screenshot={shot}",
                    f"file://{tmp_path / 'r' / 'agreement.html'}"], capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian package chromium)")
def test_html_report_opens_on_the_verdict_and_the_first_finding(tmp_path):
    # one bug: softmax's gradient without the 1/N; what a person sees first, in a 1200 x 900
    # window, must be the verdict and the first finding with its cause
    run = gradmatrix("check", MUTANTS / "softmax_missing_1_over_n.py", "--op", "softmax_loss", "--modes", "reverse",
                     "--dtypes", "float64", "--oracles", "torch", "--seeds", "1", "--out", "r", "--format", "json",
                     "html", cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    page = (tmp_path / "r" / "agreement.html").read_text()
    probe = page.replace("</body>", "<script>window.addEventListener('load',()=>{"
                                    "const v=document.getElementById('verdict'),f=document.querySelector('.finding');"
                                    "document.title='seen:'+(v.getBoundingClientRect().bottom<=900)+','"
                                    "+(f.getBoundingClientRect().bottom<=900)+'|'+v.textContent+'|'"
                                    "+f.querySelector('.cause').textContent;});</script></body>")
    (tmp_path / "probe.html").write_text(probe)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
             "--disable-component-update", "--disable-sync", "--window-size=1200,900",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", f"file://{tmp_path / 'probe.html'}"],
                         capture_output=True, text=True, timeout=120)
    title = dom.stdout.split("<title>", 1)[1].split("</title>", 1)[0]
    assert title.startswith("seen:true,true|FAIL: softmax_missing_1_over_n disagrees with the references"), title
    assert title.endswith("Likely cause: a missing 1/N: dscores is N times the reference"), title


@pytest.mark.parametrize("ops, status", [("relu", 0), ("nosuchop", 2)])
def test_the_command_ends_with_its_status_after_what_is_due_at_exit(tmp_path, ops, status):
    # the command skips the interpreter's teardown (gradmatrix.cli.run): the functions
    # registered with atexit still run, buffered output still arrives, the results are stored
    import os
    import sys

    script = ("import atexit, sys\n"
              "from gradmatrix import cli\n"
              "atexit.register(lambda: print('at exit', end=''))  # buffered: no newline, no flush\n"
              f"sys.argv[1:] = ['check', 'gradmatrix.manual', '--ops', {ops!r}, '--out', {str(tmp_path / 'out')!r}]\n"
              "cli.run()\n"
              "print('never reached')\n")
    env = {**os.environ, "GRADMATRIX_JAX_CACHE": str(tmp_path / "store")}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == status, run.stderr
    assert run.stdout.endswith("at exit") and "never reached" not in run.stdout
    if status == 0:
        assert "report: " in run.stdout
        assert len(list((tmp_path / "store" / "references").iterdir())) > 0  # every result written before the end
    else:
        assert "unknown op(s) ['nosuchop']" in run.stderr


PRINTS_IN_BACKWARD = '''import numpy as np


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    print("relu_backward", dout.shape)  # after the reader stopped reading: raises BrokenPipeError unguarded
    return dout * (cache > 0)
'''


@pytest.mark.parametrize("module, status", [("net_l2_wrong_sign.py", 1), ("prints_in_backward.py", 0)])
def test_a_reader_that_stops_reading_changes_nothing_the_check_decides(tmp_path, module, status):
    # `gradmatrix check x.py | head -1`: the reader has its line and closes the pipe before
    # the run's progress and verdict are written, and while the candidate's worker prints
    from cli_helpers import start

    (tmp_path / "prints_in_backward.py").write_text(PRINTS_IN_BACKWARD)
    path = MUTANTS / module if module != "prints_in_backward.py" else tmp_path / module
    ops = "two_layer_net" if module.startswith("net_") else "relu"
    process = start("check", path, "--ops", ops, "--seeds", "1", "--progress", "lines", "--oracles", "torch",
                    "numeric", "--out", tmp_path / "out", cwd=tmp_path,
                    env={**__import__("os").environ, "GRADMATRIX_JAX_CACHE": str(tmp_path / "store")})
    assert process.stdout.readline()  # the first line (the candidate's own, or what it provides)
    process.stdout.close()  # as head does once it has its line
    stderr = process.stderr.read()
    assert process.wait(timeout=300) == status, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    document = json.loads((tmp_path / "out" / "agreement.json").read_text())
    assert document["summary"]["complete"] and not (tmp_path / "out" / "agreement.in-progress").exists()
    assert document["summary"]["error"] == 0, [r["message"] for r in document["comparisons"] if r["message"]][:3]


def test_a_reproduce_line_makes_its_comparison_again_as_the_run_judged_it(tmp_path):
    # a seed past the matrix's own (--seeds 6), and an option that changes a verdict
    # (--strict-kinks): the line carries both, and makes that one comparison, failing again
    run = gradmatrix("check", MUTANTS / "tanh_applied_twice.py", "--ops", "tanh", "--seeds", "6", "--dtypes",
                     "float64", "--strict-kinks", "--oracles", "torch", "--progress", "none", "--format", "json",
                     "--out", "first", cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    records = json.loads((tmp_path / "first" / "agreement.json").read_text())["comparisons"]
    late = next(r for r in records if r["seed"] == 5 and r["verdict"] == "disagree")
    words = shlex.split(late["reproduce"])
    assert words[:2] == ["gradmatrix", "check"] and "--strict-kinks" in words
    assert words[words.index("--seeds") + 1] == "6" and words[-1] == late["id"]
    again = gradmatrix(*words[1:], "--progress", "none", "--format", "json", "--out", "again", cwd=tmp_path)
    assert again.returncode == 1, again.stdout + again.stderr
    (record,) = json.loads((tmp_path / "again" / "agreement.json").read_text())["comparisons"]
    assert record["id"] == late["id"] and record["verdict"] == "disagree"
