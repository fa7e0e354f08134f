"""The store of the oracles' results on the catalog's own cases.

An oracle's result on a case of a catalog op or a course's declared function depends only on
the case (its op, dims, seed, dtype and kind, which fix its inputs), the oracle, the matmul
precision and device, the oracles' own source and the versions that compute it; never on
the candidate.  So it is computed once and stored in the platform's cache directory
(``oracles.cache``, beside the compiled JAX functions; ``GRADMATRIX_JAX_CACHE=off`` turns both
off, ``gradmatrix cache clear`` empties both), and a later run reads it back instead of
computing it again: a check whose references are all stored imports neither torch nor JAX.

What is never stored:
* anything computed in a process that holds code under test (``gradmatrix.check`` of a
  module object, ``check_layer``, the pytest plugin with a candidate other than manual): that
  code could change what the oracles compute, and a stored result would carry the change
  into later runs of other candidates (``Runner(store_writes=...)``); such runs read the store;
* results on a GPU: they depend on its model, driver and libraries;
* a layer a user declares, and anything computed from a candidate's own code (its numeric
  differences of the layer's forward, ``<candidate>.fd``): its code may change between runs;
* a result on inputs other than the case's own draw, except inputs a candidate drew itself
  (the course's dropout mask), which join the key by their digest;
* a failure: an oracle that raised is asked again next time;
* a result with notes of its making (a compiled function rejected from its store).

A stored result proves what it is before it is used, as a compiled function does
(``oracles.cache.seal``): its file carries its key in full (the case, the oracle, the
precision, the device, the inputs' digest, the environment's precision and XLA settings
(``SETTINGS``), and a fingerprint of the oracles' and manual's source, the versions of
NumPy, torch, JAX, jaxlib and array-api-compat, Python and the host CPU) and the SHA-256
of its payload.  A file that is not the one asked for, or damaged, is
removed and the result computed again.  These checks defend against mistakes and damage,
not against someone who can write the store: a result is a pickle, which can run code on
loading, as the compiled functions beside it can.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import pickle
import platform
import queue
import sys
import threading
from importlib import metadata
from pathlib import Path

import numpy as np

from gradmatrix.oracles import cache
from gradmatrix.oracles.implementations import FRAMEWORK_MODULES
from gradmatrix.oracles.result import Result

MAGIC = b"gradmatrix reference result\n"  # the first line of every stored result
FORMAT = 1
VERSIONS = ("numpy", *FRAMEWORK_MODULES, "array-api-compat")  # what computes a reference

STATS = {"loaded": 0, "stored": 0, "rejected": 0}  # this process's use of the store
_LISTED: dict = {}  # folder -> the names of the results in it, listed once per process (then kept up to date)


def ours(spec) -> bool:
    """Whether ``spec`` is one of gradmatrix's own entries (a catalog op or a course's
    declared function), whose code the fingerprint covers; a user's declared layer is not."""
    from gradmatrix.oracles.catalog import CATALOG
    from gradmatrix.oracles.contracts import COURSE_SPECS

    return CATALOG.get(spec.name) is spec or COURSE_SPECS.get(spec.name) is spec


@functools.cache
def fingerprint() -> str:
    """The code and the machine a result was computed with: every source file of the oracles
    (contracts included) and of manual, the versions that compute (read from the installed
    packages, importing nothing), Python's, and the host CPU."""
    import gradmatrix.manual

    digest = hashlib.sha256()
    for package in (Path(__file__).parent, Path(gradmatrix.manual.__file__).parent):
        for path in sorted(package.rglob("*.py")):
            digest.update(path.relative_to(package.parent).as_posix().encode() + b"\0" + path.read_bytes())
    versions = []
    for name in VERSIONS:
        try:
            versions.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            versions.append((name, None))
    digest.update(repr((versions, sys.version, platform.machine(), cache.cpu())).encode())
    return digest.hexdigest()


