"""The PyTorch oracle: each op's forward in torch's own idioms, gradients by autograd.

Inputs are copied into tensors of the case's dtype on the chosen device; gradients come
from ``out.backward(dout)`` (a loss: ``loss.backward()``) and return as NumPy arrays.
"""

from __future__ import annotations

import contextlib

import numpy as np

from gradmatrix.oracles.cases import CaseInputs
from gradmatrix.oracles.result import Result, Unavailable
from gradmatrix.oracles.spec import window

try:
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # reported, never fatal: its cases skip with this reason
    torch = None
    _IMPORT_ERROR = f"torch is not importable: {exc}"
else:
    _IMPORT_ERROR = ""


def _relu(t, dims):
    return torch.relu(t["x"])


def _affine(t, dims):
    x = t["x"]
    return x.reshape(x.shape[0], -1) @ t["w"] + t["b"]


def _softmax_loss(t, dims):
    return F.cross_entropy(t["scores"], t["y"])


def _two_layer_net(t, dims):
    scores = torch.relu(t["X"] @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"]
    return F.cross_entropy(scores, t["y"]) + dims["reg"] * ((t["W1"] ** 2).sum() + (t["W2"] ** 2).sum())


def _sigmoid(t, dims):
    return torch.sigmoid(t["x"])


def _tanh(t, dims):
    return torch.tanh(t["x"])


def _max(t, dims):
    return torch.maximum(t["x"], t["y"])


def _score_net(t, dims):
    # column convention, one sample: W (H, D) @ x (D,)
    return t["u"] @ torch.sigmoid(t["W"] @ t["x"] + t["b"])


def _dropout(t, dims):
    # F.dropout draws its own mask; the catalog's mask makes every oracle drop the same units
    return t["x"] * t["mask"] / (1 - dims["p"])


def _layernorm(t, dims):
    return F.layer_norm(t["x"], (t["x"].shape[-1],), t["gamma"], t["beta"], eps=dims["eps"])


def _batchnorm(t, dims):
    # F.batch_norm(training=True) refuses a batch of one ("expected more than 1 value per
    # channel"); torch.batch_norm is the op it calls after that check, and computes the
    # batch of one as the formula says (var = 0).  No running statistics: batch statistics only.
    return torch.batch_norm(t["x"], t["gamma"], t["beta"], None, None, True, 0.0, dims["eps"], False)


def _conv(t, dims):
    return F.conv2d(t["x"], t["w"], t["b"], stride=dims["stride"], padding=dims["pad"])


def _max_pool(t, dims):
    return F.max_pool2d(t["x"], window(dims), stride=dims["stride"])


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
    """The op's forward ``(tensors, dims) -> out``: torch's own idiom where FORWARDS has
    one, else the spec's (``OpSpec.forward_for``), run on torch tensors."""
    own = spec.framework_forward(FORWARDS)
    if own is not None:
        return own
    from array_api_compat import torch as xp

    return spec.forward_for("torch", xp)


def available(device: str = "cpu") -> None:
    """Raise ``Unavailable`` with the reason when torch cannot be used (on ``device``)."""
    if torch is None:
        raise Unavailable(_IMPORT_ERROR)
    if device == "cuda" and gpu_reason():
        raise Unavailable(gpu_reason())


def gpu_reason() -> str:
    """Why this oracle cannot compute on a CUDA GPU here, or "" when it can."""
    if torch is None:
        return _IMPORT_ERROR
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)"
    return ""


@contextlib.contextmanager
def matmul_precision(level: str):
    """torch's float32 matmul precision at ``level`` ("high": TF32 allowed for matmul and
    cuDNN; "highest": full float32) for a block (``oracles.devices.matmul_precision``)."""
    saved = (torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32)
    torch.set_float32_matmul_precision(level)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = level == "high"
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(saved[0])
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[1:]


