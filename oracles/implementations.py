"""The implementations a run compares: candidates (``manual`` first) and the oracles.

Each has ``name``, ``available()`` (raises ``Unavailable`` with the reason) and
``evaluate(CaseInputs) -> Result``.  Frameworks are imported lazily, so that a run which
does not ask for jax never imports it.
"""

from __future__ import annotations

import importlib

from gradmatrix.oracles.result import Unavailable

ORACLES = ("torch", "jax", "numeric")
# the order of names in a pair: candidates first, then autodiff oracles, numeric (the truth) last
ORDER = ("manual", "torch", "jax", "numeric")
_MODULES = {"torch": "gradmatrix.oracles.torch_oracle", "jax": "gradmatrix.oracles.jax_oracle", "numeric": "gradmatrix.oracles.numeric"}


class Oracle:
    """A framework oracle, imported the first time it is used."""

    def __init__(self, name: str, **options):
        self.name = name
        self.options = options
        self._module = None

    def _load(self):
        if self._module is None:
            self._module = importlib.import_module(_MODULES[self.name])
        return self._module

    def available(self) -> None:
        self._load().available(**self.options)

    def evaluate(self, inputs):
        return self._load().evaluate(inputs, **self.options)

    def compile_ahead(self, cases):
        """Let an oracle that compiles per shape (JAX) start on ``cases`` in the background;
        returns what to ``stop()`` when the run ends, or None."""
        start = getattr(self._load(), "compile_ahead", None)
        return start(cases, **self.options) if start is not None else None

    def call(self, function: str, inputs):
        """Another entry point of the oracle's module (``evaluate_jvp``, ``evaluate_hvp``)."""
        return getattr(self._load(), function)(inputs, **self.options)


def oracle(name: str, **options) -> Oracle:
    """The oracle called ``name`` ("torch", "jax" or "numeric").

    Raises:
        ValueError: an unknown oracle name.
    """
    if name not in _MODULES:
        raise ValueError(f"unknown oracle {name!r}; choose from {list(ORACLES)}")
    return Oracle(name, **options)


def unavailable_reason(impl) -> str | None:
    """None when ``impl`` can run here, else the reason it cannot."""
    try:
        impl.available()
    except Unavailable as exc:
        return str(exc)
    return None
