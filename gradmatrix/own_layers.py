"""Your own layer: check any forward and backward (or loss) against the oracles in a line.

From Python or a pytest test::

    import gradmatrix

    def test_gelu():
        gradmatrix.check_layer(gelu_forward, gelu_backward, {"x": (4, 5)}).raise_for_failures()

From the command line, declare the layer in its module and run ``gradmatrix check mymodule.py``::

    @gradmatrix.layer(shapes={"x": (4, 5)})
    def gelu_forward(x): ...          # gelu_backward(dout, cache) is found by its name

A layer declared here becomes an ``OpSpec`` (``oracles.declared``) and goes through the same
cases, runner, comparison, tolerances, documents and reports as a catalog op.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from types import ModuleType

import numpy as np

from gradmatrix.checker import CheckResult, option_choice, option_flag, tolerance_override
from gradmatrix.oracles import devices
from gradmatrix.oracles.candidate import Candidate
from gradmatrix.oracles.cases import MODES, count_option, names_option
from gradmatrix.oracles.catalog import CATALOG, DTYPES
from gradmatrix.oracles.contract import Fresh
from gradmatrix.oracles.framework import LOW_PRECISION as LOW_PRECISION_DTYPES
from gradmatrix.oracles.declared import (
    ATTRIBUTE, Declaration, DeclarationError, Floats, Given, Integers, Methods, Param, declare, layer_name,
)
from gradmatrix.oracles.implementations import LOW_PRECISION as LOW_PRECISION_ORACLES, ORACLES
from gradmatrix.engine import Request, Session
from gradmatrix.framework_layers import check_options
from gradmatrix.reports.framework_checks import low_precision_bounds

CANDIDATE = "candidate"  # the name your functions go by in ids and messages ("dx (candidate vs numeric, ...)")

__all__ = ["check_layer", "layer", "LayerResult", "Floats", "Integers", "Fresh", "Methods", "Param", "DeclarationError"]


def _first_shown(record: dict) -> tuple:
    """Failures of your own functions on plain gradients first (they name the element),
    then forward mode and second order, then the oracles among themselves."""
    return (record.get("case_kind") != "random", CANDIDATE not in record["pair"][0].split(".")[0])


class LayerResult(CheckResult):
    """The outcome of ``check_layer``: ``passed``, ``status`` (0 all agree, 1 something
    disagrees, 2 your functions could not be checked), ``failures`` (the failing comparison
    records, each with its ``message``), ``document`` (what ``agreement.json`` would hold:
    ``gradmatrix.reports.writers.write_reports`` renders it) and ``raise_for_failures``;
    ``spec``, the layer's ``OpSpec`` (to draw a record's inputs again:
    ``draw_inputs(Case(..., entry=result.spec))``)."""

    spec = None  # set by check_layer

    @property
    def failures(self) -> list:
        """The failing comparison records, the most telling first: your functions' plain
        gradients (naming the element), then forward mode and second order, then the
        oracles among themselves (a reference that disagrees with itself)."""
        return sorted(super().failures, key=_first_shown)

    @property
    def layer(self) -> str:
        return self.document["run"]["candidate_ops"][0]

    def raise_for_failures(self, limit: int = 10) -> "LayerResult":
        """Raise an ``AssertionError`` listing the failures (at most ``limit``), else return
        self.  In a pytest test the failure shows these findings, not gradmatrix's frames."""
        __tracebackhide__ = True
        if not self.passed:
            raise AssertionError(str(self) if limit is None else self._text(limit))
        return self

    def _text(self, limit: int) -> str:
        s = self.document["summary"]
        if not self.failures:  # nothing disagreed, yet no pass: comparisons did not run
            return (f"layer {self.layer}: INCOMPLETE, {s.get('missing', 0)} of {s['expected']} comparisons did not run; "
                    f"this is not a pass")
        from gradmatrix.reports.console import verdict_text

        verdict = verdict_text(self.document)  # a reference that failed, an override too loose to judge
        lines = [f"layer {self.layer}: {verdict}:" if verdict.startswith("NOT A PASS") else
                 f"layer {self.layer}: {s['disagree']} disagreeing and {s['error']} failing of {s['comparisons']} "
                 f"comparisons:"]
        lines += [f"  {r['message']}" for r in self.failures[:limit]]
        if len(self.failures) > limit:
            lines.append(f"  ... and {len(self.failures) - limit} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        if self.passed:
            s = self.document["summary"]
            return f"layer {self.layer}: PASS, {s['comparisons']} comparisons agree"
        return self._text(10)


class FrameworkLayerResult(LayerResult):
    """A ``LayerResult`` of a framework function (``framework=``), whose text also gives
    the allowance of each low-precision check (``reports.framework_checks``)."""

    def bounds(self) -> list:
        """Each float16 / bfloat16 tensor's error and allowance, in words."""
        return low_precision_bounds(self.document["comparisons"])

    def __str__(self) -> str:
        return "\n".join([super().__str__(), *(f"  {line}" for line in self.bounds())])


def check_layer(forward, backward=None, shapes=None, *, params=None, reference=None, wrt=None, name=None,
                fixed=None, positional=None, numpy_seed=None, batch_axis=None, mean_over_batch=(), methods=None,
                kinks=None, matrices=None, derived=None, output=None, contracts=None, forwards_of=None,
                second_order=None, rounding_units=None, doc=None, vectorized=False, conditions=None, dtypes=None,
                seeds: int = 3, oracles=None,
                modes=None, strict_kinks: bool = False,
                strict: bool = False,
                only: str | None = None, device: str = "cpu", matmul_precision: str = "default",
                framework: str | None = None, rtol=None, atol=None, reason: str | None = None,
                inputs=None, **framework_options) -> LayerResult:
    """Check a layer's backward (or a loss's gradients) against the oracles.

    A forward declared with ``@gradmatrix.layer`` is checked as declared by
    ``check_layer(gelu_forward)`` alone.

    With ``framework="torch"`` or ``"jax"``, ``forward`` is a function of that framework's
    arrays with a backward of its own (a ``torch.autograd.Function.apply``, a
    ``jax.custom_vjp`` function), ``backward`` is None and ``reference`` a plain function of
    the framework computing the same values; see ``gradmatrix.framework_layers`` and the
    README's "Custom backward passes in PyTorch and JAX".  Its further options:
    ``nondet_tol`` (absolute difference allowed between runs of the backward, default 0),
    ``runs`` (default 3) and ``second_order`` (None: where the backward can be
    differentiated); ``dtypes`` may also name "float16" and "bfloat16".

    Args:
        forward: ``forward(*arrays, **params) -> (out, cache)``, the course's layer contract;
            or, with ``backward=None``, a loss ``f(*arrays, **params) -> (loss, grads)``.
        backward: ``backward(dout, cache)`` returning one gradient per argument of ``wrt``,
            in that order (one array for one), or a dict by argument name.  None: ``forward``
            is a loss.
        shapes: ``{argument name: shape}``, or a list of such dicts to check several shapes
            (a dict listed twice is checked once).  A shape is a tuple of positive ints
            (float inputs, standard normal; a dimension of 0 is refused: an empty array has
            no gradient to get wrong), ``Floats(shape,
            draw=lambda rng, shape: ...)`` for an input with a constraint (positive, off a
            kink), or ``Integers(shape, low, high)`` for labels and indices (never
            differentiated).  Arguments are passed in the order the forward's signature
            names them (the dict's order when it does not).
        params: keyword parameters (numbers, strings, tuples) passed to the forward and the
            reference; they are part of each case's id (``delta1``).
        reference: a forward ``reference(xp, *arrays, **params) -> out`` written against the
            Python array API, run by torch and JAX (through array-api-compat) and by the
            numeric oracle (NumPy); or ``{"torch": f, "jax": g, "numpy": h}``, each
            ``f(*arrays, **params)`` on that framework's arrays.  With one, forward values
            are compared too and torch autograd and ``jax.vjp`` become oracles.  Without,
            the oracle is the float64 numeric differentiation of ``forward`` itself.
        wrt: the float arguments whose gradients ``backward`` returns (default: every float
            argument, in order).
        name: the layer's name in ids and reports (default: the forward's name without
            ``_forward``).
        fixed: arguments of any type that are not dims (objects, dicts, strings, functions),
            passed by keyword to the forward and the reference; ``Fresh(make)`` is made anew
            for every call (a sampler whose draws replay from their start).
        positional: the arguments passed by position, in order (default: the arrays).
        numpy_seed: seed NumPy's global generator with it before each call of the forward,
            the backward and the reference (a dropout mask drawn with ``np.random``).
        batch_axis: the axis of the first array that holds the examples (-1: examples in
            columns); the case's N.
        mean_over_batch: arguments whose gradients backward returns divided by the batch
            size (deeplearning.ai's ``dW``): compared times it, said as a convention.
        methods: ``Methods(...)`` for a layer written as a class (``forward`` a class).
        kinks: ``Kinks(avoid=..., inputs=..., shapes=..., convention=..., subgradient=...)``:
            where the layer's derivative is not defined, how random draws keep off it and
            how kink cases are drawn and judged.
        matrices, derived, output, contracts, forwards_of, vectorized, conditions: a layer
            whose shapes name dims (``{"x": ("N", "C")}``), checked on the dims dicts of
            ``matrices`` (this call runs the "default" ones; a dict without N is crossed with
            batch sizes 1, 8 and 32), as the catalog's ops are; ``vectorized=True``: its
            reference computes copies stacked on a leading axis at once; ``conditions``:
            ``{name: dims -> bool}``, what a mistake may be confined to (a finding whose
            failing cases all meet one that its agreeing cases do not says "fails only where
            NAME"); see ``oracles.declared.declare``.
        second_order, rounding_units, doc: Hessian-vector product cases for a loss (default:
            every loss), ``dims -> {tensor: size}`` for values formed as differences of
            larger terms, the report's line for the layer.
        dtypes: the dtypes to check in (default: "float64" and "float32"; with ``inputs``,
            the float dtypes of the arrays given).  "float16" and "bfloat16" (with a
            ``reference``) judge the layer by torch's and JAX's own error at that dtype
            against the float64 truth on the same rounded inputs.
        seeds: draws per shape, an int >= 1.
        oracles: of "torch", "jax", "numeric" (default: every one that has a forward).
        modes: of "reverse", "jvp", "hvp" (default: all that apply: forward-mode checks,
            and Hessian-vector products for a loss with a reference).
        A list option (dtypes, oracles, modes) takes one name as a str too; a name given
        twice counts once.
        strict_kinks, strict, device, matmul_precision: as for ``gradmatrix.check``.
        only: run just the comparison with this id (from a failure message).
        rtol, atol, reason: a tolerance override for this call, as for ``gradmatrix.check``
            (merged with the table and with the layer's own by the larger bound).
        inputs: ``{argument name: array}``, or a list of such dicts: check at these arrays
            instead of drawn ones (``shapes`` is then taken from them and must not be
            given).  Each dict is one case per dtype of ``dtypes``: float arrays are cast to
            it (integer ones stay), one seed; ids read ``<layer>-inputs<i>-...``.

    Returns:
        A ``LayerResult``.

    Raises:
        DeclarationError: an argument that cannot be used (naming it), an oracle that has
            no forward for the layer, or a forward that fails on inputs of the declared shapes.
        TypeError: an option of the wrong type (dtypes, seeds, oracles, modes,
            strict_kinks, only, device, matmul_precision), naming it, before anything runs.
        ValueError: an unknown dtype, oracle, mode, device or precision, seeds below 1, or
            an ``only`` id that is not in the plan, naming it.
    """
    __tracebackhide__ = True
    declared = getattr(getattr(forward, ATTRIBUTE, None), "framework", None)  # @gradmatrix.layer(framework=...)
    if framework is None and declared is not None and (backward, shapes, params, reference, wrt, name) == (None,) * 6:
        declaration = getattr(forward, ATTRIBUTE)
        fw, function, reference = declared
        framework, forward, shapes = fw.name, function, list(declaration.shapes)
        params, wrt, name = declaration.params, declaration.wrt, declaration.name
    tolerance = tolerance_override(rtol, atol, reason)
    if framework is not None:
        if tolerance is not None or inputs is not None:
            raise TypeError("rtol, atol, reason and inputs are not options of a framework function's check (its "
                            "low-precision checks measure their own allowance)")
        if backward is not None:
            raise DeclarationError(f"backward: a {framework} function's backward is its own rule; pass None")
        plain_only = {"fixed": fixed, "positional": positional, "numpy_seed": numpy_seed, "batch_axis": batch_axis,
                      "mean_over_batch": mean_over_batch or None, "methods": methods, "kinks": kinks,
                      "matrices": matrices, "derived": derived, "output": output, "contracts": contracts,
                      "forwards_of": forwards_of, "rounding_units": rounding_units, "doc": doc,
                      "vectorized": vectorized or None, "conditions": conditions}
        given = sorted(k for k, v in plain_only.items() if v is not None)
        if given:
            raise TypeError(f"check_layer got {given}: not options of a {framework} function's check (it is "
                            f"called with its arrays by position and params= by name)")
        if second_order is not None:  # an option of its own checks (framework_layers.check_options)
            framework_options["second_order"] = second_order
        from gradmatrix import framework_layers

        return framework_layers.check(forward, shapes, framework=framework, reference=reference, params=params,
                                      wrt=wrt, name=name, dtypes=dtypes, seeds=seeds, oracles=oracles, modes=modes,
                                      strict_kinks=strict_kinks, strict=strict, only=only, device=device,
                                      matmul_precision=matmul_precision, **framework_options)
    if framework_options:
        raise TypeError(f"check_layer got {sorted(framework_options)}: options of a framework function; give "
                        f"framework='torch' or 'jax'")
    given = None
    if inputs is not None:
        if shapes is not None:
            raise DeclarationError("inputs and shapes: give one (with inputs, the shapes are the arrays' own)")
        shapes, given = given_inputs(inputs)
        seeds = 1  # the user's values: nothing to draw again
        if dtypes is None:
            dtypes = given
    # float16 / bfloat16: judged by the frameworks' own error there, on the reference's forward
    dtypes = names_option(dtypes, "dtypes", (*DTYPES, *LOW_PRECISION_DTYPES), "dtype") or list(DTYPES)
    seeds = count_option(seeds, "seeds")
    oracles = names_option(oracles, "oracles", ORACLES, "oracle")
    modes = names_option(modes, "modes", MODES, "mode")
    strict_kinks = option_flag(strict_kinks, "strict_kinks")
    strict = option_flag(strict, "strict")
    if only is not None and not isinstance(only, str):
        raise TypeError(f"only must be a comparison id (str) from a failure message, got {type(only).__name__} {only!r}")
    option_choice(device, "device", devices.DEVICES)
    option_choice(matmul_precision, "matmul_precision", devices.PRECISIONS)
    try:
        declaration = _declared(forward) if (backward, shapes, params, reference, wrt, name) == (None,) * 6 else None
        if declaration is None:
            declaration = declare(forward, backward, shapes, params=params, reference=reference, wrt=wrt,
                                  name=layer_name(forward, name, CATALOG), fixed=fixed, positional=positional,
                                  numpy_seed=numpy_seed, batch_axis=batch_axis, mean_over_batch=mean_over_batch,
                                  methods=methods, kinks=kinks, matrices=matrices, derived=derived, output=output,
                                  contracts=contracts, forwards_of=forwards_of, second_order=second_order,
                                  rounding_units=rounding_units, doc=doc, vectorized=vectorized,
                                  conditions=conditions)
        module = ModuleType(f"gradmatrix_layer_{declaration.name}")
        module.layer = declaration
        candidate = Candidate(module, name=CANDIDATE)
    except DeclarationError as exc:
        raise DeclarationError(str(exc)) from None  # the message, without gradmatrix's frames
    spec = candidate.catalog[declaration.name]
    possible = [o for o in ORACLES if spec.oracles is None or o in spec.oracles]
    low = [d for d in dtypes if d in LOW_PRECISION_DTYPES]
    if low and not any(o in LOW_PRECISION_ORACLES for o in possible):
        raise DeclarationError(f"dtypes {low}: float16 and bfloat16 are judged by torch's and JAX's own error at the "
                               f"dtype, on the layer's reference: give reference= (an array-API function, or "
                               f"{{'torch': f}} / {{'jax': f}})")
    if oracles is None:
        oracles = possible
    else:
        missing = [o for o in oracles if o not in possible]
        if missing:
            raise DeclarationError(f"oracles: {missing} have no forward for {declaration.name!r} "
                                   f"(give reference= to make torch and JAX oracles); available: {possible}")
    request = Request(target=f"check_layer({declaration.name})", verb="check_layer", ops=(spec.name,),
                      dtypes=tuple(dtypes), seeds=seeds, oracles=tuple(oracles), modes=tuple(modes) if modes else None,
                      only=only, strict_kinks=strict_kinks, strict=strict, device=device,
                      matmul_precision=matmul_precision, tolerance=tolerance)
    session = Session(request, candidate=candidate)
    session.run_info.update(matrix=None, dtypes=list(dtypes), seeds=seeds)
    if inputs is not None:  # the report says whose inputs these were
        session.run_info["inputs"] = {"given_by": "user", "dicts": [
            {n: {"shape": list(v.shape), "dtype": str(v.array.dtype)} for n, v in d.items()} for d in shapes]}
    result = LayerResult(session.run())
    result.spec = spec
    return result


def given_inputs(inputs) -> tuple[list, list]:
    """``check_layer``'s ``inputs``: a dict ``{argument name: array}`` or a list of them, as
    shape dicts of ``Given`` values, and the float dtypes the arrays have (float64 first).

    Raises:
        DeclarationError: not a dict or a non-empty list of dicts, a value that is not a
            numeric array, an empty array, a float array of a dtype other than float32 or
            float64, naming the argument.
    """
    many = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    if not many or not all(isinstance(d, dict) and d for d in many):
        raise DeclarationError(f"inputs must be a dict {{argument name: array}} or a non-empty list of them, "
                               f"got {type(inputs).__name__}")
    dicts, dtypes = [], set()
    for i, d in enumerate(many):
        where = f"inputs[{i}]" if isinstance(inputs, (list, tuple)) else "inputs"
        converted = {}
        for name, value in d.items():
            array = np.asarray(value)
            if array.dtype.kind not in "fiub" or array.size == 0:
                raise DeclarationError(f"{where}[{name!r}]: a non-empty array of numbers, got {array.dtype} "
                                       f"of shape {array.shape}")
            if array.dtype.kind == "f":
                if array.dtype.name not in DTYPES:
                    raise DeclarationError(f"{where}[{name!r}] is {array.dtype}: inputs are float64 or float32 "
                                           f"(or integers, for labels)")
                dtypes.add(array.dtype.name)
            converted[name] = Given(array.copy())  # a copy: later writes by the caller change nothing
        dicts.append(converted)
    return dicts, [d for d in DTYPES if d in dtypes]


def _declared(forward) -> Declaration | None:
    """The declaration ``@gradmatrix.layer`` attached to ``forward``, its backward looked up
    in the forward's module, or None when it has none."""
    declaration = getattr(forward, ATTRIBUTE, None)
    if not isinstance(declaration, Declaration):
        return None
    if isinstance(declaration.backward, str):
        backward = getattr(sys.modules.get(forward.__module__), declaration.backward, None)
        if not callable(backward):
            raise DeclarationError(f"{forward.__name__}: no function {declaration.backward!r} in {forward.__module__} "
                                   f"to be its backward (give backward= to the declaration)")
        declaration = dataclasses.replace(declaration, backward=backward, _built={})
    return declaration


def layer(forward=None, backward=None, *, shapes=None, params=None, reference=None, wrt=None, name=None,
          framework=None, rtol=None, atol=None, reason=None, **options):
    """Declare a layer in its module, for ``gradmatrix check mymodule.py``.

    As a decorator on the forward (the module keeps the function as it is)::

        @gradmatrix.layer(shapes={"x": (4, 5)})
        def gelu_forward(x): ...        # its backward: gelu_backward, found in the module

        @gradmatrix.layer(shapes={"x": (4, 3), "y": (4, 3)}, params={"delta": 1.0}, wrt=["x"])
        def huber_loss(x, y, delta): ... # no <name>_forward: a loss, (loss, grads)

    or as a module-level declaration, ``gelu = gradmatrix.layer(gelu_forward, gelu_backward,
    shapes={"x": (4, 5)})``.  A forward named ``<name>_forward`` without ``backward=`` is
    paired with ``<name>_backward`` of its module; any other is a loss.  The other
    arguments are ``check_layer``'s; the dtypes, seeds and oracles come from the command.
    With ``framework="torch"`` or ``"jax"`` the function is a framework function with its own
    backward (``check_layer``'s ``framework=``), and ``gradmatrix check`` also runs its own
    checks, as ``check_layer`` does, with its options: ``dtypes`` (the dtypes the function
    is for, such as ``("bfloat16",)`` for a bfloat16 kernel; float16 and bfloat16 need a
    reference; the command's ``--dtypes`` choose among them), ``nondet_tol``, ``runs``,
    ``second_order``.  ``rtol``, ``atol`` and ``reason`` are the layer's own tolerance
    override (``gradmatrix.checker.tolerance_override``), scoped to its comparisons in every
    check of it, merged with a call's by the larger bound.

    Raises:
        DeclarationError: an argument that cannot be used, naming it.
        TypeError, ValueError: a framework option or an override of the wrong type or value,
            naming it.
    """
    tolerance = tolerance_override(rtol, atol, reason, scope="layer")
    if framework is not None and tolerance is not None:
        raise TypeError("rtol, atol and reason are not options of a framework function (its low-precision checks "
                        "measure their own allowance)")
    framework_only = sorted(set(options) & set(inspect.signature(check_options).parameters))
    if framework is None and framework_only:
        raise TypeError(f"layer got {framework_only}: options of a framework function; give "
                        f"framework='torch' or 'jax'")
    if framework is not None:
        asked = check_options(**options)

    def declaration_of(function):
        if framework is not None:
            from gradmatrix.framework_layers import framework_declaration

            return framework_declaration(function, shapes, framework=framework, reference=reference, params=params,
                                         wrt=wrt, name=name, checks_asked=asked)[0]
        paired = backward
        stem = getattr(function, "__name__", "")
        if paired is None and stem.endswith("_forward"):
            paired = stem[: -len("_forward")] + "_backward"
        return declare(function, paired, shapes, params=params, reference=reference, wrt=wrt,
                       name=layer_name(function, name, CATALOG), tolerance=tolerance, **options)

    if forward is not None:
        return declaration_of(forward)

    def decorate(function):
        setattr(function, ATTRIBUTE, declaration_of(function))
        return function

    return decorate
