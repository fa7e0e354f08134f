"""Layers declared by their users: a forward and a backward (or a loss) become an ``OpSpec``.

A catalog op and a user's layer differ only in who declared them.  A ``Declaration`` holds
what a user says about a layer: its functions, the shape of each array argument, its
parameters and, optionally, a reference forward.  ``build`` turns it into an ``OpSpec``
that cases, oracles, the comparison and the reports read exactly as they read a catalog
entry.  Nothing is registered anywhere: the layers a module declares join the catalog of
the run that checks it (``Candidate.catalog``), and each case planned carries its spec.
A module checked in a worker process builds its specs there; the judge gets each as data
(``describe``) and makes a spec of its own from it, with no function of the user's
(``from_description``; ``gradmatrix.isolation``).

What the spec gets:

* inputs: one per array argument, in the order the forward takes them; the shapes
  themselves are the case's dims (one dim per input, ``x=(4, 5)``), with the parameters
  beside them, so a case id reads ``huber-x4x3-y4x3-delta1-seed0-float64``; each case
  draws with the draws of its own shape dict, and a shape dict listed twice is one case;
* the contract (``oracles.contract``): ``Layer`` (``out, cache = forward(*arrays, **params)``,
  ``grads = backward(dout, cache)``) or, without a backward, ``Loss``
  (``loss, grads = f(*arrays, **params)``), the gradients of ``wrt`` in that order;
* the oracles' forwards: without a reference, only the numeric oracle, differentiating
  the user's own forward in float64; with an array-API reference
  (``reference(xp, *arrays, **params)``), every oracle runs it (torch and JAX through
  array-api-compat, NumPy for the numeric one); with per-framework forwards
  (``{"torch": f, "jax": g}``), those frameworks, and the numeric oracle on the user's own
  forward unless a ``"numpy"`` one is given;
* the output's shape, found by running the forward once on float64 inputs.

A user's layer never shadows the catalog: the public face (``gradmatrix.layer``,
``check_layer``) names it with ``layer_name`` (``affine_forward`` -> ``affine_layer``; a
``name=`` that is a catalog op is an error).  ``declare`` checks no catalog, so that the
catalog's own ops (CS231n's, ``oracles.contracts.cs231n``) can be declarations too: this
module imports no catalog, and the catalog imports it.  Two declarations under one name in
one module are refused; in two runs they are two specs, and the JAX oracle keys its
compiled code by the spec object, so they never share it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Callable

import numpy as np

from gradmatrix.oracles.contract import (
    SELF, UPSTREAM, BatchMean, ClassLayer, Const, ContractError, Fresh, Function, Keyword, Layer, Loss, Packed,
    loss_and_gradients,
)
from gradmatrix.oracles.draws import normal
from gradmatrix.oracles.spec import MATRICES, InputSpec, OpSpec, concrete_shape
from gradmatrix.oracles.implementations import ORACLES, REFERENCE_KEYS, SECOND_ORDER  # REFERENCE_KEYS: reference={key: f} -> oracle

ATTRIBUTE = "__gradmatrix_layer__"  # where the decorator keeps a function's declaration
OUT_SHAPE = "out_shape"  # the derived dim holding the output's shape
RESERVED = ("N", OUT_SHAPE)  # dim names a declared input or parameter cannot take
PARAM_TYPES = (bool, int, float, str, type(None), tuple)  # parameters are dims: hashable, printable



class DeclarationError(ValueError):
    """A declaration that cannot be checked: a bad argument, or a forward that fails on
    inputs of the declared shapes; the message names the argument or function."""


@dataclass(frozen=True)
class Floats:
    """A float array argument of ``shape``, drawn by ``draw(rng, shape) -> array``
    (default: standard normal).  A draw keeps an input positive, or off a kink."""

    shape: tuple
    draw: Callable | None = None


@dataclass(frozen=True)
class Integers:
    """An integer array argument (labels, indices) of ``shape``, uniform over ``[low, high)``;
    it arrives as int64 and has no gradient.  With ``matrices=`` the bounds may name dims
    (``Integers(("N",), 0, "C")``: labels of C classes).  ``draw`` replaces the uniform draw
    where the values need a structure (indices that repeat, a mask with zeros)."""

    shape: tuple
    low: int | str
    high: int | str
    draw: Callable | None = None


@dataclass(frozen=True, eq=False)
class Given:
    """An argument's value supplied by the user (``check_layer(inputs=...)``): a float array
    (cast to each case's dtype) or an integer one (labels, never differentiated).  Cases of
    given inputs have a dim ``inputs`` (the dict's place in the list), so two dicts of the
    same shapes are two cases."""

    array: np.ndarray

    @property
    def shape(self) -> tuple:
        return tuple(self.array.shape)

    @property
    def is_integer(self) -> bool:
        return self.array.dtype.kind in "iub"


@dataclass(frozen=True)
class Recovered:
    """An array the layer draws itself (a dropout mask), not one of its arguments: the
    layer is called without it, the reference takes it.  ``recover(out, arrays, params) ->
    array`` reads it from what the layer's forward returned (``arrays``: the case's other
    arrays), raising ``ContractError`` (or any exception) where the output is no such draw;
    the oracles then compute on the layer's own draw, however the layer drew it.
    ``draw(rng, shape)`` stands in for the oracles where the layer failed (default: ones)."""

    shape: tuple
    recover: Callable
    draw: Callable | None = None


@dataclass(frozen=True)
class Methods:
    """How a layer written as a class is called (``oracles.contract.ClassLayer``): built
    with ``init`` (constructor keywords: values, or a parameter's name as ``Param(name)``),
    the arrays of ``attributes`` set on the object, the other arrays passed to ``forward``,
    then ``backward(*backward_args)`` (``"dout"``: the upstream gradient; an array's name;
    ``"self.output"``: an attribute), each gradient read from ``gradients[array]`` (default
    ``dinputs`` for the first array forward takes, ``"d" + array`` for the others: ``dweights``).  Without ``"dout"`` the class is a loss
    (the mean of what forward returns, or ``sum(w * output)`` with ``weighted_by="w"``, the
    array backward takes as its upstream gradient).  ``penalty(arrays, params) -> float``: a
    regularizer the backward's gradients hold and the output does not, added to the loss."""

    init: Mapping = field(default_factory=dict)
    attributes: tuple = ()
    backward_args: tuple = (UPSTREAM,)
    gradients: Mapping = field(default_factory=dict)
    penalty: Callable | None = None
    weighted_by: str | None = None  # the array backward gets as upstream in a loss form: loss = sum(it * output)


@dataclass(frozen=True)
class Kinks:
    """Where a layer's derivative is not defined (a ReLU's 0, a hinge's corner, tied maxima)
    and what its checks do there: one value, so a layer states its kinks in one place.

    ``avoid(arrays, dims, rng) -> arrays`` redraws random inputs that fall within
    ``KINK_MARGIN`` of a kink, so that every oracle differentiates the same smooth piece
    (the numeric oracle's step must not straddle one).  The kinks themselves get cases of
    their own at ``shapes`` (dims dicts, N included), drawn by ``inputs(rng, dims) ->
    (arrays, {input: mask of the gradient elements at a kink})``; there a backward may take
    any subgradient: ``convention(grads, arrays, dout)`` says which one it took, and
    ``subgradient(grads, arrays, dout) -> {input: distance of each element outside the
    subdifferential}`` lets a difference that is a valid subgradient pass
    (``oracles.kinks``).  Every function is optional; ``shapes`` needs ``inputs``."""

    avoid: Callable | None = None
    inputs: Callable | None = None
    shapes: tuple = ()
    convention: Callable | None = None
    subgradient: Callable | None = None


@dataclass(frozen=True)
class Param:
    """A constructor argument of a class layer taken from the declaration's ``params``."""

    name: str


@dataclass(eq=False)
class Declaration:
    """What a user declared about a layer (validated by ``declare``)."""

    forward: Callable | str  # a str: a function (or class) of the checked module, by name
    backward: Callable | str | Methods | None  # None: a loss; a str: a function of the declaring module
    shapes: tuple  # of {argument name: Floats | Integers}, one per shape to check
    params: dict  # keyword parameters, passed to the forward and the reference
    reference: Callable | Mapping | None
    wrt: tuple  # the arguments whose gradients are returned, in order
    name: str
    fixed: dict = field(default_factory=dict)  # arguments of any type, not dims (``Fresh``: made per call)
    positional: tuple = ()  # the arguments passed by position, in order (default: the arrays)
    positional_declared: bool = False  # given as positional= (else the arrays, checked against the forward)
    numpy_seed: int | None = None  # NumPy's global generator seeded before each call
    batch_axis: int | None = None  # the examples' axis of the first array: N
    mean_over_batch: tuple = ()  # gradients returned divided by the batch size (``BatchMean``)
    backward_args: tuple | None = None  # a function backward's arguments (``Layer.backward_args``)
    loss: Callable | None = None  # (out, arrays) -> the scalar a layer is judged as (``Layer.loss``)
    tolerance: dict | None = None  # {"rtol", "atol", "reason", "scope": "layer"}: OpSpec.tolerance
    # named dims (``matrices=``): the dims dicts per matrix, the dims computed from others, the
    # output's (name, shape), the ways the layer is called, and the OpSpec fields they fill
    matrices: dict | None = None
    derived: dict = field(default_factory=dict)
    output: tuple | None = None
    kinks: Kinks | None = None
    contracts: tuple = ()
    forwards_of: str | None = None
    second_order: bool | None = None
    rounding_units: Callable | None = None
    doc: str | None = None
    vectorized: bool = False  # the reference computes K copies at once (named dims only)
    conditions: dict = field(default_factory=dict)  # OpSpec.conditions (named dims only)
    _built: dict = field(default_factory=dict, repr=False)  # id(module) -> (spec, functions)


def _shape(value, where: str) -> tuple:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in value):
        raise DeclarationError(f"{where}: a shape is a tuple of positive ints, got {value!r}")
    if 0 in value:
        # an empty array has no element whose gradient could be wrong: a check of it
        # would pass whatever the backward does
        raise DeclarationError(f"{where}: a dimension of 0 leaves no element to check, got {tuple(value)!r}; "
                               f"give every dimension a size of at least 1")
    return tuple(int(d) for d in value)


def _input(value, where: str):
    """A shape dict's value as ``Floats``, ``Integers``, ``Given`` or ``Recovered``."""
    if isinstance(value, Given):
        _shape(value.shape, where)
        return value
    if isinstance(value, Integers):
        if not all(isinstance(b, (int, np.integer)) and not isinstance(b, bool) for b in (value.low, value.high)):
            raise DeclarationError(f"{where}: Integers bounds are ints here, got [{value.low!r}, {value.high!r}) "
                                   f"(bounds that name dims need shapes that name dims, with matrices=)")
        if not value.high > value.low:
            raise DeclarationError(f"{where}: Integers needs low < high, got [{value.low}, {value.high})")
        if value.draw is not None and not callable(value.draw):
            raise DeclarationError(f"{where}: draw must be a function (rng, shape) -> array")
        return Integers(_shape(value.shape, where), int(value.low), int(value.high), value.draw)
    if isinstance(value, (Floats, Recovered)):
        if value.draw is not None and not callable(value.draw):
            raise DeclarationError(f"{where}: draw must be a function (rng, shape) -> array")
        if isinstance(value, Recovered):
            if not callable(value.recover):
                raise DeclarationError(f"{where}: recover must be a function (out, arrays, params) -> array")
            return Recovered(_shape(value.shape, where), value.recover, value.draw)
        return Floats(_shape(value.shape, where), value.draw)
    return Floats(_shape(value, where))


def _argument_order(forward: Callable, names: list) -> list:
    """The array arguments in the order the forward takes them: its signature's when it
    names them all, else the order of the shapes dict."""
    try:
        parameters = list(inspect.signature(forward).parameters)
    except (TypeError, ValueError):
        return names
    if all(n in parameters for n in names):
        return sorted(names, key=parameters.index)
    return names


def _check_passing(forward: Callable, order: list,
                   way_out: str = ", or give positional= the ones it takes by position (the others are passed by name)",
                   ) -> None:
    """The arrays ``order`` are passed to ``forward`` by position, in that order: refused
    where that hands an array to an argument of another name (the declaration's dict order
    against the forward's, a parameter between them, one it takes by keyword only).  Names
    the forward does not use are not judged (a library function's ``input``; a forward
    taking ``*arrays``): their order is the declaration's.

    Raises:
        DeclarationError: an array the forward would receive under another argument's name.
    """
    try:
        parameters = inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return
    slots = [n for n, p in parameters.items()
             if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    rest = next((f"*{n}" for n, p in parameters.items() if p.kind is inspect.Parameter.VAR_POSITIONAL), None)
    label = _label(forward)
    for i, name in enumerate(order):
        slot = slots[i] if i < len(slots) else rest
        if name not in parameters or slot == name:
            continue
        where = (f"takes {name!r} by keyword only" if slot is None
                 else f"would receive the array {name!r} as its argument {slot!r}")
        raise DeclarationError(f"shapes: {label} {where}: the arrays are passed by position, in the order "
                               f"({', '.join(order)}); name and order them as {label} takes them{way_out}")


def _stem(forward) -> str:
    """The name a forward gives its layer: ``gelu_forward`` -> ``gelu`` (``layer`` where the
    function's name is no identifier, a lambda's)."""
    stem = forward if isinstance(forward, str) else getattr(forward, "__name__", "")
    stem = stem[: -len("_forward")] if stem.endswith("_forward") else stem
    return stem if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", stem or "") else "layer"


def _name_of(forward: Callable, name: str | None) -> str:
    if name is not None:
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name):
            raise DeclarationError(f"name must be a word of letters, digits and underscores, got {name!r}")
        return name
    return _stem(forward)


def layer_name(forward, name: str | None, catalog: Container[str]) -> str | None:
    """The name a user's layer goes by beside ``catalog`` (its run joins that catalog, where
    a name is an op's id): a name taken from its function that is a catalog op gets
    ``_layer`` (``affine_forward`` -> ``affine_layer``), a ``name=`` that is one is refused.

    ``declare`` itself checks no catalog: the catalog's own ops (CS231n's) are declarations
    too, made while the catalog is being joined.  The public face (``gradmatrix.layer``,
    ``check_layer``) names a user's layer with this first.

    Raises:
        DeclarationError: ``name`` is an op of ``catalog``.
    """
    if name is not None:
        if isinstance(name, str) and name in catalog:
            raise DeclarationError(f"name {name!r} is an op of gradmatrix's catalog; give your layer another name")
        return name
    if not callable(forward) and not isinstance(forward, str):
        return None  # declare says what is wrong with it
    stem = _stem(forward)
    return f"{stem}_layer" if stem in catalog else None


def declare(forward, backward=None, shapes=None, *, params=None, reference=None, wrt=None,
            name=None, fixed=None, positional=None, numpy_seed=None, batch_axis=None,
            mean_over_batch=(), methods=None, backward_args=None, loss=None, tolerance=None,
            matrices=None, derived=None, output=None, kinks=None, contracts=None, forwards_of=None,
            second_order=None, rounding_units=None, doc=None, vectorized=False, conditions=None) -> Declaration:
    """Validate a layer's declaration (the arguments of ``gradmatrix.check_layer``).

    ``forward`` may be a function's or class's name: the function of that name in the
    module being checked (a course's contract), which needs a ``reference``.  A class (or
    ``methods=``) is a layer written as a class (``Methods``).  ``positional`` may hold a
    ``Packed(name, key=array, ...)``: a dict of arrays passed as one argument (deeplearning.ai's
    ``parameters``).  ``backward_args``: what a backward function takes, of ``"dout"``,
    ``"cache"``, ``"out"`` and the declared arguments (default ``("dout", "cache")``);
    ``loss(out, arrays) -> float``: the scalar the layer is judged as, where the backward
    starts from a loss of its own instead of an upstream gradient.

    ``tolerance`` is an override already validated (``gradmatrix.checker.tolerance_override``).

    Named dims (``matrices=``), for a layer checked on families of shapes as the catalog's
    ops are (CS231n's functions are declared so, ``oracles.contracts.cs231n``):

    * ``shapes`` is one dict whose shapes name dims, ``{"x": ("N", "C", "HW"), "w": ("F",
      "C", "K")}`` (a dim whose value is a tuple is splatted: ``HW = (5, 7)``);
      ``Floats``/``Integers``/``Recovered`` draws take ``(rng, shape, dims)``, and an
      ``Integers``' bounds may name dims;
    * ``matrices``: the dims dicts, ``{"default": [...], "full": [...]}`` (or one list for
      both); a dict without ``N`` is crossed with the matrix's batch sizes, and every dim is
      in the case's id (``conv_naive-N2-C3-HW5x7-...``); ``derived``: ``{dim: f(dims)}``,
      dims computed from the others (an output's spatial size);
    * ``output``: ``(name, shape)`` of a layer's output (``("out", ("N", "F", "HWo"))``), a
      name alone for a scalar loss (default ``"loss"``, without a backward);
    * ``reference(xp, arrays, dims)``, the arrays by name; or ``forwards_of``: a catalog
      op whose oracles' own forwards compute this layer (its inputs and dims);
      ``vectorized=True`` says the reference also takes every array with one more leading
      axis (K copies, or 1 to broadcast) and returns the K outputs (K losses) stacked: the
      numeric oracle then evaluates its perturbed copies in one call instead of one by one
      (and checks the claim, an error where it does not hold: ``oracles.numeric``);
    * ``conditions``: ``{name: dims -> bool}`` (``OpSpec.conditions``), what a mistake may
      be confined to, checked True or False on every dims the layer's cases can have;
    * ``positional``: the arguments in order, array or dim names, ``Packed(...)`` dicts
      with ``Const`` fields (``Packed("bn_param", mode=Const("train"), eps="eps")``),
      ``Keyword``; ``contracts``: the ways a candidate is called, where they are not one
      forward and backward (a model class, a function called with state across calls, a
      function under several names over a course's years), ``oracles.contract`` values, the
      best-fitting used.

    In both forms: ``kinks=Kinks(...)`` (where the derivative is not defined, and what the
    checks do there), ``second_order`` (a loss gets Hessian-vector product cases; default:
    every loss), ``rounding_units(dims) -> {tensor: size}`` (a value formed as a difference
    of larger terms is judged against their size), ``doc`` (the report's line).

    Raises:
        DeclarationError: an argument that cannot be used, naming it.
    """
    _check_common(kinks, second_order, rounding_units, doc)
    if matrices is not None:
        return _declare_with_dims(
            forward, backward, shapes, matrices=matrices, derived=derived, output=output, contracts=contracts,
            forwards_of=forwards_of, reference=reference, wrt=wrt, name=name, positional=positional,
            numpy_seed=numpy_seed, tolerance=tolerance, kinks=kinks, second_order=second_order,
            rounding_units=rounding_units, doc=doc, vectorized=vectorized, conditions=conditions,
            unused={"params": params, "fixed": fixed, "batch_axis": batch_axis, "mean_over_batch": mean_over_batch,
                    "methods": methods, "backward_args": backward_args, "loss": loss})
    needs_dims = {"derived": derived, "output": output, "contracts": contracts, "forwards_of": forwards_of,
                  "vectorized": vectorized or None, "conditions": conditions}
    given = [k for k, v in needs_dims.items() if v is not None]
    if given:
        raise DeclarationError(f"{given[0]}: an argument of a layer whose shapes name dims; give matrices= "
                               f"(the dims dicts to check) with it")
    if not callable(forward) and not (isinstance(forward, str) and forward.isidentifier()):
        raise DeclarationError(f"forward must be a function, a class or a function's name, got {type(forward).__name__}")
    if methods is None and isinstance(forward, type):
        methods = Methods()
    if methods is not None:
        if not isinstance(methods, Methods):
            raise DeclarationError(f"methods must be gradmatrix.Methods(...), got {type(methods).__name__}")
        if backward is not None:
            raise DeclarationError("backward: a class layer's backward is its method; give methods= instead")
        backward = methods
    if backward is not None and not callable(backward) and not isinstance(backward, (str, Methods)):
        raise DeclarationError(f"backward must be a function (or None for a loss), got {type(backward).__name__}")
    if isinstance(forward, str) and reference is None:
        raise DeclarationError(f"forward {forward!r} is a name: its reference= is required (it gives the oracles "
                               f"their forward and the output's shape)")
    if numpy_seed is not None and (not isinstance(numpy_seed, int) or isinstance(numpy_seed, bool)):
        raise DeclarationError(f"numpy_seed must be an int or None, got {numpy_seed!r}")
    if batch_axis is not None and (not isinstance(batch_axis, int) or isinstance(batch_axis, bool)):
        raise DeclarationError(f"batch_axis must be an int (0, or -1 for examples in columns) or None, got {batch_axis!r}")
    if shapes is None:
        raise DeclarationError("shapes is required: {argument name: shape} for each array argument, or a list of such dicts")
    many = shapes if isinstance(shapes, (list, tuple)) else [shapes]
    if not many or not all(isinstance(s, Mapping) and s for s in many):
        raise DeclarationError(f"shapes must be a dict {{argument name: shape}} or a non-empty list of them, got {shapes!r}")
    names = list(many[0])
    for i, s in enumerate(many):
        if set(s) != set(names):
            raise DeclarationError(f"shapes[{i}] declares {sorted(s)}, shapes[0] declares {sorted(names)}: "
                                   f"every shape dict names the same arguments")
    bad = [n for n in names if not isinstance(n, str) or not n.isidentifier() or n in RESERVED]
    if bad:
        raise DeclarationError(f"shapes: argument names must be identifiers other than {RESERVED}, got {bad}")
    names = _argument_order(forward, names)
    normalized = _distinct_shapes(tuple({n: _input(s[n], f"shapes[{i}][{n!r}]" if len(many) > 1 else f"shapes[{n!r}]")
                                         for n in names} for i, s in enumerate(many)))
    params = dict(params or {})
    for key, value in params.items():
        if not isinstance(key, str) or not key.isidentifier() or key in RESERVED or key in names:
            raise DeclarationError(f"params: {key!r} must be an identifier other than the array arguments and {RESERVED}")
        if not isinstance(value, PARAM_TYPES):
            raise DeclarationError(f"params[{key!r}] is a {type(value).__name__}: parameters are numbers, strings or "
                                   f"tuples; pass an array as an argument in shapes (leave it out of wrt)")
    if reference is not None and not callable(reference):
        if not isinstance(reference, Mapping) or not reference:
            raise DeclarationError(f"reference must be a function (xp, *arrays, **params) -> out or a dict "
                                   f"{{framework: function}}, got {type(reference).__name__}")
        unknown = [k for k in reference if k not in REFERENCE_KEYS]
        if unknown or not all(callable(f) for f in reference.values()):
            raise DeclarationError(f"reference: keys are {list(REFERENCE_KEYS)} and values functions "
                                   f"(*arrays, **params) -> out; got keys {list(reference)}")
    floats = [n for n in names if isinstance(normalized[0][n], Floats)
              or isinstance(normalized[0][n], Given) and not normalized[0][n].is_integer]
    values_only = wrt is not None and not isinstance(wrt, str) and len(tuple(wrt)) == 0
    if values_only and backward is not None:
        raise DeclarationError("wrt=() declares a function compared by its values alone: it takes no backward")
    if values_only:
        wrt = ()
    elif wrt is None:
        wrt = tuple(floats)
    else:
        wrt = (wrt,) if isinstance(wrt, str) else tuple(wrt)
        bad = [n for n in wrt if n not in floats]
        if bad or not wrt:
            raise DeclarationError(f"wrt: {bad or 'nothing'}: wrt names the float arguments whose gradients "
                                   f"backward returns, of {floats}")
    if not wrt and not values_only:
        raise DeclarationError(f"shapes declares no float argument to differentiate: {names}")
    fixed = dict(fixed or {})
    for key in fixed:
        if not isinstance(key, str) or not key.isidentifier() or key in RESERVED or key in names or key in params:
            raise DeclarationError(f"fixed: {key!r} must be an identifier other than the array arguments, "
                                   f"the params and {RESERVED}")
    recovered = [n for n in names if isinstance(normalized[0][n], Recovered)]
    if recovered and reference is None:
        raise DeclarationError(f"shapes: {recovered} are drawn by the layer itself (Recovered): a reference= that "
                               f"takes them is required, the oracles' forward on the layer's own draw")
    known = [*names, *fixed, *params]
    positional_declared = positional is not None
    if not positional_declared and methods is None and callable(forward) and not isinstance(forward, type):
        _check_passing(forward, [n for n in names if n not in recovered])  # a forward by name: in build
    positional = tuple(n for n in names if n not in recovered) if positional is None else tuple(positional)
    unknown = [p for p in positional if not isinstance(p, Packed) and p not in known]
    unknown += [s for p in positional if isinstance(p, Packed) for _, s in p.fields if s not in known]
    if unknown:
        raise DeclarationError(f"positional: {unknown} are not declared arguments ({known})")
    mean_over_batch = (mean_over_batch,) if isinstance(mean_over_batch, str) else tuple(mean_over_batch)
    if mean_over_batch and (batch_axis is None or any(g not in wrt for g in mean_over_batch)):
        raise DeclarationError(f"mean_over_batch: {list(mean_over_batch)} must name arguments of wrt {list(wrt)}, "
                               f"with batch_axis= saying where the examples are")
    if isinstance(backward, Methods):
        _check_methods(backward, names, wrt, params)
    if backward_args is not None:
        backward_args = tuple(backward_args)
        bad = [a for a in backward_args if a not in ("dout", "cache", "out") and a not in known]
        if bad or not callable(backward) and not isinstance(backward, str):
            raise DeclarationError(f"backward_args: {bad or list(backward_args)}: a backward function's arguments "
                                   f"are 'dout', 'cache', 'out' and declared arguments ({known})")
    if loss is not None and (not callable(loss) or backward is None or isinstance(backward, Methods)):
        raise DeclarationError("loss must be a function (out, arrays) -> float, for a layer with a backward function")
    return Declaration(forward, backward, normalized, params, reference, wrt, _name_of(forward, name), fixed,
                       positional, positional_declared, numpy_seed, batch_axis, mean_over_batch, backward_args, loss,
                       tolerance=tolerance, kinks=kinks, second_order=second_order, rounding_units=rounding_units,
                       doc=doc)


def _check_common(kinks, second_order, rounding_units, doc) -> None:
    """Validate the arguments both forms of a declaration take."""
    if kinks is not None:
        if not isinstance(kinks, Kinks):
            raise DeclarationError(f"kinks must be gradmatrix.Kinks(...), got {type(kinks).__name__}")
        for field_name in ("avoid", "inputs", "convention", "subgradient"):
            value = getattr(kinks, field_name)
            if value is not None and not callable(value):
                raise DeclarationError(f"kinks.{field_name} must be a function, got {type(value).__name__}")
        if not isinstance(kinks.shapes, (tuple, list)) or not all(isinstance(d, Mapping) for d in kinks.shapes):
            raise DeclarationError(f"kinks.shapes must be a tuple of dims dicts (N included), got {kinks.shapes!r}")
        if bool(kinks.shapes) != (kinks.inputs is not None):
            raise DeclarationError("kinks.shapes and kinks.inputs go together: the kink cases' dims, and how "
                                   "their inputs are drawn at the kinks")
        if (kinks.convention is not None or kinks.subgradient is not None) and kinks.inputs is None:
            raise DeclarationError("kinks.convention and kinks.subgradient judge the kink cases: give kinks.inputs "
                                   "and kinks.shapes")
    if second_order is not None and not isinstance(second_order, bool):
        raise DeclarationError(f"second_order must be True, False or None, got {second_order!r}")
    if rounding_units is not None and not callable(rounding_units):
        raise DeclarationError("rounding_units must be a function dims -> {output or input name: size}")
    if doc is not None and not isinstance(doc, str):
        raise DeclarationError(f"doc must be a str (one line for reports), got {type(doc).__name__}")


def _matrices(matrices) -> dict:
    """``matrices=`` as {matrix: tuple of dims dicts}; one list stands for default and full."""
    if isinstance(matrices, (list, tuple)):
        matrices = {"default": matrices, "full": matrices}
    if not isinstance(matrices, Mapping) or not matrices:
        raise DeclarationError(f"matrices must be {{matrix: [dims dict, ...]}} or a list of dims dicts, "
                               f"got {type(matrices).__name__}")
    out = {}
    for matrix, dicts in matrices.items():
        if matrix not in MATRICES:
            raise DeclarationError(f"matrices: {matrix!r} is no matrix; they are {list(MATRICES)}")
        if not isinstance(dicts, (list, tuple)) or not dicts or not all(isinstance(d, Mapping) for d in dicts):
            raise DeclarationError(f"matrices[{matrix!r}] must be a non-empty list of dims dicts, got {dicts!r}")
        for d in dicts:
            bad = {k: v for k, v in d.items() if not isinstance(k, str) or not k.isidentifier()
                   or not isinstance(v, PARAM_TYPES)}
            if bad:
                raise DeclarationError(f"matrices[{matrix!r}]: {bad} are not dims: a dim is named by an identifier "
                                       f"and its value is a number, a string or a tuple")
        out[matrix] = tuple(dict(d) for d in dicts)
    return out


def _named_input(value, known: set, where: str):
    """A named-dims shape dict's value as ``Floats``, ``Integers`` or ``Recovered``, its
    shape's dims checked against ``known``."""
    spec = value if isinstance(value, (Floats, Integers, Recovered)) else Floats(value)
    shape = spec.shape if isinstance(spec.shape, (tuple, list)) else (spec.shape,)
    unknown = [d for d in shape if not (isinstance(d, str) and d in known
                                        or isinstance(d, int) and not isinstance(d, bool) and d > 0)]
    if unknown:
        raise DeclarationError(f"{where}: {unknown} are neither dims of matrices or derived ({sorted(known)}) nor "
                               f"sizes of at least 1")
    if spec.draw is not None and not callable(spec.draw):
        raise DeclarationError(f"{where}: draw must be a function (rng, shape, dims) -> array")
    if isinstance(spec, Integers):
        bad = [b for b in (spec.low, spec.high) if not (isinstance(b, str) and b in known or isinstance(b, int))]
        if bad:
            raise DeclarationError(f"{where}: Integers bounds {bad} are neither ints nor dims ({sorted(known)})")
    if isinstance(spec, Recovered) and not callable(spec.recover):
        raise DeclarationError(f"{where}: recover must be a function (out, arrays, dims) -> array")
    return replace(spec, shape=tuple(shape))


def _argument_sources(arg) -> list:
    """The array or dim names a contract argument reads."""
    if isinstance(arg, Packed):
        return [source for _, source in arg.fields if isinstance(source, str)]
    if isinstance(arg, Keyword):
        return [arg.source]
    return [arg] if isinstance(arg, str) else []


def _declare_with_dims(forward, backward, shapes, *, matrices, derived, output, contracts, forwards_of, reference,
                       wrt, name, positional, numpy_seed, tolerance, kinks, second_order, rounding_units, doc,
                       vectorized, conditions, unused: dict) -> Declaration:
    """``declare`` for a layer whose shapes name dims (``matrices=``): validated here, built
    by ``_build_with_dims``."""
    given = [k for k, v in unused.items() if v not in (None, ())]
    if given:
        raise DeclarationError(f"{given[0]}: not an argument of a layer whose shapes name dims (matrices=); a "
                               f"parameter is a dim of the matrices, passed by positional=")
    matrices = _matrices(matrices)
    derived = dict(derived or {})
    bad = [k for k, f in derived.items() if not isinstance(k, str) or not k.isidentifier() or not callable(f)]
    if bad:
        raise DeclarationError(f"derived: {bad}: each is a dim's name and a function dims -> its value")
    known = {"N", *derived, *(k for dicts in matrices.values() for d in dicts for k in d)}
    if not isinstance(shapes, Mapping) or not shapes:
        raise DeclarationError(f"shapes must be one dict {{argument name: shape of dims}} with matrices=, "
                               f"got {shapes!r}")
    bad = [n for n in shapes if not isinstance(n, str) or not n.isidentifier() or n in known]
    if bad:
        raise DeclarationError(f"shapes: argument names must be identifiers other than the dims, got {bad}")
    inputs = {n: _named_input(v, known, f"shapes[{n!r}]") for n, v in shapes.items()}
    contracts = tuple(contracts or ())
    if contracts:
        if not all(callable(getattr(c, "call", None)) and hasattr(c, "functions") for c in contracts):
            raise DeclarationError("contracts must be oracles.contract values (Layer, Loss, Model, Stateful, ...)")
        if backward is not None or positional is not None:
            raise DeclarationError("contracts: the ways the layer is called replace backward= and positional=")
        forward = forward if forward is not None else contracts[0].functions[0]
    if not callable(forward) and not (isinstance(forward, str) and forward.isidentifier()):
        raise DeclarationError(f"forward must be a function or a function's name, got {type(forward).__name__}")
    if backward is not None and not callable(backward) and not isinstance(backward, str):
        raise DeclarationError(f"backward must be a function, a function's name or None (a loss), "
                               f"got {type(backward).__name__}")
    if forwards_of is not None and (not isinstance(forwards_of, str) or not forwards_of.isidentifier()):
        raise DeclarationError(f"forwards_of must be a catalog op's name, got {forwards_of!r}")
    if (reference is None) == (forwards_of is None):
        raise DeclarationError("reference: a layer with named dims needs one forward for the oracles: "
                               "reference(xp, arrays, dims), or forwards_of= a catalog op computing it")
    if reference is not None and not callable(reference):
        raise DeclarationError("reference must be a function (xp, arrays, dims) -> out with matrices=")
    if not isinstance(vectorized, bool) or vectorized and reference is None:
        raise DeclarationError(f"vectorized must be True or False, and True only with a reference, got {vectorized!r}")
    if output is None:
        if backward is not None or contracts:
            raise DeclarationError("output is required for a layer: (name, shape of dims), ('out', ('N', 'M'))")
        output = ("loss", None)
    elif isinstance(output, str):
        output = (output, None)
    if not (isinstance(output, tuple) and len(output) == 2 and isinstance(output[0], str)
            and (output[1] is None or isinstance(output[1], tuple))):
        raise DeclarationError(f"output must be (name, shape of dims) or a loss's name, got {output!r}")
    if output[1] is not None:
        _named_input(output[1], known, "output")
    if backward is None and not contracts and output[1] is not None:
        raise DeclarationError(f"output {output!r}: a function without a backward is a loss, of shape None")
    floats = [n for n, s in inputs.items() if isinstance(s, Floats)]
    if wrt is None:
        wrt = tuple(floats)
    else:
        wrt = (wrt,) if isinstance(wrt, str) else tuple(wrt)
        bad = [n for n in wrt if n not in floats]
        if bad or not (wrt or contracts):
            raise DeclarationError(f"wrt: {bad or 'nothing'}: wrt names the float arguments whose gradients "
                                   f"backward returns, of {floats}")
    if not contracts:
        if positional is None and callable(forward) and not isinstance(forward, type):
            _check_passing(forward, [n for n, s in inputs.items() if not isinstance(s, Recovered)],
                           " (the order of shapes is also the order of the backward's gradients)")
        positional = tuple(n for n, s in inputs.items() if not isinstance(s, Recovered)) if positional is None \
            else tuple(positional)
        unknown = [source for arg in positional for source in _argument_sources(arg)
                   if source not in known and source not in inputs]
        if unknown:
            raise DeclarationError(f"positional: {unknown} are neither arguments ({list(inputs)}) nor dims")
    every = set.intersection(*(set(d) for dicts in matrices.values() for d in dicts)) | {"N"}
    for i, dims in enumerate(kinks.shapes if kinks is not None else ()):
        unknown = [k for k in dims if k not in known]
        missing = sorted(every - set(dims))
        if unknown or missing:
            raise DeclarationError(f"kinks.shapes[{i}]: " + (f"{unknown} are not dims ({sorted(known)})" if unknown
                                   else f"misses the dims {missing} (a kink case has every dim, N included)"))
    if conditions is not None and not isinstance(conditions, Mapping):
        raise DeclarationError(f"conditions must be {{name: function dims -> bool}}, got {type(conditions).__name__}")
    conditions = dict(conditions or {})
    bad = [k for k, f in conditions.items() if not isinstance(k, str) or not k.strip() or not callable(f)]
    if bad:
        raise DeclarationError(f"conditions: {bad}: each is a name (the words a finding says: 'fails only where "
                               f"NAME') and a function dims -> bool")
    label = forward if isinstance(forward, str) else forward.__name__
    return Declaration(forward, backward, (inputs,), {}, reference, wrt, _name_of(label, name),
                       positional=positional or (), numpy_seed=numpy_seed, tolerance=tolerance, matrices=matrices,
                       derived=derived, output=output, kinks=kinks, contracts=contracts, forwards_of=forwards_of,
                       second_order=second_order, rounding_units=rounding_units, doc=doc, vectorized=vectorized,
                       conditions=conditions)


def _check_methods(methods: Methods, names: list, wrt: tuple, params: dict) -> None:
    bad = [a for a in methods.attributes if a not in names]
    if bad:
        raise DeclarationError(f"methods.attributes: {bad} are not array arguments ({names})")
    bad = [a for a in methods.backward_args if a != UPSTREAM and not a.startswith(SELF) and a not in names]
    if bad:
        raise DeclarationError(f"methods.backward_args: {bad} are neither 'dout', an array argument nor 'self.<attribute>'")
    bad = [g for g in methods.gradients if g not in wrt]
    if bad:
        raise DeclarationError(f"methods.gradients: {bad} are not arguments of wrt ({list(wrt)})")
    bad = [v.name for v in methods.init.values() if isinstance(v, Param) and v.name not in params]
    if bad:
        raise DeclarationError(f"methods.init: Param({bad[0]!r}) is not in params ({list(params)})")


def _distinct_shapes(shapes: tuple) -> tuple:
    """The shape dicts, each once, in their first place.

    A case is known by its dims, the shape of each argument, so two dicts with the same
    shapes are one case: identical ones are kept once; ones that differ in a draw or an
    integer range would be two inputs under one case id, and are refused.  An argument
    is floats in every dict or integers in every one (only floats have gradients).

    Raises:
        DeclarationError: naming the dicts and the argument.
    """
    kept: dict = {}
    for i, dict_ in enumerate(shapes):
        for name, value in dict_.items():
            first = shapes[0][name]
            if type(value) is not type(first):
                raise DeclarationError(f"shapes[{i}][{name!r}] is {type(value).__name__} but shapes[0][{name!r}] is "
                                       f"{type(first).__name__}: an argument is floats in every shape dict or "
                                       f"integers in every one")
        key = tuple((name, value.shape) for name, value in dict_.items())
        if any(isinstance(value, Given) for value in dict_.values()):
            key += (("inputs", i),)  # the user's values: a case of their own whatever their shapes
        j = kept.setdefault(key, i)
        if j != i and shapes[j] != dict_:
            differ = [n for n in dict_ if shapes[j][n] != dict_[n]]
            raise DeclarationError(f"shapes[{j}] and shapes[{i}] declare the same shapes {dict(key)} but draw "
                                   f"{differ} differently: their cases would share one id; declare each shape once")
    return tuple(shapes[j] for j in kept.values())


def declarations_in(module: ModuleType) -> list:
    """The declarations a module holds: ``Declaration`` objects and decorated functions,
    in the module's order, each once."""
    found: list = []
    for value in list(vars(module).values()):
        declaration = value if isinstance(value, Declaration) else None
        if declaration is None and inspect.isfunction(value):
            declaration = getattr(value, ATTRIBUTE, None)
        if isinstance(declaration, Declaration) and all(declaration is not d for d in found):
            found.append(declaration)
    return found


def specs_of(module: ModuleType, on_build: Callable[[str], None] | None = None) -> dict:
    """name -> (spec, {function name: callable}) for each layer ``module`` declares, each
    spec built once per module.

    Args:
        on_build: called with a layer's name before it is built (building runs the layer's
            forward: a worker process says so to the judge, which holds the time limit).

    Raises:
        DeclarationError: a declaration that cannot be built, or two under one name.
    """
    found: dict = {}
    for declaration in declarations_in(module):
        key = id(module)
        if key not in declaration._built:
            if on_build is not None:
                on_build(declaration.name)
            declaration._built[key] = build(declaration, module)
        spec, functions = declaration._built[key]
        if spec.name in found:
            raise DeclarationError(f"{getattr(module, '__name__', 'the module')} declares two layers named "
                                   f"{spec.name!r}; give one a name=")
        found[spec.name] = (spec, functions)
    return found


def _function_names(forward: Callable, backward: Callable | None) -> tuple[str, str | None]:
    """The names a layer's functions go by in messages (``gelu_forward``), told apart."""
    first = _label(forward)
    if backward is None:
        return first, None
    second = backward if isinstance(backward, str) else getattr(backward, "__name__", "backward")
    return (first, second) if first != second else (f"{first} (forward)", f"{second} (backward)")


def _pair(value, function: str, what: str) -> tuple:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return value[0], value[1]
    got = f"a sequence of {len(value)}" if isinstance(value, (tuple, list)) else type(value).__name__
    raise DeclarationError(f"{function} must return {what}, got {got}")


def _draw_fn(name: str, spec):
    """The catalog-style draw ``(rng, shape, dims) -> array`` of one declared argument."""
    if isinstance(spec, Given):  # the user's own values, never drawn
        dtype = np.int64 if spec.is_integer else np.float64
        return lambda rng, shape, dims: np.array(spec.array, dtype=dtype)
    if isinstance(spec, Integers) and spec.draw is not None:
        return lambda rng, shape, dims: np.asarray(spec.draw(rng, shape), dtype=np.int64)
    if isinstance(spec, Integers):
        return lambda rng, shape, dims: rng.integers(spec.low, spec.high, size=shape, dtype=np.int64)
    if spec.draw is None:
        return (lambda rng, shape, dims: np.ones(shape)) if isinstance(spec, Recovered) else normal
    user = spec.draw

    def draw(rng, shape, dims):
        value = np.asarray(user(rng, shape), dtype=np.float64)
        if value.shape != tuple(shape):
            raise DeclarationError(f"the draw of {name!r} returned shape {value.shape}, expected {tuple(shape)}")
        return value

    return draw


def build(declaration: Declaration, module: ModuleType | None = None) -> tuple:
    """The ``OpSpec`` of a declaration and its functions by name.

    Args:
        declaration: from ``declare``.
        module: the declaring module, where a backward given by name is looked up.

    Returns:
        (spec, {function name: callable}) for ``spec.contracts[0].call``; a forward given by
        name is not among them (it is the checked module's).

    Raises:
        DeclarationError: the backward is not found, or the forward (the reference's, for a
            forward given by name) fails (raises, returns the wrong structure, a loss of more
            than one element) on float64 inputs of a declared shape.
    """
    d = declaration
    backward = d.backward
    named = isinstance(d.forward, str)
    if isinstance(backward, str) and named:
        pass  # a forward given by name: its backward is the checked module's function of that name too
    elif isinstance(backward, str):
        backward = getattr(module, backward, None) if module is not None else None
        if not callable(backward):
            raise DeclarationError(f"{_label(d.forward)}: no function {d.backward!r} in "
                                   f"{getattr(module, '__name__', 'its module')} to be its backward "
                                   f"(give backward= to the declaration)")
    if d.matrices is not None:
        return _build_with_dims(d, backward)
    function = getattr(module, d.forward, None) if named and module is not None else None
    if callable(function) and not isinstance(function, type) and not isinstance(backward, Methods) \
            and not d.positional_declared:
        _check_passing(function, [a for a in d.positional if not isinstance(a, Packed)])
    names = list(d.shapes[0])
    params = list(d.params)
    recovered = {n: s for n, s in d.shapes[0].items() if isinstance(s, Recovered)}  # the layer's own draws
    takes = [n for n in names if n not in recovered]  # the arrays the layer itself is called with
    fixed = {k: v if isinstance(v, Fresh) else Const(v) for k, v in d.fixed.items()}
    arguments = tuple(a if isinstance(a, Packed) or a in names else Keyword(a, fixed[a]) if a in fixed else Keyword(a)
                      for a in d.positional)
    given = {a for a in d.positional if not isinstance(a, Packed)}
    given |= {s for a in d.positional if isinstance(a, Packed) for _, s in a.fields}
    given |= set(d.backward_args or ())  # an argument of the backward alone (L_model_backward's Y)
    arguments = _positional(arguments) + tuple(
        Keyword(a, fixed.get(a, a)) for a in (*takes, *params, *fixed) if a not in given)
    if isinstance(backward, Methods):
        contract = _class_contract(d, backward, takes)
        is_loss = contract.is_loss
        functions = {} if named else {d.forward.__name__: d.forward}
    elif not d.wrt:  # compared by its values alone
        forward_name, is_loss = _label(d.forward), False
        contract = Function(forward_name, arguments, numpy_seed=d.numpy_seed)
        functions = {} if named else {forward_name: d.forward}
    else:
        forward_name, backward_name = _function_names(d.forward, backward)
        is_loss = backward is None or d.loss is not None
        mean = BatchMean(d.mean_over_batch, names[0], d.batch_axis) if d.mean_over_batch else None
        fixed_args = {a: fixed[a] if a in fixed else a for a in d.backward_args or ()}
        backward_args = tuple(fixed_args.get(a, a) for a in d.backward_args or ("dout", "cache"))
        contract = (Loss(forward_name, arguments, d.wrt, numpy_seed=d.numpy_seed) if backward is None else
                    Layer(forward_name, backward_name, arguments, d.wrt, numpy_seed=d.numpy_seed, batch_mean=mean,
                          backward_args=backward_args, loss=d.loss))
        functions = {} if named else {forward_name: d.forward}
        if backward is not None and not named:
            functions[backward_name] = backward
    what = "(loss, grads)" if is_loss else "(out, cache)"
    label = _label(d.forward)
    if recovered:
        contract = replace(contract, recover=_recover(label, recovered, takes, lambda n, dims: tuple(dims[n]),
                                                      lambda dims: {p: dims[p] for p in params}))

    def extra() -> dict:
        # a Fresh argument made anew for each call: the same draws in every call
        return {k: v.make() if isinstance(v, Fresh) else v for k, v in d.fixed.items()}

    def call(call_forward, arrays: Mapping, dims: Mapping):
        return call_forward(*[arrays[n] for n in names], **{p: dims[p] for p in params}, **extra())

    def own(arrays: Mapping, dims: Mapping):
        # the user's own forward through its contract, on copies: a forward that writes into
        # its arguments must not move the numeric oracle's points
        copies = {k: np.array(v) for k, v in arrays.items()}
        if isinstance(contract, ClassLayer):
            out = contract.forward_value(lambda fn: d.forward, copies, dims)
        else:
            from gradmatrix.oracles.contract import _call_args, seeding

            positional, keywords = _call_args(contract.args, copies, dims)
            value = seeding(lambda fn: d.forward, d.numpy_seed, None)(label)(*positional, **keywords)
            if isinstance(contract, Function):
                out = value
            else:
                if d.loss is not None:  # a layer judged by a loss of its output
                    out = d.loss(np.array(_pair(value, label, "(out, cache)")[0]), copies)
                else:
                    out = loss_and_gradients(value, d.wrt, label)[0] if is_loss else _pair(value, label, what)[0]
        out = np.asarray(out, dtype=np.float64)
        return out.reshape(()) if is_loss and out.size == 1 else out

    def seeded(f):
        if d.numpy_seed is None:
            return f

        def with_seed(*a, **k):
            np.random.seed(d.numpy_seed)
            return f(*a, **k)

        return with_seed

    reference, forwards, oracles = None, {}, ("numeric",)
    if callable(d.reference):
        user_reference = d.reference
        reference = lambda xp, arrays, dims: call(seeded(lambda *a, **p: user_reference(xp, *a, **p)), arrays, dims)  # noqa: E731
        oracles = None
    elif d.reference is not None:
        for key, fn in d.reference.items():
            forwards[REFERENCE_KEYS[key]] = (lambda f: lambda arrays, dims: call(seeded(f), arrays, dims))(fn)
        oracles = tuple(o for o in ORACLES if o in forwards or o == "numeric")
    if reference is None and "numeric" not in forwards:
        if named:
            raise DeclarationError(f"reference for {label!r}: a forward given by name needs a NumPy forward "
                                   f"(an array-API reference, or a 'numpy' one)")
        forwards["numeric"] = own

    def numpy_forward(arrays, dims):
        if named:
            value = reference(np, arrays, dims) if reference is not None else forwards["numeric"](arrays, dims)
            return np.asarray(value)
        return own(arrays, dims)

    given = any(isinstance(v, Given) for v in d.shapes[0].values())  # one "inputs" dim per dict of values
    dims_list = tuple({"N": None, **({"inputs": i} if given else {}), **{n: s[n].shape for n in names}, **d.params}
                      for i, s in enumerate(d.shapes))
    if d.batch_axis is not None:
        dims_list = tuple({**dims, "N": s[names[0]].shape[d.batch_axis]} for dims, s in zip(dims_list, d.shapes))
    # each shape dict's own draws, found from a case's dims (the shapes of its arguments)
    draws = {(dims.get("inputs"), *(s[n].shape for n in names)): {n: _draw_fn(n, s[n]) for n in names}
             for dims, s in zip(dims_list, d.shapes)}

    def draw_of(name: str):
        return lambda rng, shape, dims: draws[(dims.get("inputs"), *(dims[n] for n in names))][name](rng, shape, dims)

    out_shapes = {}
    rng = np.random.default_rng(0)
    for dims, declared in zip(dims_list, d.shapes):
        arrays = {n: _draw_fn(n, s)(rng, s.shape, dims) for n, s in declared.items()}
        try:
            out = np.asarray(numpy_forward(arrays, dims))
        except DeclarationError:
            raise
        except Exception as exc:
            shapes = ", ".join(f"{n} {arrays[n].shape}" for n in names)
            who = f"the reference of {label}" if named else label
            raise DeclarationError(f"{who} raised {type(exc).__name__}: {exc} (on float64 inputs {shapes})") from exc
        if is_loss and out.size != 1:
            raise DeclarationError(f"{label} returned a loss of shape {out.shape}: a function without a "
                                   f"backward is a loss, (loss, grads) with a scalar loss; pass the layer's "
                                   f"backward as the second argument")
        if out.size == 0:
            given = ", ".join(f"{n} {arrays[n].shape}" for n in names)
            raise DeclarationError(f"{label} returned an empty output of shape {out.shape} (on float64 inputs "
                                   f"{given}): no element of it depends on the inputs, so there is no gradient "
                                   f"to check")
        out_shapes[_dims_key(dims, names, params)] = out.shape

    spec = OpSpec(
        name=d.name,
        doc=_doc(d, contract),
        inputs=tuple(InputSpec(n, (n,), differentiable=n in d.wrt, draw=draw_of(n),
                               is_label=isinstance(s, Integers) or isinstance(s, Given) and s.is_integer,
                               drawn_by_candidate=n in recovered)
                     for n, s in d.shapes[0].items()),
        output="loss" if is_loss else "out",
        output_shape=None if is_loss else (OUT_SHAPE,),
        contracts=(contract,),
        shapes={"default": dims_list, "full": dims_list},
        derived={OUT_SHAPE: lambda dims: out_shapes[_dims_key(dims, names, params)]},
        second_order=is_loss and (oracles is None or any(o in oracles for o in SECOND_ORDER))
        and d.second_order is not False,
        reference=reference,
        forwards=forwards,
        oracles=oracles,
        tolerance=d.tolerance,
        rounding_units=d.rounding_units,
        **_kink_fields(d.kinks),
    )
    return spec, functions


def _doc(d: Declaration, contract) -> str:
    """The report's line for a declared layer: its ``doc=``, else its forward's docstring's
    first line, else the functions it calls."""
    if d.doc is not None:
        return d.doc
    first_line = ("" if isinstance(d.forward, str) else inspect.getdoc(d.forward) or "").strip().splitlines()
    return first_line[0] if first_line else f"declared layer {' / '.join(contract.functions)}"


def _kink_fields(kinks: Kinks | None) -> dict:
    """The ``OpSpec`` fields of a ``Kinks`` value."""
    if kinks is None:
        return {}
    return {"finalize": kinks.avoid, "kink_inputs": kinks.inputs, "kink_shapes": tuple(dict(s) for s in kinks.shapes),
            "kink_convention": kinks.convention, "kink_subgradient": kinks.subgradient}


def _named_draw(spec) -> Callable:
    """The draw ``(rng, shape, dims)`` of a named-dims argument: its own, else standard
    normal floats (scaled by a ``scale`` dim), uniform integers (bounds read from the
    dims), ones for a layer's own draw where the layer failed."""
    if spec.draw is not None:
        return spec.draw
    if isinstance(spec, Integers):
        def bound(b, dims):
            return dims[b] if isinstance(b, str) else b
        return lambda rng, shape, dims: rng.integers(bound(spec.low, dims), bound(spec.high, dims), size=shape,
                                                     dtype=np.int64)
    if isinstance(spec, Recovered):
        return lambda rng, shape, dims: np.ones(shape)
    return normal


def _build_with_dims(d: Declaration, backward) -> tuple:
    """The ``OpSpec`` of a named-dims declaration (``matrices=``), field for field: the
    inputs' shapes, the matrices' dims, the derived dims, the output, the contracts, the
    reference (or another op's forwards), the kinks."""
    shapes = d.shapes[0]
    recovered = {n: s for n, s in shapes.items() if isinstance(s, Recovered)}
    takes = [n for n in shapes if n not in recovered]
    is_loss = d.output[1] is None
    functions = {}
    if d.contracts:
        contracts = d.contracts
    else:
        forward_name, backward_name = _function_names(d.forward, backward)
        if callable(d.forward):
            functions[forward_name] = d.forward
        if callable(backward):
            functions[backward_name] = backward
        if backward is None:
            contract = Loss(forward_name, d.positional, d.wrt, numpy_seed=d.numpy_seed)
        else:
            contract = Layer(forward_name, backward_name, d.positional, d.wrt, numpy_seed=d.numpy_seed)
        if recovered:
            contract = replace(contract, recover=_recover(
                _label(d.forward), recovered, takes, lambda n, dims: concrete_shape(shapes[n].shape, dims),
                lambda dims: dims))
        contracts = (contract,)
    spec = OpSpec(
        name=d.name,
        doc=_doc(d, contracts[0]),
        inputs=tuple(InputSpec(n, s.shape, differentiable=n in d.wrt, draw=_named_draw(s),
                               is_label=isinstance(s, Integers), drawn_by_candidate=n in recovered)
                     for n, s in shapes.items()),
        output=d.output[0],
        output_shape=d.output[1],
        contracts=contracts,
        shapes=d.matrices,
        derived=d.derived,
        second_order=is_loss if d.second_order is None else d.second_order,
        rounding_units=d.rounding_units,
        reference=d.reference,
        vectorized=d.vectorized,
        forwards_of=d.forwards_of,
        tolerance=d.tolerance,
        conditions=d.conditions,
        **_kink_fields(d.kinks),
    )
    _check_conditions(spec)
    return spec, functions


def _check_conditions(spec: OpSpec) -> None:
    """Each of a layer's conditions is True or False on every dims its cases can have.

    Raises:
        DeclarationError: one raised or gave something else, naming it and the dims."""
    for dims in spec.case_dims() if spec.conditions else ():
        for name, holds in spec.conditions.items():
            try:
                value = holds(dims)
            except Exception as exc:  # noqa: BLE001  (the user's function: what it raised, as its error)
                raise DeclarationError(f"conditions[{name!r}] raised {type(exc).__name__}: {exc} on the dims "
                                       f"{dims}") from exc
            if not isinstance(value, (bool, np.bool_)):
                raise DeclarationError(f"conditions[{name!r}] gave {value!r} on the dims {dims}: a condition is "
                                       f"True or False")


def _label(forward) -> str:
    return forward if isinstance(forward, str) else getattr(forward, "__name__", "forward")


def _positional(arguments: tuple) -> tuple:
    """The positional arguments of a contract: an array by its name, a fixed value or a
    parameter as its source (``Keyword`` is for the ones passed by name)."""
    return tuple(a.source if isinstance(a, Keyword) else a for a in arguments)


def _recover(label: str, recovered: Mapping, takes: list, shape_of: Callable, params_of: Callable) -> Callable:
    """The contract's ``recover`` of a layer's ``Recovered`` arrays: each read from its
    output by its ``recover`` (an array, or ``(array, notes)`` with lines for the report about
    what the layer's draw says), checked against ``shape_of(name, dims)`` and cast to the
    dtype of the layer's first float array (the case's dtype); ``params_of(dims)`` is what
    a ``recover`` gets as its third argument."""

    def recover(out, arrays: Mapping, dims: Mapping) -> tuple[dict, list]:
        given = {n: np.array(arrays[n], copy=True) for n in takes}
        floats = [v for v in given.values() if v.dtype.kind == "f"]
        found, notes = {}, []
        for name, spec in recovered.items():
            try:
                value = spec.recover(np.array(out, copy=True), given, params_of(dims))
            except ContractError:
                raise
            except Exception as exc:  # the layer's output is no such draw, as the recover function reads it
                raise ContractError(f"{label}: its {name} cannot be read from its output: "
                                    f"{type(exc).__name__}: {exc}") from exc
            if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], list):
                value, said = value
                notes += said
            value = np.asarray(value)
            if value.shape != shape_of(name, dims):
                raise ContractError(f"{label}: its {name} read from its output has shape {value.shape}, "
                                    f"expected {shape_of(name, dims)}")
            found[name] = value.astype(floats[0].dtype if floats else np.float64)
        return found, notes

    return recover


