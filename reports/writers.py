"""Reading and writing reports: exactly, atomically, and only inside the chosen output directory.

**The JSON.** ``to_json`` writes every number as it is, and a non-finite one (an infinite
share of the allowed error, where the reference is exactly 0; a NaN a candidate returned)
as ``{"$numberDouble": "Infinity"}``, ``"-Infinity"`` or ``"NaN"``: the spelling of MongoDB's
Extended JSON, valid JSON for every reader, and never mistaken for a number or a string of
the document.  ``from_json`` turns those back into floats, so a report read back holds the
very numbers its run had (an object of that one key and spelling is always read as the
number: no report holds one as data).  ``read_json`` bounds what it reads (``MAX_BYTES``, ``MAX_DEPTH``)
and says in one line (``ReportError``) what is wrong with a file that is not such JSON.
Reading never changes or removes what it reads.

**One writer at a time.** A directory is written by one command at a time: ``lock`` takes an
exclusive ``flock`` on ``.gradmatrix.lock`` in it, which the operating system releases when
the process ends however it ends, so a killed run leaves no lock behind; a second command
meanwhile is refused (``DirectoryBusy``, naming the holder).  ``gradmatrix run`` and
``check`` hold it for the whole run, as a pytest session of the matrix does for its own.

**Marked while in progress.** A run marks its output directory as in progress (``begin``)
before it computes anything and publishes its reports when it ends (``finish``), so what a
directory holds is always what the last run concluded, or a marker saying that a run did
not finish:

* ``begin`` checks the directory can be written, writes ``agreement.in-progress`` and moves
  the reports there aside into ``previous/``: a run that dies leaves no stale PASS behind.
* ``finish`` writes the new reports and removes the marker.  A complete report that the new
  one does not supersede (the new run is incomplete, or covers fewer comparisons: ``--only``,
  a subset of ops, Ctrl-C) stays in ``previous/``, and ``finish`` says so; otherwise
  ``previous/`` goes.
* ``publish`` does both for a document in hand (``report``, ``merge``), holding the lock, and
  never moves, replaces or removes a file it was given to read (``inputs``): one that would be
  replaced is refused, one that is a report of the directory stays where it is.

Reports get ordinary file permissions (0666 less the umask).
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import secrets
import shutil
import time
from pathlib import Path

IN_PROGRESS = "agreement.in-progress"
PREVIOUS = "previous"
FORMATS = ("json", "md", "html")
LOCK = ".gradmatrix.lock"

NONFINITE = "$numberDouble"  # {"$numberDouble": "Infinity"}: a number JSON cannot spell
_SPELLED = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}
# the full matrix's agreement.json is 50 to 70 MB (24,576 records of 2 to 3 kB each): a report
# several times that size is no report of ours, and parsing it would take gigabytes of memory
MAX_BYTES = 256 * 2**20
# a report nests about 8 levels (document, comparisons, record, tensors, tensor, metrics,
# worst_index); deeper input is refused before parsing, so that no reader recurses far
MAX_DEPTH = 64


class ReportError(ValueError):
    """A file that cannot be read as an agreement report; the message is one line."""


class DirectoryBusy(OSError):
    """Another command is writing the output directory; the message is one line naming it."""


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


# --- the JSON of a report -----------------------------------------------------------------

def to_json(document: dict) -> str:
    """The document as stable, sorted JSON (non-finite numbers spelled ``{"$numberDouble":
    "Infinity"}``, see the module docstring): indented, with one comparison record per line.
    Records are encoded compactly, by the json module's C encoder (indenting all of them
    took its pure-Python one several seconds on the full matrix).  ``from_json`` reads it
    back to an equal document, non-finite numbers included."""
    records = document.get("comparisons")
    if not isinstance(records, list) or not records:
        return json.dumps(spelled(document), indent=1, sort_keys=True, allow_nan=False) + "\n"
    marker = json.dumps("\0comparisons\0")  # a JSON string no document holds: control characters are escaped
    text = json.dumps(spelled({**document, "comparisons": "\0comparisons\0"}), indent=1, sort_keys=True,
                      allow_nan=False)
    lines = ",\n".join("  " + _record_json(record) for record in records)
    return text.replace(marker, "[\n" + lines + "\n ]", 1) + "\n"


_RECORD_ENCODER = json.JSONEncoder(sort_keys=True, allow_nan=False)  # one for every record (json.dumps makes one a call)


def _record_json(record: dict) -> str:
    try:  # most records hold only finite numbers: encoded as they are
        return _RECORD_ENCODER.encode(record)
    except ValueError:
        return _RECORD_ENCODER.encode(spelled(record))


def spelled(value):
    """``value`` with every non-finite float replaced by its ``{"$numberDouble": ...}`` object:
    what ``json.dumps(..., allow_nan=False)`` takes (``to_json``; ``gradmatrix diff --json``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return {NONFINITE: "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, dict):
        return {k: spelled(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [spelled(v) for v in value]
    return value


def _unspelled(obj: dict):
    spelling = obj.get(NONFINITE) if len(obj) == 1 else None
    if isinstance(spelling, str) and spelling in _SPELLED:
        return _SPELLED[spelling]
    return obj


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON (a non-finite number is written {{\"{NONFINITE}\": \"{name}\"}})")


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_EMPTY_PAIR = re.compile(r"\[\]|\{\}")


def _deeper_than(text: str, limit: int) -> bool:
    """Whether the JSON ``text`` nests arrays and objects more than ``limit`` deep, found
    without recursion: strings dropped, then the innermost bracket pairs, one level a pass."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(limit):
        inner = _EMPTY_PAIR.sub("", brackets)
        if inner == brackets:  # nothing left, or unbalanced: the parser says what is wrong
            return False
        brackets = inner
    return bool(brackets) and _EMPTY_PAIR.search(brackets) is not None


def from_json(text: str):
    """The value of a JSON text written by ``to_json``, non-finite numbers restored.

    Raises:
        ReportError: not JSON, bare ``NaN`` or ``Infinity`` (which JSON has no words for), or
            nested more than ``MAX_DEPTH`` deep.
    """
    if _deeper_than(text, MAX_DEPTH):
        raise ReportError(f"nested more than {MAX_DEPTH} levels deep (a report nests about 8)")
    try:
        return json.loads(text, object_hook=_unspelled if NONFINITE in text else None,
                          parse_constant=_refuse_constant)
    except RecursionError:  # unbalanced brackets, which the check leaves to the parser, nested too deep
        raise ReportError(f"nested more than {MAX_DEPTH} levels deep (a report nests about 8)") from None
    except ValueError as exc:  # json.JSONDecodeError, an integer of too many digits, a bare constant
        raise ReportError(f"not JSON: {exc}") from None


def read_json(path: str | os.PathLike):
    """The JSON value of the file ``path`` (``from_json``), read without changing it.

    Raises:
        FileNotFoundError: no such file.
        ReportError: it cannot be read, is larger than ``MAX_BYTES``, is not UTF-8, or is
            not JSON ``from_json`` accepts.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ReportError(f"cannot read it: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise ReportError(f"larger than {MAX_BYTES:,} bytes (the full matrix's report is 50 to 70 MB)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReportError(f"not UTF-8 text (byte {exc.start})") from None
    return from_json(text)


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


# --- one writer at a time -----------------------------------------------------------------

class DirectoryLock:
    """An exclusive lock on an output directory (``lock``); ``release`` ends it.

    Attributes:
        fd: the descriptor the ``flock`` is on.
        path: the lock file, ``<out_dir>/.gradmatrix.lock``, removed on release.
    """

    def __init__(self, fd: int, path: Path):
        self.fd, self.path = fd, path

    def release(self) -> None:
        """Give the lock up (again: nothing).  The lock file goes while still locked: a
        command that opened it meanwhile finds it replaced and opens the new one (``lock``)."""
        if self.fd < 0:
            return
        try:
            if _same_inode(os.fstat(self.fd), os.stat(self.path)):
                os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = -1

    def __enter__(self) -> "DirectoryLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _same_inode(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def lock(out_dir: str | os.PathLike, what: str = "gradmatrix") -> DirectoryLock:
    """Take the output directory ``out_dir`` (which must exist) for this process, at once.

    Args:
        what: the command taking it, named to whoever finds the directory busy.

    Raises:
        DirectoryBusy: another process holds it (the message names it and what to do), or
            the lock cannot be taken there at all.
    """
    path = Path(out_dir) / LOCK
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise DirectoryBusy(f"cannot lock {out_dir} for writing: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise DirectoryBusy(f"{out_dir} is being written by another gradmatrix command ({holder}): wait "
                                    f"for it to finish, or write to another directory") from None
            raise DirectoryBusy(f"cannot lock {out_dir} for writing: {exc.strerror or exc}") from None
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is not None and _same_inode(os.fstat(fd), current):
            break
        os.close(fd)  # released and removed by its holder after we opened it: lock the new one
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{what}, process {os.getpid()}, since "
                  f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}".encode("utf-8"), 0)
    return DirectoryLock(fd, path)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 300, 0).decode("utf-8", "replace")
    except OSError:
        text = ""
    return " ".join(text.split()) or "process unknown"


# --- the reports of a directory -----------------------------------------------------------

def _read(path: Path) -> dict | None:
    """A report of the directory without its comparisons, for deciding what to keep (its
    plan and summary; None when it is unreadable).  The same file (by inode, size and time:
    ``begin`` moves the report it read into ``previous/``, where ``finish`` reads it again)
    is parsed once."""
    try:
        found = os.stat(path)
        identity = (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns)
        if identity != _LAST_READ[0]:
            _LAST_READ[:] = [None, _outline(path)]
            _LAST_READ[0] = identity
        document = _LAST_READ[1]
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


_LAST_READ: list = [None, None]  # (the file's identity, its outline): the last report _read parsed
_RECORDS_START = '\n "comparisons": [\n'  # to_json's layout: one record a line, the list closed by "\n ]"


def _outline(path: Path):
    """The report at ``path`` with its comparisons left out, where it has ``to_json``'s
    layout (records are most of a report, and deciding what to keep reads none of them);
    any other JSON is read whole (``read_json``)."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    text = data.decode("utf-8", errors="replace") if len(data) <= MAX_BYTES else ""
    start = text.find(_RECORDS_START)
    end = text.find("\n ]", start + len(_RECORDS_START) - 1) if start >= 0 else -1
    if end >= 0:
        try:
            outline = from_json(text[:start] + '\n "comparisons": []' + text[end + len("\n ]"):])
            if isinstance(outline, dict) and outline.get("comparisons") == []:
                return outline
        except ReportError:
            pass
    return read_json(path)


def _complete(document: dict | None) -> bool:
    """A report of a complete run of its whole matrix (not cut short, not ``--only``, not a shard)."""
    from gradmatrix.reports.document import digest

    try:
        ids, summary = document["plan"]["ids"], document["summary"]
        return (summary["complete"] is True and isinstance(summary["comparisons"], int)
                and isinstance(summary["passed"], bool) and all(isinstance(i, str) for i in ids)
                and digest(ids) == document["plan"]["matrix"]["digest"])
    except (KeyError, TypeError):  # not shaped as a report: nothing to keep
        return False


def _worth_keeping(previous: Path) -> bool:
    """Whether ``previous/`` holds a complete report, or reports written without their
    agreement.json (``--format md``): nothing tells whether those were complete, so they are
    kept as a complete one is, never displaced by a run that may be partial."""
    if (previous / "agreement.json").exists():
        return _complete(_read(previous / "agreement.json"))
    return any((previous / f"agreement.{fmt}").exists() for fmt in FORMATS)


def _supersedes(new: dict | None, old: dict) -> bool:
    """``new`` is a complete run of at least the comparisons of ``old``."""
    return _complete(new) and set(new["plan"]["ids"]) >= set(old["plan"]["ids"])


def _is_any(path: Path, others) -> bool:
    """Whether ``path`` is one of the files ``others`` (by name, resolved, or by inode)."""
    try:
        mine = os.stat(path)
    except OSError:
        return False
    for other in others:
        try:
            if _same_inode(mine, os.stat(other)):
                return True
        except OSError:
            continue
    return False


def begin(out_dir: str | os.PathLike, what: str = "a gradmatrix run", keep=()) -> Path:
    """Mark ``out_dir`` as being written by a run, and move the reports there aside.

    The reports there go to ``previous/``, which so holds the latest complete report: a
    partial run's reports (cut short, ``--only``, a shard) never displace a complete one's.

    Args:
        keep: files that must stay where they are (what a command reads), reports of the
            directory or not.

    Raises:
        OSError: the directory cannot be written.
    """
    out = check_writable(out_dir)
    current = [out / f"agreement.{fmt}" for fmt in FORMATS
               if (out / f"agreement.{fmt}").exists() and not _is_any(out / f"agreement.{fmt}", keep)]
    if current:
        previous = out / PREVIOUS
        moved_json = out / "agreement.json" in current
        unknown = not moved_json and not (previous / "agreement.json").exists()  # reports without JSON, both
        if moved_json and _complete(_read(out / "agreement.json")) or unknown or not _worth_keeping(previous):
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
            verdict = "PASS" if kept["summary"]["passed"] else "FAIL"
            what = f"{kept['summary']['comparisons']} comparisons, {verdict}"
            name = kept["run"].get("candidate")
            if s["complete"] and name != document["run"].get("candidate"):  # a check of another module
                note = (f"the complete report of {kept.get('created', '?')} here before, of {name} ({what}), is kept "
                        f"in {previous}")
            else:
                why = "is incomplete" if not s["complete"] else f"has {len(mine & theirs)} of its {len(theirs)} comparisons"
                count = f"{s['comparisons']} comparison" + "s" * (s["comparisons"] != 1)
                note = (f"this report ({count}) does not replace the complete report of "
                        f"{kept.get('created', '?')} ({what}): it {why}; that report is kept in {previous}")
    elif _worth_keeping(previous):  # reports without their agreement.json: complete or not, kept
        note = f"the reports here before (without an agreement.json to tell whether complete) are kept in {previous}"
    elif previous.exists():
        shutil.rmtree(previous, ignore_errors=True)  # nothing complete there to keep
    try:
        (out / IN_PROGRESS).unlink()
    except FileNotFoundError:
        pass
    return written, note


def publish(document: dict, out_dir: str | os.PathLike, formats=("json", "md"), what: str = "gradmatrix",
            inputs=()) -> tuple:
    """``begin`` then ``finish``, holding the directory's lock: for a document already in hand
    (``report``, ``merge``).

    Args:
        inputs: the files the document was read from.  None of them is moved, replaced or
            removed: one that is a report of ``out_dir`` stays where it is (``report`` of a
            directory's agreement.json writes the other formats beside it).

    Returns:
        As ``finish``.

    Raises:
        ValueError: a report to write would replace one of ``inputs``, or an input lies in
            ``out_dir``'s ``previous/``, which writing ``out_dir`` replaces.
        DirectoryBusy: another command is writing ``out_dir``.
    """
    out = Path(out_dir)
    for fmt in formats:
        if _is_any(out / f"agreement.{fmt}", inputs):
            raise ValueError(f"writing {out / f'agreement.{fmt}'} would replace an input of {what}: write to "
                             f"another directory, or leave {fmt} out of --format")
    previous = (out / PREVIOUS).resolve()
    for source in inputs:
        if Path(source).resolve().is_relative_to(previous):
            raise ValueError(f"{source} lies in {out / PREVIOUS}, which writing {out} replaces: write to another "
                             f"directory")
    with lock(out, what):
        begin(out, what, keep=inputs)
        return finish(document, out, formats)


def abandon(out_dir: str | os.PathLike) -> None:
    """Undo ``begin`` for a run that stopped before computing anything (a usage error): the
    reports moved aside come back, and the marker goes."""
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
