"""The agreement matrix as a pytest test: one test per comparison.

Parametrized by ``oracles.pytest_plugin`` over the catalog x shapes x batch sizes x seeds x
dtypes x pairs of implementations; ids read like
``affine-N8-Dx6-M3-seed1-float32-manual~torch``.
"""

import json

import pytest

from gradmatrix.reports.compare import PASSING, SKIPPED


def test_agreement(gm_comparison, gm_runner, gm_reproduce, record_property):
    record = gm_runner.run(gm_comparison, reproduce=gm_reproduce(gm_comparison))
    record_property("gradmatrix", json.dumps(record))
    if record["verdict"] == SKIPPED:
        pytest.skip(record["message"])
    if record["verdict"] not in PASSING:
        pytest.fail(record["message"], pytrace=False)
