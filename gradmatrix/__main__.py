"""``python -m gradmatrix``: the ``gradmatrix`` command."""

import sys

from gradmatrix.cli import main

sys.exit(main())
