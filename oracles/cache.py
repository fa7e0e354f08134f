"""Where gradmatrix keeps what it stores between runs: the compiled JAX functions of the
catalog's ops (``oracles.jax_store``), under the platform's cache directory.

The place is ``platformdirs.user_cache_dir("gradmatrix")`` (``$XDG_CACHE_HOME/gradmatrix`` on
Linux, ``~/.cache/gradmatrix`` without it; ``~/Library/Caches/gradmatrix`` on macOS,
``%LOCALAPPDATA%\\gradmatrix\\Cache`` on Windows) followed by ``jax``; ``GRADMATRIX_JAX_CACHE``
names another folder, or ``off`` for none.  ``gradmatrix cache`` shows it and ``gradmatrix
cache clear`` empties it (``usage``, ``clear``).  Importing this module imports no framework.
"""

from __future__ import annotations

import os
from pathlib import Path

ENTRY = "*.jaxfn"  # a stored function; "*.tmp": one being written
ENTRIES = "executables"


def cache_dir() -> Path | None:
    """Where compiled functions persist between runs, or None when ``GRADMATRIX_JAX_CACHE=off``."""
    setting = os.environ.get("GRADMATRIX_JAX_CACHE", "")
    if setting.lower() == "off":
        return None
    if setting:
        return Path(setting).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("gradmatrix", appauthor=False)) / "jax"


def _entries(root: Path) -> list[Path]:
    folder = root / ENTRIES
    if not folder.is_dir():
        return []
    return sorted(p for pattern in (ENTRY, "*.tmp") for p in folder.glob(pattern) if p.is_file())


def usage() -> dict:
    """{"path": the store (None: off), "entries": stored functions, "bytes": their size}."""
    root = cache_dir()
    entries = [] if root is None else _entries(root)
    return {"path": root, "entries": len(entries), "bytes": sum(p.stat().st_size for p in entries)}


def clear() -> dict:
    """Remove every stored function (only the store's own files: nothing else in the folder
    is touched); returns what ``usage`` gave before."""
    before = usage()
    if before["path"] is not None:
        for path in _entries(before["path"]):
            path.unlink(missing_ok=True)
    return before
