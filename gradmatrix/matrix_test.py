"""The agreement matrix as a pytest test: one test per case, making each of its comparisons.

Parametrized by ``gradmatrix.pytest_plugin`` over the catalog x shapes x batch sizes x seeds x
dtypes; ids read like ``affine-N8-Dx6-M3-seed1-float32``.  A case's comparisons (one per
pair of implementations) run in one test, which shares the case's inputs and each
implementation's result among them and costs pytest's per-test overhead once; each
comparison still has its own record, id (``...-float32-manual~torch``) and ``--gm-only``.
"""

import json

import pytest

from gradmatrix.reports.compare import PASSING, SKIPPED


def test_agreement(gm_comparisons, gm_runner, gm_reproduce, record_property):
    records = []
    for comparison in gm_comparisons:
        record = gm_runner.run(comparison, reproduce=gm_reproduce(comparison))
        record_property("gradmatrix", json.dumps(record))
        records.append(record)
    failing = [r for r in records if r["verdict"] not in PASSING and r["verdict"] != SKIPPED]
    if failing:
        pytest.fail("\n".join(f"{r['id']}: {r['message']}" for r in failing), pytrace=False)
    skipped = [r for r in records if r["verdict"] == SKIPPED]
    if skipped:  # a comparison that did not run is never reported as a pass
        pytest.skip("; ".join(f"{r['id']}: {r['message']}" for r in skipped))
