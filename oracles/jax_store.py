"""The store of compiled JAX functions, and the background compiler that fills it.

A function of the JAX oracle (the vjp, jvp or hvp of one op at fixed dims, dtype and
device) is compiled once per process (``executable``) and, for the catalog's own ops,
stored whole in the platform's cache directory (``oracles.cache``: ``$XDG_CACHE_HOME/gradmatrix/jax``
on Linux; ``$GRADMATRIX_JAX_CACHE`` names another, ``off`` disables it; ``gradmatrix cache``
shows and clears it), so that a later process loads it back without tracing, lowering or
compiling (a few ms against 40 ms a function).

A stored function must prove it is the one asked for before it is used:
* its key (``StoreKey``) says in full what it was compiled from: the kind, op, dims, dtype,
  device and float32 matmul precision, every argument's shape and dtype, the compiler
  options, and a fingerprint of the oracles' source, the versions that trace and compile
  it (JAX, jaxlib, NumPy, array-api-compat) and the host CPU.  The file is named by the
  key's digest;
* the file carries that key in full and the SHA-256 of its payload (``seal``), and loading
  checks both (``unseal``): another function's file (relu's copied over sigmoid's), a
  truncated or damaged file, random bytes or an entry that cannot be read are rejected;
* the oracle's own check (``check``) then runs the loaded function on a probe of the same
  shapes against an independent reference (``jax_oracle.check_loaded``: the numeric
  oracle's float64 NumPy forward and its differences).
A rejected entry is removed, the function is compiled again and stored anew, and the
reason becomes a note for the first evaluation that uses the function (and a
``StoreWarning``): never a crash, never the rejected function's numbers.  These checks
defend against mistakes and damage, not against someone who can write the store: loading
an executable can run code (JAX's own warning), as can the oracles' source beside it.

Only catalog ops, whose code is gradmatrix's own, are stored; a layer a user declares is
compiled in each process (its code is the user's, and may change between runs).  JAX's own
persistent cache is not used: XLA cannot store again an executable that cache returns, so
a function it held would never reach this store.

``CompileAhead`` compiles the functions a run will need on a background thread: XLA
releases the GIL while it compiles, so on a machine with a core to spare the compilation
overlaps the other implementations' work.  An evaluation that needs a function still being
compiled waits for it; one not yet started is compiled by the evaluation itself.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import pickle
import platform
import threading
import time
import warnings
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from gradmatrix.oracles import cache
from gradmatrix.oracles.cache import ENTRIES, Rejected, cache_dir, canonical as _canonical, cpu as _cpu  # noqa: F401  (jax_oracle and tests read them here)

import numpy as np

try:
    import jax
except ImportError:  # the oracle reports it (``jax_oracle.available``); nothing here runs then
    jax = None

# loaded: taken from the store; rejected: stored entries refused on load (then compiled);
# seconds: all of it, of which lowering_seconds tracing and lowering to StableHLO (Python,
# holding the GIL: it competes with the judge's own thread), the rest XLA's compilation
# together: of the compilations, those made with others as one module (``compile_together``)
COMPILE_STATS = {"compilations": 0, "loaded": 0, "rejected": 0, "together": 0, "seconds": 0.0,
                 "lowering_seconds": 0.0}
# whether a function compiled here is stored (serialized, loaded back and checked: 10 to 15 %
# of its compilation); a process whose results are stored themselves sets it False
# (``gradmatrix.oracle_host``): a result read back needs no function at all
SAVE = True

# XLA's CPU backend without its optimization passes (LLVM's included), with its classic
# elemental emitters instead of the MLIR fusion emitters, and the module generated as one
# piece: the same operations, compiled 3.5 times faster on the matrix's cases (0.11 s to 0.03 s
# a function, measured on a vjp of 20 shapes), which are too small for optimization to pay.
CPU_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True,
                        "xla_cpu_use_fusion_emitters": False, "xla_cpu_parallel_codegen_split_count": 1}

MAGIC = b"gradmatrix compiled JAX function\n"  # the first line of every stored file
FORMAT = 1  # the header's layout; a file of another format is rejected like a damaged one
KINDS = ("vjp", "jvp", "hvp")


class StoreWarning(UserWarning):
    """A stored function was rejected and compiled again (the message says why)."""


@dataclass(frozen=True)
class StoreKey:
    """What a stored function was compiled from (``fields``, JSON values) and where it lives."""

    fields: dict
    root: Path

    @property
    def text(self) -> str:
        return _canonical(self.fields)

    @property
    def path(self) -> Path:
        return self.root / ENTRIES / f"{hashlib.sha256(self.text.encode()).hexdigest()}.jaxfn"


def store_key(kind: str, spec, dims: tuple, dtype: str, device: str, args) -> StoreKey | None:
    """The key of a catalog op's compiled function (see the module's docstring), or None:
    no store, or a spec that is not the catalog's own."""
    from gradmatrix.oracles.catalog import CATALOG

    where = cache_dir()
    if where is None or CATALOG.get(spec.name) is not spec:
        return None
    leaves, tree = jax.tree_util.tree_flatten(args)
    fields = {"kind": kind, "op": spec.name, "dims": dims, "dtype": dtype, "device": device,
              "matmul_precision": str(jax.config.jax_default_matmul_precision), "arguments": str(tree),
              "shapes": [(tuple(v.shape), str(v.dtype)) for v in leaves],
              "compiler_options": sorted(CPU_COMPILER_OPTIONS.items()) if device == "cpu" else None,
              "fingerprint": _fingerprint()}
    return StoreKey(json.loads(_canonical(fields)), where)  # as a header parsed back gives them


