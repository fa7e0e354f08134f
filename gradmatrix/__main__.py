"""``python -m gradmatrix``: the ``gradmatrix`` command."""

from gradmatrix.cli import run

run()
