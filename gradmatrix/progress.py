"""What ``gradmatrix run`` and ``check`` show while they run, and the colour of their verdict.

On a terminal, a bar drawn by ``rich`` (it replaced a hand-written ``\\r`` bar): redrawn
``REFRESH_PER_SECOND`` times a second whatever the pace of the comparisons, never wider than
80 columns, without colour under ``NO_COLOR`` (rich reads it).  Without a terminal (a CI log,
a pipe), a plain line when the run starts and one every ``LINE_EVERY`` seconds.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

MODES = ("auto", "bar", "lines", "none")
REFRESH_PER_SECOND = 4
LINE_EVERY = 5.0  # seconds between plain progress lines
MAX_COLUMNS = 80
# the colour of a console line by how it starts: the verdict, and each op's verdict line
STYLES = (("PASS", "green"), ("FAIL", "bold red"), ("ERROR", "bold red"), ("INCOMPLETE", "yellow"),
          ("NOT A PASS", "yellow"), ("WARNING", "yellow"), ("warning", "yellow"))


def resolve(mode: str, stream=None) -> str:
    """'auto' becomes a live bar on a terminal and plain lines otherwise or under CI."""
    if mode != "auto":
        return mode
    stream = stream or sys.stdout
    return "bar" if stream.isatty() and not os.environ.get("CI") else "lines"


def _console(stream, force_terminal: bool | None = None):
    from rich.console import Console

    width = min(MAX_COLUMNS, shutil.get_terminal_size((MAX_COLUMNS, 24)).columns)
    return Console(file=stream, width=width, force_terminal=force_terminal, highlight=False)


class Progress:
    """Comparisons done of total and discrepancies so far; call it as the engine's
    ``progress(done, total, failures)``, then ``close()``.

    Args:
        mode: "auto", "bar", "lines" or "none".
        stream: where it writes (default: standard output).
        clock: seconds, monotonic (a test passes its own).
    """

    def __init__(self, mode: str = "auto", stream=None, clock=time.monotonic):
        self.stream = stream or sys.stdout
        self.mode = resolve(mode, self.stream)
        self.clock = clock
        self.started = clock()
        self.next_line = self.started
        self._bar = None
        self._task = None

    def __call__(self, done: int, total: int, failures: int) -> None:
        if self.mode == "bar":
            self._draw(done, total, failures)
        elif self.mode == "lines" and done < total and self.clock() >= self.next_line:
            # the first comparison (the run has started), then one line every LINE_EVERY seconds;
            # the last is the verdict's business
            print(f"gradmatrix: {status(done, total, failures, self.clock() - self.started)}", file=self.stream, flush=True)
            self.next_line = self.clock() + LINE_EVERY

    def _draw(self, done: int, total: int, failures: int) -> None:
        if self._bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

            self._bar = Bar(TextColumn("gradmatrix"), BarColumn(bar_width=20), MofNCompleteColumn(),
                            TextColumn("{task.fields[failures]}"), TimeElapsedColumn(),
                            console=_console(self.stream, force_terminal=True if self.stream.isatty() else None),
                            refresh_per_second=REFRESH_PER_SECOND, transient=False)
            self._bar.start()
            self._task = self._bar.add_task("check", total=total, failures="")
        word = "" if not failures else f"[red]{failures} {'discrepancy' if failures == 1 else 'discrepancies'}[/]"
        # no refresh here: rich redraws REFRESH_PER_SECOND times a second, however fast this is called
        self._bar.update(self._task, completed=done, total=total, failures=word)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class OutlivesItsReader:
    """A text stream whose reader may stop reading (``gradmatrix check … | head``): once a
    write or flush finds the pipe closed, the stream's descriptor is pointed at ``os.devnull``
    and what follows is dropped, so that the check goes on as if it had been read (its
    reports written, its status the verdict's) instead of ending on ``BrokenPipeError``.  The
    worker processes started after that write to ``os.devnull`` too (they take the
    descriptor); each guards its own streams (``guard_standard_streams``)."""

    def __init__(self, stream):
        self._stream = stream

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)


def guard_standard_streams() -> None:
    """Make ``sys.stdout`` and ``sys.stderr`` outlive their readers (``OutlivesItsReader``);
    once is enough."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, OutlivesItsReader):
            try:
                stream.fileno()
            except (AttributeError, OSError, ValueError):  # not a file (a test's capture): nothing to guard
                continue
            setattr(sys, name, OutlivesItsReader(stream))


def status(done: int, total: int, failures: int, elapsed: float) -> str:
    """``120/804 comparisons, 1 discrepancy, 3 s``."""
    return (f"{done}/{total} comparisons, {failures} {'discrepancy' if failures == 1 else 'discrepancies'}, "
            f"{elapsed:.0f} s")


def print_lines(lines, stream=None) -> None:
    """Print console lines, the verdicts in colour on a terminal (none under ``NO_COLOR``, in
    a pipe or a log: there the text is exactly the lines)."""
    stream = stream or sys.stdout
    if not stream.isatty() or os.environ.get("NO_COLOR"):
        for line in lines:
            print(line, file=stream)
        return
    console = _console(stream)
    for line in lines:
        style = next((s for start, s in STYLES if line.startswith(start) or f": {start}" in line.split(",")[0]), None)
        console.print(line, style=style, markup=False, soft_wrap=True)
