"""Writing reports to disk: atomically, and only inside the chosen output directory.

A run marks its output directory as in progress (``begin``) before it computes anything and
publishes its reports when it ends (``finish``), so what a directory holds is always what
the last run concluded, or a marker saying that a run did not finish:

* ``begin`` checks the directory can be written, writes ``agreement.in-progress`` and moves
  the reports there aside into ``previous/``: a run that dies leaves no stale PASS behind.
* ``finish`` writes the new reports and removes the marker.  A complete report that the new
  one does not supersede (the new run is incomplete, or covers fewer comparisons: ``--only``,
  a subset of ops, Ctrl-C) stays in ``previous/``, and ``finish`` says so; otherwise
  ``previous/`` goes.

Reports get ordinary file permissions (0666 less the umask).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from pathlib import Path

IN_PROGRESS = "agreement.in-progress"
PREVIOUS = "previous"
FORMATS = ("json", "md", "html")


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
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # 0666 less the umask, as for any file a program creates (mkstemp would make it 0600)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
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
    """The document as stable, sorted JSON (non-finite floats written as null): indented, with
    one comparison record per line.  Records are encoded compactly, by the json module's C
    encoder (indenting all of them took its pure-Python one several seconds on the full
    matrix)."""
    records = document.get("comparisons")
    if not isinstance(records, list) or not records:
        return json.dumps(_finite(document), indent=1, sort_keys=True) + "\n"
    marker = json.dumps("\0comparisons\0")  # a JSON string no document holds: control characters are escaped
    text = json.dumps(_finite({**document, "comparisons": "\0comparisons\0"}), indent=1, sort_keys=True)
    lines = ",\n".join("  " + _record_json(record) for record in records)
    return text.replace(marker, "[\n" + lines + "\n ]", 1) + "\n"


def _record_json(record: dict) -> str:
    try:  # most records hold only finite numbers: encoded as they are
        return json.dumps(record, sort_keys=True, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(record), sort_keys=True)


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


def check_writable(out_dir: str | os.PathLike) -> Path:
    """``out_dir``, created if need be, after writing and removing a probe file there.

    Raises:
        OSError: it cannot be created or written (a file in the way, no permission).
    """
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    probe = path / f".gradmatrix-probe-{secrets.token_hex(6)}"
    with open(probe, "w", encoding="utf-8") as handle:
        handle.write("")
    probe.unlink()
    return path


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _complete(document: dict | None) -> bool:
    """A report of a complete run of its whole matrix (not cut short, not ``--only``, not a shard)."""
    if not document or "plan" not in document or not (document.get("summary") or {}).get("complete"):
        return False
    from gradmatrix.reports.document import digest

    return digest(document["plan"]["ids"]) == document["plan"]["matrix"]["digest"]


def _supersedes(new: dict | None, old: dict) -> bool:
    """``new`` is a complete run of at least the comparisons of ``old``."""
    return _complete(new) and set(new["plan"]["ids"]) >= set(old["plan"]["ids"])


def begin(out_dir: str | os.PathLike, what: str = "a gradmatrix run") -> Path:
    """Mark ``out_dir`` as being written by a run, and move the reports there aside.

    The reports there go to ``previous/``, which so holds the latest complete report: a
    partial run's reports (cut short, ``--only``, a shard) never displace a complete one's.

    Raises:
        OSError: the directory cannot be written.
    """
    out = check_writable(out_dir)
    current = [out / f"agreement.{fmt}" for fmt in FORMATS if (out / f"agreement.{fmt}").exists()]
    if current:
        previous = out / PREVIOUS
        if _complete(_read(out / "agreement.json")) or not _complete(_read(previous / "agreement.json")):
            shutil.rmtree(previous, ignore_errors=True)
            previous.mkdir()
            for path in current:
                os.replace(path, previous / path.name)
        else:
            for path in current:
                path.unlink()
    write_atomic(out / IN_PROGRESS,
                 f"{what} started writing this directory at "
                 f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} (process {os.getpid()}).\n"
                 f"While this file exists, the run has not finished: if no run is going on, it ended "
                 f"without a verdict and nothing here is a result.  Reports from before it are in {PREVIOUS}/.\n")
    return out


def finish(document: dict, out_dir: str | os.PathLike, formats=("json", "md")) -> tuple[list[Path], str]:
    """Write the run's reports (``write_reports``), then drop the in-progress marker.

    Returns:
        The paths written, and a sentence on a complete report that was kept because this
        one does not supersede it ("" when nothing was kept).
    """
    out = Path(out_dir)
    written = write_reports(document, out, formats)
    note = ""
    previous = out / PREVIOUS
    kept = _read(previous / "agreement.json")
    if _complete(kept):
        mine, theirs = set(document["plan"]["ids"]), set(kept["plan"]["ids"])
        if _supersedes(document, kept):
            shutil.rmtree(previous, ignore_errors=True)  # superseded by this complete run
        else:
            s = document["summary"]
            why = "is incomplete" if not s["complete"] else f"has {len(mine & theirs)} of its {len(theirs)} comparisons"
            verdict = "PASS" if kept["summary"]["passed"] else "FAIL"
            note = (f"this report ({s['comparisons']} comparisons) does not replace the complete report of "
                    f"{kept.get('created', '?')} ({kept['summary']['comparisons']} comparisons, {verdict}): it {why}; "
                    f"that report is kept in {previous}")
    elif previous.exists():
        shutil.rmtree(previous, ignore_errors=True)  # nothing complete there to keep
    try:
        (out / IN_PROGRESS).unlink()
    except FileNotFoundError:
        pass
    return written, note


def publish(document: dict, out_dir: str | os.PathLike, formats=("json", "md"), what: str = "gradmatrix") -> tuple:
    """``begin`` then ``finish``: for a document already in hand (``report``, ``merge``)."""
    begin(out_dir, what)
    return finish(document, out_dir, formats)


def abandon(out_dir: str | os.PathLike, remove: bool = False) -> None:
    """Undo ``begin`` for a run that stopped before computing anything (a usage error): the
    reports moved aside come back, and the marker goes; with ``remove``, the directory too
    when nothing is left in it (it was made for this run)."""
    out = Path(out_dir)
    previous = out / PREVIOUS
    if previous.is_dir() and not any((out / f"agreement.{fmt}").exists() for fmt in FORMATS):
        for path in previous.iterdir():
            os.replace(path, out / path.name)
        previous.rmdir()
    try:
        (out / IN_PROGRESS).unlink()
    except FileNotFoundError:
        pass
    if remove and not any(out.iterdir()):
        out.rmdir()
