"""Functions with a backward of their own, in PyTorch and JAX, as people write them.

Each is checked with ``gradmatrix.check_layer(fn, None, shapes, framework=..., reference=...)``
(``tests/test_custom_backward.py``), and the module-level declarations at the bottom with
``gradmatrix check tests/layers/custom_backward.py``:

* torch ``Function``s: a tanh-GELU that recomputes what it needs in its backward (right,
  to second order); the same saving the tanh it computed in its forward (its first backward
  right, its double backward wrong: a saved intermediate is a constant to autograd, as in
  pytorch issue 58509); a square linear map whose backward misses a transpose; a fused swish
  that multiplies in place the sigmoid it kept for its backward; a backward returning zeros;
* a softmax kernel computing in bfloat16 (right, and with a wrong formula);
* ``jax.custom_vjp`` rules of centring ``x - mean(x, axis=0)``: right, a wrong sign, a
  missing 1/N.
"""

import math

import jax
import jax.numpy as jnp
import torch

import gradmatrix

C = math.sqrt(2.0 / math.pi)
A = 0.044715


def gelu_reference(x):
    """The tanh-GELU by plain autograd: 0.5 x (1 + tanh(c (x + a x^3)))."""
    return 0.5 * x * (1.0 + torch.tanh(C * (x + A * x ** 3)))


class Gelu(torch.autograd.Function):
    """Right to second order: the backward recomputes t from the saved input."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 0.5 * x * (1.0 + torch.tanh(C * (x + A * x ** 3)))

    @staticmethod
    def backward(ctx, dout):
        """dx = dout (0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2)), the product rule on x (1 + t)."""
        (x,) = ctx.saved_tensors
        t = torch.tanh(C * (x + A * x ** 3))
        du = C * (1.0 + 3.0 * A * x ** 2)  # d(c (x + a x^3)) / dx
        return dout * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t ** 2) * du)


class GeluSavedTanh(torch.autograd.Function):
    """First backward right; double backward wrong: t, computed in the forward (where
    autograd records nothing), is a constant when the backward is differentiated."""

    @staticmethod
    def forward(ctx, x):
        t = torch.tanh(C * (x + A * x ** 3))
        ctx.save_for_backward(x, t)
        return 0.5 * x * (1.0 + t)

    @staticmethod
    def backward(ctx, dout):
        x, t = ctx.saved_tensors
        du = C * (1.0 + 3.0 * A * x ** 2)
        return dout * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t ** 2) * du)


def linear_reference(x, w):
    return x @ w


class LinearNoTranspose(torch.autograd.Function):
    """out = x w, x (N, D), w (D, D); dx = dout w, which should be dout w^T."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x @ w

    @staticmethod
    def backward(ctx, dout):
        x, w = ctx.saved_tensors
        return dout @ w, x.t() @ dout  # dx misses w's transpose: the shapes still fit when w is square


def swish_reference(x):
    return x * torch.sigmoid(x)


class SwishInPlace(torch.autograd.Function):
    """out = x sigmoid(x), the product taken in place in the sigmoid the backward reads."""

    @staticmethod
    def forward(ctx, x):
        s = torch.sigmoid(x)
        ctx.x, ctx.s = x, s  # kept on ctx, not save_for_backward: no version check
        return s.mul_(x)  # saves a buffer, but ctx.s now holds x sigmoid(x)

    @staticmethod
    def backward(ctx, dout):
        """dx = dout (s + x s (1 - s)), s = sigmoid(x)."""
        x, s = ctx.x, ctx.s
        return dout * (s + x * s * (1.0 - s))


class GeluZeroGrad(torch.autograd.Function):
    """A backward that returns zeros (a kernel whose output buffer was never written)."""

    @staticmethod
    def forward(ctx, x):
        return gelu_reference(x)

    @staticmethod
    def backward(ctx, dout):
        return torch.zeros_like(dout)


def softmax_reference(x):
    return torch.softmax(x, dim=-1)


class SoftmaxBf16(torch.autograd.Function):
    """A softmax kernel that computes in bfloat16 whatever it is given, as fused kernels do."""

    @staticmethod
    def forward(ctx, x):
        xb = x.to(torch.bfloat16)
        e = torch.exp(xb - xb.amax(dim=-1, keepdim=True))
        y = e / e.sum(dim=-1, keepdim=True)
        ctx.save_for_backward(y)
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, dout):
        """dx = y (dout - <dout, y>): the softmax Jacobian diag(y) - y y^T applied to dout."""
        (y,) = ctx.saved_tensors
        d = dout.to(torch.bfloat16)
        return (y * (d - (d * y).sum(dim=-1, keepdim=True))).to(dout.dtype)


class SoftmaxBf16WrongFormula(SoftmaxBf16):
    """The sum term without its weight y: dx = y (dout - sum(dout))."""

    @staticmethod
    def backward(ctx, dout):
        (y,) = ctx.saved_tensors
        d = dout.to(torch.bfloat16)
        return (y * (d - d.sum(dim=-1, keepdim=True))).to(dout.dtype)


# --- JAX: centring x - mean(x, axis=0) with custom_vjp rules ---------------------------------

def centre_reference(x):
    return x - jnp.mean(x, axis=0)


def _centre_fwd(x):
    return centre_reference(x), None


def _centre_bwd(_, g):
    """dx = g - mean(g, axis=0): (I - 11^T / N) is symmetric, so its transpose is itself."""
    return (g - jnp.mean(g, axis=0),)


@jax.custom_vjp
def centre(x):
    return centre_reference(x)


centre.defvjp(_centre_fwd, _centre_bwd)


@jax.custom_vjp
def centre_wrong_sign(x):
    return centre_reference(x)


centre_wrong_sign.defvjp(_centre_fwd, lambda _, g: (g + jnp.mean(g, axis=0),))


@jax.custom_vjp
def centre_missing_1_over_n(x):
    return centre_reference(x)


centre_missing_1_over_n.defvjp(_centre_fwd, lambda _, g: (g - jnp.sum(g, axis=0),))


# --- declarations for ``gradmatrix check tests/layers/custom_backward.py`` ---------------------

@gradmatrix.layer(shapes={"x": (4, 5)}, reference=gelu_reference, framework="torch")
def gelu(x):
    """The GELU Function, declared for ``gradmatrix check``; ``gradmatrix.check_layer(gelu)`` checks it."""
    return Gelu.apply(x)


centring = gradmatrix.layer(centre, shapes={"x": (6, 3)}, reference=centre_reference, framework="jax",
                            name="centring")