@functools.cache
def _fingerprint() -> str:
    """The code and the machine a stored function was compiled from: the oracles' source
    files, the versions that trace and compile it, and the host CPU's model and features."""
    import array_api_compat
    import jaxlib

    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    digest.update(repr((jax.__version__, jaxlib.__version__, np.__version__, array_api_compat.__version__,
                        platform.machine(), _cpu())).encode())
    return digest.hexdigest()


def seal(key: StoreKey, payload: bytes) -> bytes:
    """A stored file: ``MAGIC``, a one-line JSON header (the format, the key in full, the
    payload's length and SHA-256), then the payload (``oracles.cache.seal``)."""
    return cache.seal(MAGIC, FORMAT, key.fields, payload)


def unseal(data: bytes, key: StoreKey) -> bytes:
    """The payload of a stored file, once the file proves to be ``key``'s, whole and undamaged.

    Raises:
        Rejected: it is not (the message says how, naming nothing the file itself wrote
            but a catalog op, so that a note cannot carry text from a foreign file).
    """
    return cache.unseal(data, MAGIC, FORMAT, key.fields, "a stored function",
                        lambda stored: _other_key(stored, key.fields))


def _other_key(stored, expected: dict) -> str:
    """Why a header's key is not ``expected``: the fields that differ, and the function it
    names where that is a catalog op's."""
    from gradmatrix.oracles.catalog import CATALOG

    if not isinstance(stored, dict):
        return "its header carries no key"
    differ = [name for name in expected if _canonical(stored.get(name)) != _canonical(expected[name])]
    differ += sorted(name for name in stored if name not in expected)
    op, kind = stored.get("op"), stored.get("kind")
    what = f"{op}'s {kind}" if isinstance(op, str) and op in CATALOG and kind in KINDS else "another function"
    return f"its file holds {what} (the key differs in {', '.join(differ)})"


def _backend(device: str) -> str:
    return "gpu" if device == "cuda" else "cpu"


