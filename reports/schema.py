"""The JSON Schema of agreement.json, shipped with the package, validation against it, and
``read``: an agreement.json from disk, or one line on why it is not one.

The schema describes the file: a number JSON cannot spell is ``{"$numberDouble": ...}``
there (``reports.writers``).  ``read`` checks the document as read back, those numbers
restored, against the same schema (a restored number is a number), then what a schema
cannot say and the readers rely on (``_consistent``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

SHOWN = 200  # characters of a message on a rejected document (it quotes what it rejects)


@lru_cache(maxsize=1)
def schema() -> dict:
    """The schema (gradmatrix/reports/schema.json)."""
    return json.loads(resources.files("gradmatrix.reports").joinpath("schema.json").read_text(encoding="utf-8"))


def validate(document: dict) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``document`` (as JSON) fits the schema."""
    import jsonschema

    from gradmatrix.reports.writers import to_json

    jsonschema.validate(json.loads(to_json(document)), schema())


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    cls = jsonschema.validators.validator_for(schema())
    return cls(schema())


def read(path) -> dict:
    """The agreement report in the file ``path``, checked, its numbers exactly as written.

    Nothing is written or moved: the file stays as it is.

    Raises:
        FileNotFoundError: no such file.
        reports.writers.ReportError: it is no agreement report this gradmatrix can read; the
            message, one line, says why (not JSON, too large or deep, another schema
            version, the first place that does not fit the schema, an inconsistency).
    """
    from gradmatrix.reports.writers import read_json

    return check(read_json(path))


def check(document) -> dict:
    """``document`` (a report as read back by ``writers.from_json``), when it is one.

    Raises:
        reports.writers.ReportError: it is not; the message, one line, says why.
    """
    import jsonschema

    from gradmatrix.reports.document import SCHEMA, SCHEMA_VERSION
    from gradmatrix.reports.writers import ReportError

    version = document.get("schema_version") if isinstance(document, dict) else None
    if isinstance(document, dict) and document.get("schema") == SCHEMA and version != SCHEMA_VERSION:
        raise ReportError(f"schema version {_shown(version)}; this gradmatrix reads version {SCHEMA_VERSION} "
                          f"(run the matrix again to get a report of it)")
    problem = jsonschema.exceptions.best_match(_validator().iter_errors(document))
    if problem is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in problem.absolute_path) or "the document"
        raise ReportError(_shown(f"{where.lstrip('.')}: {problem.message}"))
    reason = _consistent(document)
    if reason:
        raise ReportError(reason)
    return document


def _shown(value) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


def _consistent(document: dict) -> str:
    """What the schema cannot say and the readers rely on ("" when it holds)."""
    shard = document["plan"]["shard"]
    if shard is not None:
        index, count = (int(v) for v in shard.split("/"))
        if index >= count:
            return f"plan.shard: {shard} is no shard (I/N needs I < N)"
    return ""
