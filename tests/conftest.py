import json
from pathlib import Path

import pytest

from gradmatrix.reports.schema import validate


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Keep ``xdist_group`` marks working under ``--dist loadgroup`` (the README's test
    command): pytest-xdist 3.8 writes the group into ``item._nodeid``, which pytest 9.2 no
    longer reads (``nodeid`` comes from ``item._id``), so every group was silently spread
    over the workers (pytest-dev/pytest-xdist#1386).  Here, after xdist's own hook, the group
    suffix is written where pytest reads it; once xdist's fix lands, the id already ends with
    it and nothing is done."""
    if not config.pluginmanager.hasplugin("xdist") or not config.getoption("loadgroup", False):
        return
    from _pytest.nodeid import coerce_node_id

    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        suffix = "@" + "_".join(names)
        if names and not item.nodeid.endswith(suffix):
            item._id = coerce_node_id(item.nodeid + suffix)


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
