"""The JAX oracle: each op's forward with ``jax.nn``, gradients by ``jax.vjp``.

JAX silently computes float64 inputs in float32 unless 64-bit mode is on, which would make
every float64 comparison meaningless.  Importing this module therefore enables it,
deliberately: ``jax.config.update("jax_enable_x64", True)``.  float32 inputs still compute
in float32.

The vjp of each op is compiled with ``jax.jit`` once per op, dims and dtype, and reused
across seeds; ``COMPILE_STATS`` counts the compilations and their seconds (tracing,
lowering and XLA together) for the benchmarks.

Compilation is most of this oracle's cost (0.1 to 0.2 s per shape with XLA's defaults,
against a few ms to run one), so three things make it cheaper, none changing the
operations computed:
* on the CPU, XLA compiles without its backend optimization passes and with its classic
  emitters (``CPU_COMPILER_OPTIONS``, for these compilations only): 3.5 times less compile
  time, and the cases are small;
* ``compile_ahead(cases)`` compiles the functions a run will need, in its order, on a
  background thread: XLA releases the GIL while it compiles, so on a machine with a core to
  spare the compilation overlaps the other implementations' work.  An evaluation that
  needs a function still being compiled waits for it; one not yet started is compiled by
  the evaluation itself;
* a catalog op's compiled functions are kept between runs, stored whole in
  ``$GRADMATRIX_JAX_CACHE/executables`` (default ``~/.cache/gradmatrix/jax``; ``off``
  disables it) and loaded back without tracing or lowering (2 ms against 40 ms a function).
  Only catalog ops, whose code is gradmatrix's own: the key (``store_key``) fingerprints
  the oracles' source, the versions of JAX, jaxlib, NumPy and array-api-compat, the host
  CPU and every argument's shape and dtype.  A layer a user declares is compiled in each
  process (its code is the user's, and may change between runs).  JAX's own persistent
  cache is not used: XLA cannot store again an executable that cache returns, so a
  function it held would never reach this store.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import pickle
import platform
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from gradmatrix.oracles.cases import CaseInputs
from gradmatrix.oracles.result import Result, Unavailable

try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:  # reported, never fatal: its cases skip with this reason
    jax = None
    _IMPORT_ERROR = f"jax is not importable: {exc}"
else:
    _IMPORT_ERROR = ""
    jax.config.update("jax_enable_x64", True)

COMPILE_STATS = {"compilations": 0, "loaded": 0, "seconds": 0.0}  # loaded: stored whole (below)


def cache_dir() -> Path | None:
    """Where compiled functions persist between runs (``store_key``), or None when
    ``GRADMATRIX_JAX_CACHE=off``."""
    setting = os.environ.get("GRADMATRIX_JAX_CACHE", "")
    if setting.lower() == "off":
        return None
    return Path(setting).expanduser() if setting else Path.home() / ".cache" / "gradmatrix" / "jax"


def _relu(a, dims):
    return jax.nn.relu(a["x"])


def _affine(a, dims):
    x = a["x"]
    return x.reshape(x.shape[0], -1) @ a["w"] + a["b"]


def _cross_entropy(scores, y):
    log_probs = jax.nn.log_softmax(scores, axis=1)
    return -jnp.mean(jnp.take_along_axis(log_probs, y[:, None], axis=1))


def _softmax_loss(a, dims):
    return _cross_entropy(a["scores"], a["y"])


def _two_layer_net(a, dims):
    scores = jax.nn.relu(a["X"] @ a["W1"] + a["b1"]) @ a["W2"] + a["b2"]
    return _cross_entropy(scores, a["y"]) + dims["reg"] * (jnp.sum(a["W1"] ** 2) + jnp.sum(a["W2"] ** 2))


def _sigmoid(a, dims):
    return jax.nn.sigmoid(a["x"])


def _tanh(a, dims):
    return jnp.tanh(a["x"])


def _max(a, dims):
    return jnp.maximum(a["x"], a["y"])


def _score_net(a, dims):
    # column convention, one sample: W (H, D) @ x (D,)
    return jnp.dot(a["u"], jax.nn.sigmoid(a["W"] @ a["x"] + a["b"]))


def _dropout(a, dims):
    return a["x"] * a["mask"] / (1 - dims["p"])


def _layernorm(a, dims):
    # "stable": two-pass variance mean((x - mean)^2), not the default mean(x^2) - mean^2
    xhat = jax.nn.standardize(a["x"], axis=-1, epsilon=dims["eps"], algorithm="stable")
    return xhat * a["gamma"] + a["beta"]


def _batchnorm(a, dims):
    xhat = jax.nn.standardize(a["x"], axis=0, epsilon=dims["eps"], algorithm="stable")
    return xhat * a["gamma"] + a["beta"]


def _conv(a, dims):
    stride, pad = dims["stride"], dims["pad"]
    out = jax.lax.conv_general_dilated(
        a["x"], a["w"], window_strides=(stride, stride), padding=((pad, pad), (pad, pad)),
        dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return out + a["b"][None, :, None, None]


def _max_pool(a, dims):
    pool, stride = dims["pool"], dims["stride"]
    return jax.lax.reduce_window(a["x"], -jnp.inf, jax.lax.max, (1, 1, pool, pool), (1, 1, stride, stride), "VALID")


FORWARDS = {
    "relu": _relu,
    "affine": _affine,
    "softmax_loss": _softmax_loss,
    "two_layer_net": _two_layer_net,
    "sigmoid": _sigmoid,
    "tanh": _tanh,
    "max": _max,
    "score_net": _score_net,
    "dropout": _dropout,
    "layernorm": _layernorm,
    "batchnorm": _batchnorm,
    "conv": _conv,
    "max_pool": _max_pool,
}


def forward_of(spec):
    """The op's forward ``(arrays, dims) -> out``: JAX's own idiom where FORWARDS has one,
    else the spec's (``OpSpec.forward_for``), run with ``jax.numpy``."""
    own = spec.framework_forward(FORWARDS)
    return own if own is not None else spec.forward_for("jax", jnp)