def _load(key: StoreKey, device: str, check: Callable) -> tuple:
    """(the function stored under ``key``, None), or (None, why it was rejected), or
    (None, None) when there is none."""
    from jax.experimental.serialize_executable import deserialize_and_load

    try:
        data = key.path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"its file cannot be read ({_os_reason(exc)})"
    try:
        serialized, in_tree, out_tree = pickle.loads(unseal(data, key))
        function = deserialize_and_load(serialized, in_tree, out_tree, backend=_backend(device))
    except Rejected as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001  (sealed whole, yet XLA cannot load it here)
        return None, f"it does not load ({type(exc).__name__})"
    try:
        reason = check(function)
    except Exception as exc:  # noqa: BLE001  (unchecked is untrusted)
        reason = f"its check on a probe failed ({type(exc).__name__})"
    if reason is None:
        cache.used(key.path)
    return (function, None) if reason is None else (None, reason)


def _os_reason(exc: OSError) -> str:
    """An OSError without the path it names (a note is no place for this machine's paths)."""
    return exc.strerror or type(exc).__name__


def _save(key: StoreKey, function, args, device: str) -> str | None:
    """Store a compiled function, atomically, when it survives the trip: loaded back, it
    must run on ``args`` and give bitwise the outputs of the original (XLA cannot reload
    every CPU executable: some lose a fused kernel on the way).  None when stored, else why
    not (a store that fails or is refused costs only speed)."""
    from jax.experimental.serialize_executable import deserialize_and_load, serialize

    try:
        payload = pickle.dumps(serialize(function))
        if len(payload) > cache.LARGEST:
            return "it is larger than the store keeps"
        again = deserialize_and_load(*pickle.loads(payload), backend=_backend(device))
        expected, got = jax.tree_util.tree_leaves(function(*args)), jax.tree_util.tree_leaves(again(*args))
        if len(expected) != len(got) or not all(np.array_equal(np.asarray(e), np.asarray(g), equal_nan=True)
                                                for e, g in zip(expected, got)):
            return "loaded back, it computes other bits (XLA cannot reload it)"
        key.path.parent.mkdir(parents=True, exist_ok=True)
        sealed = seal(key, payload)
        cache.write_whole(key.path, sealed)
        cache.stored(key.root, len(sealed))
        cache.settle()  # at once: a host process is stopped, not left to run what is due at its exit
    except OSError as exc:
        return f"its entry cannot be written ({_os_reason(exc)})"
    except Exception as exc:  # noqa: BLE001
        return f"it cannot be serialized ({type(exc).__name__})"
    return None


def _discard(path: Path) -> None:
    """Remove a rejected entry (a file, or an empty folder in a file's place), so that a
    function that cannot be stored again leaves no entry to be rejected in every run."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        try:
            path.rmdir()
        except OSError:
            pass  # _save says so if the entry cannot be rewritten either


@dataclass
class _Entry:
    spec: object  # held so that its id is not reused while the entry exists
    future: Future
    notes: list = field(default_factory=list)  # for the first evaluation that takes the function


_EXECUTABLES: dict = {}  # key -> _Entry
_EXECUTABLES_LOCK = threading.Lock()


def executable(kind: str, spec, dims: tuple, dtype: str, device: str, args: tuple, build: Callable,
               check: Callable, ahead: bool = False):
    """The compiled ``kind`` function of this op, dims, dtype and device under the float32
    matmul precision in force, and the notes of its making.

    Compiled ahead of time on first use (``build()`` is the jitted function, lowered and
    compiled on ``args``), or loaded from the store and accepted by ``check``; timed into
    ``COMPILE_STATS``; then reused.  Thread-safe: a function being compiled by another
    thread (``CompileAhead``) is waited for, never compiled twice.

    Keyed by the spec itself, not only its name: two layers a user declares under one name
    (a correct and a broken one, in one process) must never share compiled code.

    Args:
        kind: "vjp", "jvp" or "hvp".
        spec, dims, dtype, device: what the function computes, and where.
        args: the arguments it will be called with (their shapes and dtypes are compiled in).
        build: () -> the jitted function.
        check: (loaded function) -> None when it is the one asked for, else why not.
        ahead: called by ``CompileAhead``: returns None at once when another thread has the
            function, and keeps the notes for the evaluation.

    Returns:
        (function, notes): the notes (why a stored function was rejected) go to the first
        caller only; None when ``ahead``.
    """
    key = _memory_key(kind, spec, dims, dtype, device)
    with _EXECUTABLES_LOCK:
        entry = _EXECUTABLES.get(key)
        mine = entry is None
        if mine:
            entry = _EXECUTABLES[key] = _Entry(spec, Future())
    if ahead and not mine:
        return None
    if mine:
        _make(key, entry, kind, spec, dims, dtype, device, args, build, check)
    function = entry.future.result()
    if ahead:
        return None
    with _EXECUTABLES_LOCK:
        notes, entry.notes = entry.notes, []
    return function, notes


def _memory_key(kind: str, spec, dims: tuple, dtype: str, device: str) -> tuple:
    """A function's key in this process: its spec itself (by id), not only its name."""
    return kind, spec.name, id(spec), dims, dtype, device, str(jax.config.jax_default_matmul_precision)


