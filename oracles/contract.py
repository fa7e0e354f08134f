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


@dataclass(frozen=True)
class Fresh:
    """A fixed argument made anew by ``make()`` for every call (a sampler object whose
    draws must replay from their start at each call, so that every implementation and every
    numeric step sees the same draws)."""

    make: Callable[[], Any]


Arg = str | Keyword | Packed | Const


def _value(source, inputs: Mapping, dims: Mapping):
    if isinstance(source, Fresh):
        return source.make()
    if isinstance(source, Const):
        return source.value
    if source in inputs:
        value = inputs[source]
        # an integer input of shape () (a word index) arrives as the Python int a function
        # written for one expects (a dict key, range(), a list index)
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iu":
            return int(value)
        return value
    return dims[source]


def seeding(lookup: Callable[[str], Callable], seed: int | None, notes: list | None) -> Callable:
    """``lookup`` whose functions seed NumPy's global generator with ``seed`` before each
    call (randomness drawn with ``np.random`` inside the function, a dropout mask, made the
    same in every call); the lookup itself where ``seed`` is None.  Says so in ``notes``."""
    if seed is None:
        return lookup
    if notes is not None:
        notes.append(f"np.random seeded with {seed} before each call (the function draws from NumPy's global "
                     f"generator), so every call and every oracle sees the same draws")

    def seeded_lookup(name: str):
        function = lookup(name)
        if not callable(function) or isinstance(function, type):
            return function

        def seeded(*args, **kwargs):
            np.random.seed(seed)
            return function(*args, **kwargs)

        return seeded

    return seeded_lookup


def _fresh_note(args: tuple, notes: list | None) -> None:
    """Say in ``notes`` which arguments are made anew for every call (``Fresh``)."""
    if notes is None:
        return
    for arg in args:
        if isinstance(arg, Keyword) and isinstance(arg.source, Fresh):
            notes.append(f"{arg.name}: made anew for every call, so its draws replay from their start "
                         f"(every implementation and every numeric step sees the same sequence)")


@dataclass(frozen=True)
class BatchMean:
    """The gradients of ``grads`` are returned divided by the batch size, the size of input
    ``input`` along ``axis`` (deeplearning.ai's ``dW = 1/m dZ A_prev.T`` in
    ``linear_backward``, which takes the cost's mean there): compared times that size, and
    said as a convention."""

    grads: tuple[str, ...]
    input: str
    axis: int = 0


