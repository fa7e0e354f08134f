"""Functions with a backward of their own in a framework: the measurements the judge needs.

A ``torch.autograd.Function`` (``MyGelu.apply``, or any torch callable autograd
differentiates) or a JAX function with ``jax.custom_vjp`` / ``custom_jvp`` is checked
through its own rule: its gradient is what ``torch.autograd.grad`` / ``jax.vjp`` return for
an upstream gradient ``dout``.  This module turns such a function into

* the course's layer contract (``contract``): ``forward(*arrays, **params) -> (out, cache)``
  and ``backward(dout, cache) -> grads``, so that a declared layer (``oracles.declared``)
  checks it at float64 and float32 against float64 numeric differences of the same function
  and against the reference's plain autodiff;
* measurements at any dtype, float16 and bfloat16 included (``value_and_grads``), the
  inputs given in float64 holding values the dtype represents (``rounded``); and the
  gradient of ``<grad, v>`` with respect to the inputs and to ``dout`` (``second_order``),
  as ``torch.autograd.gradgradcheck`` differentiates it.

Every measurement comes back as float64 NumPy arrays; judging them is ``reports.framework_checks``'.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

FRAMEWORKS = ("torch", "jax")
LOW_PRECISION = ("float16", "bfloat16")  # dtypes judged by the reference's own error there, asked for by name


class NoSecondOrder(Exception):
    """The function's backward cannot be differentiated (``once_differentiable``, a backward
    outside the framework's graph): there is no second order to check."""


def framework_of(name: str, device: str = "cpu") -> "Framework":
    """The framework called ``name`` ("torch" or "jax").

    Raises:
        ValueError: another name, naming the argument.
    """
    if name == "torch":
        return TorchFramework(device)
    if name == "jax":
        return JaxFramework(device)
    raise ValueError(f"framework must be one of {list(FRAMEWORKS)} (or None for NumPy functions), got {name!r}")


def function_name(function) -> str:
    """A name for a framework function: the class of a ``Function.apply``, else its own."""
    owner = getattr(function, "__self__", None)
    if isinstance(owner, type):
        return owner.__name__
    name = getattr(function, "__name__", None) or getattr(getattr(function, "fun", None), "__name__", None)
    return name if isinstance(name, str) and name.isidentifier() else "layer"


class Framework:
    """What the checks ask of a framework; ``TorchFramework`` and ``JaxFramework`` answer."""

    name = ""

    def __init__(self, device: str = "cpu"):
        self.device = device

    def rounded(self, array, dtype: str) -> np.ndarray:
        """``array`` rounded to ``dtype`` (round to nearest even), held in float64."""
        raise NotImplementedError

    def value_and_grads(self, function, arrays: Mapping, wrt: tuple, dout, dtype: str, params: Mapping) -> tuple:
        """The function's value and its gradients by its own rule, computed in ``dtype``.

        Args:
            function: ``function(*arrays, **params) -> out``, one array out.
            arrays: argument name -> array, in the order the function takes them (floats
                are cast to ``dtype``, integers passed as they are).
            wrt: the names whose gradients are returned.
            dout: the upstream gradient, of the output's shape.
            dtype: "float64", "float32", "float16" or "bfloat16".
            params: keyword parameters.

        Returns:
            (out, {name: gradient}), float64 NumPy arrays.
        """
        raise NotImplementedError

    def second_order(self, function, arrays: Mapping, wrt: tuple, dout, directions: Mapping, dtype: str,
                     params: Mapping) -> dict:
        """The gradient of ``s = sum_k <g_k, v_k>``, g = the function's gradients for ``dout``,
        with respect to each input of ``wrt`` and to ``dout`` (key "dout"), float64 arrays.

        Raises:
            NoSecondOrder: the gradients do not depend on anything differentiable, or the
                backward refuses to be differentiated.
        """
        raise NotImplementedError

    def contract(self, function, name: str, names: tuple, wrt: tuple) -> tuple:
        """``(forward, backward)`` in the course's layer contract, running ``function``
        through its own rule at the dtype of the arrays it is given.

        Args:
            function: the framework function.
            name: the layer's name.
            names: the array arguments, in the order the forward is called with them.
            wrt: the arguments whose gradients the backward returns, in that order.
        """
        framework = self

        def forward(*arrays, **params):
            dtype = next((str(a.dtype) for a in map(np.asarray, arrays) if a.dtype.kind == "f"), "float64")
            return framework._forward(function, dict(zip(names, arrays)), wrt, params, dtype)

        def backward(dout, cache):
            return framework._backward(dout, cache)

        # named as the module names the function (``Gelu`` for ``Gelu.apply``), so that a
        # module's accounting counts it as checked; the backward is its rule
        own = function_name(function)
        forward.__name__, backward.__name__ = own, f"{own}.backward"
        forward.__qualname__, backward.__qualname__ = forward.__name__, backward.__name__
        forward.__gradmatrix_framework__ = (self.name, function)
        return forward, backward


