"""The numeric oracle: central differences in float64, the ground truth for every dtype.

For an op with output ``out`` and upstream gradient ``dout``, the quantity differentiated is
``phi = sum(out * dout)`` (for a scalar loss, ``phi = loss``), whose gradient with respect to
an input is exactly the vector-Jacobian product every other implementation computes: the
CS231n "projected" gradient check, ``sum((f(x+h) - f(x-h)) * dout) / (2h)``.

Accuracy, in float64 (eps = 2.2e-16):
* the step is relative, h_i = 1e-5 * max(1, |x_i|), and the divided difference uses the
  step actually taken, ((x+h) - (x-h)), so large inputs (scores of 1e4) lose nothing to
  the representation of x + h;
* truncation error is h^2 |f'''| / 6; Richardson extrapolation over h and h/2 cancels
  it to O(h^4), and |D(h/2) - D(h)| bounds what remains.  It is zero on piecewise-linear
  ops away from kinks, and the catalog draws inputs at least 1e-3 away from kinks;
* rounding error is about eps * |term| / h: the forwards return the terms that sum to phi
  (the elements of ``out * dout``, or the per-sample losses) and the difference is taken
  term by term, so terms the perturbation does not reach cancel exactly.

The result carries, per gradient, an elementwise error bound (truncation + rounding);
comparisons against the numeric oracle allow it on top of the dtype's tolerance, so the
tolerance table needs no case-by-case loosening for ill-conditioned inputs.

The per-element loop is vectorized: each forward below takes every input with a leading
batch axis (1, or K perturbed copies) and returns terms of shape (K, ...).

Per-element differences cost a forward of the whole op per element, quadratic in an input's
size.  An input of a "random" case whose size times the case's size (its inputs and output:
what one forward touches) exceeds PER_ELEMENT_BUDGET is therefore differentiated along
DIRECTIONS random Gaussian directions v_k instead (``_projected``): 4 forwards per
direction, linear in its size.  The result then holds, for that input, the K
projections <g, v_k> with their bounds and the directions themselves (``Result.directions``);
comparisons project the other side's gradient on the same directions, with the allowance
and the detection probability stated in ``reports.tolerances`` (PROJECTION_Z).  Kink cases
stay per element: their verdicts need each element.
"""

from __future__ import annotations

import zlib

import numpy as np

from gradmatrix.oracles.cases import CaseInputs
from gradmatrix.oracles.result import Result
from gradmatrix.oracles.spec import window

RELATIVE_STEP = 1e-5
CHUNK_ELEMENTS = 2_000_000  # batch rows of terms evaluated at once (memory bound)
# above this, an input is differentiated along random directions (see above): the default
# matrix's costliest input (conv's x, 648 elements of a 758-element case: 4.9e5) stays 8 times
# below it, the full matrix's conv inputs of 2,000 to 4,000 elements (0.5 to 2.4 s each per
# element) go above it
PER_ELEMENT_BUDGET = 2 ** 22
DIRECTIONS = 16


def _affine_rows(x: np.ndarray) -> np.ndarray:
    """(K, N, d_1, ..., d_k) -> (K, N, D)."""
    return x.reshape(x.shape[0], x.shape[1], -1)


