"""One time limit for code that may never return: a candidate's case, a script's top-level
statement.  ``SIGALRM`` interrupts the main thread, whatever it is running; elsewhere no
signal can be delivered, so there is no limit (a worker process's own limit, held by the
judge, still stops it: ``gradmatrix.isolation``)."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Callable


@contextmanager
def time_limit(seconds: float, expired: Callable[[], BaseException]):
    """Raise ``expired()`` in the main thread after ``seconds`` (no limit when 0, or when not
    in the main thread)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise expired()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
