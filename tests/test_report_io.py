"""Reports that never crash, never vanish, never inject: reading and writing agreement.json.

Scenarios (each a test below):

1. A failing report, with an infinite share of the allowed error (a reference of exactly 0),
   is read back exactly by ``report``, ``diff`` and ``merge``, and the README's CI flow
   (``--shard 0/2``, ``--shard 1/2``, ``merge``) merges to the unsharded run.
2. ``report`` of a directory's own agreement.json writes the other formats beside it and
   leaves its input as it was; it refuses to replace an input.
3. Two runs into one ``--out`` at once: the second is refused in one line (exit 2) and the
   first's FAIL stays; the lock goes with the process that held it, however it ends.
6. Deep, huge, malformed or inconsistent documents and bad arguments are one-line usage
   errors (exit 2), never a traceback; a property test generates valid, crafted and invalid
   documents for ``report``, ``diff`` and ``merge``.

The runs are real ``gradmatrix check`` commands of small slices (relu, float64, reverse mode,
one seed, the numeric oracle: about a second each); ``report``, ``diff`` and ``merge`` run
in-process through ``gradmatrix.cli.main``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cli_helpers import gradmatrix, start
from gradmatrix.cli import main
from gradmatrix.reports import writers
from gradmatrix.reports.schema import read
from gradmatrix.reports.writers import IN_PROGRESS, LOCK, DirectoryBusy, from_json, lock, read_json, to_json

SLICE = ["--ops", "relu", "--dtypes", "float64", "--modes", "reverse", "--seeds", "1", "--oracles", "numeric",
         "--progress", "none", "--format", "json"]
NO_MASK = ("from gradmatrix.manual import relu_forward\n\n\n"
           "def relu_backward(dout, cache):\n"
           "    return dout.copy()  # forgets the mask: x > 0\n")
GOOD = "from gradmatrix.manual import relu_backward, relu_forward  # noqa: F401\n"
# a relu that forgets the mask and waits for a file to appear before answering: a run that
# holds its report directory for as long as a test needs
GATED = ("import os\nimport time\n\nfrom gradmatrix.manual import relu_forward\n\n\n"
         "def relu_backward(dout, cache):\n"
         "    deadline = time.time() + 120\n"
         "    while not os.path.exists(os.environ['GRADMATRIX_TEST_GATE']) and time.time() < deadline:\n"
         "        time.sleep(0.05)\n"
         "    return dout.copy()\n")


def cli(*argv) -> tuple[int, str, str]:
    """``gradmatrix ARGV`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def one_line_error(err: str) -> str:
    """The single line of a usage error (asserted to be one line, from gradmatrix)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradmatrix"), err
    return lines[0]


def canonical(value):
    """``value`` with every float spelled exactly (NaN equal to NaN, -0.0 apart from 0.0)."""
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def spelled(value):
    """The documented file form, written independently of the writer: a non-finite float
    is ``{"$numberDouble": "Infinity" | "-Infinity" | "NaN"}``."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"$numberDouble": "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"}
    if isinstance(value, dict):
        return {k: spelled(v) for k, v in value.items()}
    if isinstance(value, list):
        return [spelled(v) for v in value]
    return value


def strict_json(text: str):
    """JSON as any strict reader takes it: no NaN or Infinity words."""
    def refuse(word):
        raise ValueError(f"{word} in the file")
    return json.loads(text, parse_constant=refuse)


def _check(module: Path, out: str, *extra) -> Path:
    run = gradmatrix("check", module.name, *SLICE, *extra, "--out", out, cwd=module.parent)
    assert run.returncode in (0, 1), run.stdout + run.stderr
    return module.parent / out / "agreement.json"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Reports of real runs: the mask-forgetting relu whole and as shards 0/2 and 1/2 (the
    README's CI flow), and the same module fixed (its comparisons have the same ids)."""
    root = tmp_path_factory.mktemp("runs")
    (root / "nomask.py").write_text(NO_MASK)
    (root / "fixed").mkdir()
    (root / "fixed" / "nomask.py").write_text(GOOD)
    paths = {"whole": _check(root / "nomask.py", "whole"), "shard0": _check(root / "nomask.py", "s0", "--shard", "0/2"),
             "shard1": _check(root / "nomask.py", "s1", "--shard", "1/2"),
             "good": _check(root / "fixed" / "nomask.py", "good")}
    return {name: {"path": path, "text": path.read_text(), "doc": read_json(path)} for name, path in paths.items()}


def _infinite_shares(doc: dict) -> list:
    return [(r["id"], t["tensor"]) for r in doc["comparisons"] for t in r["tensors"] if t.get("of_allowed") == math.inf]


# --- 1. numbers round-trip exactly; a failing report is read by every reader ---------------

def test_a_failing_report_keeps_its_infinite_share_and_every_reader_reads_it(runs, tmp_path):
    whole = runs["whole"]
    assert '"of_allowed": {"$numberDouble": "Infinity"}' in whole["text"]  # not null, not a bare word
    strict_json(whole["text"])
    infinite = _infinite_shares(whole["doc"])
    assert infinite and not whole["doc"]["summary"]["passed"], "the slice no longer has a reference of exactly 0"
    # report: the same verdict, and agreement.json written again byte for byte
    code, out, err = cli("report", whole["path"], "--format", "json", "md", "html", "--out", tmp_path / "again")
    assert code == 1 and not err and "FAIL" in out, out + err
    assert (tmp_path / "again" / "agreement.json").read_text() == whole["text"]
    assert "inf" in (tmp_path / "again" / "agreement.md").read_text()
    # diff: the same run against itself is not worse; the good run against it is
    code, out, err = cli("diff", whole["path"], whole["path"], "--json")
    assert code == 0 and not strict_json(out)["worse"], out + err
    code, out, err = cli("diff", runs["good"]["path"], whole["path"], "--json")  # the fix undone
    assert code == 1 and strict_json(out)["new_discrepancies"], out + err
    grown = {g["id"]: g for g in from_json(out)["grown"]}  # strict JSON too: an error grown from 0 grew infinitely
    assert [i for i, t in infinite if grown[i]["new"] == math.inf == grown[i]["factor"]], grown
    # the CI flow: the shards merge to the unsharded run, infinities included
    all_json = tmp_path / "all" / "agreement.json"
    code, out, err = cli("merge", runs["shard0"]["path"], runs["shard1"]["path"], "-o", all_json)
    assert code == 1 and "FAIL" in out, out + err
    merged = read(all_json)
    assert canonical(merged["comparisons"]) == canonical(whole["doc"]["comparisons"])
    assert _infinite_shares(merged) == infinite
    assert merged["summary"]["complete"] and not merged["summary"]["passed"]


def _json_values():
    floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([math.inf, -math.inf, math.nan, -0.0])
    words = st.text(max_size=8) | st.sampled_from(["Infinity", "-Infinity", "NaN"])  # strings stay strings
    scalars = st.none() | st.booleans() | st.integers() | floats | words
    keys = st.text(max_size=8) | st.just("$numberDouble")  # the key of a spelled number, holding anything else

    def spelling(d):  # the one object that reads as a number (see reports.writers)
        return list(d) == ["$numberDouble"] and d["$numberDouble"] in ("Infinity", "-Infinity", "NaN")

    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(keys, inner, max_size=4).filter(lambda d: not spelling(d)), max_leaves=20)


@settings(max_examples=200, deadline=None, database=None)
@given(_json_values())
def test_every_number_round_trips_exactly_through_strict_json(value):
    document = {"comparisons": [value, {"x": value}], "value": value}
    text = to_json(document)
    strict_json(text)  # readable by any JSON reader
    assert canonical(from_json(text)) == canonical(document)


# --- 2. readers never change what they read --------------------------------------------

def test_report_of_a_directorys_own_report_leaves_it_in_place(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "gradmatrix-report"
    out.mkdir()
    (out / "agreement.json").write_text(runs["whole"]["text"])
    code, stdout, err = cli("report", "gradmatrix-report/agreement.json")  # the default --out and formats
    assert code == 1, stdout + err
    assert sorted(p.name for p in out.iterdir()) == ["agreement.html", "agreement.json", "agreement.md"]
    assert (out / "agreement.json").read_text() == runs["whole"]["text"]
    # asked to write json there too: that would replace the input, and is refused
    code, stdout, err = cli("report", "gradmatrix-report/agreement.json", "--format", "json", "md")
    assert code == 2 and "would replace an input" in one_line_error(err)
    assert (out / "agreement.json").read_text() == runs["whole"]["text"]
    # a report kept in previous/, which writing the directory replaces
    (out / "previous").mkdir()
    shutil.copy(runs["good"]["path"], out / "previous" / "agreement.json")
    code, stdout, err = cli("report", "gradmatrix-report/previous/agreement.json")
    assert code == 2 and "write to another directory" in one_line_error(err)
    assert (out / "previous" / "agreement.json").read_text() == runs["good"]["text"]
    # merge -o onto one of its shards
    shard0 = tmp_path / "s0" / "agreement.json"
    shard0.parent.mkdir()
    shard0.write_text(runs["shard0"]["text"])
    code, stdout, err = cli("merge", shard0, runs["shard1"]["path"], "-o", shard0)
    assert code == 2 and "would replace an input" in one_line_error(err)
    assert shard0.read_text() == runs["shard0"]["text"]


# --- 3. one writer per directory -------------------------------------------------------

def _lockable(directory: Path) -> bool:
    try:
        with lock(directory, "the test"):
            return True
    except DirectoryBusy:
        return False


def test_a_second_run_into_a_busy_directory_is_refused_and_the_first_report_stays(tmp_path):
    (tmp_path / "wrong.py").write_text(GATED)
    (tmp_path / "right.py").write_text(GOOD)
    gate = tmp_path / "gate"
    env = dict(os.environ, GRADMATRIX_TEST_GATE=str(gate))
    first = start("check", "wrong.py", *SLICE, "--out", "shared", cwd=tmp_path, env=env)
    try:
        deadline = time.time() + 120
        # the first run holds the directory from before it imports its candidate (whose probe
        # then waits at the gate), and marks it in progress once the plan is made
        while not (tmp_path / "shared" / LOCK).exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, first.communicate()
        second = gradmatrix("check", "right.py", *SLICE, "--out", "shared", cwd=tmp_path, env=env)
        assert second.returncode == 2, second.stdout + second.stderr
        line = one_line_error(second.stderr)
        assert "shared is being written by another gradmatrix command (gradmatrix check, process" in line
        assert "report:" not in second.stdout and "PASS" not in second.stdout
        # plain pytest with the plugin takes the same lock
        plugin = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "gradmatrix.matrix_test", "-q",
                                 "-p", "no:cacheprovider", "--gm-ops", "relu", "--gm-seeds", "1", "--gm-dtypes",
                                 "float64", "--gm-modes", "reverse", "--gm-oracles", "numeric", "--gm-out", "shared"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
        said = plugin.stdout + plugin.stderr
        assert plugin.returncode == 4 and "shared is being written by another gradmatrix command" in said, said
    finally:
        gate.write_text("")
        stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 1, stdout + stderr
    doc = read(tmp_path / "shared" / "agreement.json")
    assert not doc["summary"]["passed"] and doc["run"]["candidate"] == "wrong"
    assert all("wrong" in r["pair"] for r in doc["comparisons"])
    assert not (tmp_path / "shared" / LOCK).exists() and _lockable(tmp_path / "shared")


def test_the_lock_goes_with_its_process_however_it_ends(runs, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    with lock(busy, "the test"):  # held in this very process: report, merge and run are refused
        for argv in (("report", runs["whole"]["path"], "--out", busy),
                     ("merge", runs["shard0"]["path"], runs["shard1"]["path"], "-o", busy / "agreement.json")):
            code, out, err = cli(*argv)
            assert code == 2 and "busy is being written by another gradmatrix command (the test, process" in \
                one_line_error(err), argv
        assert not any(p.name.startswith("agreement.") for p in busy.iterdir())
    # a holder killed outright leaves a lock file but no lock
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom gradmatrix.reports.writers import lock\n"
                               "held = lock(sys.argv[1], 'doomed')\nprint('held', flush=True)\ntime.sleep(300)\n",
                               str(busy)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert not _lockable(busy)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    assert (busy / LOCK).exists()
    code, out, err = cli("report", runs["whole"]["path"], "--out", busy)
    assert code == 1 and (busy / "agreement.md").exists(), out + err
    # run and check release it on a usage error, and when the candidate's process dies
    (tmp_path / "nomask.py").write_text(NO_MASK)
    (tmp_path / "quits.py").write_text(NO_MASK.replace("    return dout.copy()", "    os._exit(0)")
                                       .replace("from gradmatrix", "import os\nfrom gradmatrix"))
    for module, extra, reason in (("nomask.py", ["--modes", "hvp"], "nothing to compare"),
                                  ("quits.py", [], "ended its process (exit status 0)")):
        result = gradmatrix("check", module, *SLICE, *extra, "--out", "r", cwd=tmp_path)
        assert result.returncode == 2 and reason in result.stderr, result.stdout + result.stderr
        assert not (tmp_path / "r" / LOCK).exists()
    assert _lockable(tmp_path / "r")  # the directory of the run that died; the other was removed


# --- 6. bounded, checked reading; arguments checked where they enter -------------------

def test_deep_large_and_malformed_files_are_one_line_errors(runs, tmp_path, monkeypatch):
    good = runs["whole"]["path"]
    files = {
        "deep.json": "[" * 200_000 + "]" * 200_000,
        "deep_inside.json": runs["whole"]["text"].replace('"frameworks": {', '"frameworks": {"x": ' + "[" * 100
                                                          + "]" * 100 + ", ", 1),
        "bare_infinity.json": runs["whole"]["text"].replace('{"$numberDouble": "Infinity"}', "Infinity"),
        "null_share.json": runs["whole"]["text"].replace('{"$numberDouble": "Infinity"}', "null"),
        "version2.json": runs["whole"]["text"].replace('"schema_version": 3', '"schema_version": 2'),
        "truncated.json": runs["whole"]["text"][: len(runs["whole"]["text"]) // 2],
        "list.json": "[]",
    }
    reasons = {"deep.json": "nested more than 64 levels deep", "deep_inside.json": "nested more than 64 levels deep",
               "bare_infinity.json": "Infinity is not JSON", "null_share.json": "of_allowed: None is not valid",
               "version2.json": "schema version 2; this gradmatrix reads version 3", "truncated.json": "not JSON",
               "list.json": "is not of type 'object'"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "latin1.json").write_bytes(b"\xff" + runs["whole"]["text"].encode())
    reasons["latin1.json"] = "not UTF-8"
    for name, reason in reasons.items():
        path = tmp_path / name
        for argv in (("report", path, "--out", tmp_path / "out"), ("diff", good, path), ("diff", path, good),
                     ("merge", path, runs["shard1"]["path"], "-o", tmp_path / "m" / "agreement.json")):
            code, out, err = cli(*argv)
            line = one_line_error(err)
            assert code == 2 and f"{path} is not a valid agreement report" in line and reason in line, (argv, line)
    assert not (tmp_path / "out").exists() and not (tmp_path / "m").exists()
    monkeypatch.setattr(writers, "MAX_BYTES", 10_000)
    code, out, err = cli("report", good, "--out", tmp_path / "out")
    assert code == 2 and "larger than 10,000 bytes" in one_line_error(err)


def test_merge_counts_the_missing_shards_of_a_huge_split(runs, tmp_path):
    doc = copy.deepcopy(runs["shard0"]["doc"])
    doc["plan"]["shard"] = "0/999999999"  # the largest split the schema allows
    (tmp_path / "s.json").write_text(to_json(doc))
    started = time.perf_counter()
    code, out, err = cli("merge", tmp_path / "s.json", "-o", tmp_path / "m" / "agreement.json")
    assert code == 1 and "shard(s) 1/999999999, 2/999999999" in out and "and 999999988 more missing" in out, out + err
    assert time.perf_counter() - started < 30  # counted, never listed one by one


@pytest.mark.parametrize("argv, reason", [
    (["run", "--case-timeout", "-1"], "argument --case-timeout: must be a finite number of seconds >= 0"),
    (["run", "--case-timeout", "nan"], "argument --case-timeout: must be a finite number of seconds >= 0"),
    (["check", "m.py", "--case-timeout", "inf"], "argument --case-timeout: must be a finite number of seconds >= 0"),
    (["run", "--seeds", "0"], "argument --seeds: must be at least 1"),
    (["run", "-n", "two"], "argument -n: must be a number of workers"),
    (["diff", "a.json", "b.json", "--factor", "nan"], "argument --factor: must be a finite number >= 1"),
], ids=["timeout-negative", "timeout-nan", "timeout-inf", "seeds-0", "workers-word", "factor-nan"])
def test_bad_arguments_are_one_line_usage_errors(argv, reason, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(*argv)
    assert code == 2 and reason in one_line_error(err)
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_a_selection_that_compares_nothing_says_why(tmp_path):
    (tmp_path / "nomask.py").write_text(NO_MASK)
    hvp = gradmatrix("check", "nomask.py", *SLICE, "--modes", "hvp", cwd=tmp_path)
    line = one_line_error(hvp.stderr)
    assert hvp.returncode == 2 and "the modes hvp make no case of relu" in line and "softmax_loss" in line
    past = gradmatrix("run", *SLICE, "--shard", "9/10", cwd=tmp_path)
    line = one_line_error(past.stderr)
    assert past.returncode == 2 and "--shard 9/10: the selection has" in line, line
    assert "shard 9 would run nothing" in line, line
    assert "did not run" not in hvp.stderr + past.stderr
    assert not (tmp_path / "gradmatrix-report").exists()


# --- the property: any document, valid, crafted or invalid ------------------------------

def _paths(value, at=()):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield at + (key,)
            yield from _paths(inner, at + (key,))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield at + (i,)
            yield from _paths(inner, at + (i,))


def _set(document: dict, path: tuple, value) -> None:
    for key in path[:-1]:
        document = document[key]
    document[path[-1]] = value


def _dumps(draw, document: dict) -> str:
    """The document as a JSON file in the documented form, laid out as the draw says."""
    indent = draw(st.sampled_from([None, 0, 1, 4]))
    return json.dumps(spelled(document), indent=indent, sort_keys=draw(st.booleans()), allow_nan=False)


REALS = (st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1.0, 0.5, 8.0, -1.0])
         | st.integers(-3, 10))
WORDS = st.sampled_from(["", "x", "nomask", "numeric", "nomask.fd", "dx: nomask returned shape (2, 3) for (3, 2)",
                         "nomask failed: raised ValueError", "x; reproduce: gradmatrix run", "agree", "0/2", "1/2"])


def _same_kind(draw, value):
    """A value of the JSON type of ``value``: a schema-valid document stays schema-valid as far
    as types go (enums, patterns and required keys may still refuse it)."""
    if isinstance(value, bool):
        return draw(st.booleans())
    if isinstance(value, int):
        return draw(st.integers(-3, 10) | st.integers())
    if isinstance(value, float):
        return draw(REALS)
    if isinstance(value, str):
        return draw(WORDS | st.text(max_size=6))
    if isinstance(value, list):
        return draw(st.lists(st.one_of(WORDS, st.integers(0, 9)), max_size=3)) if value else []
    return copy.deepcopy(value)


@st.composite
def documents(draw, runs):
    """(kind, file text, the run's own document or None, the base's name): kind is "valid" (a
    run's report, laid out anew: the same verdict), "crafted" (values changed, types kept)
    or "invalid" (by construction: truncated, a wrong type where the schema fixes one, a word
    JSON lacks, too deep, another schema version, not an object)."""
    name = draw(st.sampled_from(["whole", "shard0", "shard1", "good"]))
    document = copy.deepcopy(runs[name]["doc"])
    kind = draw(st.sampled_from(["valid", "crafted", "invalid"]))
    if kind == "valid":
        records = document["comparisons"]
        document["comparisons"] = draw(st.permutations(records))
        document["plan"]["ids"] = draw(st.permutations(document["plan"]["ids"]))
        return kind, _dumps(draw, document), runs[name]["doc"], name
    if kind == "crafted":
        for _ in range(draw(st.integers(1, 5))):
            # the paths of the document as it is now: an earlier change may have replaced a
            # list or an object that a path drawn before it went into
            path = ("comparisons",) + draw(st.sampled_from(list(_paths(document["comparisons"]))))
            inner = document
            for key in path[:-1]:
                inner = inner[key]
            _set(document, path, _same_kind(draw, inner[path[-1]]))
        return kind, _dumps(draw, document), None, name
    how = draw(st.sampled_from(["truncate", "wrong type", "bare word", "deep", "version", "not an object"]))
    record = draw(st.integers(0, len(document["comparisons"]) - 1))
    if how == "truncate":
        text = _dumps(draw, document)
        return kind, text[: draw(st.integers(0, len(text.rstrip()) - 1))], None, name
    if how == "wrong type":
        path, value = draw(st.sampled_from([
            (("comparisons",), {}), (("summary",), []), (("plan", "ids"), "x"), (("run", "candidate"), 3),
            (("comparisons", record, "verdict"), "maybe"), (("comparisons", record, "tensors", 0, "of_allowed"), None),
            (("comparisons", record, "tensors", 0, "of_allowed"), {"$numberDouble": "inf"}),
            (("comparisons", record, "dims"), math.nan), (("comparisons", record, "pair"), ["one"]),
            (("plan", "shard"), "3/2"), (("merge",), {"problems": 5}),
            (("comparisons", record, "at_highest_precision"), "again"),
        ]))
        _set(document, path, value)
        return kind, _dumps(draw, document), None, name
    text = _dumps(draw, document)
    if how == "bare word":
        return kind, text.replace('"seed": 0', f'"seed": {draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))}'), \
            None, name
    if how == "deep":
        depth = draw(st.sampled_from([65, 1000, 200_000]))
        return kind, text.replace('"frameworks": {', '"frameworks": {"x": ' + "[" * depth + "]" * depth + ", ", 1), \
            None, name
    if how == "version":
        return kind, text.replace('"schema_version": 3', f'"schema_version": {draw(st.sampled_from([1, 2, 4]))}'), \
            None, name
    return kind, draw(st.sampled_from(["[]", "null", "3", '"agreement"', ""])), None, name


PARTNER = {"whole": "good", "shard0": "shard1", "shard1": "shard0", "good": "whole"}


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_document_gives_a_verdict_or_one_line_never_a_traceback(runs, data):
    kind, text, original, name = data.draw(documents(runs))
    partner = runs[PARTNER[name]]["path"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "drawn.json"
        path.write_text(text)
        report = cli("report", path, "--format", "json", "md", "html", "--out", tmp / "out")
        diffs = [cli("diff", path, partner, "--json"), cli("diff", partner, path, "--json")]
        merged = cli("merge", path, partner, "-o", tmp / "merged" / "agreement.json")
        event(f"{kind}: report exits {report[0]}")  # --hypothesis-show-statistics: what the draws exercised
        if kind == "invalid":
            for code, out, err in (report, *diffs, merged):
                assert code == 2 and f"{path} is not a valid agreement report" in one_line_error(err), (code, out, err)
            assert not (tmp / "out").exists() and not (tmp / "merged").exists()
            return
        for code, out, err in (report, *diffs, merged):
            assert code in (0, 1) or (code == 2 and one_line_error(err)), (code, out, err)
        code, out, err = report
        if kind == "valid":
            # the verdict of the run that wrote it, and the same report written again
            assert code == (0 if original["summary"]["passed"] else 1), out + err
            again = read(tmp / "out" / "agreement.json")
            assert canonical(again["comparisons"]) == canonical(original["comparisons"])
            assert again["summary"] == original["summary"]
            assert canonical(again["findings"]) == canonical(original["findings"])
            code, out, err = cli("diff", runs[name]["path"], path, "--json")
            assert code == 0 and not json.loads(out)["new_discrepancies"], out + err
        elif code in (0, 1):
            again = read(tmp / "out" / "agreement.json")  # what report wrote reads back, with its verdict
            assert code == (0 if again["summary"]["passed"] else 1)
