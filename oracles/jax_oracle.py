"""The JAX oracle: each op's forward with ``jax.nn``, gradients by ``jax.vjp``; for the
ops, dims and dtypes with "jvp" cases, by ``jax.linearize``: its tangent map is forward mode
(``J v``), and transposed, the vjp.

JAX silently computes float64 inputs in float32 unless 64-bit mode is on, which would make
every float64 comparison meaningless.  Importing this module therefore enables it,
deliberately: ``jax.config.update("jax_enable_x64", True)``.  float32 inputs still compute
in float32.

The vjp of each op (with its J v where a "jvp" case is to come: one linearization gives
both, so that the "jvp" case and its random twin share one function), and the hvp of
``oracles.modes`` are compiled with ``jax.jit`` once per op, dims and dtype, and reused
across seeds; ``COMPILE_STATS`` counts the
compilations, the functions loaded from the store and their seconds (tracing, lowering and
XLA together) for the benchmarks.

Compilation is most of this oracle's cost (0.1 to 0.2 s per shape with XLA's defaults,
against a few ms to run one), so four things make it cheaper, none changing the
operations computed (``oracles.jax_store`` holds the machinery):
* on the CPU, XLA compiles without its backend optimization passes and with its classic
  emitters (``jax_store.CPU_COMPILER_OPTIONS``, for these compilations only): 3.5 times
  less compile time, and the cases are small;
* ``compile_ahead(cases)`` compiles the functions a run will need, in its order, on a
  background thread while the run goes on;
* a process that knows the cases it will evaluate (``expect``: the JAX host of a check,
  ``gradmatrix.oracle_host``) compiles the functions it keeps to itself ``TOGETHER`` to one
  XLA module, a third less time than one by one;
* a catalog op's compiled functions are kept between runs in the store of compiled
  functions (``oracles.cache``: the platform's cache directory, or ``$GRADMATRIX_JAX_CACHE``;
  ``off`` disables it) and loaded back without tracing or lowering.  A stored function
  must prove it is the one asked for: its file carries its key in full and its payload's
  digest, checked on load, and then ``check_loaded`` runs it on a probe of the same shapes
  against the numeric oracle's float64 NumPy forward.  A rejected entry is compiled again
  and stored anew, and the reason goes to the evaluation's ``Result.notes``.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from gradmatrix.oracles import jax_store
from gradmatrix.oracles.cases import CaseInputs, draw_inputs
# the benchmarks read and reset these through this module
from gradmatrix.oracles.jax_store import _EXECUTABLES, COMPILE_STATS, cache_dir  # noqa: F401
from gradmatrix.oracles.result import Result, Unavailable
from gradmatrix.oracles.spec import window

try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:  # reported, never fatal: its cases skip with this reason
    jax = None
    _IMPORT_ERROR = f"jax is not importable: {exc}"
else:
    _IMPORT_ERROR = ""
    jax.config.update("jax_enable_x64", True)


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
    stride = dims["stride"]
    return jax.lax.reduce_window(a["x"], -jnp.inf, jax.lax.max, (1, 1, *window(dims)), (1, 1, stride, stride), "VALID")


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
    if device == "cuda" and gpu_reason():
        raise Unavailable(gpu_reason())


def gpu_reason() -> str:
    """Why this oracle cannot compute on a GPU here, or "" when it can."""
    if jax is None:
        return _IMPORT_ERROR
    try:
        jax.devices("gpu")
    except RuntimeError as exc:
        return f"jax has no GPU backend ({str(exc).splitlines()[0]}; install jax[cuda12])"
    return ""


@contextlib.contextmanager
def matmul_precision(level: str):
    """JAX's default float32 matmul precision at ``level`` ("high", "highest") for a block
    (``oracles.devices.matmul_precision``)."""
    saved = jax.config.jax_default_matmul_precision
    jax.config.update("jax_default_matmul_precision", level)
    try:
        yield
    finally:
        jax.config.update("jax_default_matmul_precision", saved)


def settings(device: str) -> dict:
    """What the report records of JAX here (``reports.environment.collect``): the device the
    oracle computes on, the default matmul precision in force, x64 and the backend."""
    gpus = []
    if device == "cuda":
        try:
            gpus = jax.devices("gpu")
        except RuntimeError:  # a CPU-only jaxlib: its oracle computes on the CPU
            pass
    return {
        "device": str(gpus[0].device_kind) if gpus else "cpu",
        "default_matmul_precision": str(jax.config.jax_default_matmul_precision),
        "enable_x64": bool(jax.config.jax_enable_x64),
        "backend": jax.default_backend(),
    }


def _place(arrays: dict, device: str) -> dict:
    """The arguments of a compiled function on the oracle's device: on the CPU the NumPy
    arrays themselves (the compiled function takes them in, in its C++ dispatch: 20 us a
    call where ``jax.device_put`` of each took 60 us, 0.1 to 0.2 s of a course's cold check),
    else jax arrays on the first GPU."""
    if device != "cuda":
        return dict(arrays)
    target = jax.devices("gpu")[0]
    return {k: jax.device_put(v, target) for k, v in arrays.items()}


def _compiled_vjp(spec, dims: tuple):
    """The jitted (forward, vjp of dout) of one op at fixed dims (constants to the forward:
    reg, stride, ...): ``jax.vjp``."""
    forward = forward_of(spec)
    dim_map = dict(dims)

    def run(diff_inputs, const_inputs, dout):
        out, pullback = jax.vjp(lambda d: forward({**d, **const_inputs}, dim_map), diff_inputs)
        (grads,) = pullback(jnp.ones_like(out) if dout is None else dout)
        return out, grads

    return jax.jit(run)


def _compiled_linearized(spec, dims: tuple):
    """The jitted (forward, vjp of dout, J v along the tangents) of one op at fixed dims.
    One linearization: its tangent map is forward mode (``J v``: a "jvp" case's directions,
    zeros in the others), and transposed it is the vjp (``jax.vjp`` is the same two steps),
    so a "jvp" case and its random twins share one compilation (``_kind_of``).  A third
    more to compile than the vjp alone, which the ops without "jvp" cases get."""
    forward = forward_of(spec)
    dim_map = dict(dims)

    def run(diff_inputs, const_inputs, dout, tangents):
        out, tangent_map = jax.linearize(lambda d: forward({**d, **const_inputs}, dim_map), diff_inputs)
        (grads,) = jax.linear_transpose(tangent_map, diff_inputs)(jnp.ones_like(out) if dout is None else dout)
        return out, grads, tangent_map(tangents)

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


# the kinds of function: the vjp; the vjp with J v (a "jvp" case's, and its twins'); the hvp
_BUILDS = {"vjp": _compiled_vjp, "jvp": _compiled_linearized, "hvp": _compiled_hvp}


def _arguments(kind: str, inputs: CaseInputs, device: str) -> tuple:
    """(dims, arguments) of a case's ``kind`` function, the inputs on ``device``: for the
    vjp (differentiable inputs, constant inputs, dout (None for a loss)), for the vjp with
    J v the same and the directions v (zeros where the case has none), for the hvp
    (differentiable, constant, v).

    Every dim, derived ones included, as the other oracles see them: the forwards read
    constants such as reg, p, eps, stride and pad from them (and jit traces per shape anyway).
    """
    spec = inputs.case.spec
    diff = _place({k: inputs.arrays[k] for k in spec.differentiable}, device)
    const = _place({k: v for k, v in inputs.arrays.items() if k not in diff}, device)
    given = inputs.directions or {}
    directions = {k: given[k] if k in given else np.zeros_like(inputs.arrays[k]) for k in spec.differentiable}
    tangents = _place(directions, device)
    if kind == "hvp":
        return tuple(inputs.case.dim_map.items()), (diff, const, tangents)
    dout = None if inputs.dout is None else _place({"dout": inputs.dout}, device)["dout"]
    return tuple(inputs.case.dim_map.items()), (diff, const, dout, tangents)[:4 if kind == "jvp" else 3]


# How many functions are compiled as one XLA module where a process knows the cases it will
# evaluate (``expect``): 3.4 s to 2.1 s for the 72 functions of a course's layers.py on this
# project's 2-core machine with 8 (4: 2.3 s, 16: 2.1 s); more would keep the first results
# longer from a judge waiting on them (gradmatrix.oracle_host).
TOGETHER = 8
# Only functions of small cases are compiled together: a module runs every function in it
# at each call (its members' arguments are those they were compiled with, held meanwhile),
# a fraction of a millisecond at the default matrix's sizes, but not at --matrix large's.
TOGETHER_ELEMENTS = 1 << 16  # the elements of a function's arguments, at most
_EXPECTED: dict = {}  # (kind, spec id, dims, dtype, device) -> a case of it, in the order first needed
_ALONE: set = set()  # keys of _EXPECTED whose module failed: each is compiled alone, meeting its own error
_EXPECTED_AT: list = []  # the float32 matmul precision the cases were expected at (only theirs is grouped)


def expect(cases, device: str = "cpu") -> None:
    """Say which cases this process will evaluate, in their order (``gradmatrix.oracle_host``
    knows its jobs): a function that would be compiled here and kept in this process only
    (``jax_store.compiled_alone``) is then compiled together with the next ones the cases
    need, ``TOGETHER`` to a module (``jax_store.compile_together``), when first needed."""
    cases = list(cases)
    _mark_twins(cases, device)
    _EXPECTED_AT[:] = [str(jax.config.jax_default_matmul_precision)]
    for case in cases:
        _EXPECTED.setdefault((_kind_of(case, device), id(case.spec), case.dims, case.dtype, device), case)


def _small(args: tuple) -> bool:
    """Whether a function's arguments are small enough for it to be compiled with others."""
    return sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(args)) <= TOGETHER_ELEMENTS


