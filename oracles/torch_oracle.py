"""The PyTorch oracle: each op's forward in torch's own idioms, gradients by autograd.

Inputs are copied into tensors of the case's dtype on the chosen device; gradients come
from ``out.backward(dout)`` (a loss: ``loss.backward()``) and return as NumPy arrays.
"""

from __future__ import annotations

import contextlib

import numpy as np

from oracles.cases import CaseInputs
from oracles.result import Result, Unavailable

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


def _add(t, dims):
    return torch.add(t["x"], t["y"])


def _multiply(t, dims):
    return torch.mul(t["x"], t["y"])


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
    return F.max_pool2d(t["x"], dims["pool"], stride=dims["stride"])


FORWARDS = {
    "relu": _relu,
    "affine": _affine,
    "softmax_loss": _softmax_loss,
    "two_layer_net": _two_layer_net,
    "sigmoid": _sigmoid,
    "tanh": _tanh,
    "add": _add,
    "multiply": _multiply,
    "max": _max,
    "score_net": _score_net,
    "dropout": _dropout,
    "layernorm": _layernorm,
    "batchnorm": _batchnorm,
    "conv": _conv,
    "max_pool": _max_pool,
}


def available() -> None:
    """Raise ``Unavailable`` with the reason when torch cannot be used."""
    if torch is None:
        raise Unavailable(_IMPORT_ERROR)


def evaluate(inputs: CaseInputs, device: str = "cpu") -> Result:
    """Forward value and autograd gradients of a case.

    Args:
        inputs: the case's inputs.
        device: a torch device string ("cpu", "cuda").

    Raises:
        Unavailable: torch is not importable.
    """
    available()
    small = sum(a.size for a in inputs.arrays.values()) < SMALL_CASE_ELEMENTS
    with _one_thread(small and device == "cpu"):
        return _evaluate(inputs, device)


# Below this many input elements a case runs on one CPU thread: the default matrix's tensors
# are tiny, and with a thread pool each op waits on its workers, which measured 40x slower
# (11 ms against 0.3 ms per case) on a 2-core machine beside pytest-xdist.  Large cases
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
    tensors = {
        name: torch.tensor(array, device=device, requires_grad=name in differentiable)
        for name, array in inputs.arrays.items()
    }
    out = FORWARDS[spec.name](tensors, inputs.case.dim_map)
    if inputs.dout is None:
        out.backward()
    else:
        out.backward(torch.tensor(inputs.dout, device=device))
    grads = {}
    for name in spec.differentiable:
        grad = tensors[name].grad
        grads[name] = np.zeros_like(inputs.arrays[name]) if grad is None else grad.detach().cpu().numpy()
    return Result("torch", out.detach().cpu().numpy(), grads)
