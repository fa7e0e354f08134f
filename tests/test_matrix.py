"""The agreement matrix (see ``oracles.matrix_test``); options: ``pytest --help`` under "gradmatrix"."""

from oracles.matrix_test import test_agreement  # noqa: F401  (collected here as a test)