def _class_contract(d: Declaration, methods: Methods, names: list) -> ClassLayer:
    """The ``ClassLayer`` contract of a class declaration (``Methods``)."""
    init = tuple(Keyword(k, v.name if isinstance(v, Param) else v if isinstance(v, Fresh) else Const(v))
                 for k, v in methods.init.items())
    forward_args = tuple(n for n in names if n not in methods.attributes and n != methods.weighted_by)
    # the first array forward takes is the layer's input: its gradient is dinputs whatever
    # its name (the book's losses call it y_pred); a parameter's is d<name> (dweights)
    default = {n: "dinputs" if forward_args and n == forward_args[0] else f"d{n}" for n in d.wrt}
    gradients = tuple((g, methods.gradients.get(g, default[g])) for g in d.wrt)
    penalty = None
    if methods.penalty is not None:
        user = methods.penalty
        penalty = lambda arrays, dims: float(user(arrays, {p: dims[p] for p in d.params}))  # noqa: E731
    return ClassLayer(_label(d.forward), init, tuple(methods.attributes), forward_args, tuple(methods.backward_args),
                      gradients, numpy_seed=d.numpy_seed, penalty=penalty, weighted_by=methods.weighted_by)


def _dims_key(dims: Mapping, names: list, params: list) -> tuple:
    return tuple((k, dims[k]) for k in (*names, *params))