def available(device: str = "cpu") -> None:
    """Raise ``Unavailable`` with the reason when jax cannot be used (on ``device``)."""
    if jax is None:
        raise Unavailable(_IMPORT_ERROR)
    if device == "cuda":
        from gradmatrix.oracles.devices import jax_cuda_reason

        reason = jax_cuda_reason()
        if reason:
            raise Unavailable(reason)


def _place(arrays: dict, device: str) -> dict:
    """NumPy arrays as jax arrays on the oracle's device (the first GPU for "cuda")."""
    target = jax.devices("gpu")[0] if device == "cuda" else jax.devices("cpu")[0]
    return {k: jax.device_put(v, target) for k, v in arrays.items()}


def _compiled_vjp(spec, dims: tuple):
    """The jitted (forward, vjp) of one op at fixed dims (constants to the forward: reg, stride, ...)."""
    forward = forward_of(spec)
    dim_map = dict(dims)

    def run(diff_inputs, const_inputs, dout):
        out, pullback = jax.vjp(lambda d: forward({**d, **const_inputs}, dim_map), diff_inputs)
        (grads,) = pullback(jnp.ones_like(out) if dout is None else dout)
        return out, grads

    return jax.jit(run)


def evaluate(inputs: CaseInputs, device: str = "cpu") -> Result:
    """Forward value and vjp gradients of a case.

    Args:
        inputs: the case's inputs.
        device: "cpu" or "cuda" (the first GPU).

    Raises:
        Unavailable: jax is not importable, or has no GPU for "cuda".
    """
    available(device)
    arguments = _vjp_arguments(inputs, device)
    out, grads = _executable("vjp", inputs.case.spec, *arguments)(*arguments[3:])
    return Result("jax", np.asarray(out), {k: np.asarray(v) for k, v in grads.items()})


def _vjp_arguments(inputs: CaseInputs, device: str) -> tuple:
    """(dims, dtype, device, differentiable inputs, constant inputs, dout) of a case's vjp."""
    case = inputs.case
    diff = _place({k: inputs.arrays[k] for k in case.spec.differentiable}, device)
    const = _place({k: v for k, v in inputs.arrays.items() if k not in diff}, device)
    dout = None if inputs.dout is None else _place({"dout": inputs.dout}, device)["dout"]
    # every dim, derived ones included, as the other oracles see them: the forwards read
    # constants such as reg, p, eps, stride and pad from them (and jit traces per shape anyway)
    return tuple(case.dim_map.items()), case.dtype, device, diff, const, dout


# XLA's CPU backend without its optimization passes (LLVM's included), with its classic
# elemental emitters instead of the MLIR fusion emitters, and the module generated as one
# piece: the same operations, compiled 3.5 times faster on the matrix's cases (0.11 s to 0.03 s
# a function, measured on a vjp of 20 shapes), which are too small for optimization to pay.
CPU_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True,
                        "xla_cpu_use_fusion_emitters": False, "xla_cpu_parallel_codegen_split_count": 1}

_EXECUTABLES: dict = {}  # key -> (spec, Future of the compiled function)
_EXECUTABLES_LOCK = threading.Lock()


