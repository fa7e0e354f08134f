"""JAX computed ahead in a process of its own (``gradmatrix.oracle_host``): the same results
as in the judge, the judge never importing JAX, and a host that fails, stops answering or
whose oracle raises changing where a result is computed, never the verdict."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from gradmatrix import manual
from gradmatrix.oracle_host import OracleHost, RaisedElsewhere
from gradmatrix.oracles import modes
from gradmatrix.oracles.candidate import Candidate
from gradmatrix.oracles.cases import Case, CaseInputs, draw_inputs
from gradmatrix.oracles.implementations import oracle
from gradmatrix.runner import Runner, default_plan

OPS = ["relu", "softmax_loss"]  # random, kink, jvp and hvp cases


def _plan(ops=OPS, dtypes=("float64",)):
    return default_plan("default", ops, list(dtypes), 1, candidate=Candidate(manual, "manual"))


def _runner(plan, **options) -> Runner:
    runner = Runner(Candidate(manual, "manual"), **options)
    runner.compile_ahead(plan)
    return runner


def _same_but_for_rounding(got, expected) -> None:
    """A few units in the last place of the largest value apart at most: a function compiled
    among others (oracles.jax_store.compile_together) may round an operation differently."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    scale = float(np.max(np.abs(expected), initial=0.0))  # all zeros: equal
    assert float(np.max(np.abs(got - expected), initial=0.0)) <= 8 * float(np.finfo(expected.dtype).eps) * scale


def test_the_host_computes_what_the_judge_would(monkeypatch, tmp_path):
    # a check on an empty store: the host's results are stored (store_writes), so it stores
    # no function and compiles its functions several to a module (oracles.jax_oracle.expect)
    plan = _plan(dtypes=("float64", "float32"))
    jax_names = {(c.case, n) for c in plan for n in c.pair if n.split(".")[0] == "jax"}
    jobs = sorted(jax_names, key=lambda job: (job[0].id, job[1]))
    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", str(tmp_path / "judge"))
    here = _runner(plan, oracle_host=False)
    theirs = {job: here._result(*job) for job in jobs}
    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", str(tmp_path / "host"))  # nothing stored: every result is computed
    hosted = _runner(plan, oracle_host=True, store_writes=True)
    try:
        assert "jax" in hosted._hosts and not here._hosts
        assert {c.case.kind for c in plan} >= {"random", "kink", "jvp", "hvp"}
        for job in jobs:
            mine, reference = hosted._result(*job), theirs[job]
            assert not isinstance(mine, BaseException), mine
            assert mine.impl == reference.impl
            assert mine.grads.keys() == reference.grads.keys()
            for got, expected in [(mine.forward, reference.forward),
                                  *((mine.grads[k], reference.grads[k]) for k in mine.grads)]:
                _same_but_for_rounding(got, expected)
        records = [hosted.run(c) for c in plan]
        assert {r["verdict"] for r in records} <= {"agree", "convention"}, [r["message"] for r in records
                                                                            if r["verdict"] not in ("agree", "convention")]
    finally:
        hosted.close()
        here.close()
    assert not hosted._hosts  # closed with the runner