# --- a declared layer's spec as data, for the judge's process (gradmatrix.isolation) ---------


@dataclass(frozen=True)
class NamedContract:
    """A declared layer's contract as the judge's process knows it: the names of the
    functions it calls, for the accounting, the messages and the commands that reproduce a
    comparison.  It calls nothing: the layer's functions live in its module's process."""

    functions: tuple


def _derived_key(dims: Mapping, derived: Mapping) -> tuple:
    """The dims a declared layer's derived dims are computed from, as a key: all but N (the
    size of an axis of a declared shape, where there is one) and the derived ones."""
    return tuple(sorted(((k, v) for k, v in dims.items() if k != "N" and k not in derived), key=lambda kv: kv[0]))


def _condition_key(dims: Mapping, derived: Container) -> tuple:
    """The dims a declared layer's conditions are looked up by: all but the derived ones."""
    return tuple(sorted(((k, v) for k, v in dims.items() if k not in derived), key=lambda kv: kv[0]))


def describe(spec: OpSpec) -> dict:
    """A declared layer's ``OpSpec`` as data (``from_description`` makes the judge's spec of
    it): what the plan, the comparison and the reports read, and none of the user's
    functions.  The derived dims (the output's shape, found by running the forward) travel
    as a table over the layer's shape dicts, the only dims its cases have."""
    table = []
    for dims in (*(d for shapes in spec.shapes.values() for d in shapes), *spec.kink_shapes):
        full = spec.resolve_dims(dims)
        table.append((_derived_key(dims, spec.derived), {k: full[k] for k in spec.derived}))
    # its conditions as a table too, over every dims its cases can have (N included)
    conditions = [(_condition_key(dims, spec.derived), {n: bool(holds(dims)) for n, holds in spec.conditions.items()})
                  for dims in (spec.case_dims() if spec.conditions else ())]
    return {
        "name": spec.name, "doc": spec.doc, "output": spec.output, "output_shape": spec.output_shape,
        "inputs": [(s.name, s.shape, s.differentiable, s.is_label, s.drawn_by_candidate) for s in spec.inputs],
        "functions": tuple(spec.functions), "shapes": {m: tuple(dict(d) for d in ds) for m, ds in spec.shapes.items()},
        "derived": table, "derived_names": tuple(spec.derived), "second_order": spec.second_order,
        "conditions": conditions, "condition_names": tuple(spec.conditions),
        "oracles": spec.oracles, "tolerance": dict(spec.tolerance) if spec.tolerance is not None else None,
        # its kink cases: drawn where the layer lives, their gradients judged by its own
        # rules there too (the rules the layer declares: ``KINK_RULES`` present)
        "kink_shapes": tuple(dict(d) for d in spec.kink_shapes),
        "kink_rules": tuple(rule for rule in KINK_RULES if getattr(spec, rule) is not None),
    }


