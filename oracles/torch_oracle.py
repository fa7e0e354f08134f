"""The PyTorch oracle: each op's forward in torch's own idioms, gradients by autograd.

Inputs are copied into tensors of the case's dtype on the chosen device; gradients come
from ``out.backward(dout)`` (a loss: ``loss.backward()``) and return as NumPy arrays.
"""

from __future__ import annotations

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


FORWARDS = {
    "relu": _relu,
    "affine": _affine,
    "softmax_loss": _softmax_loss,
    "two_layer_net": _two_layer_net,
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
