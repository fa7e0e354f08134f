"""The numeric oracle: the full per-element central difference against the fast
directional mode (one random projection u^T J v in float64, with Richardson extrapolation
over the steps t and t/2 and an error bound), on speed and on verdicts.

1. Speed at 10^4 parameters or more: the two-layer net at N=16, D=100, H=100, C=10
   (11,110 parameters; override with --dims), float64, median of --repeats calls each.
2. Verdicts on the mutant corpus: every mutant of tests/mutants on its op's random cases
   of the default matrix (float64 and float32, seeds 0 and 1), checked once against the
   full numeric gradient and once through <u, J v> against the directional difference.
   A mutant is caught by a mode when any of its comparisons there disagrees or errs; the
   two modes should catch the same mutants.

    .venv/bin/python benchmarks/numeric_modes.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PREFIXES = {"relu_": "relu", "affine_": "affine", "softmax_": "softmax_loss", "net_": "two_layer_net",
            "sigmoid_": "sigmoid", "tanh_": "tanh", "add_": "add", "multiply_": "multiply", "max_pool_": "max_pool",
            "max_": "max", "score_net_": "score_net", "conv_": "conv", "batchnorm_": "batchnorm",
            "layernorm_": "layernorm", "dropout_": "dropout"}


def op_of(name: str) -> str:
    return PREFIXES[max((p for p in PREFIXES if name.startswith(p)), key=len)]


def speed(dims, repeats: int) -> None:
    import numpy as np

    from gradmatrix.oracles import numeric
    from gradmatrix.oracles.cases import Case, draw_inputs

    n, d, h, c = dims
    random = Case("two_layer_net", (("N", n), ("D", d), ("H", h), ("C", c), ("reg", 0.1)), 0, "float64")
    inputs = draw_inputs(replace(random, kind="jvp"))  # the random case's arrays plus directions
    params = sum(inputs.arrays[k].size for k in random.spec.differentiable)
    timings = {}
    for name, fn in (("full (per element)", lambda: numeric.evaluate(inputs)),
                     ("directional (u^T J v)", lambda: numeric.directional_derivative(inputs))):
        fn()
        samples = []
        for _ in range(repeats if name.startswith("directional") else max(1, repeats // 10)):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        timings[name] = statistics.median(samples)
    full = numeric.evaluate(inputs)
    directional = numeric.directional_derivative(inputs)
    # the same quantity both ways: <g_full, v> against the directional difference
    projected = sum(float(np.sum(full.grads[k] * inputs.directions[k])) for k in inputs.directions)
    print(f"two-layer net N={n} D={d} H={h} C={c}: {params} parameters, float64")
    for name, s in timings.items():
        print(f"  {name:24} {1e3 * s:10.2f} ms")
    print(f"  speed-up: {timings['full (per element)'] / timings['directional (u^T J v)']:.0f}x; "
          f"<g_full, v> = {projected:.12g}, directional = {directional['value']:.12g} "
          f"(bound {directional['bound']:.1e})")


def verdicts() -> int:
    from gradmatrix.oracles.candidate import Candidate, load_module
    from gradmatrix.runner import Comparison, Runner, default_plan
    from gradmatrix.reports.compare import DISAGREE, ERROR

    print("\nmutant corpus, full per-element vs directional numeric oracle:")
    print(f"  {'mutant':42} {'full':>8} {'directional':>12}")
    same, total, start = 0, 0, time.perf_counter()
    rows = []
    for path in sorted((ROOT / "tests" / "mutants").glob("*.py")):
        op = op_of(path.name)
        candidate = Candidate(load_module(str(path)))
        runner = Runner(candidate, ("numeric",))
        caught = {"full": False, "directional": False}
        for comparison in default_plan("default", [op], None, 2, ("numeric",), candidate, modes=["reverse"]):
            case = comparison.case
            if case.kind != "random":
                continue
            full = runner.run(comparison)
            twin = Comparison(replace(case, kind="jvp"), (candidate.name, "numeric"))
            directional = runner.run(twin)
            caught["full"] |= full["verdict"] in (DISAGREE, ERROR)
            caught["directional"] |= directional["verdict"] in (DISAGREE, ERROR)
        total += 1
        same += caught["full"] == caught["directional"]
        rows.append((path.stem, caught))
        print(f"  {path.stem:42} {'caught' if caught['full'] else 'passes':>8} "
              f"{'caught' if caught['directional'] else 'passes':>12}", flush=True)
    caught_full = sum(c["full"] for _, c in rows)
    caught_dir = sum(c["directional"] for _, c in rows)
    print(f"  {total} mutants: full catches {caught_full}, directional catches {caught_dir}, "
          f"same verdict on {same} ({time.perf_counter() - start:.0f} s)")
    return 0 if same == total else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, nargs=4, default=(16, 100, 100, 10), metavar=("N", "D", "H", "C"))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-corpus", action="store_true", help="only the speed figures")
    args = parser.parse_args(argv)
    speed(args.dims, args.repeats)
    return 0 if args.no_corpus else verdicts()


if __name__ == "__main__":
    sys.exit(main())
