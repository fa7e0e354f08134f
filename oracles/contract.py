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

A layer with two outputs (``lstm_step_forward -> (next_h, next_c, cache)``, its backward
``lstm_step_backward(dnext_h, dnext_c, cache)``) declares them in ``Layer.outputs``: the
oracles see one output, the outputs joined along the last axis, and the upstream gradient of
that joined output is split back for the backward.  A loss with an L2 term declares it in
``Loss.penalty`` (``L2Penalty``): the course wrote ``reg * sum(W^2)`` in some years and
``0.5 * reg * sum(W^2)`` in others, and a candidate whose term is exactly another declared
convention is compared in the reference's and told so (``Result.notes``), not failed.

A forward whose dict argument carries state from call to call (the course's ``bn_param``:
batch norm's running averages) is checked in the mode that reads the state with
``Stateful``: the calls a network makes, one dict shared by all, the last call's output
compared and nothing differentiated.

A wrong return structure is a ``ContractError`` saying what the contract expects, such as
``relu_forward must return (out, cache), got ndarray``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


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


def _outputs_and_cache(value, function: str, outputs: tuple[str, ...]) -> tuple:
    """(outputs..., cache) of a forward with several outputs, the outputs as arrays."""
    due = len(outputs) + 1
    if isinstance(value, (tuple, list)) and len(value) == due:
        return [np.asarray(v) for v in value[:-1]], value[-1]
    got = f"a sequence of {len(value)}" if isinstance(value, (tuple, list)) else type(value).__name__
    raise ContractError(f"{function} must return ({', '.join(outputs)}, cache), got {got}")


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
    outputs: tuple[str, ...] = ()  # two or more: forward returns (*outputs, cache), joined on the last axis

    @property
    def functions(self) -> tuple[str, ...]:
        return (self.forward, self.backward)

    def call(self, lookup: Callable[[str], Callable], inputs: Mapping, dout, dims: Mapping,
             notes: list | None = None, decoy: Mapping | None = None, repeats: dict | None = None) -> tuple:
        """Run the contract: (forward value, {input name: gradient}).

        With ``decoy`` (other inputs of the same shapes) and a ``repeats`` dict, the calls
        follow an order a network makes and a single-layer test does not, so that a backward
        that reads state outside its cache shows (as torch's gradcheck checks reentrancy):
        ``forward(inputs)``, ``forward(decoy)``, then ``backward`` on the first cache: its
        gradients are the ones returned.  ``repeats["again"]`` gets ``backward`` called a
        second time on the same cache, and ``repeats["plain"]`` the gradients of a fresh
        ``forward(inputs)`` followed at once by its ``backward`` (left out where the forward
        draws randomness itself: a new draw may differ).  Each backward gets its own copy of
        ``dout``.  Judging the differences is the comparison's (``reports.compare``).
        """
        upstream = np.array(dout, copy=True)
        pristine = {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v for k, v in inputs.items()}

        def forward(at):
            positional, keywords = _call_args(self.args, at, dims)
            return lookup(self.forward)(*positional, **keywords)

        def backward(returned):
            """(the forward's output, its gradients) from what forward returned."""
            given = upstream.copy()
            if len(self.outputs) < 2:
                out, cache = _pair(returned, self.forward, "out", "cache")
                return out, name_gradients(lookup(self.backward)(given, cache), self.grads, self.backward)
            # several outputs: the oracles see them joined along the last axis; the upstream
            # gradient of the joined output is split back at the same places
            outs, cache = _outputs_and_cache(returned, self.forward, self.outputs)
            bounds = np.cumsum([o.shape[-1] for o in outs])[:-1]
            grads = lookup(self.backward)(*np.split(given, bounds, axis=-1), cache)
            return join_outputs(outs), name_gradients(grads, self.grads, self.backward)

        first = forward(inputs)
        if decoy is None or repeats is None:
            return backward(first)
        forward(decoy)
        out, grads = backward(first)
        grads = {k: np.array(v, copy=True) for k, v in grads.items()}  # before the next call can change them
        repeats["again"] = {k: np.array(v, copy=True) for k, v in backward(first)[1].items()}
        if self.recover is None:
            # on inputs as they were: a candidate that wrote into them is told apart (a warning)
            repeats["plain"] = {k: np.array(v, copy=True) for k, v in backward(forward(pristine))[1].items()}
        return out, grads


def join_outputs(outputs) -> np.ndarray:
    """Outputs of a layer with several (``next_h``, ``next_c``), joined along the last axis.

    Raises:
        ContractError: their shapes differ in more than the last axis.
    """
    leading = {np.shape(o)[:-1] for o in outputs}
    if len(leading) != 1:
        shapes = ", ".join(str(np.shape(o)) for o in outputs)
        raise ContractError(f"outputs of shapes {shapes} cannot be joined along the last axis")
    return np.concatenate([np.asarray(o) for o in outputs], axis=-1)


@dataclass(frozen=True)
class L2Penalty:
    """The L2 term of a loss, ``factor * reg * sum(W^2)`` summed over ``weights``: the one
    rule for the course's L2 conventions, for a ``Loss`` and a ``Model`` alike.

    The reference forward uses ``factors[0]``; the other factors are conventions a candidate
    may follow instead (the course's years differ: ``0.5 * reg * sum(W * W)`` with gradient
    ``reg * W``, or ``reg * sum(W * W)`` with ``2 * reg * W``).  The contract calls the
    candidate once more with ``reg = 0``; the difference is its L2 term.  The loss says which
    convention the candidate follows: its term read as a factor (term / (reg sum W^2)).
    Where that is another convention, within ``L2_FACTOR_TOLERANCE``, the term is rescaled
    to ``factors[0]`` in the loss and in the gradients alike, and a note says so; gradients
    that do not follow their own loss's convention then fail, named by the gradient.  A
    term that is no convention (missing from the loss or on one weight, a wrong factor)
    stays as returned, a note gives the factor measured, and the loss fails.
    """

    reg: str  # the dim holding the strength
    weights: tuple[str, ...]  # the inputs the term sums over
    factors: tuple[float, ...] = (1.0, 0.5)


# How close a measured L2 factor must be to a convention: the loss difference is exact to
# about 1e-6 relative in float32 at the strengths the cases use (reg >= 0.025), while a term
# missing on one of two weights, or a gradient factor of 2 on a loss factor of 1, is off by
# tens of percent.
L2_FACTOR_TOLERANCE = 1e-3


def _l2_convention(penalty: L2Penalty, call, inputs: Mapping, dims: Mapping, loss, grads: dict,
                   function: str, notes: list | None) -> tuple:
    """(loss, grads) with the candidate's L2 term rescaled to the reference's factor where it
    is exactly another declared convention (see ``L2Penalty``)."""
    reg = float(dims[penalty.reg])
    squares = sum(float(np.sum(np.asarray(inputs[w], dtype=np.float64) ** 2)) for w in penalty.weights)
    if reg == 0.0 or squares == 0.0:
        return loss, grads
    loss0, grads0 = call({**dims, penalty.reg: 0.0})
    term = float(np.asarray(loss, dtype=np.float64) - np.asarray(loss0, dtype=np.float64))
    measured = term / (reg * squares)
    factor = next((f for f in penalty.factors if abs(measured / f - 1.0) < L2_FACTOR_TOLERANCE), None)
    if factor is None:
        if notes is not None:
            notes.append(f"{function}: L2 term in the loss measured as {measured:.2g} * reg * sum(W^2), none of "
                         f"the conventions {', '.join(f'{f:g}' for f in penalty.factors)}")
        return loss, grads
    if factor == penalty.factors[0]:
        return loss, grads
    scale = penalty.factors[0] / factor
    loss = _rescaled(loss0, loss, scale)
    grads = {**grads, **{w: _rescaled(grads0[w], grads[w], scale) for w in penalty.weights}}
    if notes is not None:
        # the same words for every case, so a report lists the convention once per op
        notes.append(f"{function} adds the L2 term as {factor:g} * reg * sum(W^2) (a convention of the course), "
                     f"compared as {penalty.factors[0]:g} * reg * sum(W^2)")
    return loss, grads


def _rescaled(without, with_term, scale: float):
    """``without + (with_term - without) * scale`` in the dtype the candidate returned."""
    value = np.asarray(with_term)
    base = np.asarray(without)
    dtype = value.dtype if value.dtype.kind == "f" else np.float64
    return (base.astype(dtype) + (value.astype(dtype) - base.astype(dtype)) * dtype.type(scale)).astype(dtype)


@dataclass(frozen=True)
class Loss:
    """``loss, grads = function(*args)``."""

    function: str
    args: tuple  # of Arg, in the function's order
    grads: tuple[str, ...]  # the inputs whose gradients it returns, in its order (or keys of a dict)
    penalty: L2Penalty | None = None  # an L2 term whose factor is a convention (see L2Penalty)

    @property
    def functions(self) -> tuple[str, ...]:
        return (self.function,)

    def call(self, lookup: Callable[[str], Callable], inputs: Mapping, dout, dims: Mapping,
             notes: list | None = None) -> tuple:
        """Run the contract: (loss, {input name: gradient}); remarks for the report go to ``notes``."""
        def once(at_dims):
            positional, keywords = _call_args(self.args, inputs, at_dims)
            loss, grads = _pair(lookup(self.function)(*positional, **keywords), self.function, "loss", "grads")
            return loss, name_gradients(grads, self.grads, self.function)

        loss, grads = once(dims)
        if self.penalty is not None:
            loss, grads = _l2_convention(self.penalty, once, inputs, dims, loss, grads, self.function, notes)
        return loss, grads


@dataclass(frozen=True)
class Model:
    """A model class: ``model = cls(**init)``, its ``params`` dict set from the case's inputs,
    then ``loss, grads = model.loss(*loss)`` with ``grads`` a dict keyed by param name.

    The L2 penalty over ``weights`` (strength: the dim ``reg``) is written two ways in the
    course's years; the one rule of ``L2Penalty`` (as for a ``Loss``) reads the model's own
    factor and compares a term that is exactly another convention in the reference's.
    """

    cls: str
    init: tuple  # of Arg: the constructor's arguments (tuple dims are passed as lists)
    params: tuple[str, ...]  # inputs that are the model's params (keys of model.params and of grads)
    loss: tuple  # of Arg: the loss method's arguments
    weights: tuple[str, ...] = ()  # the params the L2 penalty covers
    reg: str = "reg"  # the dim holding the L2 strength, wherever the model takes it
    dtype: str | None = None  # the constructor keyword taking the dtype to compute in (the case's)

    @property
    def functions(self) -> tuple[str, ...]:
        return (self.cls,)

    @property
    def grads(self) -> tuple[str, ...]:
        """The inputs whose gradients ``loss`` returns: the params."""
        return self.params

    @property
    def args(self) -> tuple:
        return self.init

    def _run(self, lookup, inputs: Mapping, dims: Mapping):
        positional, keywords = _call_args(self.init, inputs, dims)
        positional = [list(v) if isinstance(v, tuple) else v for v in positional]
        keywords = {k: list(v) if isinstance(v, tuple) else v for k, v in keywords.items()}
        if self.dtype:
            keywords[self.dtype] = inputs[self.params[0]].dtype.type
        model = lookup(self.cls)(*positional, **keywords)
        params = getattr(model, "params", None)
        if not isinstance(params, Mapping):
            raise ContractError(f"{self.cls}(...) must have a params dict, got {type(params).__name__}")
        missing = [k for k in self.params if k not in params]
        if missing:
            raise ContractError(f"{self.cls}(...).params has {sorted(params)}, missing {missing}")
        for k in self.params:
            if np.shape(params[k]) != np.shape(inputs[k]):
                raise ContractError(f"{self.cls}(...).params[{k!r}] has shape {np.shape(params[k])}, "
                                    f"expected {np.shape(inputs[k])}")
            params[k] = inputs[k]
        positional, keywords = _call_args(self.loss, inputs, dims)
        loss, grads = _pair(model.loss(*positional, **keywords), f"{self.cls}.loss", "loss", "grads")
        return loss, name_gradients(grads, self.params, f"{self.cls}.loss")

    def call(self, lookup: Callable[[str], Callable], inputs: Mapping, dout, dims: Mapping,
             notes: list | None = None) -> tuple:
        """Run the model: (loss, {param: gradient}); the L2 convention found goes to ``notes``."""
        loss, grads = self._run(lookup, inputs, dims)
        if not self.weights:
            return loss, grads
        return _l2_convention(L2Penalty(self.reg, self.weights), lambda at: self._run(lookup, inputs, at), inputs,
                              dims, loss, grads, f"{self.cls}.loss", notes)


@dataclass(frozen=True)
class Stateful:
    """A forward whose dict argument keeps state between calls, checked by its last output.

    The course's ``batchnorm_forward(x, gamma, beta, bn_param)`` updates the running averages
    in ``bn_param`` on every training-mode call and normalises with them in test mode, so a
    test-mode output depends on the calls before it.  The contract makes those calls as a
    network does, with one dict for all of them: ``forward`` once per slice ``history[t]``
    (the input named ``history``, stacked along its first axis) in the place of the argument
    ``replaces``, then the fields of ``then`` set in the shared dict (``mode="test"``), then
    ``forward`` on the case's own inputs, whose output is the value returned.

    The shared dict is passed by its name (``bn_param=...``), so only a forward with a
    parameter of that name fits (``signature_score``): ``batchnorm_forward(x, gamma, beta,
    eps)``, which keeps no state, is not taken for the course's.

    Forward only: the op's inputs are not differentiable, ``grads`` is empty, and only the
    output is compared (``reports.compare.expected_tensors``).  The course's backward takes
    a training-mode cache only, so a test-mode cache is never handed to it.
    """

    forward: str
    positional: tuple  # of Arg: the arguments before the shared dict, in the forward's order
    shared: Packed  # the dict argument every call gets the same object for, passed by its name
    history: str  # the input whose slices along its first axis are the earlier calls' ``replaces``
    replaces: str  # the argument the slices of ``history`` are passed as
    then: tuple = ()  # ((key, input, dim or Const), ...) set in the shared dict before the last call

    def __init__(self, forward: str, positional: tuple, shared: Packed, history: str, replaces: str, **then):
        object.__setattr__(self, "forward", forward)
        object.__setattr__(self, "positional", tuple(positional))
        object.__setattr__(self, "shared", shared)
        object.__setattr__(self, "history", history)
        object.__setattr__(self, "replaces", replaces)
        object.__setattr__(self, "then", tuple(then.items()))

    @property
    def functions(self) -> tuple[str, ...]:
        return (self.forward,)

    @property
    def args(self) -> tuple:
        """The forward's arguments as ``signature_score`` reads them: the shared dict by keyword."""
        return (*self.positional, Keyword(self.shared.name))

    @property
    def grads(self) -> tuple[str, ...]:
        """None: the last call's output is all that is compared."""
        return ()

    def call(self, lookup: Callable[[str], Callable], inputs: Mapping, dout, dims: Mapping,
             notes: list | None = None) -> tuple:
        """Run the calls: (the last call's output, {}).

        Raises:
            ContractError: a call returned something other than (out, cache).
        """
        state = {key: _value(source, inputs, dims) for key, source in self.shared.fields}
        args = (*self.positional, Keyword(self.shared.name, Const(state)))  # the same dict in every call

        def once(at: Mapping):
            positional, keywords = _call_args(args, at, dims)
            out, _ = _pair(lookup(self.forward)(*positional, **keywords), self.forward, "out", "cache")
            return out

        for earlier in inputs[self.history]:
            once({**inputs, self.replaces: earlier})
        state.update({key: _value(source, inputs, dims) for key, source in self.then})
        return once(inputs), {}


Contract = Layer | Loss | Model | Stateful


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
