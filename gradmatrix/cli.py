"""The ``gradmatrix`` command: run, check, report, diff, merge.

Exit status everywhere: 0 all agree (or nothing got worse), 1 a discrepancy (or something
got worse, or a run was incomplete), 2 a usage or setup error, or a candidate that could
not be checked, with a one-line reason.

``run`` and ``check`` are thin layers over the engine (``gradmatrix.engine``), as
``gradmatrix.check`` is: no pytest runs on their path, so a user's pytest configuration,
plugins or version cannot change the verdict.  The code under test runs in a worker process
of its own (``gradmatrix.isolation``): nothing it does reaches the verdict or the reports.
Ctrl-C and SIGTERM end a run with its incomplete report written.

A report directory has one writer at a time: ``run`` and ``check`` hold its lock
(``reports.writers.lock``) for the whole run, ``report`` and ``merge`` while they write.  A
second command meanwhile is refused (status 2), naming the holder.  ``report``, ``diff`` and
``merge`` read reports through ``reports.schema.read`` (bounded, exact, checked) and never
change, move or replace a file they read.  Arguments are checked where they enter, so that
a bad one is a one-line reason, never an empty or failing run.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable


EXAMPLES = {
    "run": "examples:\n  gradmatrix run\n  gradmatrix run --ops relu affine --dtypes float32 -n 2\n"
           "  gradmatrix run --matrix full --out full-report --format json md html\n"
           "  gradmatrix run --modes jvp hvp                      (forward mode and second order only)\n"
           "  gradmatrix run --shard 0/4 -n auto --out shard0     (one CI machine of four)",
    "check": "examples:\n  gradmatrix check my_layers.py\n  gradmatrix check mypackage.layers --op affine softmax_loss\n"
             "  gradmatrix check my_layers.py --strict-kinks --dtypes float64\n"
             "  gradmatrix check submissions/*/layers.py -n 2 --out class-report     (a class: course staff)\n"
             "  gradmatrix check --class submissions/ --file layers.py -n 4",
    "report": "examples:\n  gradmatrix report gradmatrix-report/agreement.json --format html --out html-report",
    "diff": "examples:\n  gradmatrix diff before/agreement.json after/agreement.json\n"
            "  gradmatrix diff old.json new.json --factor 100 --json",
    "merge": "examples:\n  gradmatrix merge shard0/agreement.json shard1/agreement.json -o all/agreement.json",
    "watch": "examples:\n  gradmatrix watch my_layers.py\n  gradmatrix watch my_layers.py --op affine --dtypes float64\n"
             "  gradmatrix watch my_layers.py --rtol float32=1e-3 --reason \"float32 matmul on a GPU\"",
    "cache": "examples:\n  gradmatrix cache\n  gradmatrix cache clear\n"
             "  XDG_CACHE_HOME=/scratch/cache gradmatrix check my_layers.py   (the store under /scratch/cache/gradmatrix)",
}


class UsageError(Exception):
    """A usage or setup problem: exit status 2 with a one-line reason."""


# in a help text until the help is shown: the catalog's ops, imported only then (a run starts
# its processes before it imports the catalog: gradmatrix.oracle_host.start_early)
CATALOG_OPS = "{the catalog's ops}"


class _Parser(argparse.ArgumentParser):
    """argparse, whose usage errors are one line: what is wrong and why (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")

    def format_help(self):
        for action in self._actions:
            if action.help and CATALOG_OPS in action.help:
                from gradmatrix.oracles.catalog import CATALOG

                action.help = action.help.replace(CATALOG_OPS, ", ".join(CATALOG))
        return super().format_help()


def seconds(text: str) -> float:
    """A time limit in seconds (``--case-timeout``): a finite number >= 0, 0 for none.

    Raises:
        argparse.ArgumentTypeError: anything else, saying why.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0 (0: no limit), got {text}")
    return value


def _factor(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value) or value < 1:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 1 (how many times larger an error must "
                                         f"become to count as grown), got {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _workers(text: str) -> str:
    if text in ("auto", "logical") or text.isdigit():
        return text
    raise argparse.ArgumentTypeError(f"must be a number of workers (0: none), auto or logical, got {text!r}")


def _list(values) -> list | None:
    """Flatten ``--ops a b,c`` into ['a', 'b', 'c']."""
    if not values:
        return None
    return [v for value in values for v in value.split(",") if v]


def _load(path: str) -> dict:
    """The agreement report in ``path`` (``reports.schema.read``), unchanged on disk.

    Raises:
        UsageError: no such file, or not a report this gradmatrix can read (and why).
    """
    from gradmatrix.reports.schema import read
    from gradmatrix.reports.writers import ReportError

    try:
        return read(path)
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except ReportError as exc:
        raise UsageError(f"{path} is not a valid agreement report: {exc}") from None


def _writable(out) -> Path:
    """``out``, created if need be, once a file can be written there.

    Raises:
        UsageError: the directory cannot be created or written.
    """
    from gradmatrix.reports.writers import check_writable

    try:
        return check_writable(out)
    except OSError as exc:
        raise UsageError(f"cannot write reports to {out}: {exc.strerror or exc}") from None


def _publish(document: dict, out, formats, what: str, inputs: list) -> list:
    """Write a document in hand to ``out`` (``reports.writers.publish``), leaving its
    ``inputs`` as they are, and print the paths written.

    Raises:
        UsageError: ``out`` cannot be written, another command is writing it, or writing it
            would replace an input.
    """
    from gradmatrix.reports.writers import DirectoryBusy, publish

    out = _writable(out)
    try:
        written, kept = publish(document, out, tuple(formats), what, inputs=[Path(p) for p in inputs])
    except DirectoryBusy as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write reports to {out}: {exc.strerror or exc}") from None
    for path in written:
        print(f"report: {path}")
    if kept:
        print(f"note: {kept}")
    return written


def _add_matrix_options(parser: argparse.ArgumentParser, ops_flags=("--ops", "--op")) -> None:
    from gradmatrix.oracles.implementations import ORACLES
    from gradmatrix.oracles.spec import DTYPES, MATRICES

    parser.add_argument(*ops_flags, dest="ops", nargs="+", metavar="OP", help=f"ops (default: all): {CATALOG_OPS}")
    parser.add_argument("--dtypes", nargs="+", metavar="DTYPE",
                        help=f"dtypes (default: {' '.join(DTYPES)}); float16 and bfloat16 make low-precision cases, "
                             f"judged by the frameworks' own error at that dtype")
    parser.add_argument("--oracles", nargs="+", metavar="ORACLE", help=f"oracles (default: {' '.join(ORACLES)})")
    parser.add_argument("--seeds", type=_count, metavar="N", help="seeds per shape (default: the matrix's own)")
    parser.add_argument("--modes", nargs="+", metavar="MODE",
                        help="checks: reverse (gradients), jvp (forward mode against reverse mode), hvp "
                             "(Hessian-vector products of the losses) (default: all three)")
    parser.add_argument("--matrix", choices=MATRICES, default="default", help="matrix size (default: default)")
    parser.add_argument("-n", dest="workers", type=_workers, metavar="WORKERS",
                        help="worker processes to split the matrix among, by shape (a number, or auto: one per core; "
                             "default: none)")
    parser.add_argument("--out", default="gradmatrix-report", metavar="DIR", help="report directory (default: ./gradmatrix-report)")
    parser.add_argument("--only", metavar="ID", help="run only the comparison with this id (from a report)")
    parser.add_argument("--shard", metavar="I/N", help="run shard I of N (0-based) of the matrix, for CI job matrices")
    parser.add_argument("--strict-kinks", action="store_true", help="fail on differences at kinks (default: report the convention)")
    parser.add_argument("--format", nargs="+", default=["json", "md", "html"], choices=["json", "md", "html"],
                        help="report formats (default: json md html)")
    parser.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default="auto",
                        help="progress display (default: a bar on a terminal, redrawn 4 times a second in 80 "
                             "columns; otherwise or under CI a line every 5 s; NO_COLOR turns colour off)")
    parser.add_argument("--strict", action="store_true",
                        help="fail on warnings too: a promoted dtype, a shape differing by axes of size 1, a write "
                             "into an argument, an overflow at extreme inputs (default: shown, not failed)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                        help="where the torch and JAX oracles compute: cpu, cuda, or auto (cuda when torch sees a "
                             "GPU); manual and the numeric oracle stay on the CPU (default: cpu)")
    parser.add_argument("--matmul-precision", choices=("default", "high", "highest"), default="default",
                        help="float32 matmul precision for torch and JAX: each one's default, high (TF32 allowed "
                             "on GPUs) or highest (full float32) (default: default)")
    parser.add_argument("--case-timeout", type=seconds, default=None, metavar="SECONDS",
                        help="time limit of one implementation on one case; past it that comparison is an error "
                             "and the run goes on (default: 300; 0: no limit)")


def _worker_count(value: str | None) -> int:
    """-n as a number of worker processes: "auto" and "logical" are the machine's cores."""
    if value in (None, "0"):
        return 0
    if value in ("auto", "logical"):
        return os.cpu_count() or 1
    return int(value)


def _bound(text: str):
    """One value of --rtol / --atol: a number (every dtype) or DTYPE=NUMBER."""
    dtype, _, number = text.rpartition("=")
    try:
        value = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number or DTYPE=NUMBER (float32=1e-3), got {text!r}") from None
    return (dtype or None, value)


def _add_tolerance_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tolerance override (recorded in the report with its reason)")
    group.add_argument("--rtol", nargs="+", type=_bound, metavar="[DTYPE=]RTOL",
                       help="loosen the relative tolerance (the larger of it and the table's is used), for every "
                            "dtype or per dtype (float32=1e-3); below 0.1")
    group.add_argument("--atol", nargs="+", type=_bound, metavar="[DTYPE=]ATOL",
                       help="an absolute allowance per element, the same forms")
    group.add_argument("--reason", metavar="TEXT", help="why the table's tolerance does not fit (required with "
                                                        "--rtol or --atol)")


def _tolerance(args) -> dict | None:
    """The override --rtol / --atol / --reason give (``gradmatrix.checker.tolerance_override``).

    Raises:
        UsageError: an override that is refused (no reason, a vacuous rtol, an unknown dtype).
    """
    from gradmatrix.checker import tolerance_override

    def bound(values):
        if not values:
            return None
        if len(values) == 1 and values[0][0] is None:
            return values[0][1]
        if any(dtype is None for dtype, _ in values):
            raise UsageError("give one number for every dtype, or DTYPE=NUMBER for each")
        return dict(values)

    try:
        return tolerance_override(bound(getattr(args, "rtol", None)), bound(getattr(args, "atol", None)),
                                  getattr(args, "reason", None))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--rtol/--atol/--reason: {exc}") from None


def _names(values) -> tuple | None:
    listed = _list(values)
    return tuple(dict.fromkeys(listed)) if listed else None


def _settings(args) -> dict:
    """The request's settings that decide which processes a run starts (``_start_early``)."""
    from gradmatrix.oracles.implementations import ORACLES
    from gradmatrix.oracles.result import DEFAULT_CASE_TIMEOUT

    return dict(oracles=_names(args.oracles) or tuple(ORACLES), device=args.device,
                matmul_precision=args.matmul_precision,
                case_timeout=DEFAULT_CASE_TIMEOUT if args.case_timeout is None else args.case_timeout,
                workers=_worker_count(args.workers))


def _start_early(args, target: str) -> None:
    """Start the processes a run of ``target`` will want before this process imports the
    engine, so that they import what they need meanwhile: JAX's host on an empty store
    (``gradmatrix.oracle_host.start_early``), and the fork server of the candidate's worker
    (``gradmatrix.forkserver``; ``gradmatrix.manual`` is checked in this process)."""
    from gradmatrix import forkserver
    from gradmatrix.oracle_host import start_early

    settings = _settings(args)
    start_early(settings["oracles"], settings["device"], settings["matmul_precision"], settings["case_timeout"],
                settings["workers"])
    if target != "gradmatrix.manual":
        forkserver.start(forkserver.worker_environment())


def _request(args, target: str, verb: str):
    """The engine's request from the command's arguments (each already checked by its type)."""
    from gradmatrix.engine import Request

    return Request(target=target, verb=verb, matrix=args.matrix, ops=_names(args.ops), dtypes=_names(args.dtypes),
                   seeds=args.seeds, modes=_names(args.modes), only=args.only, shard=args.shard,
                   strict_kinks=args.strict_kinks, strict=args.strict, tolerance=_tolerance(args), **_settings(args))


def _terminate_as_interrupt():
    """SIGTERM ends the run as Ctrl-C does (an incomplete report is written); returns the
    handler it replaced."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    return signal.signal(signal.SIGTERM, interrupt)


def plan(request, out: Path | None = None):
    """The engine's session for ``request``: the candidate opened and the plan made.

    Args:
        out: the report directory, held by this command: a candidate that cannot be imported
            (it raises, ends its process or calls sys.exit at import) leaves it marked as a
            run without a verdict, the earlier complete report kept in ``previous/``; a bad
            option leaves it untouched.

    Raises:
        UsageError: a candidate that cannot be imported, an option the plan refuses.
        engine.NothingToCheck: a candidate that provides nothing to check.
    """
    from gradmatrix.engine import NothingToCheck, Session
    from gradmatrix.oracles import devices
    from gradmatrix.oracles.declared import DeclarationError
    from gradmatrix.reports.writers import begin

    try:
        return Session(request)
    except NothingToCheck:
        raise
    except ImportError as exc:
        if out is not None:
            begin(out, f"gradmatrix {request.verb} (which could not import {request.target})")
        raise UsageError(f"cannot import {request.target}: {exc}") from None
    except DeclarationError as exc:  # a layer the module declares cannot be checked
        raise UsageError(f"{request.target}: {exc}") from None
    except (ValueError, devices.DeviceUnavailable) as exc:
        raise UsageError(str(exc)) from None


def _run_matrix(args, target: str, verb: str, announce=None) -> tuple[dict, object]:
    """Run the matrix for ``target`` with the engine (``gradmatrix.engine``), writing the
    reports into ``--out``, which is resolved and locked before anything of the user's is
    imported and marked in progress until the reports are written: a run that ends without
    a verdict (a module that cannot be imported, Ctrl-C before any record) leaves it marked,
    the earlier complete report kept in ``previous/``.

    Args:
        announce: called with the session before it runs (``check`` names what it checks).

    Returns:
        (the document, the session).

    Raises:
        UsageError: a bad option, an output directory that cannot be written or is busy, a
            candidate that cannot be imported or provides nothing to compare.
    """
    from gradmatrix.oracle_host import close_early

    _start_early(args, target)
    try:
        return _run_started(args, target, verb, announce)
    finally:
        close_early()  # the processes started early that the run did not claim (it stopped before it began)


def _run_started(args, target: str, verb: str, announce) -> tuple[dict, object]:
    """``_run_matrix`` once its processes are started."""
    from gradmatrix.progress import Progress, print_lines
    from gradmatrix.reports import console
    from gradmatrix.reports.writers import DirectoryBusy, begin, finish, lock

    request = _request(args, target, verb)
    existed = Path(args.out).exists()
    out = _writable(args.out).resolve()  # before any of the user's code can change directory
    try:
        held = lock(out, f"gradmatrix {verb}")
    except DirectoryBusy as exc:
        raise UsageError(str(exc)) from None
    try:
        session = plan(request, out)
        begin(out, f"gradmatrix {verb}")  # until the reports are written, no earlier report passes for this run's
        if announce is not None:
            announce(session)
        progress = Progress(args.progress)
        previous = _terminate_as_interrupt()
        try:
            document = session.run(progress)
        finally:
            signal.signal(signal.SIGTERM, previous)
            progress.close()
        written, kept = finish(document, out, tuple(args.format))
    finally:
        held.release()
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # made for a run refused before it touched anything
    print_lines(console.render(document, written))
    if kept:
        print(f"note: {kept}")
    return document, session


def cmd_run(args, extra) -> int:
    document, _ = _run_matrix(args, "gradmatrix.manual", "run")
    return 0 if document["summary"]["passed"] else 1


def cmd_check(args, extra) -> int:
    if args.class_folder is None and len(args.module) == 1 and args.file is None:
        _start_early(args, args.module[0])  # before the engine is imported (_run_matrix stops what it leaves)
    from gradmatrix.checker import CheckResult
    from gradmatrix.engine import NothingToCheck
    from gradmatrix.oracles.catalog import CATALOG
    from gradmatrix.reports import console

    closing = []

    def announce(session) -> None:
        candidate = session.candidate
        before, after = accounting_lines(candidate)
        checking = list(session.request.ops or candidate.ops)
        named = [f"{op} ({', '.join(candidate.contracts[op].functions)})" for op in candidate.ops]
        print(f"gradmatrix check: {candidate.name} provides {'; '.join(named)}"
              + (f"; checking {', '.join(checking)}" if checking != candidate.ops else ""), flush=True)
        for line in before:
            print(line, flush=True)
        skipped = console.skipped_line(session.run_info)
        if skipped:
            print(skipped, flush=True)
        closing.append(after)

    if args.class_folder is not None or len(args.module) > 1:
        return cmd_class(args)
    if len(args.module) != 1:
        raise UsageError("check needs a module (a dotted name or a .py file), several files, or --class FOLDER")
    if args.file is not None:
        raise UsageError("--file names each submission's file in --class FOLDER; give a single file as it is")
    args.module = args.module[0]
    try:
        document, _ = _run_matrix(args, args.module, "check", announce)
    except NothingToCheck as exc:
        before, after = accounting_lines(exc.candidate)
        skipped = console.skipped_line({"candidate": exc.candidate.name,
                                         "skipped_statements": getattr(exc.candidate, "skipped", [])})
        for line in before + after(2) + ([skipped] if skipped else []):
            print(line)
        if exc.stubs:
            return 1  # every function it provides is the starter's stub: a failing file, said above
        wanted = "; ".join(dict.fromkeys(" + ".join(spec.functions) for spec in CATALOG.values()))
        raise UsageError(f"{args.module} provides no op gradmatrix knows (looked for: {wanted}) and declares "
                         f"no layer of its own (@gradmatrix.layer)") from None
    result = CheckResult(document)
    for line in closing[0](result.status) if closing else ():
        print(line)
    return result.status


WATCH_POLL = 0.2  # seconds between looks at the file's modification time


def _changed(path: Path, since) -> bool:
    try:
        return path.stat().st_mtime_ns != since
    except FileNotFoundError:  # an editor that saves by rename: the file is back in a moment
        return False


def _mtime(path: Path):
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def cmd_watch(args, extra) -> int:
    """Check the file, then again each time it is saved, until Ctrl-C.  The frameworks stay
    loaded in this process and JAX's compiled functions in memory, so a check after the
    first skips their start-up; the candidate runs in a worker process started anew per
    check, so the saved file is imported afresh."""
    path = Path(args.module)
    if not path.is_file():
        raise UsageError(f"watch needs a .py file to watch, got {args.module!r}")
    print(f"gradmatrix watch: {args.module} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            seen = _mtime(path)
            started = time.perf_counter()
            try:
                document, _ = _run_matrix(args, args.module, "check")
                interrupted = document["summary"].get("interrupted")
            except UsageError as exc:  # a file that does not import yet: say so, wait for the next save
                print(f"gradmatrix: error: {' '.join(str(exc).split())}", flush=True)
                interrupted = ""
            if interrupted:
                raise KeyboardInterrupt
            print(f"checked in {time.perf_counter() - started:.1f} s; watching {args.module} for changes", flush=True)
            while not _changed(path, seen):
                time.sleep(WATCH_POLL)
            time.sleep(WATCH_POLL)  # let the editor finish writing
    except KeyboardInterrupt:
        print("gradmatrix watch: stopped", flush=True)
        return 0


def _submission_options(args) -> list:
    """The ``check`` options every submission of a class is checked with."""
    options = ["--matrix", args.matrix]
    for flag, values in (("--ops", args.ops), ("--dtypes", args.dtypes), ("--oracles", args.oracles),
                         ("--modes", args.modes)):
        if values:
            options += [flag, *values]
    if args.seeds:
        options += ["--seeds", str(args.seeds)]
    if args.case_timeout is not None:
        options += ["--case-timeout", f"{args.case_timeout:g}"]
    options += ["--device", args.device, "--matmul-precision", args.matmul_precision]
    return options + ["--strict"] * args.strict + ["--strict-kinks"] * args.strict_kinks


def cmd_class(args) -> int:
    """``check`` over a class: the files given, or each submission in ``--class FOLDER``,
    ``-n`` at a time (``gradmatrix.classroom``); exit 0 once the class's tables are written,
    whatever the submissions' verdicts (they are in the tables)."""
    from gradmatrix import classroom

    if args.only or args.shard:
        raise UsageError("--only and --shard pick comparisons of one check; a class checks every submission whole")
    if args.class_folder is not None and args.module:
        raise UsageError("give either files or --class FOLDER, not both")
    try:
        if args.class_folder is not None:
            submissions = classroom.from_folder(args.class_folder, args.file)
        else:
            if args.file is not None:
                raise UsageError("--file names each submission's file in --class FOLDER")
            submissions = classroom.from_paths(args.module)
    except classroom.ClassError as exc:
        raise UsageError(str(exc)) from None
    out = _writable(args.out)
    workers = max(1, _worker_count(args.workers))
    print(f"gradmatrix check: a class of {len(submissions)} submissions, {workers} at a time", flush=True)
    started = time.monotonic()
    rows = classroom.run_class(submissions, out, _submission_options(args), workers,
                               classroom.DEFAULT_SUBMISSION_TIMEOUT if args.submission_timeout is None
                               else args.submission_timeout, echo=lambda line: print(line, flush=True))
    from gradmatrix.reports.classroom import ERROR, FAIL, NOT_CHECKED, PASS, class_functions, submission_verdict

    ops = class_functions(rows)
    counts = {v: sum(submission_verdict(r, ops) == v for r in rows) for v in (PASS, FAIL, ERROR, NOT_CHECKED)}
    print(f"class: {counts[PASS]} pass, {counts[FAIL]} fail, {counts[ERROR]} error, {counts[NOT_CHECKED]} could not "
          f"be checked, of "
          f"{len(rows)} submissions ({len(ops)} functions each) in {time.monotonic() - started:.0f} s")
    for name in ("class.csv", "class.html", "class.json"):
        print(f"report: {out / name}")
    print(f"report: {out / 'submissions'}/NAME/results.json (Gradescope) and agreement.json, .html")
    return 0


def accounting_lines(candidate) -> tuple[list[str], Callable[[int], list[str]]]:
    """What becomes of every function and class of the candidate module: printed before the
    run when something will not be checked (each one with the reason; the header line names
    the checked ones with their ops), and a closing line for after the run that never calls
    a module a plain PASS when something in it went unchecked.

    Returns:
        (lines to print now, a function of the run's exit status giving the closing lines).
    """
    from gradmatrix.isolation import accounting

    entries = accounting(candidate)
    skipped = [e for e in entries if not e["checked"]]
    checked = len(entries) - len(skipped)
    now = []
    if skipped:
        now = [f"gradmatrix check: {len(entries)} functions and classes in {candidate.name}: "
               f"{checked} checked, {len(skipped)} not checked"]
        now += [f"  {e['name']} ({e['kind']}): {'FAIL' if e.get('stub') else 'NOT CHECKED'}: {e['reason']}"
                for e in skipped]

    def closing(status: int) -> list[str]:
        stubs = [e["name"] for e in entries if e.get("stub")]
        if entries and checked == 0:
            return [f"gradmatrix check: nothing in {candidate.name} was checked"
                    + (f"; FAIL: {', '.join(stubs)} unimplemented (the starter's stubs)" if stubs else "")]
        if status == 0 and skipped:
            return [f"gradmatrix check: the {checked} checked agree, but {len(skipped)} of {len(entries)} were not "
                    f"checked: not a pass for the whole module"]
        return []

    return now, closing


def cmd_report(args, extra) -> int:
    from gradmatrix.reports.document import verify
    from gradmatrix.reports.markdown import verdict_line

    document = verify(_load(args.results))  # the summary recomputed from records and plan, never trusted
    _publish(document, args.out, args.format, "gradmatrix report", [args.results])
    print(verdict_line(document["summary"]).replace("**", ""))
    return 0 if document["summary"]["passed"] else 1


def cmd_diff(args, extra) -> int:
    from gradmatrix.reports import diff
    from gradmatrix.reports.writers import spelled

    result = diff.diff(_load(args.old), _load(args.new), factor=args.factor)
    if args.json:  # strict JSON, as agreement.json: an error that grew from 0 grew infinitely
        print(json.dumps(spelled(result), indent=1, allow_nan=False))
    else:
        print(diff.render(result), end="")
    return 1 if result["worse"] else 0


def cmd_merge(args, extra) -> int:
    from gradmatrix.reports.markdown import verdict_line
    from gradmatrix.reports.merge import merge

    out = Path(args.output)
    if out.name != "agreement.json":
        raise UsageError(f"-o must name a file agreement.json (its directory gets the other formats), got {out}")
    documents = [_load(p) for p in args.shards]
    try:
        merged = merge(documents, names=list(args.shards))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _publish(merged, out.parent, args.format, "gradmatrix merge", args.shards)
    m = merged["merge"]
    print(f"merged {len(documents)} shards: {merged['summary']['comparisons']} comparisons, "
          f"{len(m['overlaps'])} overlapping (identical), {len(m['conflicts'])} conflicting, "
          f"{len(m['environment_differences'])} environment differences")
    for conflict in m["conflicts"][:10]:
        print(f"  conflict: {conflict['id']} in {' and '.join(conflict['shards'])}: {' vs '.join(conflict['verdicts'])}")
    for d in m["environment_differences"][:10]:
        print(f"  environment: {d['shard']}: {d['key']} differs")
    for problem in m["problems"]:
        print(f"  not a pass: {problem}")
    print(verdict_line(merged["summary"]).replace("**", ""))
    return 0 if merged["summary"]["passed"] else 1


def cmd_cache(args, extra) -> int:
    from gradmatrix.oracles import cache

    found = cache.clear() if args.action == "clear" else cache.usage()
    if found["path"] is None:
        print("gradmatrix cache: off (GRADMATRIX_JAX_CACHE=off): compiled functions and reference results "
              "are not stored")
        return 0
    size = f"{found['entries']} compiled functions, {found['results']} reference results, {found['bytes'] / 1e6:.1f} MB"
    print(f"gradmatrix cache: {found['path']}: " + (f"removed {size}" if args.action == "clear" else
                                                    f"{size} (kept under {cache.LIMIT / 1e6:.0f} MB: the least "
                                                    f"recently used go first)"))
    return 0


def _verb(verbs, name: str, help: str, description: str, func):
    parser = verbs.add_parser(name, help=help, description=description, epilog=EXAMPLES[name],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gradmatrix", description="Cross-framework gradient verification: "
                                     "hand-derived gradients against PyTorch, JAX and numeric differences.")
    from gradmatrix import __version__

    parser.add_argument("--version", action="version", version=f"gradmatrix {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    run = _verb(verbs, "run", "run the agreement matrix and write the reports",
                "Run the agreement matrix for manual against torch, jax and numeric differences, and write "
                "agreement.json, "
                ".md and .html. Exit 0 when everything agrees, 1 on a discrepancy, 2 on a usage error.", cmd_run)
    _add_matrix_options(run)
    check = _verb(verbs, "check", "check your own module against every oracle",
                  "Import MODULE (a dotted name or a .py file) providing some of manual's functions with the same "
                  "names and signatures, run the ops it provides across the matrix against the oracles, print a "
                  "verdict per op with its worst discrepancy, and write the reports. Exit 0 all agree, 1 something "
                  "disagrees, 2 it cannot be checked (import error, no known op, a function that raises or returns "
                  "the wrong structure, shape or dtype).", cmd_check)
    check.add_argument("module", nargs="*", help="dotted module name or path to a .py file; several files: a class "
                                                 "of submissions (see --class)")
    _add_matrix_options(check, ops_flags=("--op", "--ops"))
    _add_tolerance_options(check)
    staff = check.add_argument_group("course staff: a class of submissions (several files, or --class FOLDER)")
    staff.add_argument("--class", dest="class_folder", metavar="FOLDER",
                       help="check each submission in FOLDER (a .py file, or a folder per submission), -n at a "
                            "time; writes class.csv, class.html and each submission's results.json (Gradescope) "
                            "into --out")
    staff.add_argument("--file", metavar="NAME", help="the file to check in each submission folder (default: its only "
                                                      ".py file)")
    staff.add_argument("--submission-timeout", type=seconds, default=None, metavar="SECONDS",
                       help="time limit of one submission's whole check; past it the submission is stopped and "
                            "the class goes on (default: 900; 0: no limit)")
    watch = _verb(verbs, "watch", "check a file again each time it is saved",
                  "Check FILE as gradmatrix check does, then again each time it is saved (its modification time is "
                  "looked at 5 times a second), printing the verdict lines and the time each check took, until "
                  "Ctrl-C. NumPy, torch and JAX stay loaded and JAX's compiled functions in memory between checks; "
                  "the file runs in a worker process started anew for each check, so every save is imported afresh. "
                  "The reports are rewritten into --out after each check.", cmd_watch)
    watch.add_argument("module", help="the .py file to watch")
    _add_matrix_options(watch, ops_flags=("--op", "--ops"))
    _add_tolerance_options(watch)
    report = _verb(verbs, "report", "render a saved run again",
                   "Render a saved agreement.json as Markdown, HTML or JSON.", cmd_report)
    report.add_argument("results", help="an agreement.json")
    report.add_argument("--format", nargs="+", default=["md", "html"], choices=["json", "md", "html"])
    report.add_argument("--out", default="gradmatrix-report", metavar="DIR")
    diff = _verb(verbs, "diff", "what changed between two runs",
                 "Compare two saved runs: new discrepancies, fixed ones, errors that grew by more than --factor, "
                 "comparisons missing, environment differences. Exit 1 when something got worse.", cmd_diff)
    diff.add_argument("old")
    diff.add_argument("new")
    diff.add_argument("--factor", type=_factor, default=10.0,
                      help="an error grew when it is this many times larger (default 10)")
    diff.add_argument("--json", action="store_true", help="print the diff as JSON")
    merge = _verb(verbs, "merge", "combine shards of one run into one report",
                  "Combine the agreement.json of shards of one matrix run (for example a CI job matrix, each "
                  "machine running --shard I/N) into one report. Overlapping comparisons and differing "
                  "environments are detected and shown, never silently overwritten.", cmd_merge)
    merge.add_argument("shards", nargs="+", metavar="SHARD.json")
    merge.add_argument("-o", "--output", required=True, metavar="ALL.json", help="the merged agreement.json to write")
    merge.add_argument("--format", nargs="+", default=["json", "md", "html"], choices=["json", "md", "html"])
    cache = _verb(verbs, "cache", "show or clear the store of compiled functions and reference results",
                  "Show where gradmatrix stores the JAX functions it compiled and the oracles' results on its own "
                  "cases (so that later runs load them instead of computing them again: the platform's cache "
                  "directory, $XDG_CACHE_HOME/gradmatrix/jax on Linux, or $GRADMATRIX_JAX_CACHE), how many and their "
                  "size; clear removes them.", cmd_cache)
    cache.add_argument("action", nargs="?", choices=("show", "clear"), default="show",
                       help="show (default) or clear")
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" in argv:
        print("gradmatrix: error: gradmatrix runs no pytest and takes no pytest arguments after --; to run the "
              "matrix under pytest, run pytest itself (pytest --pyargs gradmatrix.matrix_test, options under "
              "\"gradmatrix\" in pytest --help)", file=sys.stderr)
        return 2
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if args.verb is None:
        parser.print_help()
        return 2
    try:
        return args.func(args, [])
    except UsageError as exc:
        print(f"gradmatrix: error: {' '.join(str(exc).split())}", file=sys.stderr)  # one line, whatever it quotes
        return 2
    except KeyboardInterrupt:
        print("gradmatrix: interrupted", file=sys.stderr)
        return 1


def run() -> None:
    """The ``gradmatrix`` command: ``main``, then the process ends with its status
    (``exit_without_teardown``).  An exception main lets through ends the process as usual.
    Output to a reader that stops reading (``| head``) is dropped, the check unchanged
    (``progress.OutlivesItsReader``)."""
    from gradmatrix.progress import guard_standard_streams

    guard_standard_streams()
    status = main()
    if not isinstance(status, int):
        sys.exit(status)  # not a status os._exit can give: as sys.exit reads it
    exit_without_teardown(status)


def exit_without_teardown(status: int) -> None:
    """End this process with ``status`` without the interpreter's teardown of every module it
    imported (torch's and JAX's: 0.3 s to a second).  What has to happen at exit happens
    first, as the interpreter would do it: threads are joined, the functions registered with
    ``atexit`` run (the stores' last writes, the worker processes' and fork servers' end,
    weakref finalizers), then the output is flushed; a stream nothing can reach any more (a
    closed pipe) is passed over."""
    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(status)


if __name__ == "__main__":
    run()