def _compile_with_next(kind: str, case, device: str, dims: tuple) -> None:
    """Compile ``case``'s ``kind`` function together with the next expected ones that
    would be compiled alone, where it is expected and not compiled yet, at the precision
    the cases were expected at (a request at another, ``OracleHost.ask``, compiles alone)."""
    key = (kind, id(case.spec), case.dims, case.dtype, device)
    if key not in _EXPECTED or key in _ALONE or jax_store.in_memory(kind, case.spec, dims, case.dtype, device) \
            or _EXPECTED_AT != [str(jax.config.jax_default_matmul_precision)]:
        return
    keys = list(_EXPECTED)
    members, member_keys = [], []
    for other in keys[keys.index(key):]:
        if len(members) == TOGETHER:
            break
        if other in _ALONE:
            continue
        member_kind, spec = other[0], _EXPECTED[other].spec
        try:
            member_dims, args = _arguments(member_kind, draw_inputs(_EXPECTED[other]), device)
        except Exception:  # noqa: BLE001  (its own evaluation meets it)
            continue
        if _small(args) and jax_store.compiled_alone(member_kind, spec, member_dims, other[3], device, args):
            members.append((member_kind, spec, member_dims, other[3], device, args,
                            lambda spec=spec, kind=member_kind, dims=member_dims: _BUILDS[kind](spec, dims)))
            member_keys.append(other)
        elif other == key:
            return  # in the store (loaded alone), or too large to share a module
    if len(members) < 2:
        return
    try:
        jax_store.compile_together(members)
    except Exception:  # noqa: BLE001  (one of them fails: each is compiled alone and meets its own error)
        _ALONE.update(member_keys)


