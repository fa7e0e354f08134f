"""The fork server (``gradmatrix.forkserver``): a forked worker starts as a fresh interpreter
would, in the judge's state at the moment it is asked for, and ends as one would."""

from __future__ import annotations

import os
import socket

import pytest

from gradmatrix import forkserver

pytestmark = pytest.mark.skipif(not forkserver.USABLE, reason="the fork server is Linux's")

REPORTS = '''
import os, sys
import numpy as np
print("worker", os.getcwd(), os.environ.get("GRADMATRIX_TEST_SETTING"), sys.argv[2] == __file__,
      sys.stdin.read() == "", os.getcwd() in sys.path, "torch" in sys.modules, np.random.randint(2 ** 62),
      flush=True)
os._exit(7)
'''


def _spawn(target):
    ours, theirs = socket.socketpair()
    env = {**os.environ, "MPLBACKEND": "Agg"}  # as gradmatrix.isolation asks for one
    worker = forkserver.spawn(str(target), (), env, theirs.fileno())
    theirs.close()
    return worker, ours


def _stopped_without_its_server_and_a_new_one_serves(worker, channel, server, target):
    """``worker``'s server has ended: the worker is still stopped (through its pidfd, its
    status lost with the server), and the next worker comes from a new server."""
    worker.kill()
    assert worker.wait(10) is None
    channel.close()
    again, channel = _spawn(target)
    assert isinstance(again, forkserver.Forked) and forkserver._SERVERS[next(iter(forkserver._SERVERS))] is not server
    again.kill()
    assert again.wait(10) == -9
    channel.close()


def test_a_worker_starts_in_the_judges_state_at_the_moment_it_is_asked_for(tmp_path, monkeypatch, capfd):
    target = tmp_path / "reports.py"
    target.write_text(REPORTS)
    lines = []
    for setting in ("first", "second"):
        place = tmp_path / setting
        place.mkdir()
        monkeypatch.chdir(place)  # changed after the server started: the worker follows
        monkeypatch.setenv("GRADMATRIX_TEST_SETTING", setting)
        worker, channel = _spawn(target)
        assert isinstance(worker, forkserver.Forked)  # forked, not a fresh interpreter
        assert worker.wait(60) == 7  # its own exit status, as Popen reports it
        channel.close()
        lines.append(capfd.readouterr().out.split())  # its stdout is the judge's
    for (word, cwd, setting, argv, empty, first_path, _, _), expected in zip(lines, ("first", "second")):
        assert (word, cwd, setting, argv, empty, first_path) == (
            "worker", str(tmp_path / expected), expected, "True", "True", "True")  # on sys.path too, as python -m puts it
    assert lines[0][-1] != lines[1][-1]  # NumPy's global generator is seeded afresh in each


def test_a_killed_worker_reports_the_signal_and_is_never_signalled_again(tmp_path):
    target = tmp_path / "loops.py"
    target.write_text("while True:\n    pass\n")
    worker, channel = _spawn(target)
    with pytest.raises(__import__("subprocess").TimeoutExpired):
        worker.wait(0.2)  # still importing its loop
    worker.kill()
    assert worker.wait(10) == -9
    worker.kill()  # ended and reaped: nothing is sent to the id it had
    assert worker.wait() == -9
    channel.close()