def _softmax_terms(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample cross-entropy / N, shape (K, N), for scores (K, N, C) and labels (1, N).

    With m the row's maximum (at column k), log sum_j exp(s_j - m) = log1p(sum_{j != k}
    exp(s_j - m)): computed with log1p, a loss of 1e-18 (a confident, correct row, such as
    scores of scale 30 with the label on top) keeps its relative precision, so its central
    differences do too; log(1 + 1e-18) would be exactly 0.
    """
    shifted = scores - scores.max(axis=-1, keepdims=True)
    others = np.exp(shifted)
    np.put_along_axis(others, shifted.argmax(axis=-1)[..., None], 0.0, axis=-1)  # the max's exp(0) = 1
    log_norm = np.log1p(others.sum(axis=-1))
    labels = np.broadcast_to(y, scores.shape[:2])[..., None]
    picked = np.take_along_axis(shifted, labels, axis=-1)[..., 0]
    return (log_norm - picked) / scores.shape[1]


def _relu(a, dims):
    return np.maximum(a["x"], 0.0)


def _affine(a, dims):
    return _affine_rows(a["x"]) @ a["w"] + a["b"][:, None, :]


def _softmax_loss(a, dims):
    return _softmax_terms(a["scores"], a["y"])


def _two_layer_net(a, dims):
    hidden = np.maximum(a["X"] @ a["W1"] + a["b1"][:, None, :], 0.0)
    scores = hidden @ a["W2"] + a["b2"][:, None, :]
    l2 = dims["reg"] * ((a["W1"] ** 2).sum(axis=(1, 2)) + (a["W2"] ** 2).sum(axis=(1, 2)))
    data = _softmax_terms(scores, a["y"])
    return np.concatenate([data, np.broadcast_to(l2, data.shape[:1])[:, None]], axis=1)


def _sigmoid_values(z):
    """1 / (1 + exp(-z)) with exp only of non-positive arguments (no overflow)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid(a, dims):
    return _sigmoid_values(a["x"])


def _tanh(a, dims):
    return np.tanh(a["x"])


def _max(a, dims):
    return np.maximum(a["x"], a["y"])


def _score_net(a, dims):
    # W (K, H, D) @ x (K, D, 1) -> z (K, H); the terms u_i h_i (K, H) sum to s
    z = (a["W"] @ a["x"][:, :, None])[:, :, 0] + a["b"]
    return a["u"] * _sigmoid_values(z)


def _dropout(a, dims):
    return a["x"] * a["mask"] / (1.0 - dims["p"])


def _standardize(x, axis, eps):
    """(x - mean) / sqrt(biased var + eps) along ``axis`` (two-pass variance)."""
    centered = x - x.mean(axis=axis, keepdims=True)
    return centered / np.sqrt((centered ** 2).mean(axis=axis, keepdims=True) + eps)


def _layernorm(a, dims):
    # x (K, N, D): statistics per sample, over axis 2
    return _standardize(a["x"], 2, dims["eps"]) * a["gamma"][:, None, :] + a["beta"][:, None, :]


def _batchnorm(a, dims):
    # x (K, N, D): statistics per feature, over the batch axis 1
    return _standardize(a["x"], 1, dims["eps"]) * a["gamma"][:, None, :] + a["beta"][:, None, :]


def _windows(x, hh, ww, stride):
    """(K, N, C, H, W) -> the strided windows, a view (K, N, C, H', W', hh, ww)."""
    return np.lib.stride_tricks.sliding_window_view(x, (hh, ww), axis=(3, 4))[:, :, :, ::stride, ::stride]


