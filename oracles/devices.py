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
import sys

DEVICES = ("cpu", "cuda", "auto")
PRECISIONS = ("default", "high", "highest")


class DeviceUnavailable(RuntimeError):
    """The requested device cannot be used here; the message says why."""


def cuda_reason() -> str:
    """Why CUDA cannot be used by the torch oracle here, or "" when it can."""
    try:
        import torch
    except ImportError as exc:
        return f"torch is not importable: {exc}"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)"
    return ""


def jax_cuda_reason() -> str:
    """Why JAX cannot compute on a GPU here, or "" when it can."""
    try:
        import jax
    except ImportError as exc:
        return f"jax is not importable: {exc}"
    try:
        jax.devices("gpu")
    except RuntimeError as exc:
        return f"jax has no GPU backend ({str(exc).splitlines()[0]}; install jax[cuda12])"
    return ""


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
    """Set the float32 matmul precision of torch and JAX (those imported) for a block.

    Raises:
        ValueError: an unknown level.
    """
    if level not in PRECISIONS:
        raise ValueError(f"unknown matmul precision {level!r}; choose from {', '.join(PRECISIONS)}")
    if level == "default":
        yield
        return
    torch, jax = sys.modules.get("torch"), sys.modules.get("jax")
    saved = {}
    if torch is not None:
        saved["torch"] = (torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32,
                          torch.backends.cudnn.allow_tf32)
        torch.set_float32_matmul_precision(level)
        torch.backends.cuda.matmul.allow_tf32 = level == "high"
        torch.backends.cudnn.allow_tf32 = level == "high"
    if jax is not None:
        saved["jax"] = jax.config.jax_default_matmul_precision
        jax.config.update("jax_default_matmul_precision", level)
    try:
        yield
    finally:
        if "torch" in saved:
            precision, tf32, cudnn_tf32 = saved["torch"]
            torch.set_float32_matmul_precision(precision)
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = cudnn_tf32
        if "jax" in saved:
            jax.config.update("jax_default_matmul_precision", saved["jax"])
