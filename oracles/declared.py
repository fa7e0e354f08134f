"""Layers declared by their users: a forward and a backward (or a loss) become an ``OpSpec``.

A catalog op and a user's layer differ only in who declared them.  A ``Declaration`` holds
what a user says about a layer: its functions, the shape of each array argument, its
parameters and, optionally, a reference forward.  ``build`` turns it into an ``OpSpec``
that cases, oracles, the comparison and the reports read exactly as they read a catalog
entry, and registers it in ``LAYERS`` under its name, so that a case finds its spec by name
(``spec_of``) whoever declared it.

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

Names never shadow the catalog: a name taken from a function (``affine_forward`` ->
``affine``) that is a catalog op becomes ``affine_layer``; a ``name=`` that is one is an
error.  Two declarations under one name replace each other in ``LAYERS`` (the last one
built is the one being checked); the JAX oracle keys its compiled code by the spec object,
so they never share it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Callable

import numpy as np

from gradmatrix.oracles.catalog import CATALOG, InputSpec, OpSpec, normal
from gradmatrix.oracles.contract import Keyword, Layer, Loss
from gradmatrix.oracles.implementations import REFERENCE_KEYS  # per-framework reference -> oracle

ATTRIBUTE = "__gradmatrix_layer__"  # where the decorator keeps a function's declaration
OUT_SHAPE = "out_shape"  # the derived dim holding the output's shape
RESERVED = ("N", OUT_SHAPE)  # dim names a declared input or parameter cannot take
PARAM_TYPES = (bool, int, float, str, type(None), tuple)  # parameters are dims: hashable, printable

LAYERS: dict[str, OpSpec] = {}  # declared specs by name, the last one built under each name


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
    it arrives as int64 and has no gradient."""

    shape: tuple
    low: int
    high: int


@dataclass(eq=False)
class Declaration:
    """What a user declared about a layer (validated by ``declare``)."""

    forward: Callable
    backward: Callable | str | None  # None: a loss; a str: a function of the declaring module
    shapes: tuple  # of {argument name: Floats | Integers}, one per shape to check
    params: dict  # keyword parameters, passed to the forward and the reference
    reference: Callable | Mapping | None
    wrt: tuple  # the arguments whose gradients are returned, in order
    name: str
    _built: dict = field(default_factory=dict, repr=False)  # id(module) -> (spec, functions)


def spec_of(op: str) -> OpSpec:
    """The spec called ``op``: a catalog op, else a declared layer.

    Raises:
        KeyError: no such op or layer.
    """
    if op in CATALOG:
        return CATALOG[op]
    return LAYERS[op]


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
    """A shape dict's value as ``Floats`` or ``Integers``."""
    if isinstance(value, Integers):
        if not value.high > value.low:
            raise DeclarationError(f"{where}: Integers needs low < high, got [{value.low}, {value.high})")
        return Integers(_shape(value.shape, where), int(value.low), int(value.high))
    if isinstance(value, Floats):
        if value.draw is not None and not callable(value.draw):
            raise DeclarationError(f"{where}: draw must be a function (rng, shape) -> array")
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


def _name_of(forward: Callable, name: str | None) -> str:
    if name is not None:
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name):
            raise DeclarationError(f"name must be a word of letters, digits and underscores, got {name!r}")
        if name in CATALOG:
            raise DeclarationError(f"name {name!r} is an op of gradmatrix's catalog; give your layer another name")
        return name
    stem = getattr(forward, "__name__", "")
    stem = stem[: -len("_forward")] if stem.endswith("_forward") else stem
    stem = stem if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", stem or "") else "layer"
    return f"{stem}_layer" if stem in CATALOG else stem


