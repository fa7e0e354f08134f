"""The numeric oracle: the full per-element central difference against its projected mode
(the gradient on 16 random Gaussian directions, what large inputs get, with the allowance
and detection bound of ``reports.tolerances``) and the single directional difference
u^T J v of the "jvp" cases, on speed and on verdicts.

1. Speed at 10^4 parameters or more: the two-layer net at N=16, D=100, H=100, C=10
   (11,110 parameters; override with --dims), float64, median of --repeats calls each.
2. Verdicts on the mutant corpus: every mutant of tests/mutants on its op's random cases
   of the default matrix (float64 and float32, seeds 0 and 1), checked against the full
   numeric gradient, against the projected one (every input projected, whatever its size)
   and through <u, J v>.  A mutant is caught by a mode when any of its comparisons there
   disagrees or errs; the projected mode must catch every mutant the full mode catches.

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

    def projected():
        limit, numeric.PER_ELEMENT_BUDGET = numeric.PER_ELEMENT_BUDGET, 0
        try:
            return numeric.evaluate(replace(inputs, case=random))
        finally:
            numeric.PER_ELEMENT_BUDGET = limit

    for name, fn in (("full (per element)", lambda: numeric.evaluate(replace(inputs, case=random))),
                     (f"projected ({numeric.DIRECTIONS} dirs)", projected),
                     ("directional (u^T J v)", lambda: numeric.directional_derivative(inputs))):
        fn()
        samples = []
        for _ in range(max(1, repeats // 10) if name.startswith("full") else repeats):
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
    print(f"  full / projected: {timings['full (per element)'] / timings[f'projected ({numeric.DIRECTIONS} dirs)']:.0f}x")
    print(f"  full / directional: {timings['full (per element)'] / timings['directional (u^T J v)']:.0f}x; "
          f"<g_full, v> = {projected:.12g}, directional = {directional['value']:.12g} "
          f"(bound {directional['bound']:.1e})")


def verdicts() -> int:
    from gradmatrix.oracles.candidate import Candidate, load_module
    from gradmatrix.runner import Comparison, Runner, default_plan
    from gradmatrix.reports.compare import DISAGREE, ERROR

    from gradmatrix.oracles import numeric

    print("\nmutant corpus, full per-element vs projected vs directional numeric oracle:")
    print(f"  {'mutant':42} {'full':>8} {'projected':>10} {'directional':>12}")
    same, total, start = 0, 0, time.perf_counter()
    rows = []
    for path in sorted((ROOT / "tests" / "mutants").glob("*.py")):
        op = op_of(path.name)
        candidate = Candidate(load_module(str(path)))
        runner = Runner(candidate, ("numeric",))
        caught = {"full": False, "projected": False, "directional": False}
        for comparison in default_plan("default", [op], None, 2, ("numeric",), candidate, modes=["reverse"]):
            case = comparison.case
            if case.kind != "random":
                continue
            full = runner.run(comparison)
            limit, numeric.PER_ELEMENT_BUDGET = numeric.PER_ELEMENT_BUDGET, 0
            try:
                projected = Runner(candidate, ("numeric",)).run(comparison)
            finally:
                numeric.PER_ELEMENT_BUDGET = limit
            caught["projected"] |= projected["verdict"] in (DISAGREE, ERROR)
            twin = Comparison(replace(case, kind="jvp"), (candidate.name, "numeric"))
            directional = runner.run(twin)
            caught["full"] |= full["verdict"] in (DISAGREE, ERROR)
            caught["directional"] |= directional["verdict"] in (DISAGREE, ERROR)
        total += 1
        same += caught["full"] == caught["projected"]
        rows.append((path.stem, caught))
        word = {True: "caught", False: "passes"}
        print(f"  {path.stem:42} {word[caught['full']]:>8} {word[caught['projected']]:>10} "
              f"{word[caught['directional']]:>12}", flush=True)
    counts = {mode: sum(c[mode] for _, c in rows) for mode in ("full", "projected", "directional")}
    print(f"  {total} mutants: full catches {counts['full']}, projected {counts['projected']}, directional "
          f"{counts['directional']}; projected and full give the same verdict on {same} "
          f"({time.perf_counter() - start:.0f} s)")
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
