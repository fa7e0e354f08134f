"""Where the torch and JAX oracles compute, and the float32 matmul precision they use.

The reference never moves: ``manual`` and the numeric oracle compute on the CPU (the
numeric oracle in float64).  ``--device cuda`` puts only the torch and JAX oracles on the
GPU, where both frameworks may compute float32 matrix products in reduced precision
(TF32 on NVIDIA Ampere and later: a 10-bit mantissa, relative error about 1e-3 instead of
float32's 6e-8).  ``--matmul-precision`` sets that choice for both frameworks at once:

* ``default``: each framework's own default, untouched;
* ``high``: reduced precision allowed (torch ``set_float32_matmul_precision("high")``,
  TF32 for matmul and cuDNN; JAX ``jax_default_matmul_precision="high"``);
* ``highest``: full float32 (torch ``"highest"``, TF32 off; JAX ``"highest"``).

``reports.environment.collect`` records what is in force, per framework, in the report.
"""

from __future__ import annotations

import contextlib

DEVICES = ("cpu", "cuda", "auto")
PRECISIONS = ("default", "high", "highest")


class DeviceUnavailable(RuntimeError):
    """The requested device cannot be used here; the message says why."""


def cuda_reason() -> str:
    """Why ``--device cuda`` cannot be used here, or "" when it can: the first oracle that
    follows ``--device`` (``Oracle.on_device``, in registry order: torch) decides; the others
    compute there where they can, and say why where they cannot (``Oracle.available``)."""
    from gradmatrix.oracles.implementations import ON_DEVICE, oracle

    return oracle(ON_DEVICE[0]).gpu_reason() if ON_DEVICE else "no oracle computes on a GPU"


def resolve(requested: str) -> str:
    """"cpu" or "cuda" for a requested device.

    Raises:
        ValueError: an unknown device name.
        DeviceUnavailable: "cuda" was asked for and torch sees no GPU.
    """
    if requested not in DEVICES:
        raise ValueError(f"unknown device {requested!r}; choose from {', '.join(DEVICES)}")
    if requested == "cpu":
        return "cpu"
    reason = cuda_reason()
    if requested == "auto":
        return "cpu" if reason else "cuda"
    if reason:
        raise DeviceUnavailable(f"--device cuda: {reason}")
    return "cuda"


@contextlib.contextmanager
def matmul_precision(level: str):
    """Set the float32 matmul precision of every oracle's framework already imported here
    (``Oracle.matmul_precision``: torch's and JAX's) for a block.

    Raises:
        ValueError: an unknown level.
    """
    if level not in PRECISIONS:
        raise ValueError(f"unknown matmul precision {level!r}; choose from {', '.join(PRECISIONS)}")
    if level == "default":
        yield
        return
    from gradmatrix.oracles.implementations import REGISTRY, oracle

    with contextlib.ExitStack() as settings:
        for name in REGISTRY:
            chosen = oracle(name)
            if chosen.on_device and chosen.imported():
                settings.enter_context(chosen.matmul_precision(level))
        yield