# the rules an op's kink cases are judged by (``OpSpec`` fields, each (grads, inputs, dout) -> ...)
KINK_RULES = ("kink_subgradient", "kink_convention")


def from_description(data: dict, ask_rule: Callable[[str, str], Callable] | None = None) -> OpSpec:
    """The judge's ``OpSpec`` of a layer declared in another process (``describe``): the
    same fields, no forward, no reference, and inputs that cannot be drawn here (the
    layer's draws are the user's code: its process draws them).  Its kink rules
    (``KINK_RULES``) are the user's code too: ``ask_rule(op, rule)`` gives a function with
    the rule's signature that has that process apply it (``IsolatedCandidate.kink_rule``);
    without one, the spec has no kink cases."""
    table = dict(data["derived"])
    names = data["derived_names"]

    def derived_dim(name: str):
        return lambda dims: table[_derived_key(dims, names)][name]

    held = dict(data["conditions"])

    def condition(name: str):
        return lambda dims: held[_condition_key(dims, names)][name]

    def not_here(rng, shape, dims):
        raise RuntimeError(f"layer {data['name']!r} is drawn in its module's own process (gradmatrix.isolation)")

    return OpSpec(
        name=data["name"], doc=data["doc"], output=data["output"], output_shape=data["output_shape"],
        inputs=tuple(InputSpec(n, shape, differentiable=d, draw=not_here, is_label=label, drawn_by_candidate=c)
                     for n, shape, d, label, c in data["inputs"]),
        contracts=(NamedContract(data["functions"]),), shapes=data["shapes"],
        derived={name: derived_dim(name) for name in names}, second_order=data["second_order"],
        conditions={name: condition(name) for name in data["condition_names"]},
        oracles=data["oracles"], tolerance=data["tolerance"],
        kink_shapes=data["kink_shapes"] if ask_rule is not None else (),
        **{rule: ask_rule(data["name"], rule) for rule in data["kink_rules"] if ask_rule is not None},
    )
