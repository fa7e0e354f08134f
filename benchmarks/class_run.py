"""The time of a class of 50 submissions with ``gradmatrix check --class -n 2``: copies of
the test class's submissions (correct, buggy, crashing at import, hanging, a notebook
export, Python 2), each checked on relu and affine in float64 against torch and numeric.

    .venv/bin/python benchmarks/class_run.py [--submissions 50] [-n 2]

Prints the class's wall time and the time per submission (the class's, and each check's
own, from class.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLASS = Path(__file__).resolve().parent.parent / "tests" / "class_submissions"
OPTIONS = ["--ops", "relu", "affine", "--seeds", "1", "--dtypes", "float64", "--oracles", "torch", "numeric",
           "--modes", "reverse", "--case-timeout", "3"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=50)
    parser.add_argument("-n", default="2")
    args = parser.parse_args()
    originals = sorted(p for p in CLASS.iterdir() if p.is_dir())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "submissions"
        for i in range(args.submissions):
            source = originals[i % len(originals)]
            shutil.copytree(source, folder / f"{source.name}{i:03d}")
        started = time.monotonic()
        run = subprocess.run([sys.executable, "-m", "gradmatrix", "check", "--class", str(folder), "-n", args.n,
                              "--out", str(Path(tmp) / "out"), *OPTIONS], capture_output=True, text=True)
        wall = time.monotonic() - started
        if run.returncode != 0:
            sys.exit(f"the class run failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
        rows = json.loads((Path(tmp) / "out" / "class.json").read_text())["submissions"]
    print(run.stdout.strip().splitlines()[-5])
    print(f"class of {len(rows)} submissions, -n {args.n}: {wall:.1f} s wall, {wall / len(rows):.2f} s per submission")
    for kind in sorted({r["submission"].rstrip("0123456789") for r in rows}):
        own = [r["seconds"] for r in rows if r["submission"].rstrip("0123456789") == kind]
        print(f"  {kind:6s} ({len(own)}): each check {statistics.median(own):.1f} s (median), {max(own):.1f} s (max)")


if __name__ == "__main__":
    main()