def digest_arrays(arrays: dict) -> str:
    """One digest of named arrays: their names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{value.dtype.str}:{value.shape}:".encode() + value.tobytes())
    return digest.hexdigest()


# settings read from the environment that change what the frameworks compute at the
# "default" matmul precision or how XLA compiles; they join every key
SETTINGS = ("JAX_DEFAULT_MATMUL_PRECISION", "JAX_ENABLE_X64", "XLA_FLAGS", "NVIDIA_TF32_OVERRIDE",
            "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE")


def key(case, impl: str, precision: str, device: str, inputs: str | None = None) -> dict | None:
    """The key of ``impl``'s result on ``case``, or None where nothing is stored: no store,
    a spec that is not gradmatrix's own, or a device other than the CPU (a GPU's results
    depend on its model, driver and libraries, which no key here names).

    Args:
        inputs: the digest of inputs a candidate drew itself (``digest_arrays``), None for
            the case's own draw.
    """
    if device != "cpu" or cache.cache_dir() is None or not ours(case.spec):
        return None
    return {"impl": impl, "case": case.id, "precision": precision, "device": device, "inputs": inputs,
            "settings": {name: os.environ.get(name) for name in SETTINGS}, "fingerprint": fingerprint()}


_PATHS: dict = {}  # id(key) -> (the key, the store, its path): a key object asked again (a run asks three times)
_PATHS_KEPT = 4096


def _path(key: dict) -> Path:
    """Where the result of ``key`` is stored (a key is never changed once made)."""
    root = cache.cache_dir()
    known = _PATHS.get(id(key))
    if known is not None and known[0] is key and known[1] == root:
        return known[2]
    name = hashlib.sha256(cache.canonical(key).encode()).hexdigest()
    path = _results(root) / f"{name}.result"
    if len(_PATHS) >= _PATHS_KEPT:
        _PATHS.pop(next(iter(_PATHS)))
    _PATHS[id(key)] = (key, root, path)
    return path


@functools.lru_cache(maxsize=16)
def _results(root: Path) -> Path:
    """The folder of the results in the store at ``root``."""
    return root / cache.RESULTS


def _listed(folder: Path) -> set:
    """The results in ``folder``, listed the first time it is asked for (a run asks for
    hundreds), then kept up to date with what this process stores and finds (``_present``)."""
    if folder not in _LISTED:
        try:
            _LISTED[folder] = set(os.listdir(folder))
        except OSError:
            _LISTED[folder] = set()
    return _LISTED[folder]


def _present(path: Path) -> bool:
    """Whether a result is stored at ``path``: listed, or stored since the listing by another
    process, which a miss looks for (one stat): a process that lives long, a test suite's or
    a class's, then uses what the runs beside it store instead of computing it again."""
    listing = _listed(path.parent)
    if path.name in listing:
        return True
    if os.path.exists(path):
        listing.add(path.name)
        return True
    return False


def empty() -> bool:
    """Whether the store holds no result at all (or is off): then a run computes every
    oracle's result, which it may start on before its plan is known (``gradmatrix.engine``)."""
    folder = cache.cache_dir()
    return folder is None or not _listed(folder / cache.RESULTS)


def has(key: dict) -> bool:
    """Whether a result is stored under ``key`` (unchecked: ``load`` checks it)."""
    return _present(_path(key))


def load(key: dict) -> Result | None:
    """The result stored under ``key``, or None: none, or one that is not the result asked
    for or is damaged (then removed, to be computed and stored again)."""
    path = _path(key)
    if not _present(path):
        return None
    try:
        data = path.read_bytes()
    except OSError:  # removed since it was listed (``gradmatrix cache clear``, another run's pruning)
        _listed(path.parent).discard(path.name)
        return None
    try:
        result = pickle.loads(cache.unseal(data, MAGIC, FORMAT, key, "a stored result",
                                           lambda stored: "its file holds another result"))
        if not isinstance(result, Result):
            raise cache.Rejected("its payload is not a result")
    except Exception:  # noqa: BLE001  (Rejected, or a payload that does not unpickle: computed again)
        STATS["rejected"] += 1
        path.unlink(missing_ok=True)
        _listed(path.parent).discard(path.name)
        return None
    STATS["loaded"] += 1
    cache.used(path)
    return result


def save(key: dict, result: Result) -> None:
    """Store ``result`` under ``key``: pickled here, written atomically by a background
    thread (file writes release the GIL: a first run's hundreds of writes overlap its
    work), all written before the process exits (``flush``).  A store that cannot be
    written costs only speed.  A result with notes is not stored: they tell of its making in
    this run (a stored compiled function rejected and rebuilt), which a later run must not
    repeat; nor is one larger than ``cache.LARGEST``."""
    if result.notes:
        return
    try:
        payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return
    if len(payload) > cache.LARGEST:
        return
    _writes().put((_path(key), cache.seal(MAGIC, FORMAT, key, payload)))


def flush() -> None:
    """Wait until every result saved so far is written (or has failed to be), then keep the
    store within its bound (``cache.settle``: after the run's loads have marked what it used)."""
    if _QUEUE is not None:
        _QUEUE.join()
    for removed in cache.settle():
        _LISTED.get(removed.parent, set()).discard(removed.name)


_QUEUE: queue.Queue | None = None
_QUEUE_LOCK = threading.Lock()


def _writes() -> queue.Queue:
    """The queue of results to write, and its writer thread, started on first use."""
    global _QUEUE
    with _QUEUE_LOCK:
        if _QUEUE is None:
            _QUEUE = queue.Queue()
            threading.Thread(target=_write_all, args=(_QUEUE,), name="gradmatrix-reference-store",
                             daemon=True).start()
            atexit.register(flush)
    return _QUEUE


def _write_all(pending: queue.Queue) -> None:
    while True:
        path, data = pending.get()
        try:
            _write(path, data)
        except Exception:  # noqa: BLE001  (a write that fails costs only speed; the writer must live, or flush waits forever)
            pass
        finally:
            pending.task_done()


def _write(path: Path, data: bytes) -> None:
    try:
        if not _LISTED.get(path.parent):
            path.parent.mkdir(parents=True, exist_ok=True)
        cache.write_whole(path, data)
    except OSError:
        return
    _listed(path.parent).add(path.name)
    STATS["stored"] += 1
    cache.stored(path.parent.parent, len(data))
