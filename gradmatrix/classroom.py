"""Course staff's batch mode: ``gradmatrix check`` over a class of submissions.

Each submission is checked by a ``gradmatrix check`` process of its own (which runs the
student's code in a worker process of its own, ``gradmatrix.isolation``), ``workers`` of
them at a time, each in a session of its own that is killed whole past
``submission_timeout``: a submission that crashes, hangs or exits never stops the class.
Each one's reports go to ``OUT/submissions/NAME/``; the class's rows (``reports.classroom``)
are made from their ``agreement.json`` and exit status, and written as ``class.json``,
``class.csv``, ``class.html`` and ``OUT/submissions/NAME/results.json`` (Gradescope).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from gradmatrix.checker import CheckResult
from gradmatrix.reports import classroom
from gradmatrix.reports.console import finding_title
from gradmatrix.reports.writers import ReportError, write_atomic

DEFAULT_SUBMISSION_TIMEOUT = 900.0  # seconds one submission's check may take, whole
_VERDICTS = {"agree": classroom.PASS, "disagree": classroom.FAIL, "error": classroom.ERROR}


class ClassError(ValueError):
    """A class that cannot be run (no submission found, a name that is no file or folder)."""


def _safe(name: str) -> str:
    """A submission's name as a folder name of the output."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "submission"


def _unique(named: list) -> list:
    seen: dict = {}
    out = []
    for name, path in named:
        seen[name] = seen.get(name, 0) + 1
        out.append((name if seen[name] == 1 else f"{name}_{seen[name]}", path))
    return out


def from_paths(paths: list) -> list:
    """(name, file, "") for files given one by one (``submissions/*/layers.py``): named by their
    folders when the file names are all the same, else by their paths without ``.py``,
    relative to the folder they share.

    Raises:
        ClassError: a path that is no file.
    """
    files = [Path(p) for p in paths]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise ClassError(f"no such file: {', '.join(missing)}")
    resolved = [p.resolve() for p in files]
    common = Path(os.path.commonpath([str(p.parent) for p in resolved]))
    same_name = len({p.name for p in resolved}) == 1
    named = []
    for path, full in zip(files, resolved):
        relative = full.parent.relative_to(common) if same_name else full.relative_to(common).with_suffix("")
        named.append((_safe(str(relative) if str(relative) != "." else full.stem), str(path)))
    return [(name, path, "") for name, path in _unique(named)]


