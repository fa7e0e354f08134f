"""Where gradmatrix keeps what it stores between runs, under the platform's cache directory:
the compiled JAX functions of the catalog's ops (``oracles.jax_store``) and the oracles'
results on the catalog's cases (``oracles.reference_store``); and how a stored file proves
what it holds (``seal``, ``unseal``).

The place is ``platformdirs.user_cache_dir("gradmatrix")`` (``$XDG_CACHE_HOME/gradmatrix`` on
Linux, ``~/.cache/gradmatrix`` without it; ``~/Library/Caches/gradmatrix`` on macOS,
``%LOCALAPPDATA%\\gradmatrix\\Cache`` on Windows) followed by ``jax``; ``GRADMATRIX_JAX_CACHE``
names another folder, or ``off`` for none.  ``gradmatrix cache`` shows it and ``gradmatrix
cache clear`` empties it (``usage``, ``clear``).  Importing this module imports no framework.

The store is bounded: a file larger than ``LARGEST`` is never stored (a reference on a
large case, 400 MB at N = 4096, costs about as much to read and verify as it saves, and
would fill the disk), and a process that stored something ends by keeping the store under
``LIMIT`` bytes, the least recently used files first (``settle``; a load refreshes a
file's modification time, ``used``).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import platform
import re
import threading
import time
from pathlib import Path

ENTRY = "*.jaxfn"  # a stored function; "*.tmp": one being written
ENTRIES = "executables"
RESULT = "*.result"  # a stored reference result
RESULTS = "references"
LIMIT = 1_000_000_000  # bytes: the store's size, functions and results together, at most (``settle``)
LARGEST = 64_000_000  # bytes: a file larger is not stored
LOOK_EVERY = 3600.0  # seconds: the store's size is measured again at least this often (0.1 s for 30,000 files)
STALE = 3600.0  # seconds: a file still being written after this long is a writer's that died
_SIZE = ".gradmatrix-store-size.json"  # the store's size as last measured, and when, plus what was stored since
_PARTIAL = re.compile(r"[0-9a-f]{64}\.\d+\.\d+\.tmp")  # a file being written: its name, the writer's process and thread


class Rejected(Exception):
    """A stored entry is not the one asked for; the message says why, for a note."""


def canonical(value) -> str:
    """One text per value: JSON with sorted keys (tuples as lists, anything else by repr)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def cpu() -> str:
    """The host CPU's model name and feature flags (XLA compiles for the CPU it runs on, and
    BLAS results can differ by an ulp between CPU models)."""
    try:
        with open("/proc/cpuinfo") as info:
            lines = [line for line in info if line.startswith(("model name", "flags", "Features", "CPU part"))]
        return "".join(dict.fromkeys(lines))
    except OSError:
        return platform.processor()


def seal(magic: bytes, format: int, key: dict, payload: bytes) -> bytes:
    """A stored file: ``magic``, a one-line JSON header (the format, the key in full, the
    payload's length and SHA-256), then the payload."""
    header = {"format": format, "key": key, "payload_bytes": len(payload),
              "payload_sha256": hashlib.sha256(payload).hexdigest()}
    return magic + canonical(header).encode() + b"\n" + payload


def unseal(data: bytes, magic: bytes, format: int, key: dict, what: str, other_key) -> bytes:
    """The payload of a file ``seal`` wrote, once it proves to be ``key``'s, whole and undamaged.

    Args:
        what: what such a file holds, for the messages ("a stored function").
        other_key: ``(the key the header carries) -> why it is not key``, the message.

    Raises:
        Rejected: it is not (the message says how).
    """
    if not data.startswith(magic):
        raise Rejected(f"its file is not {what} (no header)" if len(data) >= len(magic)
                       else f"its file is truncated ({len(data)} bytes)")
    end = data.find(b"\n", len(magic))
    if end < 0:
        raise Rejected("its file is truncated within its header")
    try:
        header = json.loads(data[len(magic):end])
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != format:
        raise Rejected("its header is damaged or of another format")
    if canonical(header.get("key")) != canonical(key):
        raise Rejected(other_key(header.get("key")))
    payload, expected = data[end + 1:], header.get("payload_bytes")
    if len(payload) != expected:
        raise Rejected(f"its file is truncated ({len(payload)} of {expected} payload bytes)"
                       if isinstance(expected, int) and len(payload) < expected else "its payload has the wrong length")
    if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
        raise Rejected("its payload does not match the digest in its header (damaged or altered)")
    return payload


def cache_dir() -> Path | None:
    """Where compiled functions and reference results persist between runs, or None when
    ``GRADMATRIX_JAX_CACHE=off``; read from the environment at each call (a run asks
    thousands of times: the path is made once per setting)."""
    env = os.environ
    return _cache_dir(env.get("GRADMATRIX_JAX_CACHE", ""), env.get("XDG_CACHE_HOME"), env.get("HOME"),
                      env.get("LOCALAPPDATA"))


@functools.lru_cache(maxsize=16)
def _cache_dir(setting: str, *platform_settings) -> Path | None:
    """``cache_dir`` for these settings (the platform's cache directory follows the last)."""
    if setting.lower() == "off":
        return None
    if setting:
        return Path(setting).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("gradmatrix", appauthor=False)) / "jax"


