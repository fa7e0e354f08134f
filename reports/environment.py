"""What a run ran on: versions, platform, device and float32 matmul precision settings."""

from __future__ import annotations

import functools
import platform
from importlib import metadata


@functools.lru_cache(maxsize=None)
def _version(dist: str) -> str | None:
    """The installed version of ``dist``, read once a process (3 ms a read: a process that
    checks many modules, a class's or a test suite's, would read them thousands of times)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def collect(device: str = "cpu", matmul_precision: str = "default") -> dict:
    """The environment of this process, JSON-ready: per framework the device its oracle
    computes on and the float32 matmul precision settings in force.

    Framework settings are read only from the oracles this process has used (their modules
    imported, ``Oracle.imported``), so collecting imports no framework and changes none.
    """
    from gradmatrix.oracles.implementations import FRAMEWORK_MODULES, REGISTRY, oracle

    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "device": device,
        "matmul_precision": matmul_precision,
        "versions": {name: _version(name) for name in ("gradmatrix", "numpy", *FRAMEWORK_MODULES, "pytest")},
        "frameworks": {},
    }
    for name in REGISTRY:
        chosen = oracle(name)
        if chosen.on_device and chosen.imported():
            try:
                settings = chosen.settings(device)
            except AttributeError:  # a framework still being imported (partly initialised): nothing to read yet
                continue
            if settings is not None:
                env["frameworks"][name] = settings
    return env