def _make(key, entry: _Entry, kind, spec, dims, dtype, device, args, build, check) -> None:
    """Load or compile the function of a new entry, and resolve its future."""
    start = time.perf_counter()
    lowering = 0.0
    try:  # whatever fails from here resolves the future: a waiting thread must never wait forever
        stored = store_key(kind, spec, dims, dtype, device, args)
        function, rejected = _load(stored, device, check) if stored is not None else (None, None)
        loaded = function is not None
        if not loaded:
            if rejected:
                _discard(stored.path)
            lowering = time.perf_counter()
            lowered = build().lower(*args)
            lowering = time.perf_counter() - lowering
            function = lowered.compile(compiler_options=CPU_COMPILER_OPTIONS if device == "cpu" else None)
            unstored = None if stored is None else _save(stored, function, args, device) if SAVE else \
                "its results are stored instead (oracles.reference_store)"
            if rejected:
                entry.notes.append(_note(kind, spec, dims, dtype, rejected, unstored))
        entry.future.set_result(function)
    except BaseException as exc:  # an interrupted compilation (time limit, Ctrl-C) is retried next time
        with _EXECUTABLES_LOCK:
            _EXECUTABLES.pop(key, None)
        entry.future.set_exception(exc)
        raise
    with _EXECUTABLES_LOCK:
        COMPILE_STATS["loaded" if loaded else "compilations"] += 1
        COMPILE_STATS["rejected"] += rejected is not None
        COMPILE_STATS["seconds"] += time.perf_counter() - start
        COMPILE_STATS["lowering_seconds"] += lowering
    for note in list(entry.notes):  # after the function is in place: a warning turned error cannot undo it
        warnings.warn(note, StoreWarning, stacklevel=2)


def in_memory(kind: str, spec, dims: tuple, dtype: str, device: str) -> bool:
    """Whether this process has the function already (or is making it)."""
    return _memory_key(kind, spec, dims, dtype, device) in _EXECUTABLES


def compiled_alone(kind: str, spec, dims: tuple, dtype: str, device: str, args: tuple) -> bool:
    """Whether ``executable`` would compile this function and keep it in this process only:
    not in memory yet, nothing in the store to load, and nothing to store (no store, a
    declared layer's spec, or ``SAVE`` off).  Only such functions may be compiled together."""
    if in_memory(kind, spec, dims, dtype, device):
        return False
    stored = store_key(kind, spec, dims, dtype, device, args)
    return stored is None or (not SAVE and not stored.path.exists())


class _Member:
    """One function of a module compiled with others (``compile_together``): called like the
    function alone, it runs the module with its own arguments in its slot (the others' are
    those they were compiled with) and returns its slot's outputs.  The module computes every
    slot each call: a fraction of a millisecond on the small cases it is used for
    (``jax_oracle.TOGETHER_ELEMENTS``)."""

    def __init__(self, module, slot: int, arguments: list):
        self._module, self._slot, self._arguments = module, slot, arguments

    def __call__(self, *args):
        arguments = list(self._arguments)
        arguments[self._slot] = args
        return self._module(arguments)[self._slot]