def declare(forward, backward=None, shapes=None, *, params=None, reference=None, wrt=None,
            name=None) -> Declaration:
    """Validate a layer's declaration (the arguments of ``gradmatrix.check_layer``).

    Raises:
        DeclarationError: an argument that cannot be used, naming it.
    """
    if not callable(forward):
        raise DeclarationError(f"forward must be a function, got {type(forward).__name__}")
    if backward is not None and not callable(backward) and not isinstance(backward, str):
        raise DeclarationError(f"backward must be a function (or None for a loss), got {type(backward).__name__}")
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
    floats = [n for n in names if isinstance(normalized[0][n], Floats)]
    if wrt is None:
        wrt = tuple(floats)
    else:
        wrt = (wrt,) if isinstance(wrt, str) else tuple(wrt)
        bad = [n for n in wrt if n not in floats]
        if bad or not wrt:
            raise DeclarationError(f"wrt: {bad or 'nothing'}: wrt names the float arguments whose gradients "
                                   f"backward returns, of {floats}")
    if not wrt:
        raise DeclarationError(f"shapes declares no float argument to differentiate: {names}")
    return Declaration(forward, backward, normalized, params, reference, wrt, _name_of(forward, name))


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


def specs_of(module: ModuleType) -> dict:
    """name -> (spec, {function name: callable}) for each layer ``module`` declares, each
    spec built once and registered in ``LAYERS`` (again) so that the module's layers are the
    ones found by name while it is checked.

    Raises:
        DeclarationError: a declaration that cannot be built, or two under one name.
    """
    found: dict = {}
    for declaration in declarations_in(module):
        key = id(module)
        if key not in declaration._built:
            declaration._built[key] = build(declaration, module)
        spec, functions = declaration._built[key]
        if spec.name in found:
            raise DeclarationError(f"{getattr(module, '__name__', 'the module')} declares two layers named "
                                   f"{spec.name!r}; give one a name=")
        LAYERS[spec.name] = spec
        found[spec.name] = (spec, functions)
    return found


def _function_names(forward: Callable, backward: Callable | None) -> tuple[str, str | None]:
    """The names a layer's functions go by in messages (``gelu_forward``), told apart."""
    first = getattr(forward, "__name__", "forward")
    if backward is None:
        return first, None
    second = getattr(backward, "__name__", "backward")
    return (first, second) if first != second else (f"{first} (forward)", f"{second} (backward)")


def _pair(value, function: str, what: str) -> tuple:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return value[0], value[1]
    got = f"a sequence of {len(value)}" if isinstance(value, (tuple, list)) else type(value).__name__
    raise DeclarationError(f"{function} must return {what}, got {got}")


def _draw_fn(name: str, spec):
    """The catalog-style draw ``(rng, shape, dims) -> array`` of one declared argument."""
    if isinstance(spec, Integers):
        return lambda rng, shape, dims: rng.integers(spec.low, spec.high, size=shape, dtype=np.int64)
    if spec.draw is None:
        return normal
    user = spec.draw

    def draw(rng, shape, dims):
        value = np.asarray(user(rng, shape), dtype=np.float64)
        if value.shape != tuple(shape):
            raise DeclarationError(f"the draw of {name!r} returned shape {value.shape}, expected {tuple(shape)}")
        return value

    return draw


