import collections
import json
import os
from pathlib import Path

import pytest

from gradmatrix.reports.schema import validate

LAYERS = Path(__file__).parent / "layers"

# options given to this run through PYTEST_ADDOPTS (``-q``, ``--durations``) are this run's:
# the pytest runs the tests start read their own output, so they must not inherit them
os.environ.pop("PYTEST_ADDOPTS", None)


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
    """An empty store of compiled JAX functions (``oracles.jax_store``) and none in memory,
    no case announced (``jax_oracle._WITH_JV``); what was in memory is restored afterwards."""
    from gradmatrix.oracles import jax_oracle, jax_store

    monkeypatch.setenv("GRADMATRIX_JAX_CACHE", str(tmp_path))
    monkeypatch.setattr(jax_oracle, "_WITH_JV", {})  # no case to come: each case takes its own kind of function
    saved = dict(jax_store._EXECUTABLES)
    jax_store._EXECUTABLES.clear()
    yield tmp_path
    jax_store._EXECUTABLES.clear()
    jax_store._EXECUTABLES.update(saved)


@pytest.fixture(scope="session")
def framework_functions_checked(tmp_path_factory):
    """``gradmatrix check tests/layers/MODULE --seeds 1 --progress none --out DIR``, run once a
    session per module: returns (the run, its agreement.json as ``gradmatrix report`` reads it:
    the file fits the schema, DIR).  A module declaring framework
    functions costs seconds per check (its own checks are compiled and run in its worker, and
    nothing of a user's layer is stored), and two files look at the same check: test_custom_backward
    at what the command says, test_isolation at its records against an in-process check.  Their
    tests share the ``xdist_group`` "framework_functions", so that ``make test`` runs each check once."""
    from cli_helpers import gradmatrix

    from gradmatrix.reports.schema import read

    runs = {}

    def checked(module: str):
        if module not in runs:
            out = tmp_path_factory.mktemp(module.removesuffix(".py"))
            run = gradmatrix("check", LAYERS / module, "--seeds", "1", "--progress", "none", "--out", out)
            runs[module] = (run, read(out / "agreement.json"), out)
        return runs[module]

    return checked


BATCH = 20  # parameter sets of one test function sent to a worker together


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    """Group the tests for ``make test`` (``-n 3 --dist loadgroup``), around pytest-xdist's own hook.

    Before it: the tests of a module that share a module-scoped fixture defined in that module
    get one ``xdist_group``, so that the fixture's work (often a whole ``gradmatrix`` run) is
    done once per suite, not once per worker that receives one of the module's tests (an
    explicit ``xdist_group`` mark is left as it is); the parameter sets of a test function
    go in groups of ``BATCH``: the controller sends one group at a time and its bookkeeping
    grows with the square of their number (4,500 tests one by one: 3 s of its CPU, profiled).

    After it: pytest-xdist 3.8 writes the group into ``item._nodeid``, which pytest 9.2 no longer
    reads (``nodeid`` comes from ``item._id``), so every group was silently spread over the
    workers (pytest-dev/pytest-xdist#1386).  The group suffix is written where pytest reads it;
    once xdist's fix lands, the id already ends with it and nothing is done."""
    seen = collections.Counter()
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        module = item.nodeid.split("::")[0]
        function = item.nodeid.split("[")[0]
        fixtures = getattr(item, "_fixtureinfo", None)
        shared = fixtures is not None and any(
            definition.scope == "module" and getattr(definition.node, "nodeid", None) == module
            for definitions in fixtures.name2fixturedefs.values() for definition in definitions)
        if shared:
            item.add_marker(pytest.mark.xdist_group(module))
        elif function != item.nodeid:  # one of a parametrized test's sets
            seen[function] += 1
            item.add_marker(pytest.mark.xdist_group(f"{function}#{(seen[function] - 1) // BATCH}"))
    result = yield
    if config.pluginmanager.hasplugin("xdist") and config.getoption("loadgroup", False):
        from _pytest.nodeid import coerce_node_id

        for item in items:
            names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                            for m in item.iter_markers("xdist_group")})
            suffix = "@" + "_".join(names)
            if names and not item.nodeid.endswith(suffix):
                item._id = coerce_node_id(item.nodeid + suffix)
    return result


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """A pytest-xdist worker ends here, once its results are all sent (``workerfinished``,
    at the end of its session), as the command does: what is due at exit runs (the stores'
    last writes, the fork servers' end), then the process ends without Python's teardown
    of torch and JAX, about two seconds the controller waited for at the end of every run.
    Its status is 0: the controller reads its results, not its status."""
    if hasattr(config, "workerinput"):
        from gradmatrix.cli import exit_without_teardown

        exit_without_teardown(0)
