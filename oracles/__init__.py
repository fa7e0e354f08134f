"""The catalog, case inputs, and the implementations compared on them.

* ``oracles.catalog``: every op, declared once.
* ``oracles.cases``: cases and their inputs, drawn from per-case generators.
* ``oracles.torch_oracle``, ``oracles.jax_oracle``, ``oracles.numeric``: the oracles.
* ``oracles.candidate``: modules following the ``manual`` contract (``manual`` included).
"""
