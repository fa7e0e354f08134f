"""The progress display and the verdict's colour: a bar redrawn a few times a second within 80
columns on a terminal, colourless under NO_COLOR; plain lines every few seconds without one."""

from __future__ import annotations

import io
import re

from gradmatrix import progress as progress_
from gradmatrix.progress import LINE_EVERY, Progress, print_lines

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
COLOUR = re.compile(r"\x1b\[[0-9;]*m")


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_without_a_terminal_a_line_when_the_run_starts_then_one_every_few_seconds():
    out, clock = io.StringIO(), Clock()
    shown = Progress("auto", stream=out, clock=clock)
    assert shown.mode == "lines"
    shown(1, 500, 0)
    for done in range(2, 100):
        clock.now += 0.01
        shown(done, 500, 1)
    assert out.getvalue().splitlines() == ["gradmatrix: 1/500 comparisons, 0 discrepancies, 0 s"]
    clock.now += LINE_EVERY
    shown(100, 500, 1)
    shown(500, 500, 1)  # the last one is the verdict's
    assert out.getvalue().splitlines()[1].startswith("gradmatrix: 100/500 comparisons, 1 discrepancy, ")
    assert len(out.getvalue().splitlines()) == 2


def test_the_bar_fits_80_columns_honours_no_color_and_does_not_redraw_per_comparison(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(progress_.shutil, "get_terminal_size", lambda fallback: __import__("os").terminal_size((200, 50)))
    out = Terminal()
    shown = Progress("auto", stream=out)
    assert shown.mode == "bar"
    total = 2000
    for done in range(1, total + 1):
        shown(done, total, done // 3)
    shown.close()
    text = out.getvalue()
    assert not COLOUR.search(text), repr(text[:300])
    drawn = [ANSI.sub("", part) for part in re.split(r"[\r\n]", text) if ANSI.sub("", part).strip()]
    assert drawn and all(len(line) <= 80 for line in drawn), drawn[-1]
    assert "2000/2000" in drawn[-1] and "666 discrepancies" in drawn[-1]
    assert len(drawn) < total / 10  # redrawn on rich's clock, not after every comparison


def test_verdicts_are_coloured_on_a_terminal_unless_no_color(monkeypatch):
    lines = ["FAIL: mine disagrees with the references in 3 of 9 comparisons", "1. relu dx: wrong values",
             "relu: FAIL, 3 of 9 comparisons disagree", "affine: PASS, 9 of 9 comparisons agree"]
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Terminal()
    print_lines(lines, out)
    coloured = out.getvalue()
    assert "\x1b[1;31mFAIL: mine" in coloured and "\x1b[32maffine: PASS" in coloured
    assert ANSI.sub("", coloured).splitlines() == lines
    monkeypatch.setenv("NO_COLOR", "1")
    plain = Terminal()
    print_lines(lines, plain)
    assert plain.getvalue().splitlines() == lines
    piped = io.StringIO()
    print_lines(lines, piped)
    assert piped.getvalue().splitlines() == lines
