"""The one engine's figures, from one run on one machine: ``gradmatrix check`` of a complete
course ``layers.py`` (``tests/cs231n/layers.py``), cold (an empty store: no compiled JAX
function, no reference result) and warm, each against ``python -c "import numpy, torch, jax"``, and the command
against ``gradmatrix.check()`` of the same module in a fresh process.  The warm command and
``gradmatrix.check()`` run in alternation, ``--pairs`` of each per repetition: on a machine
whose speed drifts, back-to-back single runs of each differed by up to 15 % where their CPU
time differed by 3 %.

    .venv/bin/python benchmarks/engine_speed.py            # 3 repetitions, the median of each
    .venv/bin/python benchmarks/engine_speed.py --repeat 5

Goals (issue "One engine"): warm check at most 1.5 times the import, cold at most 2.5 times;
the command within 10 % of ``gradmatrix.check()``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ROOT / "tests" / "cs231n" / "layers.py"


def timed(cmd: list, cwd: Path, cache: Path, ok=(0,)) -> float:
    """Wall seconds of one command in a fresh process, with ``cache`` as the store."""
    env = dict(os.environ, GRADMATRIX_JAX_CACHE=str(cache))
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    if done.returncode not in ok:
        sys.exit(f"{' '.join(cmd[:4])} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each figure (the median is shown)")
    parser.add_argument("--pairs", type=int, default=3,
                        help="warm command and warm gradmatrix.check() runs, alternated, per repetition (default: 3)")
    args = parser.parse_args()
    command = [sys.executable, "-m", "gradmatrix", "check", str(LAYERS), "--progress", "none", "--out", "report"]
    api = [sys.executable, "-c", f"import gradmatrix, sys; sys.exit(gradmatrix.check({str(LAYERS)!r}).status)"]
    imports = [sys.executable, "-c", "import numpy, torch, jax"]
    figures: dict = {"import": [], "cold": [], "warm": [], "api warm": []}
    with tempfile.TemporaryDirectory(prefix="gradmatrix-engine-bench-") as tmp:
        work = Path(tmp)
        for i in range(args.repeat):
            figures["import"].append(timed(imports, work, work / "unused"))
            cache = work / f"store{i}"
            figures["cold"].append(timed(command, work, cache))
            for pair in range(args.pairs):  # alternated, so that a slow spell of the machine weighs on both
                first, second = (("warm", command), ("api warm", api))[:: 1 if (i + pair) % 2 == 0 else -1]
                for name, cmd in (first, second):
                    figures[name].append(timed(cmd, work, cache))
    median = {name: statistics.median(values) for name, values in figures.items()}
    for name, values in figures.items():
        print(f"{name:>9}: median {median[name]:6.2f} s  ({', '.join(f'{v:.2f}' for v in values)})")
    print()
    print(f"warm check / import: {median['warm'] / median['import']:.2f}  (goal: at most 1.5)")
    print(f"cold check / import: {median['cold'] / median['import']:.2f}  (goal: at most 2.5)")
    print(f"command / gradmatrix.check(), warm: {median['warm'] / median['api warm']:.2f}  (goal: within 1.10)")


if __name__ == "__main__":
    main()