def _undo_batch_mean(mean: BatchMean | None, function: str, inputs: Mapping, grads: dict,
                     notes: list | None) -> dict:
    if mean is None:
        return grads
    m = np.shape(inputs[mean.input])[mean.axis]
    if notes is not None:
        names = ", ".join(f"d{g}" for g in mean.grads)
        notes.append(f"{function} returns {names} divided by the batch size m (the course's convention: the "
                     f"cost's 1/m taken there); compared times m")
    return {k: (np.asarray(v) * m if k in mean.grads else v) for k, v in grads.items()}


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
        # keyed by the input's name (CS231n's grads["W1"]) or by its gradient's (deeplearning.ai's grads["dW1"])
        missing = [n for n in names if n not in grads and f"d{n}" not in grads]
        if missing:
            raise ContractError(f"{function} returned gradients for {sorted(grads)}, missing {missing}")
        return {n: grads[n] if n in grads else grads[f"d{n}"] for n in names}
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
    numpy_seed: int | None = None  # seed NumPy's global generator before each call (``seeding``)
    batch_mean: BatchMean | None = None  # gradients returned divided by the batch size (``BatchMean``)
    # backward's arguments: "dout", "cache", "out" (what forward returned as its output), or an
    # Arg (an input, ``Const``): ``linear_activation_backward(dA, cache, "relu")``
    backward_args: tuple = ("dout", "cache")
    # (out, inputs) -> the scalar the layer is judged as, for a backward that starts from a
    # loss of its own (deeplearning.ai's ``L_model_backward(AL, Y, caches)``); None: the output
    loss: Callable | None = None

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
        lookup = seeding(lookup, self.numpy_seed, notes)
        _fresh_note(self.args, notes)

        def forward(at):
            positional, keywords = _call_args(self.args, at, dims)
            return lookup(self.forward)(*positional, **keywords)

        def backward(returned):
            """(the forward's output, its gradients) from what forward returned."""
            given = upstream.copy()
            if len(self.outputs) < 2:
                out, cache = _pair(returned, self.forward, "out", "cache")
                given = {"dout": given, "cache": cache, "out": out}
                args = [given[a] if isinstance(a, str) and a in given else _value(a, inputs, dims)
                        for a in self.backward_args]
                grads = name_gradients(lookup(self.backward)(*args), self.grads, self.backward)
                value = out if self.loss is None else self.loss(np.array(out, copy=True), inputs)
                return value, _undo_batch_mean(self.batch_mean, self.backward, inputs, grads, None)
            # several outputs: the oracles see them joined along the last axis; the upstream
            # gradient of the joined output is split back at the same places
            outs, cache = _outputs_and_cache(returned, self.forward, self.outputs)
            bounds = np.cumsum([o.shape[-1] for o in outs])[:-1]
            grads = lookup(self.backward)(*np.split(given, bounds, axis=-1), cache)
            return join_outputs(outs), name_gradients(grads, self.grads, self.backward)

        if self.batch_mean is not None:
            _undo_batch_mean(self.batch_mean, self.backward, inputs, {}, notes)  # the note, once
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


# A kept fraction further than this many binomial standard deviations from the keep
# probability is no dropout at that rate (a correct mask is flagged with probability below 1e-6).
KEPT_FRACTION_SIGMAS = 5.0


def inverted_dropout_mask(out, x: np.ndarray, keep: float, function: str, convention: str = "") -> np.ndarray:
    """The inverted-dropout mask a forward drew itself, read from its output: ``1 / keep``
    where it kept a unit (out != 0; x is drawn away from 0) and 0 elsewhere, in x's dtype.

    The oracles compute ``x * mask`` with it, so a forward that rescales by anything but
    ``1 / keep`` disagrees with them in its output, and a backward that does not use the
    forward's own mask disagrees in its gradient, however the mask was drawn.

    Args:
        out: the forward's output; x: its input; keep: the probability of keeping a unit.
        function: the forward's name, for messages; convention: how ``keep`` was read, for them.

    Raises:
        ContractError: out is not of x's shape, or it kept a fraction of units further than
            ``KEPT_FRACTION_SIGMAS`` binomial standard deviations from ``keep``.
    """
    out = np.asarray(out)
    if out.shape != x.shape:
        raise ContractError(f"{function} returned an output of shape {out.shape}, expected its input's {x.shape}")
    kept = out.astype(np.float64) != 0
    units, n_kept = kept.size, int(kept.sum())
    spread = KEPT_FRACTION_SIGMAS * np.sqrt(units * keep * (1.0 - keep))
    if abs(n_kept - units * keep) > spread:
        raise ContractError(f"{function} is not inverted dropout at this rate: it kept {n_kept} of {units} units, "
                            f"where keeping each with probability {keep:g}{convention} keeps {units * keep:.0f} "
                            f"+- {spread:.0f}")
    return (kept / keep).astype(x.dtype)


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


def loss_and_gradients(value, grads: tuple[str, ...], function: str) -> tuple:
    """(loss, grads) from what a loss returned: the pair, or the flat ``(loss, dA, dB, ...)``
    with one entry per gradient due (told apart by length where two or more are due)."""
    if len(grads) >= 2 and isinstance(value, (tuple, list)) and len(value) == len(grads) + 1:
        return value[0], tuple(value[1:])
    return _pair(value, function, "loss", "grads")


