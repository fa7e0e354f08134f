"""bfloat16 backward passes: gradmatrix's allowance beside FlashAttention's rule and a fixed atol.

For each case (a kernel with its own backward, its plain-autograd reference, an input shape
and the size of the upstream gradient) and many seeds, the three rules judge the kernel's
bfloat16 gradient on the same bfloat16 inputs:

* gradmatrix: max|kernel - float64 truth| <= K max|reference_bf16 - truth| + floor, and
  "undecided" where that allowance reaches VACUOUS_FRACTION of the gradient's size
  (``reports.framework_checks``, constants in ``reports.tolerances``);
* FlashAttention's tests: max|kernel - reference_fp32| <= 2 max|reference_bf16 - reference_fp32|;
* a fixed ``atol`` of 1e-2 (the Triton attention tutorial): max|kernel - reference_fp32| <= 1e-2.

The kernels: a softmax computing in bfloat16 (right), the same with a wrong formula, a
backward returning zeros, and the right and the zeros kernels again with a small upstream
gradient (1e-3: gradients of ~1e-4, as deep in a network), where a fixed atol cannot see
anything.  Printed per case and rule: how many seeds pass, and the median allowance
beside the median size of the gradient.

    .venv/bin/python benchmarks/low_precision.py            # 200 seeds
    .venv/bin/python benchmarks/low_precision.py --seeds 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "layers"))
import custom_backward as cb  # noqa: E402

from gradmatrix.oracles.cases import Case  # noqa: E402
from gradmatrix.oracles.framework import TorchFramework  # noqa: E402
from gradmatrix.reports.framework_checks import low_precision_record  # noqa: E402

FIXED_ATOL = 1e-2  # the Triton attention tutorial's bfloat16 tolerance
FLASH_FACTOR = 2.0  # FlashAttention: at most twice the plain implementation's error

CASES = [  # name, kernel, shape of x, scale of dout
    ("softmax right", cb.SoftmaxBf16.apply, (8, 64), 1.0),
    ("softmax wrong formula", cb.SoftmaxBf16WrongFormula.apply, (8, 64), 1.0),
    ("softmax zeros", cb.GeluZeroGrad.apply, (8, 64), 1.0),
    ("softmax right, dout 1e-3", cb.SoftmaxBf16.apply, (8, 64), 1e-3),
    ("softmax zeros, dout 1e-3", cb.GeluZeroGrad.apply, (8, 64), 1e-3),
]


def judge(fw: TorchFramework, kernel, shape, scale: float, seed: int) -> dict:
    """The three rules' decisions and allowances on one seed."""
    rng = np.random.default_rng(seed)
    x = {"x": fw.rounded(rng.standard_normal(shape), "bfloat16")}
    dout = fw.rounded(scale * rng.standard_normal(shape), "bfloat16")
    reference = cb.softmax_reference
    _, mine = fw.value_and_grads(kernel, x, ("x",), dout, "bfloat16", {})
    _, plain = fw.value_and_grads(reference, x, ("x",), dout, "bfloat16", {})
    _, fp32 = fw.value_and_grads(reference, x, ("x",), dout, "float32", {})
    _, truth = fw.value_and_grads(reference, x, ("x",), dout, "float64", {})
    record = low_precision_record(Case("softmax", (("x", shape),), seed, "bfloat16", "low-precision"), "kernel",
                                  "torch", [("dx", "gradient", mine["x"], plain["x"], truth["x"])])
    entry = record["tensors"][0]
    ours = {"agree": "pass", "disagree": "fail", "error": "undecided"}[record["verdict"]]
    flash_allowed = FLASH_FACTOR * float(np.max(np.abs(plain["x"] - fp32["x"])))
    kernel_error = float(np.max(np.abs(mine["x"] - fp32["x"])))
    return {
        "size": entry["allowance"]["size"],
        "gradmatrix": (ours, entry["allowance"]["allowed"]),
        "flash": ("pass" if kernel_error <= flash_allowed else "fail", flash_allowed),
        "atol": ("pass" if kernel_error <= FIXED_ATOL else "fail", FIXED_ATOL),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    args = parser.parse_args()
    fw = TorchFramework()
    print(f"bfloat16 softmax backward, x (8, 64), {args.seeds} seeds; per rule: seeds passed "
          f"(pass / fail / undecided), median allowance; median max|gradient|")
    print(f"{'case':28} {'max|dx|':>8}  {'gradmatrix':>28}  {'FlashAttention 2x':>24}  {'atol 1e-2':>20}")
    for name, kernel, shape, scale in CASES:
        runs = [judge(fw, kernel, shape, scale, seed) for seed in range(args.seeds)]
        cells = []
        for rule in ("gradmatrix", "flash", "atol"):
            decisions = [r[rule][0] for r in runs]
            counts = "/".join(str(decisions.count(d)) for d in ("pass", "fail", "undecided"))
            cells.append(f"{counts} @ {np.median([r[rule][1] for r in runs]):.1e}")
        size = np.median([r["size"] for r in runs])
        print(f"{name:28} {size:8.1e}  {cells[0]:>28}  {cells[1]:>24}  {cells[2]:>20}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