def _function(kind: str, case, device: str, dims: tuple, args: tuple, ahead: bool = False):
    """(the compiled ``kind`` function of ``case``'s op, dims and dtype, notes): from the
    store when it has one that passes ``check_loaded``, else compiled (``jax_store.executable``),
    with the next functions expected where the process knows them (``expect``)."""
    if _EXPECTED and not ahead:
        _compile_with_next(kind, case, device, dims)
    return jax_store.executable(kind, case.spec, dims, case.dtype, device, args,
                                build=lambda: _BUILDS[kind](case.spec, dims),
                                check=lambda loaded: check_loaded(kind, case, device, loaded), ahead=ahead)


def evaluate(inputs: CaseInputs, device: str = "cpu") -> Result:
    """Forward value and vjp gradients of a case.

    Args:
        inputs: the case's inputs.
        device: "cpu" or "cuda" (the first GPU).

    Returns:
        A Result whose notes say when a stored compiled function was rejected and rebuilt.

    Raises:
        Unavailable: jax is not importable, or has no GPU for "cuda".
    """
    available(device)
    kind = _vjp_kind(inputs.case, device)
    dims, args = _arguments(kind, inputs, device)
    function, notes = _function(kind, inputs.case, device, dims, args)
    out, grads = function(*args)[:2]
    return Result("jax", np.asarray(out), {k: np.asarray(v) for k, v in grads.items()}, notes=notes)