def _conv(a, dims):
    x, w, b, pad = a["x"], a["w"], a["b"], dims["pad"]
    kx, kw = x.shape[0], w.shape[0]
    f, c, hh, ww = w.shape[1:]
    xpad = np.pad(x, ((0, 0), (0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = _windows(xpad, hh, ww, dims["stride"])  # (K, N, C, H', W', HH, WW)
    n, ho, wo = windows.shape[1], windows.shape[3], windows.shape[4]
    # columns (K, N H' W', C HH WW) @ filters (K, C HH WW, F): one matmul, broadcast over K
    columns = windows.transpose(0, 1, 3, 4, 2, 5, 6).reshape(kx, n * ho * wo, c * hh * ww)
    filters = w.reshape(kw, f, c * hh * ww).transpose(0, 2, 1)
    out = (columns @ filters).reshape(-1, n, ho, wo, f) + b[:, None, None, None, :]
    return out.transpose(0, 1, 4, 2, 3)


def _max_pool(a, dims):
    # running maximum over the ph x pw offsets of a window: strided slices, no window view
    (ph, pw), stride = window(dims), dims["stride"]
    ho, wo = dims["HWo"]
    x = a["x"]
    out = x[:, :, :, 0:stride * ho:stride, 0:stride * wo:stride]
    for p in range(ph):
        for q in range(pw):
            out = np.maximum(out, x[:, :, :, p:p + stride * ho:stride, q:q + stride * wo:stride])
    return out


# op name -> batched float64 forward; for vector ops it returns the output (K, *out_shape),
# for losses and 0-d outputs (score_net's s) the terms (K, T) whose sum over T is the value.
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
    """The op's batched float64 forward: its own where FORWARDS has one, else the spec's
    (``OpSpec.forward_for``) run with NumPy: on all perturbed copies at once where its
    reference is declared ``vectorized``, else on each copy in turn (one call per row of
    the leading axis); a scalar output becomes one term per row."""
    batched_own = spec.framework_forward(FORWARDS)
    if batched_own is not None:
        return batched_own
    one = spec.forward_for("numeric", np)
    if spec.vectorized and "numeric" not in spec.forwards:
        return _all_at_once(spec.name, one)

    def forward(batched: dict, dims) -> np.ndarray:
        rows = max(v.shape[0] for v in batched.values())
        values = [np.asarray(one({k: v[i if v.shape[0] > 1 else 0] for k, v in batched.items()}, dims),
                             dtype=np.float64) for i in range(rows)]
        stacked = np.stack(values)
        return stacked if stacked.ndim > 1 else stacked[:, None]

    return forward


def _all_at_once(name: str, one):
    """A vectorized reference as a batched forward: one call on the K copies.  The claim is
    checked at the first call, on a probe batch of more copies than any axis of the inputs
    is long (the batch's copies repeated): its first and last copies against the reference
    on each alone.  A reference that mixes its copies (a mean over the leading axis) or
    reads the number of copies as a dim (``x.shape[0]`` for N) would give every difference
    the wrong value, so it raises instead."""
    checked = []

    def rows_of(batched: dict) -> int:
        return max(v.shape[0] for v in batched.values())

    def check(batched: dict, dims) -> None:
        count = 1 + max(max(v.shape[1:], default=1) for v in batched.values())
        probe = {k: v[np.arange(count) % v.shape[0]] if v.shape[0] > 1 else v for k, v in batched.items()}
        together = np.asarray(one(probe, dims), dtype=np.float64)
        for i in (0, count - 1):
            alone = np.asarray(one({k: v[i if v.shape[0] > 1 else 0] for k, v in probe.items()}, dims),
                               dtype=np.float64)
            scale = max(1.0, float(np.max(np.abs(alone), initial=0.0)))
            if together.shape[:1] != (count,) or alone.shape != together.shape[1:] or not np.allclose(
                    together[i], alone, rtol=0, atol=1e-12 * scale):
                raise ValueError(f"{name}: its reference is declared vectorized, but copy {i + 1} of {count} "
                                 f"computed with the others differs from it computed alone: it mixes its copies or "
                                 f"reads their number as a dim (declare it without vectorized=True)")

    def forward(batched: dict, dims) -> np.ndarray:
        rows = rows_of(batched)
        if rows > 1 and not checked:
            check(batched, dims)
            checked.append(rows)
        value = np.asarray(one(batched, dims), dtype=np.float64)
        if value.shape[:1] != (rows,):
            raise ValueError(f"{name}: its reference is declared vectorized, but on {rows} copies of its inputs "
                             f"it returned shape {value.shape}, not ({rows}, ...)")
        return value if value.ndim > 1 else value[:, None]

    return forward


def available() -> None:
    """The numeric oracle needs only NumPy: always available."""


def evaluate(inputs: CaseInputs, step: float = RELATIVE_STEP) -> Result:
    """Forward value and central-difference gradients of a case, in float64.

    Args:
        inputs: the case's inputs; floats are upcast to float64 (exactly).
        step: the relative step; the step for element x_i is ``step * max(1, |x_i|)``.

    Returns:
        A Result with ``computes_in="float64"``.
    """
    spec = inputs.case.spec
    dims = inputs.case.dim_map
    forward_fn = forward_of(spec)
    base = {k: (v if v.dtype.kind in "iu" else v.astype(np.float64))[None] for k, v in inputs.arrays.items()}
    dout = None if inputs.dout is None else inputs.dout.astype(np.float64)

    def terms(batched: dict) -> np.ndarray:
        value = forward_fn(batched, dims)
        value = value if dout is None else value * dout
        return value.reshape(value.shape[0], -1)

    forward = forward_fn(base, dims)[0]
    terms_size = forward.size
    chunk = max(1, CHUNK_ELEMENTS // max(1, terms_size))  # an empty output: no terms, nothing to divide
    forward = forward.sum() if dout is None or dout.ndim == 0 else forward  # terms -> 0-d value

    grads, bounds, directions = {}, {}, {}
    case_size = terms_size + sum(v.size for v in inputs.arrays.values())
    for name in spec.differentiable:
        x = base[name][0]
        if inputs.case.kind == "random" and x.size * case_size > PER_ELEMENT_BUDGET:
            directions[name] = random_directions(inputs.case, name, x.shape)
            grads[name], bounds[name] = _projected(terms, base, name, directions[name], step, terms_size)
            continue
        flat = x.reshape(-1)
        coarse, fine, rounding = (np.empty(flat.size) for _ in range(3))
        for start in range(0, flat.size, chunk):
            idx = np.arange(start, min(start + chunk, flat.size))
            h = step * np.maximum(1.0, np.abs(flat[idx]))
            coarse[idx], _ = _central_difference(terms, base, name, idx, h)
            fine[idx], rounding[idx] = _central_difference(terms, base, name, idx, h / 2)
        # Richardson: the h^2 error terms cancel in (4 D(h/2) - D(h)) / 3; |D(h/2) - D(h)|
        # bounds what is left (it is 3/4 of D(h)'s own h^2 error), plus the rounding of both.
        grads[name] = ((4 * fine - coarse) / 3).reshape(x.shape)
        bounds[name] = (np.abs(fine - coarse) + 2 * rounding).reshape(x.shape)
    return Result("numeric", np.asarray(forward, dtype=np.float64), grads, computes_in="float64", error_bounds=bounds,
                  scales=_rounding_units(spec, dims), directions=directions)


def random_directions(case, name: str, shape: tuple) -> np.ndarray:
    """DIRECTIONS standard Gaussian directions (K, *shape) for input ``name`` of ``case``,
    the same in every run (seeded from the case's id)."""
    rng = np.random.default_rng(zlib.crc32(f"{case.id}|{name}|directions".encode()))
    return rng.standard_normal((DIRECTIONS, *shape))


def _projected(terms, base: dict, name: str, directions: np.ndarray, step: float, out_size: int):
    """(estimates, bounds) of the projections <g, v_k> of input ``name``'s gradient.

    Each direction gets its own step t_k = step * max(1, max|x|) / max|v_k|, so that the
    largest element moves by the step the per-element differences take; Richardson over t
    and t/2 as there, and the rounding estimate the same, summed over the terms.
    """
    x = base[name][0]
    count = len(directions)
    per_direction = directions.reshape(count, -1)
    t = step * max(1.0, float(np.max(np.abs(x), initial=0.0))) / np.max(np.abs(per_direction), axis=1)
    chunk = max(1, CHUNK_ELEMENTS // max(x.size, out_size))
    coarse, fine, rounding = np.empty(count), np.empty(count), np.empty(count)
    for start in range(0, count, chunk):
        k = slice(start, min(start + chunk, count))
        for h, estimate, keep in ((t[k], coarse, False), (t[k] / 2, fine, True)):
            moved = h.reshape(-1, *([1] * x.ndim)) * directions[k]
            t_plus, t_minus = terms({**base, name: x[None] + moved}), terms({**base, name: x[None] - moved})
            diff = t_plus - t_minus
            estimate[k] = diff.sum(axis=1) / (2 * h)
            if keep:
                changed = (np.abs(t_plus) + np.abs(t_minus)) * (diff != 0)
                rounding[k] = np.finfo(np.float64).eps * changed.sum(axis=1) / (2 * h)
    return (4 * fine - coarse) / 3, np.abs(fine - coarse) + 2 * rounding


def _rounding_units(spec, dims) -> dict:
    """The catalog's rounding units of an op, keyed as ``Result.scales`` is (None: the output)."""
    units = spec.rounding_units(dims) if spec.rounding_units else {}
    return {(None if name == spec.output else name): size for name, size in units.items()}


def _central_difference(terms, base: dict, name: str, idx: np.ndarray, h: np.ndarray):
    """Central differences of phi along the flat elements ``idx`` of input ``name``.

    Returns:
        (estimate, rounding): the divided differences, and an estimate of their rounding
        error, eps * (sum of |terms| the perturbation changed) / step taken.
    """
    x = base[name][0]
    rows = np.arange(idx.size)
    plus = np.repeat(x[None], idx.size, axis=0)
    minus = plus.copy()
    plus.reshape(idx.size, -1)[rows, idx] += h
    minus.reshape(idx.size, -1)[rows, idx] -= h
    taken = plus.reshape(idx.size, -1)[rows, idx] - minus.reshape(idx.size, -1)[rows, idx]
    t_plus, t_minus = terms({**base, name: plus}), terms({**base, name: minus})
    diff = t_plus - t_minus
    changed = (np.abs(t_plus) + np.abs(t_minus)) * (diff != 0)
    rounding = np.finfo(np.float64).eps * changed.sum(axis=1) / taken
    return diff.sum(axis=1) / taken, rounding


# --- forward mode and second order (oracles.modes) -------------------------------------------
#
# Both differentiate along one direction v (one array per differentiable input, together a
# single vector of the joint input space), so the step is one scalar t for all inputs:
# t = RELATIVE_STEP * max(1, max|x|) / max|v|, the largest element moves by exactly the step
# the per-element differences above take.  That keeps every perturbed point on the same
# smooth piece as the per-element oracle does (the catalog draws KINK_MARGIN = 1e-3 away from
# kinks), and the rounding of x + t v changes the direction by at most eps / RELATIVE_STEP
# ~ 2e-11 relative, which the tolerance table covers.  Richardson over t and t/2 as above.

# A float64 gradient of the catalog's losses agrees with torch and jax to about 16 eps of
# its largest element (the reverse matrix's measured worst, ~3e-15, see reports.tolerances);
# 64 eps of max|g| bounds its rounding with a margin of 4.
GRADIENT_ROUNDING = 64


def _direction_step(arrays: dict, directions: dict, step: float) -> float:
    """The scalar step t along v (see above)."""
    x_max = max(float(np.max(np.abs(arrays[k]), initial=0.0)) for k in directions)
    v_max = max(float(np.max(np.abs(v), initial=0.0)) for v in directions.values())
    return step * max(1.0, x_max) / v_max if v_max > 0 else step


def directional_derivative(inputs: CaseInputs, step: float = RELATIVE_STEP) -> dict:
    """``<u, J v>`` by central differences along the case's directions, in float64.

    phi(s) = sum(out(x + s v) * u) (a loss: the loss, u = 1); the estimate is Richardson's
    (4 D(t/2) - D(t)) / 3 of the divided differences D(h) = (phi(h) - phi(-h)) / 2h, taken
    term by term as in ``evaluate``.

    Returns:
        {"forward": the output at x, "value": the estimate, "bound": its error bound
        (|D(t/2) - D(t)| plus twice the rounding), "scale": max|J v| * sum|u| (a loss: the sum
        of the terms' |derivatives|), the size of what the value sums}.
    """
    spec = inputs.case.spec
    dims = inputs.case.dim_map
    forward_fn = forward_of(spec)
    base = {k: (v if v.dtype.kind in "iu" else v.astype(np.float64))[None] for k, v in inputs.arrays.items()}
    v = {k: d.astype(np.float64) for k, d in inputs.directions.items()}
    u = None if inputs.dout is None else inputs.dout.astype(np.float64)
    t = _direction_step({k: base[k][0] for k in v}, v, step)
    steps = np.array([t, -t, t / 2, -t / 2])
    batched = dict(base)
    for k, d in v.items():
        batched[k] = base[k] + steps.reshape(-1, *([1] * d.ndim)) * d[None]
    values = forward_fn(batched, dims)  # (4, *out) or the loss terms (4, T)
    terms = (values if u is None else values * u).reshape(4, -1)

    def divided(plus, minus, h):
        diff = terms[plus] - terms[minus]
        changed = (np.abs(terms[plus]) + np.abs(terms[minus])) * (diff != 0)
        return diff / (2 * h), np.finfo(np.float64).eps * changed.sum() / (2 * h)

    coarse, _ = divided(0, 1, t)
    fine, rounding = divided(2, 3, t / 2)
    value = (4 * fine.sum() - coarse.sum()) / 3
    terms_sum_to_output = u is None or u.ndim == 0  # a loss, or a 0-d output given as terms
    if terms_sum_to_output:
        scale = float(np.abs((4 * fine - coarse) / 3).sum())
    else:
        jv = (4 * (values[2] - values[3]) / t - (values[0] - values[1]) / (2 * t)) / 3
        scale = float(np.max(np.abs(jv), initial=0.0) * np.abs(u).sum())
    forward = forward_fn(base, dims)[0]
    return {"forward": forward.sum() if terms_sum_to_output else forward, "value": float(value),
            "bound": float(abs(fine.sum() - coarse.sum()) + 2 * rounding), "scale": scale}


def hessian_vector_by_differences(gradient, inputs: CaseInputs, step: float = RELATIVE_STEP) -> dict:
    """``H v`` of a scalar loss by central differences of a gradient function along v, in float64.

    Args:
        gradient: ``arrays -> (loss, {input name: gradient})``, called on float64 arrays (the
            candidate's own gradient, ``manual`` by default).
        inputs: an "hvp" case; labels and other non-differentiable inputs are held fixed.
        step: the relative step (see the comment above ``GRADIENT_ROUNDING``).

    Returns:
        {"forward": the loss at x, "hv": {name: (H v) there}, "bounds": {name: elementwise
        bound}}: the bound is |D(t/2) - D(t)| (what Richardson leaves of the t^2 error) plus
        the gradient's rounding, GRADIENT_ROUNDING * eps * max|g| amplified by 1 / (t/2), twice.
    """
    names = inputs.case.spec.differentiable
    x = {k: (v if v.dtype.kind in "iu" else v.astype(np.float64)) for k, v in inputs.arrays.items()}
    v = {k: d.astype(np.float64) for k, d in inputs.directions.items()}
    t = _direction_step(x, v, step)
    forward, _ = gradient(x)
    grads = {}
    for s in (t, -t, t / 2, -t / 2):
        _, g = gradient({**x, **{k: x[k] + s * v[k] for k in names}})
        grads[s] = {k: np.asarray(g[k], dtype=np.float64) for k in names}
    hv, bounds = {}, {}
    for k in names:
        coarse = (grads[t][k] - grads[-t][k]) / (2 * t)
        fine = (grads[t / 2][k] - grads[-t / 2][k]) / t
        g_max = max(float(np.max(np.abs(grads[s][k]), initial=0.0)) for s in grads)
        rounding = GRADIENT_ROUNDING * np.finfo(np.float64).eps * g_max / t
        hv[k] = (4 * fine - coarse) / 3
        bounds[k] = np.abs(fine - coarse) + 2 * rounding
    return {"forward": np.asarray(forward, dtype=np.float64), "hv": hv, "bounds": bounds}
