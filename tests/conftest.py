import json
from pathlib import Path

import pytest

from gradmatrix.reports.schema import validate



@pytest.fixture
def read_report():
    """Load an agreement.json and validate it against the shipped schema."""

    def read(path) -> dict:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        validate(document)
        return document

    return read


@pytest.fixture
def empty_store(tmp_path, monkeypatch):
    """An empty store of compiled JAX functions (``oracles.jax_store``) and none in memory;
    what was in memory is restored afterwards."""
    from gradmatrix.oracles import jax_store

    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", str(tmp_path))
    saved = dict(jax_store._EXECUTABLES)
    jax_store._EXECUTABLES.clear()
    yield tmp_path
    jax_store._EXECUTABLES.clear()
    jax_store._EXECUTABLES.update(saved)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's loadgroup reads the marks
def pytest_collection_modifyitems(items):
    """Keep on one xdist worker the tests of a module that share a module-scoped fixture
    defined in that module, so that its work (often a whole ``gradmatrix`` run) is done once
    per suite rather than once per worker that receives one of the module's tests.  ``make test``
    runs ``-n 2 --dist loadgroup``; an explicit ``xdist_group`` mark is left as it is."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        module = item.nodeid.split("::")[0]
        fixtures = getattr(item, "_fixtureinfo", None)
        shared = fixtures is not None and any(
            definition.scope == "module" and getattr(definition.node, "nodeid", None) == module
            for definitions in fixtures.name2fixturedefs.values() for definition in definitions)
        if shared:
            item.add_marker(pytest.mark.xdist_group(module))
