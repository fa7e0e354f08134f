"""The agreement matrix (see ``gradmatrix.matrix_test``); options: ``pytest --help`` under "gradmatrix"."""

from gradmatrix.matrix_test import test_agreement  # noqa: F401  (collected here as a test)
