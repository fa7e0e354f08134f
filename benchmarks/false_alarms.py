"""Zero false alarms: run the correct code (manual) through the Runner on many seeds.

Every op of the original four is run at two representative shapes, for ``--seeds`` seeds
(default 1,000) at each shape, in float64 and float32, across all six pairs among manual,
torch, jax and numeric.  Every comparison should agree; any that does not is a false alarm
(manual is correct), printed with its message.  Per op, dtype and comparison kind
(autodiff: two implementations in the case's dtype; numeric: against the float64 central
differences) the table gives the number of comparisons, the false alarms and the worst
share of its allowed error any tensor used ("of allowed", below 1 agrees), with the
norm-wise relative error there and the comparison's id.

    .venv/bin/python benchmarks/false_alarms.py               # 1,000 seeds per shape, all cores
    .venv/bin/python benchmarks/false_alarms.py --seeds 100 --workers 1

Exit status: 0 when there is no false alarm, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context


# Two shapes per op, N = 8 (a batch, so a missing or doubled 1/N would show): the
# multi-dimensional affine input and the 1e4-magnitude softmax scores are the delicate ones.
SHAPES = {
    "relu": ({"D": 7}, {"D": (3, 4)}),
    "affine": ({"Dx": 6, "M": 3}, {"Dx": (2, 3, 4), "M": 5}),
    "softmax_loss": ({"C": 10}, {"C": 10, "scale": 1e4}),
    "two_layer_net": ({"D": 6, "H": 6, "C": 3, "reg": 0.1}, {"D": 10, "H": 8, "C": 5, "reg": 0.5}),
}
BATCH = 8
DTYPES = ("float64", "float32")
CHUNK = 250  # seeds per task: small enough to spread over the workers, large enough to reuse jax's compilation
KEPT_ALARMS = 5  # false alarm messages kept per task


def _check_chunk(op: str, shape: dict, dtype: str, seeds: range) -> dict:
    """Run manual against the oracles on one shape and dtype for ``seeds``; aggregate per kind.

    Returns:
        {kind: {"comparisons", "alarms", "messages", "worst": (ratio, normwise_rel_err, id)}}
    """
    import torch

    torch.set_num_threads(1)  # one process per core already

    from gradmatrix import manual
    from gradmatrix.oracles.candidate import Candidate
    from gradmatrix.oracles.cases import Case
    from gradmatrix.oracles.implementations import ORACLES
    from gradmatrix.runner import Runner, pairs, Comparison
    from gradmatrix.reports.compare import AGREE

    runner = Runner(Candidate(manual, "manual"), ORACLES)
    dims = (("N", BATCH), *shape.items())
    stats: dict = {}
    for seed in seeds:
        case = Case(op, dims, seed, dtype)
        for pair in pairs("manual", ORACLES):
            record = runner.run(Comparison(case, pair))
            kind = stats.setdefault(record["kind"], {"comparisons": 0, "alarms": 0, "messages": [], "worst": (0.0, 0.0, "")})
            kind["comparisons"] += 1
            if record["verdict"] != AGREE:
                kind["alarms"] += 1
                if len(kind["messages"]) < KEPT_ALARMS:
                    kind["messages"].append(f"{record['id']}: {record['verdict']}: {record['message']}")
            for tensor in record["tensors"]:
                if "of_allowed" in tensor and tensor["of_allowed"] > kind["worst"][0]:
                    kind["worst"] = (tensor["of_allowed"], tensor["metrics"]["normwise_rel_err"],
                                     f"{record['id']} {tensor['tensor']}")
    return stats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000, help="seeds per shape (default 1000)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    parser.add_argument("--ops", default=",".join(SHAPES), help="comma-separated ops (default: all four)")
    args = parser.parse_args(argv)
    ops = [op for op in args.ops.split(",") if op]
    unknown = [op for op in ops if op not in SHAPES]
    if unknown or args.seeds < 1 or args.workers < 1:
        parser.error(f"unknown ops {unknown}; choose from {list(SHAPES)}" if unknown else "--seeds and --workers must be >= 1")

    tasks = [(op, shape, dtype, range(start, min(start + CHUNK, args.seeds)))
             for op in ops for shape in SHAPES[op] for dtype in DTYPES for start in range(0, args.seeds, CHUNK)]
    started = time.time()
    # spawn, not fork: torch and jax keep threads that a forked child would inherit half-started
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(_check_chunk, *zip(*tasks)))
    wall = time.time() - started

    table: dict = {}
    for (op, _, dtype, _), stats in zip(tasks, results):
        for kind, s in stats.items():
            row = table.setdefault((op, dtype, kind), {"comparisons": 0, "alarms": 0, "messages": [], "worst": (0.0, 0.0, "")})
            row["comparisons"] += s["comparisons"]
            row["alarms"] += s["alarms"]
            row["messages"] += s["messages"]
            row["worst"] = max(row["worst"], s["worst"])

    total = sum(r["comparisons"] for r in table.values())
    alarms = sum(r["alarms"] for r in table.values())
    shapes = ", ".join(f"{op}: " + " and ".join(
        "-".join(f"{k}{'x'.join(map(str, v)) if isinstance(v, tuple) else f'{v:g}'}" for k, v in s.items()) for s in SHAPES[op])
        for op in ops)
    print(f"false alarms: manual through the Runner, N={BATCH}, {args.seeds} seeds per shape, "
          f"{len(DTYPES)} dtypes, all pairs among manual, torch, jax, numeric")
    print(f"shapes: {shapes}")
    print()
    print("| op | dtype | kind | comparisons | false alarms | worst of allowed | its norm-wise rel err | where |")
    print("|---|---|---|---:|---:|---:|---:|---|")
    for (op, dtype, kind), row in sorted(table.items()):
        ratio, err, where = row["worst"]
        print(f"| {op} | {dtype} | {kind} | {row['comparisons']} | {row['alarms']} | {ratio:.3g} | {err:.2e} | {where} |")
    print()
    print(f"comparisons: {total}; seeds per op: {args.seeds * 2} ({args.seeds} at each of 2 shapes) x {len(DTYPES)} dtypes; "
          f"false alarms: {alarms}; wall time: {wall:.1f} s with {args.workers} worker(s)")
    for row in table.values():
        for message in row["messages"]:
            print(f"  {message}")
    return 1 if alarms else 0


if __name__ == "__main__":
    sys.exit(main())
