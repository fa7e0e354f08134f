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


# check, check_layer and layer are the functions themselves (so help() and an IDE see their
# keyword arguments), imported when first asked for: the package stays cheap to import for
# the pytest plugin
_LAZY = {"check": "gradmatrix.checker", "CheckResult": "gradmatrix.checker",
         "check_layer": "gradmatrix.own_layers", "layer": "gradmatrix.own_layers", "LayerResult": "gradmatrix.own_layers",
         "Floats": "gradmatrix.oracles.declared", "Integers": "gradmatrix.oracles.declared",
         "Methods": "gradmatrix.oracles.declared", "Param": "gradmatrix.oracles.declared",
         "Recovered": "gradmatrix.oracles.declared", "Kinks": "gradmatrix.oracles.declared",
         "DeclarationError": "gradmatrix.oracles.declared", "Fresh": "gradmatrix.oracles.contract"}


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gradmatrix' has no attribute {name!r}")


__all__ = ["check", "check_layer", "layer", "CheckResult", "LayerResult", "Floats", "Integers", "Fresh", "Methods",
           "Param", "Recovered", "Kinks", "DeclarationError", "__version__"]