def evaluate_jvp(inputs: CaseInputs, device: str = "cpu") -> tuple:
    """Forward value and forward-mode ``J v`` of a "jvp" case, as NumPy arrays, from the
    function of its op, dims and dtype (``_compiled_vjp``).  (A rejected stored function is
    told as a ``jax_store.StoreWarning``: the tuple has no notes.)

    Raises:
        Unavailable: jax is not importable, or has no GPU for "cuda".
    """
    available(device)
    dims, args = _arguments("jvp", inputs, device)
    function, _ = _function("jvp", inputs.case, device, dims, args)
    out, _, jv = function(*args)
    return np.asarray(out), np.asarray(jv)


def evaluate_hvp(inputs: CaseInputs, device: str = "cpu") -> tuple:
    """Loss and Hessian-vector product of an "hvp" case: (loss, {input name: (H v) there}).
    (A rejected stored function is told as a ``jax_store.StoreWarning``.)

    Raises:
        Unavailable: jax is not importable, or has no GPU for "cuda".
    """
    available(device)
    dims, args = _arguments("hvp", inputs, device)
    function, _ = _function("hvp", inputs.case, device, dims, args)
    loss, hv = function(*args)
    return np.asarray(loss), {k: np.asarray(v) for k, v in hv.items()}


_WITH_JV: dict = {}  # (spec id, dims, dtype, device) -> the spec: ops at dims with a "jvp" case to come


def _mark_twins(cases, device: str) -> None:
    """Note the ops, dims and dtypes among ``cases`` that have a "jvp" case: their random and
    kink cases take the vjp with J v, and share its compilation (``_kind_of``)."""
    for case in cases:
        if case.kind == "jvp":
            _WITH_JV[(id(case.spec), case.dims, case.dtype, device)] = case.spec


def _kind_of(case, device: str = "cpu") -> str:
    """The function a case evaluates: the hvp for an "hvp" case, else ``_vjp_kind``."""
    return "hvp" if case.kind == "hvp" else _vjp_kind(case, device)


def _vjp_kind(case, device: str = "cpu") -> str:
    """The vjp a case's gradients come from: the vjp with J v for a "jvp" case and for the
    cases of its op, dims and dtype where one is to come (told by ``expect`` or
    ``compile_ahead``: they share one compilation), else the vjp alone."""
    if case.kind == "jvp" or (id(case.spec), case.dims, case.dtype, device) in _WITH_JV:
        return "jvp"
    return "vjp"