def compile_together(members: list) -> None:
    """Compile several functions as one XLA module and keep each in memory, as ``executable``
    would have compiled it alone: the same operations (each is its own jitted function, called
    once in the module), for a third less time, most of a small function's compilation being
    the module's (lowering, XLA's passes and linking: 14 ms of a 40 ms function on this
    project's 2-core machine).  The values are the same but for rounding: XLA decides fusion
    and contraction per module, so among others an op may round an operation differently,
    by an ulp (the 270 outputs of a course's layers.py came out bitwise the same).

    Args:
        members: ``(kind, spec, dims, dtype, device, args, build)`` for each, of one device,
            each ``compiled_alone``; ``build()`` is the jitted function, ``args`` what it is
            compiled on.

    Raises:
        Whatever tracing, lowering or compiling any member raises: none is kept then, and
        each is compiled alone when it is needed, meeting its own error.
    """
    start = time.perf_counter()
    functions = [build() for *_, build in members]
    arguments = [args for *_, args, _ in members]
    device = members[0][4]

    def together(all_arguments):
        return [function(*args) for function, args in zip(functions, all_arguments)]

    lowering = time.perf_counter()
    lowered = jax.jit(together).lower(arguments)
    lowering = time.perf_counter() - lowering
    module = lowered.compile(compiler_options=CPU_COMPILER_OPTIONS if device == "cpu" else None)
    # the members' arguments, held for the slots a call does not fill, on the device once
    # (NumPy arrays would be copied in at every call)
    held = jax.device_put(arguments, jax.devices("gpu" if device == "cuda" else "cpu")[0])
    kept = 0
    with _EXECUTABLES_LOCK:
        for slot, (kind, spec, dims, dtype, device, _, _) in enumerate(members):
            key = _memory_key(kind, spec, dims, dtype, device)
            if key not in _EXECUTABLES:  # another thread may have compiled it meanwhile
                entry = _EXECUTABLES[key] = _Entry(spec, Future())
                entry.future.set_result(_Member(module, slot, held))
                kept += 1
        COMPILE_STATS["compilations"] += kept
        COMPILE_STATS["together"] += kept
        COMPILE_STATS["seconds"] += time.perf_counter() - start
        COMPILE_STATS["lowering_seconds"] += lowering


def _note(kind: str, spec, dims: tuple, dtype: str, rejected: str, unstored: str | None) -> str:
    """The note of a rejected entry: which function, why, and what was done instead."""
    done = "stored anew" if unstored is None else f"not stored again: {unstored}"
    return (f"jax: the stored {kind} of {spec.name} ({_dims_text(dims)}, {dtype}) was rejected and rebuilt: "
            f"{rejected}; compiled again and {done}")


def _dims_text(dims: tuple) -> str:
    """``N8-D10``, ``HW5x5``, ``eps1e-05``: dims as case ids write them."""
    def text(value) -> str:
        if isinstance(value, tuple):
            return "x".join(map(str, value))
        return f"{value:g}" if isinstance(value, float) else str(value)

    return "-".join(f"{name}{text(value)}" for name, value in dims)


class CompileAhead:
    """Runs ``compile_one(job)`` for each job, in order, on a background thread (the oracle's
    ``compile_ahead`` makes the jobs); a job that fails is left for the evaluation that needs
    its function to meet and report.  ``stop()`` ends it after the function being compiled
    (a process must not exit while XLA compiles on another thread: the thread's
    cancellation aborts it)."""

    def __init__(self, jobs, compile_one: Callable):
        self._jobs, self._compile_one = list(jobs), compile_one
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="gradmatrix-jax-compile-ahead", daemon=True)
        _AHEAD.add(self)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        _AHEAD.discard(self)

    def _work(self) -> None:
        for job in self._jobs:
            if self._stop.is_set():
                return
            try:
                self._compile_one(job)
            except Exception:  # noqa: BLE001  (the case's own evaluation meets it again and reports it)
                continue


_AHEAD: set = set()  # running CompileAhead threads, stopped before the interpreter exits
atexit.register(lambda: [ahead.stop() for ahead in list(_AHEAD)])
