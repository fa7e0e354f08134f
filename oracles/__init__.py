"""The catalog, case inputs, and the implementations compared on them.

* ``gradmatrix.oracles.catalog``: every op, declared once.
* ``gradmatrix.oracles.cases``: cases and their inputs, drawn from per-case generators.
* ``gradmatrix.oracles.torch_oracle``, ``jax_oracle``, ``numeric``: the oracles.
* ``gradmatrix.oracles.candidate``: modules following the ``manual`` contract (``manual`` included).
* ``gradmatrix.oracles.declared``: layers declared by their users, turned into catalog-style specs.

Nothing here imports ``gradmatrix.reports`` or the runner: data flows from the catalog
through the implementations to the comparison, never back.
"""