def test_a_check_in_a_fresh_process_never_imports_jax_nor_torchs_compiler(tmp_path):
    # JAX runs in the host; torch's J v is reverse over reverse, which never loads torch._dynamo
    # (its forward mode does: 1 to 2 s of a check's CPU, oracles.torch_oracle.evaluate_jvp)
    script = ("import sys, gradmatrix\n"
              "result = gradmatrix.check('gradmatrix.manual', ops=['relu', 'softmax_loss'])\n"
              "print(result.status, 'jax' in sys.modules, 'torch._dynamo' in sys.modules,\n"
              "      sorted({c['pair'][1] for c in result.document['comparisons']}))\n")
    env = {**os.environ, "GRADMATRIX_JAX_CACHE": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    status, jax, dynamo, references = run.stdout.split(" ", 3)
    assert (status, jax, dynamo) == ("0", "False", "False")
    for computed in ("jax", "jax.jvp", "jax.hvp", "torch.jvp"):  # all computed, JAX's in the host
        assert f"'{computed}'" in references


def test_a_host_killed_midway_leaves_the_rest_to_the_judge(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", str(tmp_path))
    plan = _plan(["relu"])
    runner = _runner(plan, oracle_host=True)
    try:
        records = [runner.run(c) for c in plan[:20]]
        runner._hosts["jax"]._process.kill()
        records += [runner.run(c) for c in plan[20:]]
        assert len(records) == len(plan)
        assert {r["verdict"] for r in records} <= {"agree", "convention"}
        assert runner._hosts["jax"]._stopped  # and stopped being asked
    finally:
        runner.close()


def test_a_host_that_stops_answering_is_stopped_after_the_time_limit(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", str(tmp_path))
    plan = _plan(["affine"])
    runner = _runner(plan, oracle_host=True, case_timeout=1.0)
    host = runner._hosts["jax"]
    try:
        assert runner.unavailable("jax") is None  # the host has imported JAX and said so
        os.kill(host._process.pid, signal.SIGSTOP)
        records = [runner.run(c) for c in plan]
        assert "no answer within 1 s" in host._stopped
        assert {r["verdict"] for r in records} == {"agree"}  # computed here instead
    finally:
        runner.close()


def test_what_an_oracle_raises_in_the_host_comes_back_as_data():
    case = Case("affine", (("N", 4), ("Dx", 5), ("M", 3)), 0, "float64")
    inputs = draw_inputs(case)
    host = OracleHost([], ("jax",), "cpu", "default", 60.0)
    try:
        assert host.available("jax") is None
        good = host.ask(case, "jax", inputs, "default")
        np.testing.assert_allclose(good.forward, inputs.arrays["x"].reshape(4, 5) @ inputs.arrays["w"]
                                   + inputs.arrays["b"], rtol=1e-12)
        broken = CaseInputs(case, {**inputs.arrays, "w": inputs.arrays["w"][:2]}, inputs.dout)  # w of 2 rows for x of 5 columns
        with pytest.raises(RaisedElsewhere) as raised:
            host.ask(case, "jax", broken, "default")
        assert raised.value.raised == "TypeError" and "called with float64[2,3]" in str(raised.value)
        assert raised.value.user_traceback.startswith("Traceback") and "called with float64[2,3]" in raised.value.user_traceback
        # and the record names it as a runner names any implementation's failure
        from gradmatrix.runner import _describe, _error

        assert _describe("jax", raised.value, "").startswith("jax failed: TypeError: ")
        error = _error("jax", raised.value)
        assert error["exception"] == "TypeError" and "called with float64[2,3]" in error["said"]
    finally:
        host.close()
    assert host.ask(case, "jax", inputs, "default") is None  # closed: the judge evaluates it itself


def test_a_host_started_before_the_plan_gets_its_jobs_or_is_closed(monkeypatch, tmp_path):
    # a check on an empty store starts JAX's host before its candidate loads (gradmatrix.engine):
    # the runner gives it the plan's jobs, or closes it when the plan has none for it
    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", str(tmp_path))
    plan = _plan(["relu"])
    early = OracleHost(None, ("jax",), "cpu", "default", 60.0, keep_functions=False)
    runner = Runner(Candidate(manual, "manual"), oracle_host=True, hosts={"jax": early})
    try:
        runner.compile_ahead(plan)
        assert runner._hosts == {"jax": early} and early._index  # its jobs, given now
        assert {r["verdict"] for r in (runner.run(c) for c in plan)} <= {"agree", "convention"}
        assert not early._index  # every job's answer taken from it
    finally:
        runner.close()
    unused = OracleHost(None, ("jax",), "cpu", "default", 60.0, keep_functions=False)
    without_jax = Runner(Candidate(manual, "manual"), ("torch", "numeric"), oracle_host=True, hosts={"jax": unused})
    without_jax.compile_ahead(default_plan("default", ["relu"], ["float64"], 1, ("torch", "numeric"),
                                           Candidate(manual, "manual")))
    assert unused._stopped == "closed" and unused._process.poll() is not None
    without_jax.close()


def _answered(host: OracleHost, i: int, seconds: float = 120.0) -> None:
    """Wait until the host has sent answer ``i``."""
    deadline = time.monotonic() + seconds
    while i not in host._results:
        assert time.monotonic() < deadline, f"no answer {i} within {seconds:g} s"
        time.sleep(0.01)


def test_spare_work_is_taken_from_the_plans_end_and_stops_where_the_judge_has_been():
    # the numeric oracle imports no framework: JAX's host also computes its results, from the
    # plan's last backwards, while the judge computes them from the first (oracles.implementations.NO_FRAMEWORK)
    plan = _plan(["relu", "affine"], dtypes=("float64", "float32"))
    spare = list(dict.fromkeys((c.case, n) for c in plan for n in c.pair
                               if n == "numeric" and c.case.kind in ("random", "kink")))
    assert len(spare) >= 10
    host = OracleHost([], ("numeric",), "cpu", "default", 60.0, spare=spare)
    try:
        ids = dict(host._spare)  # each spare job's answer id
        assert host.offered(*spare[5]) is None  # not there yet: the judge computes it, and says so
        _answered(host, ids[spare[6]])  # the host went from the last down to the one after it
        time.sleep(0.3)  # time enough to go on, if it did
        for job in spare[:6]:
            assert ids[job] not in host._results, f"{job} was computed twice"
        for job in spare[6:]:
            assert ids[job] in host._results
        case, name = spare[-1]
        theirs, mine = host.offered(case, name), oracle("numeric").evaluate(draw_inputs(case))
        assert theirs.impl == "numeric" and theirs.grads.keys() == mine.grads.keys()
        _same_but_for_rounding(theirs.forward, mine.forward)
        for tensor in mine.grads:
            _same_but_for_rounding(theirs.grads[tensor], mine.grads[tensor])
        assert host.offered(case, name) is None  # each answer is taken once
    finally:
        host.close()


def test_a_check_takes_spare_results_from_the_host_and_computes_the_rest(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", str(tmp_path))
    plan = _plan(["relu", "softmax_loss"])
    runner = _runner(plan, oracle_host=True)
    try:
        host = runner._hosts["jax"]
        assert runner._spare_host is host and host._spare and "numeric" in host.oracles
        assert all(modes.base_name(name) == "numeric" for _, name in host._spare)
        records = [runner.run(c) for c in plan]
        assert {r["verdict"] for r in records} <= {"agree", "convention"}
        assert not host._spare  # each one taken from the host or computed here
    finally:
        runner.close()


def test_the_command_starts_its_processes_before_it_imports_the_engine_and_the_run_takes_them(tmp_path):
    # JAX's host and the candidate's fork server import what they need while the judge imports
    # its own modules; the run takes them (no second one), and a refused run stops its host
    layers = os.path.join(os.path.dirname(__file__), "cs231n", "layers.py")
    script = ("import sys\n"
              "from gradmatrix import cli, forkserver, oracle_host\n"
              "starts = []\n"
              "def counted(cls, what):\n"
              "    init = cls.__init__\n"
              "    def started(self, *args, **kwargs):\n"
              "        starts.append((what, 'gradmatrix.oracles.catalog' in sys.modules))\n"
              "        init(self, *args, **kwargs)\n"
              "    cls.__init__ = started\n"
              "counted(oracle_host.OracleHost, 'host')\n"
              "counted(forkserver.ForkServer, 'fork server')\n"
              f"status = cli.main(['check', {layers!r}, '--ops', 'relu', '--out', {str(tmp_path / 'a')!r}])\n"
              "print(status, starts, oracle_host._EARLY)\n"
              f"import os; os.environ['GRADMATRIX_JAX_CACHE'] = {str(tmp_path / 'empty')!r}\n"
              f"refused = cli.main(['check', 'gradmatrix.manual', '--ops', 'nosuchop', '--out', {str(tmp_path / 'b')!r}])\n"
              "print(refused, [what for what, _ in starts[2:]], oracle_host._EARLY)\n")
    env = {**os.environ, "GRADMATRIX_JAX_CACHE": str(tmp_path / "store")}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    # one host and one fork server, each started before the catalog was imported, taken by the run
    assert lines[-2] == "0 [('host', False), ('fork server', False)] {}"
    # the refused run's host (an empty store again) was started, then stopped; manual needs no worker
    assert lines[-1] == "2 ['host'] {}"


def test_what_the_host_will_be_asked_is_compiled_with_its_jobs(monkeypatch, tmp_path):
    # the course's dropout draws its own mask: JAX is asked on the candidate's draw (``ask``),
    # whose function the host compiles in its plan's order with the others, not while the judge waits
    from gradmatrix.oracles.candidate import load_module

    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", str(tmp_path))
    seen = {}
    submit = OracleHost.submit

    def recording(self, jobs, spare=(), expected=None):
        seen.update(jobs=list(jobs), expected=list(expected))
        submit(self, jobs, spare, expected)

    monkeypatch.setattr(OracleHost, "submit", recording)
    candidate = Candidate(load_module(os.path.join(os.path.dirname(__file__), "cs231n", "layers.py")))
    plan = default_plan("default", ["dropout_train", "relu"], ["float64"], 1, candidate=candidate)
    runner = Runner(candidate, oracle_host=True, store_writes=True)
    try:
        runner.compile_ahead(plan)
        asked = [job for job in seen["expected"] if job not in seen["jobs"]]
        assert asked and {case.op for case, _ in asked} == {"dropout_train"}
        assert not any(case.op == "dropout_train" for case, _ in seen["jobs"])
        assert [job for job in seen["expected"] if job in seen["jobs"]] == seen["jobs"]  # the jobs, in their order
        records = [runner.run(c) for c in plan]
        assert {r["verdict"] for r in records} <= {"agree", "convention"}
        assert any(r["pair"] == [candidate.name, "jax"] and r["op"] == "dropout_train" for r in records)
    finally:
        runner.close()


def test_a_spare_job_past_the_case_time_limit_is_left_to_the_judge():
    # the judge computes a numeric result under the case time limit; one the host took longer
    # over is not sent, so that the judge computes it (an error past its own limit), as without a host
    plan = _plan(["relu"])
    spare = list(dict.fromkeys((c.case, n) for c in plan for n in c.pair if n == "numeric"))
    host = OracleHost([], ("numeric",), "cpu", "default", 1e-6, spare=spare)  # every job takes longer than that
    try:
        assert host.available("numeric") is None
        time.sleep(0.5)  # time enough for the host to go through them all (about 1 ms each)
        assert not any(i in host._results for i in host._spare.values())
        assert all(host.offered(*job) is None for job in spare)
    finally:
        host.close()