@dataclass(frozen=True)
class Loss:
    """``loss, grads = function(*args)``."""

    function: str
    args: tuple  # of Arg, in the function's order
    grads: tuple[str, ...]  # the inputs whose gradients it returns, in its order (or keys of a dict)
    penalty: L2Penalty | None = None  # an L2 term whose factor is a convention (see L2Penalty)
    numpy_seed: int | None = None  # seed NumPy's global generator before each call (``seeding``)

    @property
    def functions(self) -> tuple[str, ...]:
        return (self.function,)

    def call(self, lookup: Callable[[str], Callable], inputs: Mapping, dout, dims: Mapping,
             notes: list | None = None) -> tuple:
        """Run the contract: (loss, {input name: gradient}); remarks for the report go to ``notes``.

        The gradients come as ``(loss, grads)`` or flat, ``(loss, dA, dB)`` (CS224n's
        ``naiveSoftmaxLossAndGradient``), where two or more are due."""
        lookup = seeding(lookup, self.numpy_seed, notes)
        _fresh_note(self.args, notes)

        def once(at_dims):
            positional, keywords = _call_args(self.args, inputs, at_dims)
            loss, grads = loss_and_gradients(lookup(self.function)(*positional, **keywords), self.grads,
                                             self.function)
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


@dataclass(frozen=True)
class Function:
    """``out = function(*args)``, a function without a gradient of its own (CS224n's
    ``sigmoid``, ``softmax``, ``sigmoid_grad``): its values are compared, nothing is
    differentiated."""

    function: str
    args: tuple  # of Arg, in the function's order
    numpy_seed: int | None = None

    @property
    def functions(self) -> tuple[str, ...]:
        return (self.function,)

    @property
    def grads(self) -> tuple[str, ...]:
        return ()

    def call(self, lookup: Callable[[str], Callable], inputs: Mapping, dout, dims: Mapping,
             notes: list | None = None) -> tuple:
        """Run the function: (its value, {})."""
        positional, keywords = _call_args(self.args, inputs, dims)
        return seeding(lookup, self.numpy_seed, notes)(self.function)(*positional, **keywords), {}


UPSTREAM = "dout"  # in ``ClassLayer.backward_args``: the upstream gradient
SELF = "self."  # in ``ClassLayer.backward_args``: an attribute of the object (``self.output``)