def _one_output(out, function) -> None:
    if isinstance(out, (tuple, list)):
        raise TypeError(f"{function_name(function)} returned {len(out)} outputs; gradmatrix checks a function with "
                        f"one output array (wrap it to return the one to check)")


class TorchFramework(Framework):
    name = "torch"

    def __init__(self, device: str = "cpu"):
        super().__init__(device)
        import torch

        self.torch = torch

    def _dtype(self, dtype: str):
        return getattr(self.torch, dtype)

    def rounded(self, array, dtype: str) -> np.ndarray:
        t = self.torch.as_tensor(np.asarray(array, dtype=np.float64))
        return t.to(self._dtype(dtype)).to(self.torch.float64).numpy()

    def _tensors(self, arrays: Mapping, wrt, dtype: str) -> dict:
        tensors = {}
        for n, a in arrays.items():
            a = np.asarray(a)
            t = self.torch.as_tensor(a, device=self.device)
            if a.dtype.kind == "f":
                t = t.to(self._dtype(dtype))
                t.requires_grad_(n in wrt)
            tensors[n] = t
        return tensors

    def _numpy(self, t) -> np.ndarray:
        return t.detach().to("cpu", self.torch.float64).numpy()

    def _grads(self, out, tensors: dict, wrt, dout, **options) -> tuple:
        inputs = [tensors[n] for n in wrt]
        # J^T dout as the gradient of <out, dout> (the same numbers: the product's backward is
        # 1 * dout), not grad_outputs=dout: passing a gradient tensor makes torch import its
        # symbolic-shapes module (0.5 s of CPU) to check its size, as in torch_oracle._jvp
        if not out.requires_grad:  # torch's own error for it, as grad_outputs would give
            return self.torch.autograd.grad(out, inputs, grad_outputs=dout, allow_unused=True, **options)
        grads = self.torch.autograd.grad((out * dout).sum(), inputs, allow_unused=True, **options)
        # an input the output does not depend on has gradient 0
        return [self.torch.zeros_like(t) if g is None else g for g, t in zip(grads, inputs)]

    def _dout(self, dout, out):
        return self.torch.as_tensor(np.asarray(dout), device=out.device).to(out.dtype).reshape(out.shape)

    def value_and_grads(self, function, arrays, wrt, dout, dtype, params):
        tensors = self._tensors(arrays, wrt, dtype)
        out = function(*tensors.values(), **params)
        _one_output(out, function)
        grads = self._grads(out, tensors, wrt, self._dout(dout, out))
        return self._numpy(out), {n: self._numpy(g) for n, g in zip(wrt, grads)}

    def second_order(self, function, arrays, wrt, dout, directions, dtype, params):
        torch = self.torch
        tensors = self._tensors(arrays, wrt, dtype)
        out = function(*tensors.values(), **params)
        _one_output(out, function)
        upstream = self._dout(dout, out).requires_grad_(True)
        grads = self._grads(out, tensors, wrt, upstream, create_graph=True)
        s = sum((g * self._dout(directions[n], g)).sum() for n, g in zip(wrt, grads) if g.requires_grad)
        if not torch.is_tensor(s) or not s.requires_grad:
            raise NoSecondOrder(f"{function_name(function)}'s gradients are not part of a graph (its backward "
                                f"computes outside autograd)")
        inputs = [tensors[n] for n in wrt] + [upstream]
        try:
            second = torch.autograd.grad(s, inputs, allow_unused=True)
        except RuntimeError as exc:  # once_differentiable, or a backward autograd cannot trace
            raise NoSecondOrder(f"{function_name(function)}'s backward cannot be differentiated: {exc}") from exc
        names = [*wrt, "dout"]
        return {n: self._numpy(torch.zeros_like(t) if g is None else g) for n, g, t in zip(names, second, inputs)}

    def _forward(self, function, arrays, wrt, params, dtype):
        tensors = self._tensors(arrays, wrt, dtype)
        out = function(*tensors.values(), **params)
        _one_output(out, function)
        return out.detach().cpu().numpy().copy(), (out, tensors, wrt, dtype)

    def _backward(self, dout, cache):
        out, tensors, wrt, dtype = cache
        # retain_graph: the backward may be called again on the same cache (gradmatrix
        # calls it twice, to see that it gives the same gradient)
        grads = self._grads(out, tensors, wrt, self._dout(dout, out), retain_graph=True)
        grads = [g.detach().cpu().numpy().copy() for g in grads]
        return grads[0] if len(grads) == 1 else tuple(grads)


