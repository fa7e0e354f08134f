"""The implementations a run compares: candidates (``manual`` first) and the oracles.

Each has ``name``, ``available()`` (raises ``Unavailable`` with the reason) and
``evaluate(CaseInputs) -> Result``.  The oracles are classes in one registry (``REGISTRY``),
each saying what it provides: reverse mode, forward mode, second order, devices, and which
forward it runs.  Frameworks are imported lazily, so that a run which
does not ask for jax never imports it.
"""

from __future__ import annotations

import contextlib
import importlib
import sys

from gradmatrix.oracles.result import Unavailable

FORWARD = "forward mode"
REVERSE_OVER_REVERSE = "reverse over reverse"


class Oracle:
    """An oracle: what it provides, said once, and its module, imported the first time it is
    used.  A framework is one subclass here plus its module (``available``, ``evaluate`` and,
    where it provides them, ``evaluate_jvp``, ``evaluate_hvp``, ``compile_ahead``, ``expect``;
    one that follows ``--device`` also ``gpu_reason``, ``matmul_precision`` and ``settings``);
    the runner, the modes, the devices, the report's environment, the store's fingerprint and
    declared layers read these attributes, never a name.
    """

    name: str = ""
    module: str = ""  # the module that computes: gradmatrix.oracles.<name>_oracle
    # jvp: how it computes J v for "jvp" cases ("" where it does not): FORWARD (forward-mode
    # autodiff, sharing no code with any backward pass) or REVERSE_OVER_REVERSE (the gradient
    # of <J^T u, v> with respect to u, from its own vjp); the candidate meets a FORWARD one first
    forward_mode: str = ""
    second_order: bool = False  # hvp: Hessian-vector products of a loss ("hvp" cases)
    on_device: bool = False  # follows --device (cuda); False: always on the CPU
    low_precision: bool = False  # computes in float16 and bfloat16 (a reference for those cases)
    # compiles a function per shape, which a run starts early: in a process of its own
    # (gradmatrix.oracle_host) or with ``compile_ahead`` on a thread (gradmatrix.runner.Runner.compile_ahead)
    compiles: bool = False
    requires: tuple = ()  # the top-level modules it imports: a stored result of it counts only where they are found
    # the key of a declared layer's per-framework reference (``reference={"torch": f}``)
    # that is this oracle's forward
    reference_key: str = ""
    # what forward it differentiates: an op's forward in this framework (its module's FORWARDS,
    # else the op's array-API reference), or float64 NumPy differences of one
    runs: str = ""

    def __init__(self, **options):
        self.options = options
        self._module = None

    def _load(self):
        if self._module is None:
            self._module = importlib.import_module(self.module)
        return self._module

    def available(self) -> None:
        self._load().available(**self.options)

    def evaluate(self, inputs):
        """Reverse mode: the forward and the gradients of a case (``Result``)."""
        return self._load().evaluate(inputs, **self.options)

    def jvp(self, inputs) -> tuple:
        """``(out, J v)`` of a "jvp" case (oracles with a ``forward_mode``)."""
        return self._load().evaluate_jvp(inputs, **self.options)

    def hvp(self, inputs) -> tuple:
        """``(loss, {input: H v})`` of an "hvp" case (``second_order`` oracles)."""
        return self._load().evaluate_hvp(inputs, **self.options)

    def compile_ahead(self, cases):
        """Let an oracle that compiles per shape (``compiles``: JAX) start on ``cases`` in the
        background; returns what to ``stop()`` when the run ends, or None."""
        return self._load().compile_ahead(cases, **self.options) if self.compiles else None

    def imported(self) -> bool:
        """Whether it has been used here (its module, and so its framework, imported): its
        settings are read and set only then, never importing anything for them (importing
        the JAX oracle's module turns on JAX's 64-bit mode)."""
        return sys.modules.get(self.module) is not None and all(
            sys.modules.get(module) is not None for module in self.requires)

    def gpu_reason(self) -> str:
        """Why it cannot compute on a GPU here ("" when it can); imports its framework."""
        return self._load().gpu_reason() if self.on_device else f"{self.name} computes on the CPU only"

    def matmul_precision(self, level: str):
        """A context setting its framework's float32 matmul precision to ``level`` ("high" or
        "highest"; ``oracles.devices.matmul_precision``), for an oracle ``imported`` here;
        nothing for an oracle with none."""
        setting = getattr(self._load(), "matmul_precision", None) if self.on_device else None
        return setting(level) if setting else contextlib.nullcontext()

    def settings(self, device: str) -> dict | None:
        """What the report records of its framework here (``reports.environment``), or None;
        for an oracle ``imported`` here."""
        read = getattr(self._load(), "settings", None) if self.on_device else None
        return read(device) if read else None

    def expect(self, cases) -> None:
        """Tell an oracle that compiles per shape the cases this process will evaluate, in
        their order: it may then compile several functions at once (``jax_oracle.expect``)."""
        if self.compiles:
            self._load().expect(cases, **self.options)


