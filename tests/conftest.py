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
