"""gradmatrix watch: the file checked again on each save, the frameworks kept loaded.

Started as a user starts it (a subprocess), the file edited from a correct layer to a wrong
one; the two verdicts are read from what it prints, and Ctrl-C (SIGINT) ends it cleanly."""

from __future__ import annotations

import os
import re
import signal
import time

from tests.cli_helpers import start

RIGHT = "import numpy as np\n\n\ndef relu_forward(x):\n    return np.maximum(x, 0), x\n\n\n" \
        "def relu_backward(dout, x):\n    return dout * (x > 0)\n"
WRONG = RIGHT.replace("dout * (x > 0)", "dout * (x > 0) * 2")


def wait_for(process, lines: list, pattern: str, deadline: float) -> str:
    """Read ``process``'s lines into ``lines`` until one matches ``pattern``."""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if re.search(pattern, line):
            return line
    raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(lines))


def test_watch_rechecks_on_save_and_stops_on_ctrl_c(tmp_path):
    layer = tmp_path / "my_layers.py"
    layer.write_text(RIGHT)
    process = start("watch", layer, "--seeds", "1", "--dtypes", "float64", "--out", tmp_path / "report",
                    "--format", "json", "--progress", "none", cwd=tmp_path)
    lines: list = []
    deadline = time.monotonic() + 300
    try:
        wait_for(process, lines, r"^checked in", deadline)
        first = "\n".join(lines)
        assert "PASS" in first and "relu: PASS" in first
        mark = len(lines)
        layer.write_text(WRONG)
        os.utime(layer, ns=(time.time_ns(), time.time_ns() + 1_000_000))  # a new mtime even on a coarse clock
        wait_for(process, lines, r"^checked in", deadline)
        second = "\n".join(lines[mark:])
        assert "relu: FAIL" in second and "2 times the reference" in second
        assert "relu_backward" in second  # the function at fault, as gradmatrix check says it
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=60)
        assert process.returncode == 0, errors
        assert "gradmatrix watch: stopped" in rest
        assert "Traceback" not in errors
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_watch_needs_a_file(tmp_path):
    process = start("watch", tmp_path / "missing.py")
    out, errors = process.communicate(timeout=120)
    assert process.returncode == 2 and "watch needs a .py file" in errors