def compile_ahead(cases, device: str = "cpu") -> jax_store.CompileAhead | None:
    """Compile the functions ``cases`` will need, in their order, on a background thread
    (``jax_store.CompileAhead``); None when there is nothing to gain (jax cannot run here,
    or computes on a GPU).

    Only on the CPU, where the float32 matmul precision setting changes nothing XLA
    computes: a recheck at "highest" precision on the main thread while a function compiles
    there cannot give it other arithmetic than its key says.  Each case's inputs are drawn
    again for their shapes (cheap, and the same draw the run makes).  A failure there is
    left for the case's own evaluation to meet and report.
    """
    if jax is None or device != "cpu":
        return None
    cases = list(cases)
    _mark_twins(cases, device)
    jobs: dict = {}
    for case in cases:
        jobs.setdefault((_kind_of(case, device), id(case.spec), case.dims, case.dtype), case)

    def compile_one(case) -> None:
        kind = _kind_of(case, device)
        dims, args = _arguments(kind, draw_inputs(case), device)
        _function(kind, case, device, dims, args, ahead=True)

    return jax_store.CompileAhead(jobs.values(), compile_one)


# --- the check of a function loaded from the store --------------------------------------

PROBE_SEED = 2 ** 31 - 1  # the seed of the probe's draw (no matrix draws it: seeds count from 0)
# How far a loaded function may be from the float64 reference and still be this op's, relative
# to the reference's own size.  Loose on purpose: the check asks whether it is this op's
# function at all, not how accurate it is (the comparisons' business); another op's differs
# by the order of the values themselves (relu and sigmoid by 0.5 at 0), a derivative off by a
# factor of 1.5 by a third of it.
IDENTITY_RTOL = 0.05
# What rounding a right function may add, relative to the size of the terms a value sums:
# float32 matrix products in TF32 on a GPU at the default precision (a 10-bit mantissa,
# ~1e-3 a product, see oracles.devices) with room to spare; float64 computes in float64
# everywhere (reports.tolerances measures ~3e-15 there).  float16 (10 fraction bits, ~1e-3 a
# step) and bfloat16 (7 bits, ~8e-3 a step) over the few dozen steps of a catalog op stay well
# below 0.1, while a stored function of another op or shape is off by O(1) (the probe's 5%
# identity check still applies).
ROUNDING = {"float32": 1e-2, "float64": 1e-8, "float16": 0.1, "bfloat16": 0.1}
# The relative step of the mixed second differences (<w, H v>): with the step t along v and
# w together, rounding grows as eps / t^2 (2e-8 of the loss's terms) and truncation as t^2
# (cancelled to t^4 by Richardson); the points stay within the catalog's KINK_MARGIN (1e-3)
# of the probe where |x| <= 5.  First differences take the numeric oracle's step (1e-5).
SECOND_ORDER_STEP = 1e-4


