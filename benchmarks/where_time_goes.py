"""Where the default matrix's time goes, in one process: imports, drawing inputs, each
implementation's evaluation (JAX compilation separated from its execution), and the
comparisons themselves.

JAX compiles each op's vjp once per dims and dtype (``oracles.jax_oracle.COMPILE_STATS``
counts it: tracing, lowering and XLA compilation); ``--jax-cache`` points JAX's
persistent compilation cache at a directory (default: a fresh temporary one, a cold
start), so running twice with the same directory shows a warm start.

    .venv/bin/python benchmarks/where_time_goes.py
    .venv/bin/python benchmarks/where_time_goes.py --jax-cache /tmp/gm-jax   # run twice: cold, then warm
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict



class Timed:
    """An implementation whose ``evaluate`` calls are timed into ``seconds[name]``."""

    def __init__(self, impl, name: str, seconds: dict):
        self.impl, self.name, self.seconds = impl, name, seconds

    def evaluate(self, inputs):
        start = time.perf_counter()
        try:
            return self.impl.evaluate(inputs)
        finally:
            self.seconds[self.name] += time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matrix", default="default")
    parser.add_argument("--ops", nargs="+")
    parser.add_argument("--jax-cache", help="JAX persistent cache directory (default: a fresh one, a cold start)")
    args = parser.parse_args(argv)
    cache = args.jax_cache or tempfile.mkdtemp(prefix="gradmatrix-jax-")
    os.environ["GRADMATRIX_JAX_CACHE"] = cache

    total_start = time.perf_counter()
    imports = {}
    for module in ("numpy", "torch", "jax"):
        start = time.perf_counter()
        __import__(module)
        imports[module] = time.perf_counter() - start
    start = time.perf_counter()
    from gradmatrix import manual
    from gradmatrix.oracles import jax_oracle
    from gradmatrix.oracles.candidate import Candidate
    from gradmatrix.runner import Runner, default_plan
    imports["gradmatrix"] = time.perf_counter() - start

    start = time.perf_counter()
    plan = default_plan(args.matrix, args.ops)
    planning = time.perf_counter() - start
    seconds: dict = defaultdict(float)
    runner = Runner(Candidate(manual, "manual"))
    # every implementation a case calls, forward mode and second order included, timed
    # under its framework's name (torch.jvp counts as torch, manual.fd as manual)
    from gradmatrix.oracles import modes

    real_impl = runner._impl
    runner._impl = lambda case, name: Timed(real_impl(case, name), modes.base_name(name), seconds)
    from gradmatrix import runner as matrix_module

    real_draw = matrix_module.draw_inputs

    def timed_draw(case):
        start = time.perf_counter()
        try:
            return real_draw(case)
        finally:
            seconds["(drawing inputs)"] += time.perf_counter() - start

    matrix_module.draw_inputs = timed_draw
    start = time.perf_counter()
    verdicts: dict = defaultdict(int)
    for comparison in plan:
        verdicts[runner.run(comparison)["verdict"]] += 1
    running = time.perf_counter() - start
    total = time.perf_counter() - total_start

    compile_s = jax_oracle.COMPILE_STATS["seconds"]
    rows = [(f"import {m}", s) for m, s in imports.items()] + [("planning", planning)]
    for name in ("(drawing inputs)", "manual", "torch", "jax", "numeric"):
        if name == "jax":
            lowering_s = jax_oracle.COMPILE_STATS["lowering_seconds"]
            rows += [("jax: tracing and lowering", lowering_s), ("jax: XLA compilation", compile_s - lowering_s),
                     ("jax: execution", seconds["jax"] - compile_s)]
        else:
            rows.append((name, seconds[name]))
    rows.append(("comparing (reports.compare)", running - sum(seconds.values())))
    cases = len({c.case for c in plan})
    shapes = len({(c.case.op, c.case.kind, c.case.dims, c.case.dtype) for c in plan})
    print(f"{args.matrix} matrix: {len(plan)} comparisons, {cases} cases, {shapes} distinct shapes; "
          f"verdicts {dict(verdicts)}")
    print(f"JAX cache {'(fresh: cold start)' if not args.jax_cache else cache}: "
          f"{jax_oracle.COMPILE_STATS['compilations']} compilations")
    print(f"{'where':30} {'seconds':>8} {'share':>6}")
    for name, s in rows:
        print(f"{name:30} {s:8.2f} {100 * s / total:5.1f}%")
    print(f"{'total (one process)':30} {total:8.2f}")
    print(f"JAX compilation / matrix time: {compile_s / total:.2f}; "
          f"per compilation {1e3 * compile_s / max(1, jax_oracle.COMPILE_STATS['compilations']):.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
