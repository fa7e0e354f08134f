"""gradmatrix: is my gradient right, and if not, where, by how much and why?

The public Python API::

    import gradmatrix

    gradmatrix.check("my_layers.py").raise_for_failures()

The packages, in the direction data flows:

* ``gradmatrix.manual``: hand-derived NumPy forward and backward passes (imports nothing of ours);
* ``gradmatrix.oracles``: the catalog, case inputs, the torch, JAX and numeric oracles, candidates;
* ``gradmatrix.reports``: metrics, tolerances, the comparison, documents and writers (runs nothing);
* ``gradmatrix.runner``, ``gradmatrix.checker``, ``gradmatrix.pytest_plugin``, ``gradmatrix.cli``:
  what runs things, on top.
"""

__version__ = "0.1.0"


def check(module, ops=None, **options):
    """Check a candidate module against the oracles; see ``gradmatrix.checker.check``."""
    from gradmatrix.checker import check as _check

    return _check(module, ops, **options)


__all__ = ["check", "__version__"]