def check_loaded(kind: str, case, device: str, function) -> str | None:
    """None when ``function``, loaded from the store as the ``kind`` function of ``case``'s
    op, dims and dtype, computes that op; else what it got wrong (for the store's note).

    It runs on a probe, the op's inputs at these dims drawn anew (``PROBE_SEED``) by the
    catalog's own draws, so away from kinks (the case's own inputs may sit on one, where
    differences cannot judge a derivative), and is compared with central differences of
    the numeric oracle's float64 NumPy forward along a random direction v, a code path that
    shares nothing with JAX (Richardson over t and t/2, as ``oracles.numeric``):
    * the forward value, element by element;
    * vjp: ``J v`` element by element, and ``sum_k <g_k, v_k>`` against ``<u, J v>``, the
      upstream gradient u being the drawn one plus J v itself, so that the sum does not
      cancel to a value rounding could hide (a loss: u = 1);
    * hvp: ``<w, H v>`` against mixed second differences along v and w = v plus a drawn
      direction.
    Each within ``IDENTITY_RTOL`` of the reference, plus ``ROUNDING`` of the size of what it
    sums and the differences' error bound; shapes and dtypes first.  Its cost: one call of
    the function (its first, which the evaluation would pay) and 5 (hvp: 9) batched NumPy
    forwards, about 2 ms against the 10 ms of loading it.
    """
    probe = draw_inputs(dataclasses.replace(case, seed=PROBE_SEED, kind="jvp"))  # "jvp": with directions
    names = case.spec.differentiable
    dtype = np.dtype(case.dtype)
    if not names:  # an op compared by its forward only (oracles.contract.Stateful): that is all to check
        _, args = _arguments(kind, probe, device)
        out = np.asarray(function(*args)[0])
        forward = _forward_at(probe, {}, {}, np.zeros((1, 2)))[0]
        if np.shape(out) != np.shape(forward) or out.dtype != dtype:
            return "on a probe its output has another shape or dtype than the op's"
        off = _off(out.astype(np.float64), forward, ROUNDING[case.dtype] * float(np.max(np.abs(forward), initial=0.0)))
        return f"on a probe its forward differs from the op's float64 forward ({off})" if off else None
    v = {k: probe.directions[k].astype(np.float64) for k in names}
    if kind == "hvp":
        rng = np.random.default_rng([PROBE_SEED, 1])
        w = {k: (v[k] + rng.standard_normal(v[k].shape)).astype(dtype).astype(np.float64) for k in names}
        forward, per_term, bound = _second_differences(probe, v, w)
        reference, scale, what = per_term.sum(), np.abs(per_term).sum(), "<w, H v>"
        _, args = _arguments("hvp", probe, device)
    else:
        forward, jv, bounds = _first_differences(probe, v)
        u = probe.dout
        if u is not None and u.ndim > 0:
            d = u.astype(np.float64)
            size = float(np.sqrt(np.mean(jv ** 2)))
            u = (d + jv * float(np.sqrt(np.mean(d ** 2))) / size if size > 0 else d).astype(dtype)
            probe = dataclasses.replace(probe, dout=u)
        weight = 1.0 if u is None else u.astype(np.float64)  # a loss, or a 0-d output: the terms sum to it
        reference, scale, bound = (float(np.sum(weight * jv)), float(np.sum(np.abs(weight * jv))),
                                   float(np.sum(np.abs(weight) * bounds)))
        what = "sum_k <g_k, v_k>"
        _, args = _arguments(kind, probe, device)
    out, parts, *tangent = function(*args)
    expected = {k: probe.arrays[k].shape for k in names}
    if ({k: np.shape(p) for k, p in parts.items()} != expected or np.shape(out) != np.shape(forward)
            or any(np.asarray(p).dtype != dtype for p in (out, *parts.values(), *tangent))
            or tangent and np.shape(tangent[0]) != np.shape(out)):
        return "on a probe its outputs have other shapes or dtypes than the op's"
    parts = {k: np.asarray(p, dtype=np.float64) for k, p in parts.items()}
    off = _off(np.asarray(out, dtype=np.float64), forward, 0.0)
    if off:
        return f"on a probe its forward differs from the op's float64 forward ({off})"
    if tangent:  # the vjp's J v, element by element (a loss or 0-d output: the sum of its terms')
        expected_jv = jv if np.ndim(out) > 0 else np.sum(jv)
        off = _off(np.asarray(tangent[0], dtype=np.float64), expected_jv,
                   ROUNDING[case.dtype] * float(np.max(np.abs(jv), initial=0.0)) + (bounds if np.ndim(out) > 0
                                                                                    else np.sum(bounds)))
        if off:
            return f"on a probe its J v differs from the op's differences ({off})"
    if kind == "hvp":
        got = sum(float(np.vdot(w[k], parts[k])) for k in names)
    else:
        got = sum(float(np.vdot(parts[k], v[k])) for k in names)
    if not abs(got - reference) <= IDENTITY_RTOL * abs(reference) + ROUNDING[case.dtype] * scale + bound:
        return f"on a probe its {what} is {got:.6g} where the op's differences give {reference:.6g}"
    return None


def _off(got: np.ndarray, reference: np.ndarray, allowed) -> str:
    """"" when ``got`` is within ``IDENTITY_RTOL`` of max|reference| plus ``allowed`` of
    ``reference``, element by element; else by how much it is not."""
    size = float(np.max(np.abs(reference), initial=0.0))
    difference = np.abs(got - reference)
    if np.all(difference <= IDENTITY_RTOL * size + allowed):  # NaN is never within
        return ""
    return f"by up to {float(np.max(difference)):.3g} where the values reach {size:.3g}"