def _entries(root: Path, folder: str, entry: str) -> list[Path]:
    folder = root / folder
    if not folder.is_dir():
        return []
    return sorted(p for pattern in (entry, "*.tmp") for p in folder.glob(pattern) if p.is_file())


def _all(root: Path | None) -> tuple[list, list]:
    if root is None:
        return [], []
    return _entries(root, ENTRIES, ENTRY), _entries(root, RESULTS, RESULT)


def usage() -> dict:
    """{"path": the store (None: off), "entries": stored functions, "results": stored
    reference results, "bytes": their size}."""
    root = cache_dir()
    functions, results = _all(root)
    return {"path": root, "entries": len(functions), "results": len(results),
            "bytes": sum(p.stat().st_size for p in functions + results)}


def clear() -> dict:
    """Remove every stored function and result (only the store's own files: nothing else in
    the folder is touched); returns what ``usage`` gave before."""
    before = usage()
    functions, results = _all(before["path"])
    for path in functions + results:
        path.unlink(missing_ok=True)
    return before


def write_whole(path: Path, data: bytes) -> None:
    """Write a stored file whole or not at all: through a partial file named for this process
    and thread (``_PARTIAL``), moved into place; a write that fails (a full disk) leaves no
    part of it behind.

    Raises:
        OSError: the file cannot be written.
    """
    partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError:
        try:
            partial.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def used(path: Path) -> None:
    """Mark a stored file as just used (its modification time), for ``settle``'s order; a
    store this process cannot write keeps the old time."""
    try:
        os.utime(path)
    except OSError:
        pass


_STORED: dict = {}  # store -> bytes this process stored there since it last settled
_STORED_LOCK = threading.Lock()
_AT_EXIT: list = []  # whether ``settle`` is registered to run at exit (once per process)


def stored(root: Path, size: int) -> None:
    """Count a file of ``size`` bytes just stored in the store at ``root``; the process
    settles the store when it ends (``settle``, also called once a run's writes are done)."""
    with _STORED_LOCK:
        if not _AT_EXIT:
            _AT_EXIT.append(atexit.register(settle))
        _STORED[root] = _STORED.get(root, 0) + size


def settle(limit: int | None = None, every: float | None = None) -> list[Path]:
    """Keep each store this process has stored files in under ``limit`` bytes (default
    ``LIMIT``), after its writes, when its loads have marked what it used.  The size last
    measured (the record ``_SIZE`` in the store's folder) plus what processes have stored
    since tells whether the store may have passed the limit; then, or when the last measure
    is older than ``every`` seconds (default ``LOOK_EVERY``; or comes from a clock that has
    gone back), the store is measured again and, past the limit, its least recently used
    files (the oldest modification time) are removed until it holds three quarters of it;
    so are the files of a writer that died (``_PARTIAL``, older than ``STALE``).  A file
    another process is reading when it goes is computed again there.

    Returns:
        The files removed.
    """
    limit = LIMIT if limit is None else limit
    every = LOOK_EVERY if every is None else every
    with _STORED_LOCK:
        pending = dict(_STORED)
        _STORED.clear()
    removed = []
    for root, size in pending.items():
        try:
            removed += _settle(root, size, limit, every)
        except OSError:  # a store that cannot be read or written: bounded next time
            pass
    return removed


def _settle(root: Path, added: int, limit: int, every: float) -> list[Path]:
    record = root / _SIZE
    now = time.time()
    try:
        last = json.loads(record.read_text())
        measured, at = int(last["bytes"]), float(last["at"])
    except (OSError, ValueError, KeyError, TypeError):
        measured, at = None, None
    if measured is not None and 0 <= now - at < every and measured + added <= limit:
        _write_record(record, measured + added, at)  # two processes at once may lose a count: measured again soon
        return []
    found, dead = [], []  # (last used, bytes, path) of the store's files; the files of writers that died
    for folder, suffix in ((ENTRIES, ENTRY[1:]), (RESULTS, RESULT[1:])):
        try:
            with os.scandir(root / folder) as entries:
                for entry in entries:
                    try:
                        if not entry.is_file(follow_symlinks=False):
                            continue
                        info = entry.stat(follow_symlinks=False)
                        if entry.name.endswith(suffix):
                            found.append((info.st_mtime, info.st_size, Path(entry.path)))
                        elif _PARTIAL.fullmatch(entry.name) and now - info.st_mtime > STALE:
                            dead.append(Path(entry.path))
                    except OSError:  # removed meanwhile
                        continue
        except OSError:  # no such folder
            continue
    total = sum(size for _, size, _ in found)
    doomed = list(dead)
    if total > limit:
        for _, size, path in sorted(found):  # the least recently used first
            if total <= limit * 3 // 4:
                break
            doomed.append(path)
            total -= size
    removed = []
    for path in doomed:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            continue
        removed.append(path)
    _write_record(record, total, now)
    return removed


def _write_record(record: Path, size: int, at: float) -> None:
    partial = record.with_name(f"{record.name}.{os.getpid()}.{threading.get_ident()}")
    partial.write_text(json.dumps({"bytes": size, "at": at}))
    os.replace(partial, record)
