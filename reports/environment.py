"""What a run ran on: versions, platform, device and float32 matmul precision settings."""

from __future__ import annotations

import platform
import sys
from importlib import metadata


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def collect(device: str = "cpu", matmul_precision: str = "default") -> dict:
    """The environment of this process, JSON-ready: per framework the device its oracle
    computes on and the float32 matmul precision settings in force.

    Framework settings are read only from frameworks already imported by the run, so
    collecting never imports torch or jax by itself.
    """
    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "device": device,
        "matmul_precision": matmul_precision,
        "versions": {name: _version(name) for name in ("gradmatrix", "numpy", "torch", "jax", "jaxlib", "pytest")},
        "frameworks": {},
    }
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_float32_matmul_precision"):
        on_gpu = device == "cuda" and torch.cuda.is_available()
        env["frameworks"]["torch"] = {
            "device": torch.cuda.get_device_name(0) if on_gpu else "cpu",
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
            "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
            "cuda_available": bool(torch.cuda.is_available()),
            "num_threads": torch.get_num_threads(),
        }
    jax = sys.modules.get("jax")
    if jax is not None and hasattr(jax, "config"):
        gpus = []
        if device == "cuda":
            try:
                gpus = jax.devices("gpu")
            except RuntimeError:  # a CPU-only jaxlib: its oracle computes on the CPU
                pass
        env["frameworks"]["jax"] = {
            "device": str(gpus[0].device_kind) if gpus else "cpu",
            "default_matmul_precision": str(jax.config.jax_default_matmul_precision),
            "enable_x64": bool(jax.config.jax_enable_x64),
            "backend": jax.default_backend(),
        }
    return env