def _executable(kind: str, spec, dims: tuple, dtype: str, device: str, *args, ahead: bool = False):
    """The compiled vjp, jvp or hvp of this op, dims, dtype and device, under the float32
    matmul precision in force: compiled ahead of time on first use (timed into
    ``COMPILE_STATS``), then reused.  Thread-safe: a function being compiled by another
    thread (``compile_ahead``) is waited for, never compiled twice.

    Keyed by the spec itself, not only its name: two layers a user declares under one name
    (a correct and a broken one, in one process) must never share compiled code.  The entry
    holds the spec, so its ``id`` is not reused while the entry exists.
    """
    key = (kind, spec.name, id(spec), dims, dtype, device, str(jax.config.jax_default_matmul_precision))
    with _EXECUTABLES_LOCK:
        entry = _EXECUTABLES.get(key)
        mine = entry is None
        if mine:
            entry = _EXECUTABLES[key] = (spec, Future())
    future = entry[1]
    if ahead and not mine:
        return None
    if mine:
        start = time.perf_counter()
        stored = store_key(kind, spec, dims, dtype, device, args)
        try:
            compiled = _load(stored)
            loaded = compiled is not None
            if not loaded:
                build = {"vjp": _compiled_vjp, "jvp": _compiled_jvp, "hvp": _compiled_hvp}[kind]
                lowered = build(spec, dims).lower(*args)
                compiled = lowered.compile(compiler_options=CPU_COMPILER_OPTIONS if device == "cpu" else None)
                _store(stored, compiled, args)
            future.set_result(compiled)
        except BaseException as exc:  # an interrupted compilation (time limit, Ctrl-C) is retried next time
            with _EXECUTABLES_LOCK:
                _EXECUTABLES.pop(key, None)
            future.set_exception(exc)
            raise
        with _EXECUTABLES_LOCK:
            COMPILE_STATS["loaded" if loaded else "compilations"] += 1
            COMPILE_STATS["seconds"] += time.perf_counter() - start
    return future.result()


def store_key(kind: str, spec, dims: tuple, dtype: str, device: str, args) -> Path | None:
    """Where a catalog op's compiled function is stored whole (see the module's docstring),
    or None: no cache directory, or a spec that is not the catalog's own."""
    from gradmatrix.oracles.catalog import CATALOG

    where = cache_dir()
    if where is None or CATALOG.get(spec.name) is not spec:
        return None
    leaves, tree = jax.tree_util.tree_flatten(args)
    described = repr((kind, spec.name, dims, dtype, device, str(jax.config.jax_default_matmul_precision),
                      str(tree), [(tuple(v.shape), str(v.dtype)) for v in leaves],
                      sorted(CPU_COMPILER_OPTIONS.items()) if device == "cpu" else None, _fingerprint()))
    return where / "executables" / f"{hashlib.sha256(described.encode()).hexdigest()}.pkl"


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


def _cpu() -> str:
    """The host CPU's model name and feature flags (XLA compiles for the CPU it runs on)."""
    try:
        with open("/proc/cpuinfo") as info:
            lines = [line for line in info if line.startswith(("model name", "flags", "Features", "CPU part"))]
        return "".join(dict.fromkeys(lines))
    except OSError:
        return platform.processor()


def _load(path: Path | None):
    """The compiled function stored at ``path``, or None (none there, or unreadable)."""
    if path is None or not path.is_file():
        return None
    from jax.experimental.serialize_executable import deserialize_and_load

    try:
        payload, in_tree, out_tree = pickle.loads(path.read_bytes())
        return deserialize_and_load(payload, in_tree, out_tree)
    except Exception:  # noqa: BLE001  (a damaged or foreign entry: compiled again, and replaced)
        return None


def _store(path: Path | None, compiled, args) -> None:
    """Store a compiled function at ``path``, atomically, when it survives the trip: loaded
    back, it must run on ``args`` and give bitwise the outputs of the original (XLA cannot
    reload every CPU executable: some lose a fused kernel on the way).  A store that fails
    or is refused costs only speed."""
    if path is None:
        return
    from jax.experimental.serialize_executable import deserialize_and_load, serialize

    try:
        payload = pickle.dumps(serialize(compiled))
        again = deserialize_and_load(*pickle.loads(payload))
        expected, got = jax.tree_util.tree_leaves(compiled(*args)), jax.tree_util.tree_leaves(again(*args))
        if len(expected) != len(got) or not all(np.array_equal(np.asarray(e), np.asarray(g), equal_nan=True)
                                                for e, g in zip(expected, got)):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        partial.write_bytes(payload)
        os.replace(partial, path)
    except Exception:  # noqa: BLE001
        return