class JaxFramework(Framework):
    name = "jax"

    def __init__(self, device: str = "cpu"):
        super().__init__(device)
        from gradmatrix.oracles import jax_oracle  # noqa: F401  (switches on jax_enable_x64)
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp

    def rounded(self, array, dtype: str) -> np.ndarray:
        return np.asarray(self.jnp.asarray(np.asarray(array, dtype=np.float64)).astype(dtype), dtype=np.float64)

    def _arrays(self, arrays: Mapping, dtype: str) -> dict:
        return {n: (self.jnp.asarray(np.asarray(a, dtype=np.float64)).astype(dtype) if np.asarray(a).dtype.kind == "f"
                    else self.jnp.asarray(a)) for n, a in arrays.items()}

    def _of_wrt(self, function, args: dict, wrt, params):
        names = list(args)

        def of_wrt(*values):
            given = {**args, **dict(zip(wrt, values))}
            out = function(*[given[n] for n in names], **params)
            _one_output(out, function)
            return out

        return of_wrt

    def value_and_grads(self, function, arrays, wrt, dout, dtype, params):
        args = self._arrays(arrays, dtype)
        out, pullback = self.jax.vjp(self._of_wrt(function, args, wrt, params), *[args[n] for n in wrt])
        grads = pullback(self.jnp.asarray(np.asarray(dout)).astype(out.dtype).reshape(out.shape))
        return np.asarray(out, dtype=np.float64), {n: np.asarray(g, dtype=np.float64) for n, g in zip(wrt, grads)}

    def second_order(self, function, arrays, wrt, dout, directions, dtype, params):
        jax, jnp = self.jax, self.jnp
        args = self._arrays(arrays, dtype)
        of_wrt = self._of_wrt(function, args, wrt, params)
        vs = [jnp.asarray(np.asarray(directions[n])).astype(dtype) for n in wrt]

        def g_dot_v(*values):  # the inputs of wrt, then dout
            _, pullback = jax.vjp(of_wrt, *values[:-1])
            return sum(jnp.vdot(g, v) for g, v in zip(pullback(values[-1]), vs))

        upstream = jnp.asarray(np.asarray(dout)).astype(dtype)
        try:
            second = jax.grad(g_dot_v, argnums=tuple(range(len(wrt) + 1)))(*[args[n] for n in wrt], upstream)
        except TypeError as exc:  # a rule JAX cannot differentiate (a bwd through pure_callback)
            raise NoSecondOrder(f"{function_name(function)}'s rule cannot be differentiated: {exc}") from exc
        return {n: np.asarray(g, dtype=np.float64) for n, g in zip([*wrt, "dout"], second)}

    def _forward(self, function, arrays, wrt, params, dtype):
        args = self._arrays(arrays, dtype)
        out, pullback = self.jax.vjp(self._of_wrt(function, args, wrt, params), *[args[n] for n in wrt])
        return np.array(out), (out, pullback)

    def _backward(self, dout, cache):
        out, pullback = cache
        grads = [np.array(g) for g in pullback(self.jnp.asarray(np.asarray(dout)).astype(out.dtype).reshape(out.shape))]
        return grads[0] if len(grads) == 1 else tuple(grads)
