"""The JSON Schema of agreement.json, shipped with the package, and validation against it."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def schema() -> dict:
    """The schema (gradmatrix/reports/schema.json)."""
    return json.loads(resources.files("gradmatrix.reports").joinpath("schema.json").read_text(encoding="utf-8"))


def validate(document: dict) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``document`` (as JSON) fits the schema."""
    import jsonschema

    from gradmatrix.reports.writers import to_json

    jsonschema.validate(json.loads(to_json(document)), schema())