class Torch(Oracle):
    name = "torch"
    module = "gradmatrix.oracles.torch_oracle"
    second_order = on_device = low_precision = True
    # torch.func.jvp (forward mode) imports torch._dynamo at its first call in torch 2.13: 1 to 2 s
    # of CPU in every process, a third of a check's (oracles.torch_oracle.evaluate_jvp)
    forward_mode = REVERSE_OVER_REVERSE
    reference_key = "torch"
    requires = ("torch",)
    runs = "the op's forward in torch, float32 or float64 as the case (reverse; J v and H v reverse over reverse)"


class Jax(Oracle):
    name = "jax"
    module = "gradmatrix.oracles.jax_oracle"
    second_order = on_device = low_precision = compiles = True
    forward_mode = FORWARD
    reference_key = "jax"
    requires = ("jax", "jaxlib")
    runs = ("the op's forward in JAX, compiled per shape (jax.vjp; with a jvp case, jax.linearize: J v, and transposed, "
            "the vjp; H v forward over reverse)")


class Numeric(Oracle):
    name = "numeric"
    module = "gradmatrix.oracles.numeric"
    reference_key = "numpy"
    runs = "central differences of the op's float64 NumPy forward, with their error bound"


# the registry: every oracle, in the order pairs and reports name them (numeric, the truth, last)
REGISTRY: dict[str, type[Oracle]] = {cls.name: cls for cls in (Torch, Jax, Numeric)}
ORACLES = tuple(REGISTRY)
# the order of names in a pair: candidates first, then autodiff oracles, numeric (the truth) last
ORDER = ("manual", *ORACLES)
# oracles with jvp, forward mode proper first (the one the candidate's reverse mode meets)
FORWARD_MODE = tuple(sorted((name for name, cls in REGISTRY.items() if cls.forward_mode),
                            key=lambda name: REGISTRY[name].forward_mode != FORWARD))
SECOND_ORDER = tuple(name for name, cls in REGISTRY.items() if cls.second_order)  # oracles with hvp
ON_DEVICE = tuple(name for name, cls in REGISTRY.items() if cls.on_device)  # the oracles --device moves
LOW_PRECISION = tuple(name for name, cls in REGISTRY.items() if cls.low_precision)  # float16/bfloat16 references
REFERENCE_KEYS = {cls.reference_key: name for name, cls in REGISTRY.items()}  # reference={key: f} -> oracle
# the modules the oracles import, in registry order: their versions are what computes a reference
FRAMEWORK_MODULES = tuple(dict.fromkeys(module for cls in REGISTRY.values() for module in cls.requires))
# oracles that import no framework (numeric): a host process of another oracle computes
# them at no import cost, as spare work (gradmatrix.oracle_host.OracleHost.submit)
NO_FRAMEWORK = tuple(name for name, cls in REGISTRY.items() if not cls.requires)


def oracle(name: str, **options) -> Oracle:
    """The oracle called ``name`` ("torch", "jax" or "numeric").

    Raises:
        ValueError: an unknown oracle name.
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown oracle {name!r}; choose from {list(ORACLES)}")
    return REGISTRY[name](**options)


def findable(name: str) -> bool:
    """Whether oracle ``name``'s framework can be found here, importing nothing (a stored
    result of an oracle counts only where it could have been computed: ``gradmatrix.runner``)."""
    import importlib.util

    try:
        return all(importlib.util.find_spec(module) is not None for module in REGISTRY[name].requires)
    except (ImportError, ValueError):
        return False


def unavailable_reason(impl) -> str | None:
    """None when ``impl`` can run here, else the reason it cannot."""
    try:
        impl.available()
    except Unavailable as exc:
        return str(exc)
    return None
