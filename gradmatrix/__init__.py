"""gradmatrix: is my gradient right, and if not, where, by how much and why?

The public Python API::

    import gradmatrix

    gradmatrix.check("my_layers.py").raise_for_failures()
    gradmatrix.check_layer(gelu_forward, gelu_backward, {"x": (4, 5)}).raise_for_failures()

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


def check_layer(forward, backward=None, shapes=None, **options):
    """Check your own layer's backward (or loss) against the oracles; see ``gradmatrix.own_layers.check_layer``."""
    __tracebackhide__ = True
    from gradmatrix.own_layers import check_layer as _check_layer

    return _check_layer(forward, backward, shapes, **options)


def layer(forward=None, backward=None, **declaration):
    """Declare a layer in its module for ``gradmatrix check``; see ``gradmatrix.own_layers.layer``."""
    from gradmatrix.own_layers import layer as _layer

    return _layer(forward, backward, **declaration)


def __getattr__(name):
    # the input kinds of check_layer's shapes, imported only when asked for (the package
    # stays cheap to import for the pytest plugin)
    if name in ("Floats", "Integers", "Methods", "Param", "DeclarationError"):
        from gradmatrix.oracles import declared

        return getattr(declared, name)
    if name == "Fresh":
        from gradmatrix.oracles.contract import Fresh

        return Fresh
    raise AttributeError(f"module 'gradmatrix' has no attribute {name!r}")


__all__ = ["check", "check_layer", "layer", "Floats", "Integers", "Fresh", "Methods", "Param", "DeclarationError",
           "__version__"]