def test_without_a_server_a_worker_is_a_fresh_interpreter(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(forkserver, "_BROKEN", True)  # as after the server ended
    target = tmp_path / "reports.py"
    target.write_text(REPORTS)
    monkeypatch.chdir(tmp_path)
    worker, channel = _spawn(target)
    assert not isinstance(worker, forkserver.Forked) and worker.wait(60) == 7
    channel.close()
    assert capfd.readouterr().out.split()[:2] == ["worker", str(tmp_path)]


def test_a_server_killed_from_outside_leaves_its_workers_stoppable_and_a_new_one_serves(tmp_path, monkeypatch):
    monkeypatch.setattr(forkserver, "_SERVERS", {})  # servers of this test's own (the others are put back)
    monkeypatch.setattr(forkserver, "_BROKEN", False)
    target = tmp_path / "loops.py"
    target.write_text("while True:\n    pass\n")
    worker, channel = _spawn(target)
    [server] = forkserver._SERVERS.values()
    server._process.kill()  # as an out-of-memory kill would
    server._process.wait()
    _stopped_without_its_server_and_a_new_one_serves(worker, channel, server, target)


def test_a_changed_import_time_setting_gets_a_server_started_with_it(tmp_path, monkeypatch, capfd):
    target = tmp_path / "reports.py"
    target.write_text(REPORTS)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")  # read when NumPy is imported: a copy of another would not
    worker, channel = _spawn(target)
    assert isinstance(worker, forkserver.Forked) and worker.wait(60) == 7
    channel.close()
    started_with = [dict(key) for key in forkserver._SERVERS]
    assert any(settings.get("OPENBLAS_NUM_THREADS") == "3" for settings in started_with)


def test_a_setting_read_only_when_used_keeps_the_server_and_reaches_the_worker(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(forkserver, "_SERVERS", {})
    monkeypatch.setattr(forkserver, "_BROKEN", False)
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    target = tmp_path / "cache_dir.py"
    target.write_text("import os\nprint('cache', os.environ.get('TORCHINDUCTOR_CACHE_DIR'), flush=True)\nos._exit(0)\n")
    for _ in range(2):
        worker, channel = _spawn(target)
        assert isinstance(worker, forkserver.Forked) and worker.wait(60) == 0
        channel.close()
        # as torch does the first time it compiles: its default directory, written into the environment
        monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    assert len(forkserver._SERVERS) == 1
    assert capfd.readouterr().out.split() == ["cache", "None", "cache", str(tmp_path / "inductor")]


def test_frameworks_are_imported_by_the_server_once_a_worker_needed_them(tmp_path, capfd):
    pytest.importorskip("torch")
    target = tmp_path / "reports.py"
    target.write_text(REPORTS)
    forkserver.preload({**os.environ, "MPLBACKEND": "Agg"})  # as after a module declaring layers
    worker, channel = _spawn(target)
    assert isinstance(worker, forkserver.Forked) and worker.wait(120) == 7
    channel.close()
    assert capfd.readouterr().out.split()[6] == "True"  # torch there before the module imported anything


def test_a_server_that_does_not_answer_is_stopped_and_the_worker_is_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(forkserver, "_SERVERS", {})
    monkeypatch.setattr(forkserver, "_BROKEN", False)
    monkeypatch.setattr(forkserver, "IMPORT_TIME_LIMIT", 0.5)  # a fork's limit
    target = tmp_path / "loops.py"
    target.write_text("while True:\n    pass\n")
    first, channel = _spawn(target)  # the server starts
    first.kill()
    first.wait(10)
    channel.close()
    [server] = forkserver._SERVERS.values()
    os.kill(server._process.pid, __import__("signal").SIGSTOP)  # wedged, as a server stuck in an import would be
    worker, channel = _spawn(target)
    assert not isinstance(worker, forkserver.Forked)  # not waited for beyond the limit
    assert server._process.wait(10) == -9  # and stopped for good
    worker.kill()
    assert worker.wait(10) == -9
    channel.close()


def test_umask_and_resource_limits_are_the_judges_of_the_moment(tmp_path, capfd):
    import resource

    target = tmp_path / "limits.py"
    target.write_text("import os, resource\nmask = os.umask(0)\n"
                      "print('limits', oct(mask), resource.getrlimit(resource.RLIMIT_NOFILE)[0], flush=True)\n"
                      "os._exit(0)\n")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    old_mask = os.umask(0o077)  # both changed after the server started
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        worker, channel = _spawn(target)
        assert isinstance(worker, forkserver.Forked) and worker.wait(60) == 0
        channel.close()
    finally:
        os.umask(old_mask)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert capfd.readouterr().out.split() == ["limits", "0o77", "256"]


def test_a_request_cut_short_stops_its_server_and_the_next_worker_has_a_new_one(tmp_path, monkeypatch):
    monkeypatch.setattr(forkserver, "_SERVERS", {})
    monkeypatch.setattr(forkserver, "_BROKEN", False)
    target = tmp_path / "loops.py"
    target.write_text("while True:\n    pass\n")
    first, channel = _spawn(target)
    [server] = forkserver._SERVERS.values()
    real = socket.recv_fds

    def interrupted(*args):  # Ctrl-C between the request and its answer
        monkeypatch.setattr(socket, "recv_fds", real)
        raise KeyboardInterrupt

    monkeypatch.setattr(socket, "recv_fds", interrupted)
    with pytest.raises(KeyboardInterrupt):
        server.ask(("wait", first.pid, 0.1), within=5)
    assert server.ended and server._process.wait(10) == -9  # its answer is never read as another's
    _stopped_without_its_server_and_a_new_one_serves(first, channel, server, target)


def test_a_judge_at_its_end_tells_every_server_before_waiting_and_each_ends_without_teardown(tmp_path, monkeypatch):
    monkeypatch.setattr(forkserver, "_SERVERS", {})
    monkeypatch.setattr(forkserver, "_BROKEN", False)
    target = tmp_path / "loops.py"
    target.write_text("while True:\n    pass\n")
    first = _spawn(target)
    # a second server, started with other settings: one whose interpreter would leave a mark
    # if its teardown ran (atexit)
    site = tmp_path / "site"
    site.mkdir()
    mark = tmp_path / "torn_down"
    (site / "sitecustomize.py").write_text(f"import atexit\natexit.register(open, {str(mark)!r}, 'w')\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    second = _spawn(target)
    servers = list(forkserver._SERVERS.values())
    assert len(servers) == 2
    told = []
    close = forkserver.ForkServer.close
    monkeypatch.setattr(forkserver.ForkServer, "close",
                        lambda self: told.append([server.ended for server in servers]) or close(self))
    forkserver._close_all()  # as at the judge's exit
    assert told == [[True, True], [True, True]]  # all told to end before the first is waited for
    assert [server._process.returncode for server in servers] == [0, 0]
    assert not mark.exists()  # ended at once: the interpreter's teardown skipped
    for worker, channel in (first, second):  # a worker left running stays its judge's to stop
        worker.kill()
        assert worker.wait(10) is None  # its status went with its server
        channel.close()