def settings(device: str) -> dict:
    """What the report records of torch here (``reports.environment.collect``): the device
    the oracle computes on and the float32 matmul settings in force."""
    on_gpu = device == "cuda" and torch.cuda.is_available()
    return {
        "device": torch.cuda.get_device_name(0) if on_gpu else "cpu",
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "cuda_available": bool(torch.cuda.is_available()),
        "num_threads": torch.get_num_threads(),
    }


def evaluate(inputs: CaseInputs, device: str = "cpu") -> Result:
    """Forward value and autograd gradients of a case.

    Args:
        inputs: the case's inputs.
        device: a torch device string ("cpu", "cuda").

    Raises:
        Unavailable: torch is not importable.
    """
    available(device)
    with _one_thread(_small(inputs, device)):
        return _evaluate(inputs, device)


def _small(inputs: CaseInputs, device: str) -> bool:
    """Whether a case runs on one CPU thread (``SMALL_CASE_ELEMENTS``)."""
    return device == "cpu" and sum(a.size for a in inputs.arrays.values()) < SMALL_CASE_ELEMENTS


# Below this many input elements a case runs on one CPU thread (its reverse mode, J v and
# H v alike): the default matrix's tensors are tiny, and with a thread pool each op waits on
# its workers, which measured 40x slower (11 ms against 0.3 ms per case) on a 2-core machine
# beside pytest-xdist, and a batchnorm's J v 44 ms beside JAX's host.  Large cases
# (--matrix large) keep the caller's threads.
SMALL_CASE_ELEMENTS = 1 << 16


@contextlib.contextmanager
def _one_thread(wanted: bool):
    """Run on one intra-op thread when ``wanted``, then restore the caller's setting."""
    before = torch.get_num_threads()
    wanted = wanted and before != 1
    if wanted:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if wanted:
            torch.set_num_threads(before)


def _evaluate(inputs: CaseInputs, device: str) -> Result:
    spec = inputs.case.spec
    differentiable = set(spec.differentiable)
    tensors = {name: _tensor(array, device).requires_grad_(name in differentiable)
               for name, array in inputs.arrays.items()}
    out = forward_of(spec)(tensors, inputs.case.dim_map)
    if not spec.differentiable:  # an op compared by its forward only (oracles.contract.Stateful)
        pass
    elif inputs.dout is None:
        out.backward()
    else:
        # backward of sum(out * dout) from its scalar: the gradient reaching out is 1 * dout,
        # exactly dout, as out.backward(dout) would pass it; passing a gradient tensor makes
        # torch import its symbolic-shapes module (and sympy) to check its size: 2 s a process
        (out * _tensor(inputs.dout, device)).sum().backward()
    grads = {}
    for name in spec.differentiable:
        grad = tensors[name].grad
        grads[name] = np.zeros_like(inputs.arrays[name]) if grad is None else _array(grad)
    return Result("torch", _array(out), grads)


def _tensor(array: np.ndarray, device: str):
    """A NumPy array as a tensor of its dtype; torch takes no ``ml_dtypes`` bfloat16 array,
    so one goes through float32 (which holds every bfloat16 value exactly)."""
    if array.dtype.name == "bfloat16":
        return torch.tensor(array.astype(np.float32), device=device).to(torch.bfloat16)
    return torch.tensor(array, device=device)


def _array(tensor) -> np.ndarray:
    """A tensor as a NumPy array of its dtype (bfloat16 as ``ml_dtypes``', through float32)."""
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        import ml_dtypes

        return tensor.float().numpy().astype(ml_dtypes.bfloat16)
    return tensor.numpy()


def _split(inputs: CaseInputs, device: str):
    """(names, primals, constants, tangents) of a case: differentiable inputs as a tuple of
    tensors with their directions alongside, the other inputs as constants."""
    spec = inputs.case.spec
    names = spec.differentiable
    primals = tuple(torch.tensor(inputs.arrays[n], device=device) for n in names)
    tangents = tuple(torch.tensor(inputs.directions[n], device=device) for n in names)
    const = {k: torch.tensor(v, device=device) for k, v in inputs.arrays.items() if k not in names}
    return names, primals, const, tangents


