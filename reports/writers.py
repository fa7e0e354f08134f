"""Writing reports to disk: atomically, and only inside the chosen output directory."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def safe_path(out_dir: str | os.PathLike, name: str) -> Path:
    """``out_dir / name``, refusing names that would leave ``out_dir``.

    Raises:
        ValueError: ``name`` is absolute or climbs out of the directory.
    """
    root = Path(out_dir).resolve()
    target = (root / name).resolve()
    if target.parent != root:
        raise ValueError(f"report name {name!r} would leave the output directory {root}")
    return target


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename.

    A crash mid-write leaves the previous file in place, never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def to_json(document: dict) -> str:
    """The document as stable, sorted JSON (non-finite floats written as null)."""
    return json.dumps(_finite(document), indent=1, sort_keys=True) + "\n"


def _finite(value):
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_reports(document: dict, out_dir: str | os.PathLike, formats=("json", "md")) -> list[Path]:
    """Write the document in each format to ``out_dir`` (agreement.json, .md, .html).

    Returns:
        The paths written.
    """
    from gradmatrix.reports import markdown

    renderers = {"json": to_json, "md": markdown.render}
    if "html" in formats:
        from gradmatrix.reports import html

        renderers["html"] = html.render
    written = []
    for fmt in formats:
        if fmt not in renderers:
            raise ValueError(f"unknown report format {fmt!r}; choose from json, md, html")
        written.append(write_atomic(safe_path(out_dir, f"agreement.{fmt}"), renderers[fmt](document)))
    return written
