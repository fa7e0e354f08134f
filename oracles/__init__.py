"""The catalog, case inputs, and the implementations compared on them.

* ``oracles.catalog``: every op, declared once.
* ``oracles.cases``: cases and their inputs, drawn from per-case generators.
* ``oracles.torch_oracle``, ``oracles.jax_oracle``, ``oracles.numeric``: the oracles.
* ``oracles.candidate``: modules following the ``manual`` contract (``manual`` included).
* ``oracles.checker``: check your own module from Python (``oracles.check(module)``).
"""


def check(module, ops=None, **options):
    """Check a candidate module against the oracles; see ``oracles.checker.check``."""
    from oracles.checker import check as _check

    return _check(module, ops, **options)
