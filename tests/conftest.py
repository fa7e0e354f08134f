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