@dataclass(frozen=True)
class ClassLayer:
    """A layer written as a class ("Neural Networks from Scratch"): ``obj = cls(*init)``,
    the arrays of ``attributes`` set on it (``obj.weights = W``), ``obj.forward(*forward_args)``
    (with ``training=True`` where ``forward`` takes it), its output the value returned or,
    where that is None, ``obj.output``; then ``obj.backward(*backward_args)`` and each
    gradient read from an attribute (``obj.dweights``).

    ``backward_args`` are ``"dout"`` (the upstream gradient), an input's name, or
    ``"self.<attribute>"`` (``self.output``: the softmax output the combined softmax and
    cross-entropy's backward takes).  Without ``"dout"`` the class is a loss: its loss is
    the mean of what forward returned (the per-sample losses of ``Loss_*.forward``), or
    ``sum(w * output)`` with ``weighted_by`` naming the input ``w`` that backward gets as
    its upstream gradient (a layer with a ``penalty``).
    ``penalty(inputs, dims) -> float``: a term the backward's gradients hold and the
    forward's output does not (a layer's regularizer, whose loss the course computes
    elsewhere): the contract adds it to the loss, so the gradients are judged with it.
    """

    cls: str
    init: tuple  # of Arg: the constructor's arguments
    attributes: tuple[str, ...]  # inputs set as attributes of the object, by their names
    forward_args: tuple  # of Arg: forward's arguments
    backward_args: tuple[str, ...]  # "dout", an input name or "self.<attribute>"
    gradients: tuple  # ((input, attribute), ...): where each gradient is read
    numpy_seed: int | None = None  # seed NumPy's global generator before each call (``seeding``)
    penalty: Callable | None = None
    weighted_by: str | None = None  # a loss form's input w: the loss is sum(w * output), not its mean
    # (out, inputs, dims) -> ({input name: array}, notes): inputs the object draws itself (a
    # dropout mask), recovered from its output, as ``Layer.recover``
    recover: Callable | None = None

    @property
    def functions(self) -> tuple[str, ...]:
        return (self.cls,)

    @property
    def grads(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.gradients)

    @property
    def args(self) -> tuple:
        return self.init

    @property
    def is_loss(self) -> bool:
        return UPSTREAM not in self.backward_args

    def _forward(self, lookup: Callable[[str], Callable], inputs: Mapping, dims: Mapping) -> tuple:
        """(the object, a copy of its output) after ``forward``."""
        if self.numpy_seed is not None:
            np.random.seed(self.numpy_seed)
        positional, keywords = _call_args(self.init, inputs, dims)
        obj = lookup(self.cls)(*positional, **keywords)
        for name in self.attributes:
            setattr(obj, name, inputs[name])
        for method in ("forward", "backward"):
            if not callable(getattr(obj, method, None)):
                raise ContractError(f"{self.cls} must have a {method} method")
        positional, keywords = _call_args(self.forward_args, inputs, dims)
        if _takes(obj.forward, "training"):
            keywords["training"] = True
        returned = obj.forward(*positional, **keywords)
        out = returned if returned is not None else getattr(obj, "output", None)
        if out is None:
            raise ContractError(f"{self.cls}.forward must return its output or set self.output, did neither")
        return obj, np.array(out, copy=True)  # before backward can change it

    def _loss(self, out, inputs: Mapping, dims: Mapping):
        out = np.asarray(out, dtype=np.result_type(out, np.float32))
        loss = np.sum(out * inputs[self.weighted_by]) if self.weighted_by else np.mean(out)
        if self.penalty is not None:
            loss = loss + loss.dtype.type(self.penalty(inputs, dims))
        return loss

    def forward_value(self, lookup: Callable[[str], Callable], inputs: Mapping, dims: Mapping):
        """The output (or the loss) alone: the forward a numeric oracle differentiates."""
        _, out = self._forward(lookup, inputs, dims)
        return self._loss(out, inputs, dims) if self.is_loss else out

    def call(self, lookup: Callable[[str], Callable], inputs: Mapping, dout, dims: Mapping,
             notes: list | None = None) -> tuple:
        """Run the object: (output, or the loss; {input name: gradient}).

        Raises:
            ContractError: a method or a gradient attribute is missing, or the output is None.
        """
        _fresh_note(self.init, notes)
        if self.numpy_seed is not None:
            seeding(lambda name: None, self.numpy_seed, notes)  # the note
        obj, out = self._forward(lookup, inputs, dims)

        def source(arg):
            if arg == UPSTREAM:
                return np.array(dout, copy=True)
            if arg.startswith(SELF):
                return np.array(getattr(obj, arg[len(SELF):]), copy=True)
            return _value(arg, inputs, dims)

        obj.backward(*[source(a) for a in self.backward_args])
        grads = {}
        for name, attribute in self.gradients:
            if not hasattr(obj, attribute):
                found = sorted(a for a in vars(obj) if a.startswith("d"))
                raise ContractError(f"{self.cls}.backward must set self.{attribute}, the gradient of {name}; "
                                    f"it set {found or 'none'}")
            grads[name] = getattr(obj, attribute)
        return (self._loss(out, inputs, dims) if self.is_loss else out), grads


def _takes(method, parameter: str) -> bool:
    try:
        return parameter in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


Contract = Layer | Loss | Model | Stateful | ClassLayer | Function


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
    if isinstance(contract, ClassLayer):
        cls = functions[0]
        if not isinstance(cls, type) or not all(callable(getattr(cls, m, None)) for m in ("forward", "backward")):
            return None
    elif any(isinstance(f, type) for f in functions) and not isinstance(contract, Model):
        return None  # a class where a function is due
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
