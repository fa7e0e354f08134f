"""The matrix end to end, as a user runs it: ``gradmatrix run`` in a fresh process, with
``-n 0`` and ``-n 2``, from a cold start (an empty JAX compilation cache) and a warm one
(the cache an earlier run left).  Prints wall time, comparisons per second and the ratios.

    .venv/bin/python benchmarks/matrix_speed.py            # default matrix: cold and warm, -n 0 and -n 2
    .venv/bin/python benchmarks/matrix_speed.py --full     # also the full matrix, cold, -n 0 and -n 2 (long)
    .venv/bin/python benchmarks/matrix_speed.py --skip-default --full-ops relu affine softmax_loss two_layer_net

It also times ``gradmatrix check`` of a complete course ``layers.py`` (every function of
``tests/cs231n/layers.py``, default options), cold and warm; with ``--peers``, runs
``benchmarks/peer_checks.py`` (torch gradcheck and jax check_grads beside gradmatrix); with
``--make-test``, times ``make test`` on a fresh clone of the repository's HEAD (setup
apart); and ends with each figure against the speed goals.

    .venv/bin/python benchmarks/matrix_speed.py --full --peers --make-test   # every figure, one run

Wall time includes starting Python, importing numpy, torch and jax, collecting the
comparisons and writing the JSON, Markdown and HTML reports.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(matrix: str, workers: str, cache: Path, out: Path, ops=None) -> tuple[float, dict]:
    """One ``gradmatrix run``; returns (wall seconds, the report's summary)."""
    env = dict(os.environ, GRADMATRIX_JAX_CACHE=str(cache))
    cmd = [sys.executable, "-m", "gradmatrix", "run", "--matrix", matrix, "-n", workers,
           "--progress", "none", "--out", str(out)] + (["--ops", *ops] if ops else [])
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=out.parent, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"gradmatrix run failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall, json.loads((out / "agreement.json").read_text())["summary"]


def check(cache: Path, out: Path) -> float:
    """``gradmatrix check`` of the complete course layers.py in a fresh process; wall seconds."""
    env = dict(os.environ, GRADMATRIX_JAX_CACHE=str(cache))
    out.mkdir(parents=True)
    cmd = [sys.executable, "-m", "gradmatrix", "check", str(ROOT / "tests" / "cs231n" / "layers.py"),
           "--progress", "none", "--out", str(out / "report")]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=out, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"gradmatrix check failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall


def make_test(work: Path) -> tuple[float, float]:
    """(seconds of ``make setup``, seconds of ``make test`` after it) on a fresh clone of HEAD,
    with an empty store of compiled JAX functions (as on a fresh machine)."""
    clone = work / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = dict(os.environ, GRADMATRIX_JAX_CACHE=str(work / "jax-make-test"))
    times = []
    for target in ("setup", "test"):
        start = time.perf_counter()
        done = subprocess.run(["make", target], cwd=clone, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            sys.exit(f"make {target} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return times[0], times[1]


GOALS = [  # (what, key in the figures, goal in seconds)
    ("default matrix, -n 0, cold", ("default", "0", "cold"), 12.0),
    ("default matrix, -n 0, warm", ("default", "0", "warm"), 8.0),
    ("check of a complete course layers.py (warm)", ("check", "0", "warm"), 15.0),
    ("full matrix, -n 2, cold", ("full", "2", "cold"), 300.0),
    ("make test on a fresh clone (after setup)", ("make", "test", "fresh"), 120.0),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="also time the full matrix (cold, -n 0 and -n 2)")
    parser.add_argument("--full-ops", nargs="+", metavar="OP", help="limit the full matrix to these ops")
    parser.add_argument("--skip-default", action="store_true", help="time only the full matrix")
    parser.add_argument("--skip-check", action="store_true", help="do not time gradmatrix check of layers.py")
    parser.add_argument("--peers", action="store_true", help="also run benchmarks/peer_checks.py")
    parser.add_argument("--make-test", action="store_true", help="also time make setup and make test on a fresh clone")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="gradmatrix-bench-"))
    rows = []
    try:
        plan = ([] if args.skip_default else [("default", "0"), ("default", "2")])
        plan += [("full", "0"), ("full", "2")] if args.full or args.skip_default else []
        for matrix, workers in plan:
            cache = work / f"jax-{matrix}-{workers}"
            for start in ("cold", "warm") if matrix == "default" else ("cold",):
                ops = args.full_ops if matrix == "full" else None
                wall, summary = run(matrix, workers, cache, work / f"out-{matrix}-{workers}-{start}", ops)
                rows.append((matrix, workers, start, wall, summary))
                print(f"{matrix:8} -n {workers}  {start:5} {wall:7.1f} s  {summary['comparisons']:6} comparisons  "
                      f"{summary['comparisons'] / wall:7.0f}/s  passed={summary['passed']}", flush=True)
        if not args.skip_check:
            for start in ("cold", "warm"):
                seconds = check(work / "jax-check", work / f"check-{start}")
                rows.append(("check", "0", start, seconds, {}))
                print(f"check layers.py  {start:5} {seconds:7.1f} s", flush=True)
        if args.make_test:
            setup, test = make_test(work)
            rows.append(("make", "test", "fresh", test, {}))
            print(f"make setup {setup:7.1f} s, then make test {test:7.1f} s (fresh clone)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.peers:
        print(flush=True)
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peer_checks.py")], check=True)
    wall = {(m, w, s): t for m, w, s, t, _ in rows}
    print()
    for matrix in ("default", "full"):
        for start in ("cold", "warm"):
            if (matrix, "0", start) in wall and (matrix, "2", start) in wall:
                print(f"{matrix} {start}: -n 2 is {wall[(matrix, '0', start)] / wall[(matrix, '2', start)]:.2f}x faster than "
                      f"-n 0" + (" (goal: at least 1.6x)" if matrix == "full" else ""))
    for workers in ("0", "2"):
        if ("default", workers, "warm") in wall:
            print(f"default -n {workers}: warm is {wall[('default', workers, 'cold')] / wall[('default', workers, 'warm')]:.2f}x "
                  f"faster than cold")
    print()
    for what, key, goal in GOALS:
        if key in wall:
            verdict = "met" if wall[key] <= goal else "not met"
            print(f"{what:45} {wall[key]:7.1f} s   goal {goal:5.0f} s: {verdict} ({wall[key] / goal:.2f} of it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
