"""Candidate contracts: how an implementation's functions are called for an op, declared.

The catalog declares, per op, the functions a candidate provides and how they are called,
instead of an adapter function per op.  Two shapes of contract cover the code people write:

* ``Layer``: the CS231n layer contract, ``out, cache = forward(*args)`` then
  ``grads = backward(dout, cache)``, the gradients in a declared order (one array for a
  single gradient, else any sequence of that length, or a mapping keyed by input name);
* ``Loss``: ``loss, grads = function(*args)``, the gradients as a sequence in a declared
  order or a mapping keyed by input name (``two_layer_net_loss``'s ``grads`` dict).

Arguments are named in the order the function takes them: an input of the op (``"x"``), a
dim (``"eps"``, ``"stride"``), ``Keyword("reg")`` for ``reg=...``, ``Packed("conv_param",
stride="stride", pad="pad")`` for a dict the function reads (``conv_param["stride"]``),
and ``Const(value)`` for a fixed value (``bn_param["mode"] = "train"``).

A wrong return structure is a ``ContractError`` saying what the contract expects, such as
``relu_forward must return (out, cache), got ndarray``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable


class ContractError(TypeError):
    """A candidate's function returned something its contract does not allow."""


@dataclass(frozen=True)
class Const:
    """A fixed argument value (``Const("train")``)."""

    value: Any


@dataclass(frozen=True)
class Keyword:
    """An argument passed by keyword, ``name=<input or dim called source>``."""

    name: str
    source: str | None = None  # default: the same name

    def __init__(self, name: str, source: str | None = None):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "source", source or name)


@dataclass(frozen=True)
class Packed:
    """A dict argument (``conv_param``): key -> input or dim name, or ``Const``."""

    name: str
    fields: tuple  # ((key, source), ...)

    def __init__(self, name: str, **fields):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "fields", tuple(fields.items()))


Arg = str | Keyword | Packed | Const


def _value(source, inputs: Mapping, dims: Mapping):
    if isinstance(source, Const):
        return source.value
    if source in inputs:
        return inputs[source]
    return dims[source]


def _call_args(args: tuple, inputs: Mapping, dims: Mapping) -> tuple[list, dict]:
    positional, keywords = [], {}
    for arg in args:
        if isinstance(arg, Keyword):
            keywords[arg.name] = _value(arg.source, inputs, dims)
        elif isinstance(arg, Packed):
            positional.append({key: _value(source, inputs, dims) for key, source in arg.fields})
        else:
            positional.append(_value(arg, inputs, dims))
    return positional, keywords


def _arg_name(arg) -> str | None:
    """The parameter name a function following the contract is expected to use."""
    if isinstance(arg, (Keyword, Packed)):
        return arg.name
    return arg if isinstance(arg, str) else None


def name_gradients(grads, names: tuple[str, ...], function: str) -> dict:
    """Name the gradients a function returned: one array for a single name, any sequence
    of the right length (tuple or list) in the declared order, or a mapping by name.

    Raises:
        ContractError: anything else, saying what was expected.
    """
    due = ", ".join(f"d{n}" for n in names)
    if isinstance(grads, Mapping):
        missing = [n for n in names if n not in grads]
        if missing:
            raise ContractError(f"{function} returned gradients for {sorted(grads)}, missing {missing}")
        return {n: grads[n] for n in names}
    if len(names) == 1 and not isinstance(grads, (tuple, list)):
        return {names[0]: grads}
    if isinstance(grads, Sequence) and not isinstance(grads, (str, bytes)) and len(grads) == len(names):
        return dict(zip(names, grads))
    got = f"a sequence of {len(grads)}" if isinstance(grads, Sequence) else type(grads).__name__
    raise ContractError(f"{function} must return ({due}), got {got}")


def _pair(value, function: str, first: str, second: str) -> tuple:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return value[0], value[1]
    got = f"a sequence of {len(value)}" if isinstance(value, (tuple, list)) else type(value).__name__
    raise ContractError(f"{function} must return ({first}, {second}), got {got}")


@dataclass(frozen=True)
class Layer:
    """``out, cache = forward(*args)``; ``grads = backward(dout, cache)``."""

    forward: str
    backward: str
    args: tuple  # of Arg, in the forward's order
    grads: tuple[str, ...]  # the inputs whose gradients backward returns, in its order
    recover: Callable | None = None
    # (out, inputs, dims) -> ({input name: array}, notes): the inputs the forward draws
    # itself (``InputSpec.drawn_by_candidate``: the course's dropout mask), recovered from
    # its output; raises ContractError when they cannot be

    @property
    def functions(self) -> tuple[str, ...]:
        return (self.forward, self.backward)

    def call(self, lookup: Callable[[str], Callable], inputs: Mapping, dout, dims: Mapping) -> tuple:
        """Run the contract: (forward value, {input name: gradient})."""
        positional, keywords = _call_args(self.args, inputs, dims)
        out, cache = _pair(lookup(self.forward)(*positional, **keywords), self.forward, "out", "cache")
        grads = lookup(self.backward)(dout, cache)
        return out, name_gradients(grads, self.grads, self.backward)


@dataclass(frozen=True)
class Loss:
    """``loss, grads = function(*args)``."""

    function: str
    args: tuple  # of Arg, in the function's order
    grads: tuple[str, ...]  # the inputs whose gradients it returns, in its order (or keys of a dict)

    @property
    def functions(self) -> tuple[str, ...]:
        return (self.function,)

    def call(self, lookup: Callable[[str], Callable], inputs: Mapping, dout, dims: Mapping) -> tuple:
        positional, keywords = _call_args(self.args, inputs, dims)
        loss, grads = _pair(lookup(self.function)(*positional, **keywords), self.function, "loss", "grads")
        return loss, name_gradients(grads, self.grads, self.function)


Contract = Layer | Loss


def signature_score(contract: Contract, lookup: Callable[[str], Callable]) -> int | None:
    """How well callables fit a contract: None when a function is missing or its signature
    cannot take the contract's arguments, else the number of parameter names that agree
    (to choose between contracts with the same function names, such as
    ``batchnorm_forward(x, gamma, beta, eps)`` and the course's ``(x, gamma, beta, bn_param)``)."""
    try:
        functions = [lookup(name) for name in contract.functions]
    except (AttributeError, KeyError):
        return None
    if not all(callable(f) for f in functions):
        return None
    try:
        signature = inspect.signature(functions[0])
    except (TypeError, ValueError):  # builtins without a signature: take them on trust
        return 0
    positional = [a for a in contract.args if not isinstance(a, Keyword)]
    keywords = {a.name: None for a in contract.args if isinstance(a, Keyword)}
    try:
        signature.bind(*([None] * len(positional)), **keywords)
    except TypeError:
        return None
    names = list(signature.parameters)
    return sum(1 for i, arg in enumerate(positional) if i < len(names) and names[i] == _arg_name(arg)) + len(keywords)
