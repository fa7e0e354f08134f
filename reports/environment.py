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


def collect(device: str = "cpu") -> dict:
    """The environment of this process, JSON-ready.

    Framework settings are read only from frameworks already imported by the run, so
    collecting never imports torch or jax by itself.
    """
    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "device": device,
        "versions": {name: _version(name) for name in ("gradmatrix", "numpy", "torch", "jax", "jaxlib", "pytest")},
        "frameworks": {},
    }
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_float32_matmul_precision"):
        env["frameworks"]["torch"] = {
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "cuda_available": bool(torch.cuda.is_available()),
            "num_threads": torch.get_num_threads(),
        }
    jax = sys.modules.get("jax")
    if jax is not None and hasattr(jax, "config"):
        env["frameworks"]["jax"] = {
            "default_matmul_precision": str(jax.config.jax_default_matmul_precision),
            "enable_x64": bool(jax.config.jax_enable_x64),
            "backend": jax.default_backend(),
        }
    return env