def build(declaration: Declaration, module: ModuleType | None = None) -> tuple:
    """The ``OpSpec`` of a declaration, registered in ``LAYERS``, and its functions by name.

    Args:
        declaration: from ``declare``.
        module: the declaring module, where a backward given by name is looked up.

    Returns:
        (spec, {function name: callable}) for ``spec.contracts[0].call``.

    Raises:
        DeclarationError: the backward is not found, or the forward fails (raises, returns
            the wrong structure, a non-scalar loss) on float64 inputs of a declared shape.
    """
    d = declaration
    backward = d.backward
    if isinstance(backward, str):
        backward = getattr(module, backward, None) if module is not None else None
        if not callable(backward):
            raise DeclarationError(f"{d.forward.__name__}: no function {d.backward!r} in "
                                   f"{getattr(module, '__name__', 'its module')} to be its backward "
                                   f"(give backward= to the declaration)")
    forward_name, backward_name = _function_names(d.forward, backward)
    names = list(d.shapes[0])
    params = list(d.params)
    is_loss = backward is None
    what = "(loss, grads)" if is_loss else "(out, cache)"
    args = tuple(names) + tuple(Keyword(p) for p in params)
    contract = Loss(forward_name, args, d.wrt) if is_loss else Layer(forward_name, backward_name, args, d.wrt)
    functions = {forward_name: d.forward} if is_loss else {forward_name: d.forward, backward_name: backward}

    def call(call_forward, arrays: Mapping, dims: Mapping):
        return call_forward(*[arrays[n] for n in names], **{p: dims[p] for p in params})

    def own(arrays: Mapping, dims: Mapping):
        # copies: a forward that writes into its arguments must not move the numeric oracle's points
        out, _ = _pair(call(d.forward, {k: np.array(v) for k, v in arrays.items()}, dims), forward_name, what)
        return np.asarray(out, dtype=np.float64)

    reference, forwards, oracles = None, {}, ("numeric",)
    if callable(d.reference):
        user_reference = d.reference
        reference = lambda xp, arrays, dims: call(lambda *a, **p: user_reference(xp, *a, **p), arrays, dims)  # noqa: E731
        oracles = None
    elif d.reference is not None:
        for key, fn in d.reference.items():
            forwards[REFERENCE_KEYS[key]] = (lambda f: lambda arrays, dims: call(f, arrays, dims))(fn)
        oracles = tuple(o for o in ("torch", "jax", "numeric") if o in forwards or o == "numeric")
    if reference is None and "numeric" not in forwards:
        forwards["numeric"] = own

    dims_list = tuple({"N": None, **{n: s[n].shape for n in names}, **d.params} for s in d.shapes)
    # each shape dict's own draws, found from a case's dims (the shapes of its arguments)
    draws = {tuple(s[n].shape for n in names): {n: _draw_fn(n, s[n]) for n in names} for s in d.shapes}

    def draw_of(name: str):
        return lambda rng, shape, dims: draws[tuple(dims[n] for n in names)][name](rng, shape, dims)

    out_shapes = {}
    rng = np.random.default_rng(0)
    for dims, declared in zip(dims_list, d.shapes):
        arrays = {n: _draw_fn(n, s)(rng, s.shape, dims) for n, s in declared.items()}
        try:
            out, _ = _pair(call(d.forward, arrays, dims), forward_name, what)
            out = np.asarray(out)
        except DeclarationError:
            raise
        except Exception as exc:
            shapes = ", ".join(f"{n} {arrays[n].shape}" for n in names)
            raise DeclarationError(f"{forward_name} raised {type(exc).__name__}: {exc} (on float64 inputs {shapes})") from exc
        if is_loss and out.ndim != 0:
            raise DeclarationError(f"{forward_name} returned a loss of shape {out.shape}: a function without a "
                                   f"backward is a loss, (loss, grads) with a scalar loss; pass the layer's "
                                   f"backward as the second argument")
        if out.size == 0:
            given = ", ".join(f"{n} {arrays[n].shape}" for n in names)
            raise DeclarationError(f"{forward_name} returned an empty output of shape {out.shape} (on float64 inputs "
                                   f"{given}): no element of it depends on the inputs, so there is no gradient "
                                   f"to check")
        out_shapes[_dims_key(dims, names, params)] = out.shape

    first_line = (inspect.getdoc(d.forward) or "").strip().splitlines()
    spec = OpSpec(
        name=d.name,
        doc=first_line[0] if first_line else f"declared layer {' / '.join(contract.functions)}",
        inputs=tuple(InputSpec(n, (n,), differentiable=n in d.wrt, draw=draw_of(n), is_label=isinstance(s, Integers))
                     for n, s in d.shapes[0].items()),
        output="loss" if is_loss else "out",
        output_shape=None if is_loss else (OUT_SHAPE,),
        contracts=(contract,),
        shapes={"default": dims_list, "full": dims_list},
        derived={OUT_SHAPE: lambda dims: out_shapes[_dims_key(dims, names, params)]},
        second_order=is_loss and (oracles is None or any(o in oracles for o in ("torch", "jax"))),
        reference=reference,
        forwards=forwards,
        oracles=oracles,
    )
    LAYERS[spec.name] = spec
    return spec, functions


def _dims_key(dims: Mapping, names: list, params: list) -> tuple:
    return tuple((k, dims[k]) for k in (*names, *params))
