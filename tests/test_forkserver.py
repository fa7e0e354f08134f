"""The fork server (``gradmatrix.forkserver``): a forked worker starts as a fresh interpreter
would, in the judge's state at the moment it is asked for, and ends as one would."""

from __future__ import annotations

import socket
import sys

import pytest

from gradmatrix import forkserver

pytestmark = pytest.mark.skipif(not forkserver.USABLE, reason="the fork server is Linux's")

REPORTS = '''
import os, sys
import numpy as np
print("worker", os.getcwd(), os.environ.get("GRADMATRIX_TEST_SETTING"), sys.argv[2] == __file__,
      sys.stdin.read() == "", np.random.randint(2 ** 62), flush=True)
os._exit(7)
'''


def _spawn(target):
    ours, theirs = socket.socketpair()
    worker = forkserver.spawn(str(target), (), {**__import__("os").environ}, theirs.fileno())
    theirs.close()
    return worker, ours


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
    for (word, cwd, setting, argv, empty, _), expected in zip(lines, ("first", "second")):
        assert (word, cwd, setting, argv, empty) == ("worker", str(tmp_path / expected), expected, "True", "True")
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


def test_a_server_killed_from_outside_leaves_its_workers_stoppable_and_the_next_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(forkserver, "_SERVER", None)  # a server of this test's own (the old one is put back)
    monkeypatch.setattr(forkserver, "_BROKEN", False)
    target = tmp_path / "loops.py"
    target.write_text("while True:\n    pass\n")
    worker, channel = _spawn(target)
    server = forkserver._SERVER._process
    server.kill()  # as an out-of-memory kill would
    server.wait()
    worker.kill()
    assert worker.wait(10) is None  # gone, its status with the server
    channel.close()
    again, channel = _spawn(target)
    assert not isinstance(again, forkserver.Forked)  # a fresh interpreter from now on
    again.kill()
    assert again.wait(10) == -9
    channel.close()
