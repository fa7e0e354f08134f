"""The reference itself: ``manual.two_layer_net_loss`` (forward + backward) against torch
eager autograd and ``jax.jit(jax.value_and_grad)`` on the same net, at N=256, D=1024, H=512,
C=100 (override with --dims), in float32 and float64.

Each implementation computes the loss and the gradients of W1, b1, W2, b2 from the same
inputs; the figure is the median of ``--repeats`` timed calls after warm-up (JAX's
compilation excluded: it is reported separately), and the ratio to torch eager.  All run
single-threaded by default (``--threads``), so the ratio compares the code, not how each
library spreads over cores.

    .venv/bin/python benchmarks/reference_speed.py
    .venv/bin/python benchmarks/reference_speed.py --threads 2 --repeats 50
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time



def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, nargs=4, default=(256, 1024, 512, 100), metavar=("N", "D", "H", "C"))
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="threads for BLAS, torch and XLA (default 1)")
    args = parser.parse_args(argv)
    threads = str(args.threads)
    # before NumPy, torch and jax start their thread pools
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = threads
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_cpu_multi_thread_eigen={'true' if args.threads > 1 else 'false'}"
                               f" intra_op_parallelism_threads={threads}").strip()

    import numpy as np
    import torch

    from gradmatrix import manual
    from gradmatrix.oracles import jax_oracle  # enables float64 in jax
    import jax
    import jax.numpy as jnp

    torch.set_num_threads(args.threads)
    n, d, h, c = args.dims
    reg = 0.1
    rng = np.random.default_rng(0)
    base = {"X": rng.standard_normal((n, d)), "W1": rng.standard_normal((d, h)) / np.sqrt(d),
            "b1": rng.standard_normal(h) * 0.1, "W2": rng.standard_normal((h, c)) / np.sqrt(h),
            "b2": rng.standard_normal(c) * 0.1}
    y = rng.integers(0, c, n)

    print(f"two-layer net forward + backward, N={n} D={d} H={h} C={c}, reg={reg}, "
          f"{args.threads} thread(s), median of {args.repeats}")
    print(f"{'dtype':8} {'implementation':16} {'ms/call':>9} {'vs torch':>9}")
    for dtype in ("float32", "float64"):
        a = {k: v.astype(dtype) for k, v in base.items()}
        params = {k: a[k] for k in ("W1", "b1", "W2", "b2")}

        def run_manual():
            return manual.two_layer_net_loss(params, a["X"], y, reg)

        t = {k: torch.tensor(v, requires_grad=k != "X") for k, v in a.items()}
        ty = torch.tensor(y)

        def run_torch():
            for k in ("W1", "b1", "W2", "b2"):
                t[k].grad = None
            scores = torch.relu(t["X"] @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"]
            loss = torch.nn.functional.cross_entropy(scores, ty) + reg * ((t["W1"] ** 2).sum() + (t["W2"] ** 2).sum())
            loss.backward()
            return loss.item(), {k: t[k].grad for k in ("W1", "b1", "W2", "b2")}

        def loss_fn(p, X, labels):
            scores = jax.nn.relu(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
            logp = jax.nn.log_softmax(scores)
            data = -jnp.take_along_axis(logp, labels[:, None], axis=1).mean()
            return data + reg * (jnp.sum(p["W1"] ** 2) + jnp.sum(p["W2"] ** 2))

        jp, jX, jy = {k: jnp.asarray(v) for k, v in params.items()}, jnp.asarray(a["X"]), jnp.asarray(y)
        start = time.perf_counter()
        compiled = jax.jit(jax.value_and_grad(loss_fn)).lower(jp, jX, jy).compile()
        compile_ms = 1e3 * (time.perf_counter() - start)

        def run_jax():
            return jax.block_until_ready(compiled(jp, jX, jy))

        # the three agree before they are timed
        loss_m, g_m = run_manual()
        loss_t, g_t = run_torch()
        loss_j, g_j = run_jax()
        tol = 1e-4 if dtype == "float32" else 1e-10
        for k in g_m:
            for other in (g_t[k].numpy(), np.asarray(g_j[k])):
                assert np.linalg.norm(g_m[k] - other) <= tol * np.linalg.norm(other), k
        times = {}
        for name, fn in (("manual (NumPy)", run_manual), ("torch eager", run_torch), ("jax.jit", run_jax)):
            for _ in range(3):
                fn()
            samples = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - start)
            times[name] = 1e3 * statistics.median(samples)
        for name, ms in times.items():
            print(f"{dtype:8} {name:16} {ms:9.2f} {ms / times['torch eager']:8.2f}x")
        print(f"{dtype:8} {'(jax compile)':16} {compile_ms:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