def evaluate_jvp(inputs: CaseInputs, device: str = "cpu") -> tuple:
    """Forward value and ``J v`` of a "jvp" case, reverse over reverse (the double-vjp trick
    of ``torch.autograd.functional.jvp``): the vjp ``g(u) = J^T u`` is linear in the upstream
    gradient u, so ``J v`` is the gradient of ``<g(u), v>`` with respect to u, at any u (zero
    here).  torch's forward mode (``torch.func.jvp``) would share less with its reverse mode,
    but in torch 2.13 its first call imports ``torch._dynamo``, 1 to 2 s of CPU in every
    process; the candidate meets JAX's forward mode (``oracles.modes``).

    Returns:
        (out, Jv) as NumPy arrays in the case's dtype; ``oracles.modes`` takes ``<u, Jv>``.

    Raises:
        Unavailable: torch is not importable.
    """
    available(device)
    with _one_thread(_small(inputs, device)):
        return _jvp(inputs, device)


def _differentiated(inputs: CaseInputs, device: str) -> tuple:
    """(names, primals, leaves, directions v, the forward's output): the differentiable
    inputs as leaves that require grad, the output computed from them, for a second order."""
    names, primals, const, tangents = _split(inputs, device)
    leaves = tuple(p.requires_grad_() for p in primals)
    out = forward_of(inputs.case.spec)({**const, **dict(zip(names, leaves))}, inputs.case.dim_map)
    return names, primals, leaves, tangents, out


def _along(grads, tangents):
    """<g, v> summed over the inputs, from gradients kept with their graph; an input the
    output is linear in has a gradient without one (its second derivative is 0)."""
    return sum((g * v).sum() for g, v in zip(grads, tangents) if g is not None and g.requires_grad)


def _jvp(inputs: CaseInputs, device: str) -> tuple:
    _, _, leaves, tangents, out = _differentiated(inputs, device)
    u = torch.zeros_like(out, requires_grad=True)
    # g = J^T u with its graph kept; (out * u).sum(), not grad_outputs=u: passing a gradient
    # tensor makes torch import its symbolic-shapes module to check its size (see _evaluate)
    grads = torch.autograd.grad((out * u).sum(), leaves, create_graph=True, allow_unused=True)
    projected = _along(grads, tangents)
    jv = torch.autograd.grad(projected, u, allow_unused=True)[0] if torch.is_tensor(projected) else None
    jv = torch.zeros_like(out) if jv is None else jv  # no input reaches the output: J v = 0
    return out.detach().cpu().numpy(), jv.detach().to(out.dtype).cpu().numpy()


def evaluate_hvp(inputs: CaseInputs, device: str = "cpu") -> tuple:
    """Loss and Hessian-vector product of an "hvp" case, reverse over reverse: the gradient
    g with its graph kept, then the gradient of <g, v> (H v, H being symmetric); the
    directions are held in ``inputs.directions``, labels and other non-differentiable
    inputs are constants.  JAX's is forward over reverse (``jax.jvp`` of ``jax.grad``), so
    the pair torch.hvp~jax.hvp compares two methods; torch's own forward over reverse
    (``torch.func``) also loads its compiler stack, a second per process.

    Returns:
        (loss, {input name: (H v) restricted to that input}) as NumPy arrays.

    Raises:
        Unavailable: torch is not importable.
    """
    available(device)
    with _one_thread(_small(inputs, device)):
        return _hvp(inputs, device)


def _hvp(inputs: CaseInputs, device: str) -> tuple:
    names, primals, leaves, tangents, loss = _differentiated(inputs, device)
    grads = torch.autograd.grad(loss, leaves, create_graph=True, allow_unused=True)
    projected = _along(grads, tangents)  # <g, v>
    hv = torch.autograd.grad(projected, leaves, allow_unused=True) if torch.is_tensor(projected) else (None,) * len(leaves)
    hv = [torch.zeros_like(p) if h is None else h for p, h in zip(primals, hv)]
    return loss.detach().cpu().numpy(), {n: h.detach().cpu().numpy() for n, h in zip(names, hv)}