class CompileAhead:
    """The background compilation of ``compile_ahead``: ``stop()`` ends it after the function
    being compiled (a process must not exit while XLA compiles on another thread: the
    thread's cancellation aborts it)."""

    def __init__(self, cases, device: str):
        self._cases, self._device = cases, device
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
        from gradmatrix.oracles.cases import draw_inputs

        seen, device = set(), self._device
        for case in self._cases:
            if self._stop.is_set():
                return
            kind = case.kind if case.kind in ("jvp", "hvp") else "vjp"
            key = (kind, id(case.spec), case.dims, case.dtype)
            if key in seen:
                continue
            seen.add(key)
            try:
                inputs = draw_inputs(case)
                if kind == "vjp":
                    _executable("vjp", case.spec, *_vjp_arguments(inputs, device), ahead=True)
                else:
                    diff, const, tangents, dims = _split(inputs, device)
                    _executable(kind, case.spec, dims, case.dtype, device, diff, const, tangents, ahead=True)
            except Exception:  # noqa: BLE001  (the case's own evaluation meets it again and reports it)
                continue


_AHEAD: set = set()  # running CompileAhead threads, stopped before the interpreter exits
atexit.register(lambda: [ahead.stop() for ahead in list(_AHEAD)])


def compile_ahead(cases, device: str = "cpu") -> CompileAhead | None:
    """Compile the functions ``cases`` will need, in their order, on a background thread
    (see the module's docstring); None when there is nothing to gain (jax cannot run here,
    or computes on a GPU).

    Only on the CPU, where the float32 matmul precision setting changes nothing XLA
    computes: a recheck at "highest" precision on the main thread while a function compiles
    here cannot give it other arithmetic than its key says.  Each case's inputs are drawn
    again for their shapes (cheap, and the same draw the run makes).  A failure here is
    left for the case's own evaluation to meet and report.
    """
    if jax is None or device != "cpu":
        return None
    return CompileAhead(list(cases), device)


# Forward mode and second order (``oracles.modes``): compiled once per op, dims and dtype,
# like the vjp above.


def _compiled_jvp(spec, dims: tuple):
    """The jitted (forward, J v) of one op at fixed dims, by ``jax.jvp``."""
    forward = forward_of(spec)
    dim_map = dict(dims)

    def run(diff_inputs, const_inputs, tangents):
        return jax.jvp(lambda d: forward({**d, **const_inputs}, dim_map), (diff_inputs,), (tangents,))

    return jax.jit(run)


def _compiled_hvp(spec, dims: tuple):
    """The jitted (loss, H v) of a scalar loss at fixed dims: ``jax.jvp`` of ``jax.grad``."""
    forward = forward_of(spec)
    dim_map = dict(dims)

    def run(diff_inputs, const_inputs, tangents):
        loss = lambda d: forward({**d, **const_inputs}, dim_map)  # noqa: E731
        _, hv = jax.jvp(jax.grad(loss), (diff_inputs,), (tangents,))
        return loss(diff_inputs), hv

    return jax.jit(run)


def _split(inputs: CaseInputs, device: str):
    spec = inputs.case.spec
    diff = _place({k: inputs.arrays[k] for k in spec.differentiable}, device)
    const = _place({k: v for k, v in inputs.arrays.items() if k not in diff}, device)
    tangents = _place({k: inputs.directions[k] for k in spec.differentiable}, device)
    return diff, const, tangents, tuple(inputs.case.dim_map.items())


def evaluate_jvp(inputs: CaseInputs, device: str = "cpu") -> tuple:
    """Forward value and forward-mode ``J v`` of a "jvp" case, as NumPy arrays.

    Raises:
        Unavailable: jax is not importable, or has no GPU for "cuda".
    """
    available(device)
    diff, const, tangents, dims = _split(inputs, device)
    run = _executable("jvp", inputs.case.spec, dims, inputs.case.dtype, device, diff, const, tangents)
    out, jv = run(diff, const, tangents)
    return np.asarray(out), np.asarray(jv)


def evaluate_hvp(inputs: CaseInputs, device: str = "cpu") -> tuple:
    """Loss and Hessian-vector product of an "hvp" case: (loss, {input name: (H v) there}).

    Raises:
        Unavailable: jax is not importable, or has no GPU for "cuda".
    """
    available(device)
    diff, const, tangents, dims = _split(inputs, device)
    run = _executable("hvp", inputs.case.spec, dims, inputs.case.dtype, device, diff, const, tangents)
    loss, hv = run(diff, const, tangents)
    return np.asarray(loss), {k: np.asarray(v) for k, v in hv.items()}
