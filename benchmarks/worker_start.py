"""What starting a candidate's worker costs: forked from the fork server
(``gradmatrix.forkserver``) against a fresh interpreter, each started and loaded with a
course ``layers.py`` (``tests/cs231n/layers.py``: imported, its stubs probed) and stopped.

    .venv/bin/python benchmarks/worker_start.py            # 10 workers each
    .venv/bin/python benchmarks/worker_start.py --count 30

The fork server's own start (once per process) is left out: it is what a fresh worker does.
A fresh worker's CPU is counted from the children this process reaped; a forked one's
parent is the server, so only the wall time compares the two.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from gradmatrix import forkserver
from gradmatrix.isolation import IsolatedCandidate

LAYERS = Path(__file__).resolve().parent.parent / "tests" / "cs231n" / "layers.py"


def timed(count: int) -> tuple[float, float]:
    """(wall seconds, reaped children's CPU seconds) per worker started, loaded and stopped."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    for _ in range(count):
        IsolatedCandidate(str(LAYERS)).close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return (time.perf_counter() - start) / count, cpu / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10, help="workers started each way")
    args = parser.parse_args()
    if not forkserver.USABLE:
        raise SystemExit("the fork server is Linux's: every worker here is a fresh interpreter")
    IsolatedCandidate(str(LAYERS)).close()  # the server's start
    forked, _ = timed(args.count)
    forkserver._BROKEN = True  # as after the server ended: fresh interpreters
    fresh, fresh_cpu = timed(args.count)
    print(f"forked worker: {forked:.3f} s wall each")
    print(f"fresh worker:  {fresh:.3f} s wall each, {fresh_cpu:.3f} s CPU")
    print(f"fresh / forked, wall: {fresh / forked:.1f}")


if __name__ == "__main__":
    main()
