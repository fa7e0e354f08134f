"""A loop that never ends, swallowing every interrupt (imported by the layers that hang).

It sleeps rather than spins: what the time limit must stop is a call that never returns
and catches everything raised in it, and a spinning loop would only take a core from the
rest of the suite (``probe_hang.py`` and ``loops_in_backward.py`` spin, as reported)."""
import time


def forever():
    while True:
        try:
            while True:
                time.sleep(0.05)
        except BaseException:  # noqa: BLE001  (the KeyboardInterrupt of SIGTERM, a time limit raised as an exception)
            pass