def _forward_at(probe: CaseInputs, v: dict, w: dict, steps: np.ndarray) -> np.ndarray:
    """The numeric oracle's float64 forward of the probe's op at x + s v + r w, one row per
    (s, r) of ``steps``: (rows, *out), or the terms (rows, T) that sum to a loss or 0-d output."""
    from gradmatrix.oracles import numeric

    base = {k: (a if a.dtype.kind in "iu" else a.astype(np.float64))[None] for k, a in probe.arrays.items()}
    batched = dict(base)
    for k in v:
        shape = (-1,) + (1,) * v[k].ndim
        batched[k] = base[k] + steps[:, 0].reshape(shape) * v[k] + steps[:, 1].reshape(shape) * w[k]
    return np.asarray(numeric.forward_of(probe.case.spec)(batched, probe.case.dim_map), dtype=np.float64)


def _step(probe: CaseInputs, relative: float, *directions: dict) -> float:
    """The scalar step t along the directions: the largest element moves by ``relative``
    times max(1, max|x|), as the numeric oracle's steps do."""
    x_max = max(float(np.max(np.abs(probe.arrays[k]), initial=0.0)) for k in directions[0])
    d_max = max(float(np.max(np.abs(d), initial=0.0)) for ds in directions for d in ds.values())
    return relative * max(1.0, x_max) / d_max if d_max > 0 else relative


def _first_differences(probe: CaseInputs, v: dict) -> tuple:
    """(forward, J v, bound): the forward at x (a loss or 0-d output: the sum of its terms),
    and per output element (per term) J v by Richardson's (4 D(t/2) - D(t)) / 3 of central
    differences D, with the bound |D(t/2) - D(t)| plus twice the rounding."""
    from gradmatrix.oracles import numeric

    t = _step(probe, numeric.RELATIVE_STEP, v)
    values = _forward_at(probe, v, v, np.array([(0.0, 0.0), (t, 0.0), (-t, 0.0), (t / 2, 0.0), (-t / 2, 0.0)]))
    coarse, fine = (values[1] - values[2]) / (2 * t), (values[3] - values[4]) / t
    rounding = np.finfo(np.float64).eps * (np.abs(values[3]) + np.abs(values[4])) / t
    forward = values[0].sum() if probe.dout is None or probe.dout.ndim == 0 else values[0]
    return forward, (4 * fine - coarse) / 3, np.abs(fine - coarse) + 2 * rounding


def _second_differences(probe: CaseInputs, v: dict, w: dict) -> tuple:
    """(loss, per-term <w, H v>, bound) of a loss by mixed central differences along v and w.

    Per term T of the loss (its forward returns the terms that sum to it), D(t) =
    (T(x + tv + tw) - T(x + tv - tw) - T(x - tv + tw) + T(x - tv - tw)) / 4t^2; Richardson's
    (4 D(t/2) - D(t)) / 3 cancels the t^2 error; the bound is |D(t/2) - D(t)| summed over
    the terms, plus twice the rounding.
    """
    t = _step(probe, SECOND_ORDER_STEP, v, w)
    signs = np.array([(1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0)])
    terms = _forward_at(probe, v, w, np.concatenate([np.zeros((1, 2)), t * signs, t / 2 * signs]))
    terms = terms.reshape(len(terms), -1)
    mix = np.array([1.0, -1.0, -1.0, 1.0])
    coarse = mix @ terms[1:5] / (4 * t * t)
    fine = mix @ terms[5:9] / (t * t)  # 4 (t/2)^2 = t^2
    rounding = np.finfo(np.float64).eps * float(np.abs(terms[5:9]).sum()) / (t * t)
    return terms[0].sum(), (4 * fine - coarse) / 3, abs(float(fine.sum() - coarse.sum())) + 2 * rounding