def from_folder(folder, file: str | None = None) -> list:
    """(name, file or None, why not) for each submission in ``folder``: a ``.py`` file in it,
    or a folder holding the submission (its file ``file``, or its only ``.py`` file).

    Raises:
        ClassError: ``folder`` is no folder, or holds no submission.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ClassError(f"--class {folder}: no such folder")
    entries = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_file() and entry.suffix == ".py" and file is None:
            entries.append((_safe(entry.stem), str(entry), ""))
        elif entry.is_dir():
            if file is not None:
                chosen = entry / file
                entries.append((_safe(entry.name), str(chosen), "" if chosen.is_file() else f"no {file} in the submission"))
                continue
            found = sorted(p for p in entry.rglob("*.py") if "__pycache__" not in p.parts)
            if len(found) == 1:
                entries.append((_safe(entry.name), str(found[0]), ""))
            else:
                why = (f"several .py files ({', '.join(p.name for p in found[:5])}): choose one with --file"
                       if found else "no .py file in the submission")
                entries.append((_safe(entry.name), str(entry), why))
    if not entries:
        raise ClassError(f"--class {folder}: no submission in it (a .py file, or a folder per submission)")
    named = _unique([(n, (p, w)) for n, p, w in entries])
    return [(n, p, w) for n, (p, w) in named]


def _cause(finding: dict) -> str:
    text = finding_title(finding)
    if finding.get("cause"):
        text += f"; likely cause: {finding['cause']['text']}"
    return text


def row_of(name: str, file: str, status: int, seconds: float, document: dict | None, message: str) -> dict:
    """A submission's row (``reports.classroom``) from its check: the document when the
    check wrote one, else the message saying why it could not be checked."""
    row = {"submission": name, "file": file, "status": status, "seconds": seconds, "message": message,
           "skipped_statements": [], "functions": {}}
    if document is None:
        row["message"] = message or "no report was written"
        return row
    run = document["run"]
    row["skipped_statements"] = run.get("skipped_statements") or []
    findings = [f for f in document.get("findings", []) if f.get("impl") == run.get("candidate")]
    for op, info in CheckResult(document).per_op().items():
        verdict = _VERDICTS.get(info["verdict"], info["verdict"])
        mine = [f for f in findings if f["op"] == op]
        worst = info["worst"] or {}
        if verdict == classroom.PASS:
            cause = reproduce = ""
        elif verdict == classroom.ERROR or not mine:  # what the function did (raised, ended, hung) says it best
            cause, reproduce = worst.get("message", ""), worst.get("reproduce", "")
        else:
            cause, reproduce = _cause(mine[0]), mine[0]["worst"].get("reproduce", "")
        row["functions"][op] = {"functions": run["candidate_functions"].get(op, []), "verdict": verdict,
                                "cause": cause, "reproduce": reproduce}
    for entry in run.get("accounting") or []:  # stubs: an op found but not checked
        op = entry.get("op")
        if not entry["checked"] and op and op not in row["functions"] and entry.get("stub"):
            # the starter's stub left in: a failing function of the submission, not an unchecked one
            row["functions"][op] = {"functions": [entry["name"]], "verdict": classroom.FAIL,
                                    "cause": entry["reason"], "reproduce": ""}
    return row


def check_one(name: str, file: str, why_not: str, out: Path, options: list, timeout: float) -> dict:
    """Check one submission in a ``gradmatrix check`` process of its own; its row."""
    if why_not:
        return row_of(name, file, 2, 0.0, None, why_not)
    where = out / "submissions" / name
    where.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "gradmatrix", "check", file, "--out", str(where), "--progress", "none",
               "--format", "json", "html", *options]
    started = time.time()
    # a session of its own: past the time limit the check and the candidate's worker are killed together
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                               text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout or None)
        message = ""
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        message = f"stopped after {timeout:g} s (--submission-timeout): it hangs or is too slow"
    seconds = time.time() - started
    status = process.returncode
    if status is not None and status < 0 and not message:
        message = f"its check ended (killed by {signal.Signals(-status).name})"
    report = where / "agreement.json"
    document = None
    if not message and report.is_file() and report.stat().st_mtime >= started - 1:
        from gradmatrix.reports.schema import read

        try:
            document = read(report)
        except (ReportError, OSError) as exc:
            message = f"its report cannot be read: {exc}"
    if document is None and not message:
        lines = [l for l in (stderr or "").splitlines() if l.strip()]  # the command's one-line reason, shown as is
        message = lines[-1].removeprefix("gradmatrix: error: ") if lines else f"its check exited {status}"
    return row_of(name, file, 2 if message else status, seconds, document, message)


def run_class(submissions: list, out, options: list, workers: int = 1,
              submission_timeout: float = DEFAULT_SUBMISSION_TIMEOUT, echo=print) -> list:
    """Check every submission, ``workers`` at a time, and write the class's tables.

    Args:
        submissions: (name, file, why not) triples (``from_paths``, ``from_folder``).
        out: the output folder.
        options: ``gradmatrix check`` options for every submission (``--ops``, ...).
        echo: called with a line as each submission finishes.

    Returns:
        The rows, in the submissions' order.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(check_one, n, f, w, out, options, submission_timeout): n for n, f, w in submissions}
        for future in as_completed(futures):
            row = future.result()
            rows[row["submission"]] = row
            echo(classroom.line(row, None, len(rows), len(submissions)))
    ordered = [rows[name] for name, _, _ in submissions]
    write(ordered, out)
    return ordered


def write(rows: list, out: Path) -> list:
    """class.json, class.csv, class.html and each submission's results.json; the paths."""
    ops = classroom.class_functions(rows)
    written = [write_atomic(out / "class.json", json.dumps({"functions": ops, "submissions": rows}, indent=1)),
               write_atomic(out / "class.csv", classroom.to_csv(rows)),
               write_atomic(out / "class.html", classroom.to_html(rows))]
    for row in rows:
        where = out / "submissions" / row["submission"]
        where.mkdir(parents=True, exist_ok=True)
        written.append(write_atomic(where / "results.json", json.dumps(classroom.gradescope(row, ops), indent=1)))
    return written
