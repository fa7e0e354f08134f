"""The ``gradmatrix`` command: run, check, report, diff, merge.

Exit status everywhere: 0 all agree (or nothing got worse), 1 a discrepancy (or something
got worse, or a run was incomplete), 2 a usage or setup error, with a one-line reason.

``run`` and ``check`` run the matrix in a child process of their own and stand by: code
under test that ends its process (``os._exit(0)`` inside a function, a segfault) cannot end
the command with a status it did not earn.  The child reports its verdict's status through a
file; a child that ends without one is an error (status 2) naming what happened.  Ctrl-C and
SIGTERM reach the child, which writes its incomplete report.

A report directory has one writer at a time: ``run`` and ``check`` hold its lock
(``reports.writers.lock``) from before the child starts until after it ends, and hand it to
the child; ``report`` and ``merge`` hold it while they write.  A second command meanwhile is
refused (status 2), naming the holder.  ``report``, ``diff`` and ``merge`` read reports through
``reports.schema.read`` (bounded, exact, checked) and never change, move or replace a file
they read.  Arguments are checked where they enter (argparse types, the plan before pytest
starts), so that a bad one is a one-line reason, never an empty or failing run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

CHILD = "GRADMATRIX_VERDICT_FILE"  # set in the child that runs the matrix: where its exit status goes

EXAMPLES = {
    "run": "examples:\n  gradmatrix run\n  gradmatrix run --ops relu affine --dtypes float32 -n 2\n"
           "  gradmatrix run --matrix full --out full-report --format json md html\n"
           "  gradmatrix run --modes jvp hvp                      (forward mode and second order only)\n"
           "  gradmatrix run --shard 0/4 -n auto --out shard0     (one CI machine of four)\n"
           "  gradmatrix run -- -x --junitxml=matrix.xml          (arguments after -- go to pytest)",
    "check": "examples:\n  gradmatrix check my_layers.py\n  gradmatrix check mypackage.layers --op affine softmax_loss\n"
             "  gradmatrix check my_layers.py --strict-kinks --dtypes float64",
    "report": "examples:\n  gradmatrix report gradmatrix-report/agreement.json --format html --out html-report",
    "diff": "examples:\n  gradmatrix diff before/agreement.json after/agreement.json\n"
            "  gradmatrix diff old.json new.json --factor 100 --json",
    "merge": "examples:\n  gradmatrix merge shard0/agreement.json shard1/agreement.json -o all/agreement.json",
}


class UsageError(Exception):
    """A usage or setup problem: exit status 2 with a one-line reason."""


class _Parser(argparse.ArgumentParser):
    """argparse, whose usage errors are one line: what is wrong and why (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


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
    from gradmatrix.oracles.catalog import CATALOG, DTYPES, MATRICES
    from gradmatrix.oracles.implementations import ORACLES

    parser.add_argument(*ops_flags, dest="ops", nargs="+", metavar="OP", help=f"ops (default: all): {', '.join(CATALOG)}")
    parser.add_argument("--dtypes", nargs="+", metavar="DTYPE", help=f"dtypes (default: {' '.join(DTYPES)})")
    parser.add_argument("--oracles", nargs="+", metavar="ORACLE", help=f"oracles (default: {' '.join(ORACLES)})")
    parser.add_argument("--seeds", type=_count, metavar="N", help="seeds per shape (default: the matrix's own)")
    parser.add_argument("--modes", nargs="+", metavar="MODE",
                        help="checks: reverse (gradients), jvp (forward mode against reverse mode), hvp "
                             "(Hessian-vector products of the losses) (default: all three)")
    parser.add_argument("--matrix", choices=MATRICES, default="default", help="matrix size (default: default)")
    parser.add_argument("-n", dest="workers", type=_workers, metavar="WORKERS",
                        help="pytest-xdist workers (a number or auto)")
    parser.add_argument("--out", default="gradmatrix-report", metavar="DIR", help="report directory (default: ./gradmatrix-report)")
    parser.add_argument("--only", metavar="ID", help="run only the comparison with this id (from a report)")
    parser.add_argument("--shard", metavar="I/N", help="run shard I of N (0-based) of the matrix, for CI job matrices")
    parser.add_argument("--strict-kinks", action="store_true", help="fail on differences at kinks (default: report the convention)")
    parser.add_argument("--format", nargs="+", default=["json", "md", "html"], choices=["json", "md", "html"],
                        help="report formats (default: json md html)")
    parser.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default="auto",
                        help="progress display (default: a bar on a terminal, lines otherwise or under CI)")
    parser.add_argument("--pytest-output", action="store_true",
                        help="also show pytest's own output: a failure block per failing comparison and its summary "
                             "(default: only the findings; arguments after -- also show it)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                        help="where the torch and JAX oracles compute: cpu, cuda, or auto (cuda when torch sees a "
                             "GPU); manual and the numeric oracle stay on the CPU (default: cpu)")
    parser.add_argument("--matmul-precision", choices=("default", "high", "highest"), default="default",
                        help="float32 matmul precision for torch and JAX: each one's default, high (TF32 allowed "
                             "on GPUs) or highest (full float32) (default: default)")
    parser.add_argument("--case-timeout", type=seconds, default=None, metavar="SECONDS",
                        help="time limit of one implementation on one case; past it that comparison is an error "
                             "and the run goes on (default: 300; 0: no limit)")


def _progress_mode(requested: str) -> str:
    """'auto' becomes a live bar on a terminal and plain lines otherwise or under CI."""
    if requested != "auto":
        return requested
    return "bar" if sys.stdout.isatty() and not os.environ.get("CI") else "lines"


def _pytest_args(args, candidate: str, extra: list) -> list:
    # no:logging: the matrix logs nothing, and capturing logs around each of its thousands of
    # tiny tests took a fifth of a run; --assert=plain: the matrix test asserts nothing, and
    # rewriting the modules it imports took a second; no:hypothesispytest: the matrix draws
    # its own inputs, and hypothesis's plugin (installed with the test extra) imports it
    # pytest's own report (a failure block per comparison, the short summary) is what the
    # findings condense: shown only when asked for, or when arguments go to pytest
    quiet = [] if args.pytest_output or extra else ["-q", "--no-summary"]
    argv = ["--pyargs", "gradmatrix.matrix_test", "-q", *quiet, "-p", "no:cacheprovider",
            "-p", "no:logging", "-p", "no:hypothesispytest", "--assert=plain",
            "--gm-matrix", args.matrix, "--gm-out", args.out, "--gm-candidate", candidate,
            "--gm-formats", ",".join(args.format), "--gm-progress", _progress_mode(args.progress)]
    for flag, value in (("--gm-ops", _list(args.ops)), ("--gm-dtypes", _list(args.dtypes)),
                        ("--gm-oracles", _list(args.oracles)), ("--gm-modes", _list(args.modes))):
        if value:
            argv += [flag, ",".join(value)]
    for flag, value in (("--gm-seeds", args.seeds), ("--gm-only", args.only), ("--gm-shard", args.shard)):
        if value is not None:
            argv += [flag, str(value)]
    if args.strict_kinks:
        argv.append("--gm-strict-kinks")
    argv += ["--gm-device", args.device, "--gm-matmul-precision", args.matmul_precision]
    if args.case_timeout is not None:
        argv += ["--gm-case-timeout", str(args.case_timeout)]
    if args.workers not in (None, "0"):
        argv += ["-n", args.workers, "--dist", "loadgroup"]
        if not any(a.startswith("--max-worker-restart") for a in extra):
            # a worker that dies (a candidate calling os._exit, a segfault) ends the run with
            # an incomplete report; restarting workers only crashes them again, and
            # pytest-xdist can hang rescheduling a dead worker's groups
            argv += ["--max-worker-restart", "0"]
    return argv + extra


def _plan_or_usage_error(args, candidate: str) -> None:
    """Plan the run before pytest starts, so that a bad option or candidate, or a selection
    that compares nothing, is a one-line usage error saying why (exit 2) instead of a
    collection error or an empty run inside pytest."""
    from gradmatrix.oracles import devices
    from gradmatrix.oracles.candidate import Candidate, load_module
    from gradmatrix.pytest_plugin import nothing_selected, shard
    from gradmatrix.runner import default_plan

    try:
        module = load_module(candidate)
    except ImportError as exc:
        raise UsageError(f"cannot import {candidate}: {exc}") from None
    try:
        checked, oracles = Candidate(module), _list(args.oracles) or _default_oracles()
        plan = default_plan(args.matrix, _list(args.ops), _list(args.dtypes), args.seeds, oracles, checked,
                            args.only, _list(args.modes))
        if not plan:
            raise UsageError("nothing to compare: " + nothing_selected(
                args.matrix, _list(args.ops), _list(args.dtypes), args.seeds, _list(args.modes), oracles, checked))
        if args.shard:
            shard(plan, args.shard)
        devices.resolve(args.device)
    except (ValueError, devices.DeviceUnavailable) as exc:
        raise UsageError(str(exc)) from None


def _default_oracles() -> tuple:
    from gradmatrix.oracles.implementations import ORACLES

    return ORACLES


THREAD_SETTINGS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")  # torch's, NumPy's BLAS


def _share_cores(workers: str | None) -> None:
    """With pytest-xdist workers, each gets its share of the cores for its libraries' thread
    pools (a setting the user made is kept): a worker whose torch and BLAS each start a
    thread per core makes the workers wait on each other's threads."""
    if workers in (None, "0"):
        return
    cores = os.cpu_count() or 1
    count = cores if workers == "auto" else int(workers) if workers.isdigit() else 1
    for name in THREAD_SETTINGS:
        os.environ.setdefault(name, str(max(1, cores // max(1, count))))


def _run_matrix(args, candidate: str, extra: list) -> dict:
    import pytest

    _plan_or_usage_error(args, candidate)
    _share_cores(args.workers)
    code = pytest.main(_pytest_args(args, candidate, extra))
    plugin = sys.modules.get("gradmatrix.pytest_plugin")  # imported by pytest itself, for assertion rewriting
    document = getattr(plugin, "LAST_DOCUMENT", None)
    if code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR) or document is None:
        if code == pytest.ExitCode.NO_TESTS_COLLECTED:
            raise UsageError("no comparison was selected (check --only, --shard and the pytest arguments after --)")
        raise UsageError("the matrix did not run" + ("; see the messages above" if args.pytest_output or extra
                                                      else "; --pytest-output shows pytest's messages"))
    return document


def cmd_run(args, extra) -> int:
    document = _run_matrix(args, "gradmatrix.manual", extra)
    return 0 if document["summary"]["passed"] else 1


def cmd_check(args, extra) -> int:
    from gradmatrix.oracles.candidate import Candidate, load_module
    from gradmatrix.checker import CheckResult

    try:
        candidate = Candidate(load_module(args.module))
    except ImportError as exc:
        raise UsageError(f"cannot import {args.module}: {exc}") from None
    except ValueError as exc:  # a layer it declares cannot be checked (oracles.declared.DeclarationError)
        raise UsageError(f"{args.module}: {exc}") from None
    if not candidate.ops:
        from gradmatrix.oracles.catalog import CATALOG

        before, closing = accounting_lines(candidate)
        for line in before + closing(2):
            print(line)

        wanted = "; ".join(dict.fromkeys(" + ".join(spec.functions) for spec in CATALOG.values()))
        raise UsageError(f"{args.module} provides no op gradmatrix knows (looked for: {wanted}) and declares "
                         f"no layer of its own (@gradmatrix.layer)")
    checking = _list(args.ops) or candidate.ops
    named = [f"{op} ({', '.join(candidate.contracts[op].functions)})" for op in candidate.ops]
    print(f"gradmatrix check: {candidate.name} provides {'; '.join(named)}"
          + (f"; checking {', '.join(checking)}" if checking != candidate.ops else ""), flush=True)
    # the verdict and the findings are printed by the pytest plugin's summary, from the document
    before, closing = accounting_lines(candidate)
    for line in before:
        print(line, flush=True)
    result = CheckResult(_run_matrix(args, args.module, extra))
    for line in closing(result.status):
        print(line)
    return result.status


def accounting_lines(candidate) -> tuple[list[str], Callable[[int], list[str]]]:
    """What becomes of every function and class of the candidate module: printed before the
    run when something will not be checked (each one with the reason; the header line names
    the checked ones with their ops), and a closing line for after the run that never calls
    a module a plain PASS when something in it went unchecked.

    Returns:
        (lines to print now, a function of the run's exit status giving the closing lines).
    """
    from gradmatrix.oracles.candidate import account

    entries = account(candidate)
    skipped = [e for e in entries if not e["checked"]]
    checked = len(entries) - len(skipped)
    now = []
    if skipped:
        now = [f"gradmatrix check: {len(entries)} functions and classes in {candidate.name}: "
               f"{checked} checked, {len(skipped)} not checked"]
        now += [f"  {e['name']} ({e['kind']}): NOT CHECKED: {e['reason']}" for e in skipped]

    def closing(status: int) -> list[str]:
        if entries and checked == 0:
            return [f"gradmatrix check: nothing in {candidate.name} was checked"]
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


def _verb(verbs, name: str, help: str, description: str, func):
    parser = verbs.add_parser(name, help=help, description=description, epilog=EXAMPLES[name],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gradmatrix", description="Cross-framework gradient verification: "
                                     "hand-derived gradients against PyTorch, JAX and numeric differences.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    run = _verb(verbs, "run", "run the agreement matrix and write the reports",
                "Run the agreement matrix for manual against torch, jax and numeric differences, through pytest "
                "(-k, markers and pytest-xdist work; arguments after -- go to pytest), and write agreement.json, "
                ".md and .html. Exit 0 when everything agrees, 1 on a discrepancy, 2 on a usage error.", cmd_run)
    _add_matrix_options(run)
    check = _verb(verbs, "check", "check your own module against every oracle",
                  "Import MODULE (a dotted name or a .py file) providing some of manual's functions with the same "
                  "names and signatures, run the ops it provides across the matrix against the oracles, print a "
                  "verdict per op with its worst discrepancy, and write the reports. Exit 0 all agree, 1 something "
                  "disagrees, 2 it cannot be checked (import error, no known op, a function that raises or returns "
                  "the wrong structure, shape or dtype).", cmd_check)
    check.add_argument("module", help="dotted module name or path to a .py file")
    _add_matrix_options(check, ops_flags=("--op", "--ops"))
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
    return parser


def _supervise(argv: list, args) -> int:
    """Run this very command in a child process and stand by (see the module docstring),
    holding the output directory's lock (``reports.writers.lock``) from before the run
    starts until after it ends, whatever the way it ends; the child shares it.

    Returns:
        The child's exit status, when it reported one; 2 with a message when it ended
        without a verdict.

    Raises:
        UsageError: the output directory cannot be written, or another command is writing it.
    """
    from gradmatrix.reports.writers import DirectoryBusy, lock

    existed = Path(args.out).exists()
    out = _writable(args.out)  # refused before anything runs
    try:
        held = lock(out, f"gradmatrix {args.verb}")
    except DirectoryBusy as exc:
        raise UsageError(str(exc)) from None
    try:
        return _run_child(argv, args, out, held)
    finally:
        held.release()
        if not existed:
            try:
                out.rmdir()  # made for this run, which wrote nothing there (a usage error)
            except OSError:
                pass


def _run_child(argv: list, args, out: Path, held) -> int:
    from gradmatrix.reports.writers import IN_PROGRESS, LOCK_FD, abandon, begin

    try:
        begin(out, f"gradmatrix {args.verb}")  # until the child finishes, no stale report passes for its verdict
    except OSError as exc:
        raise UsageError(f"cannot write reports to {args.out}: {exc.strerror or exc}") from None
    fd, verdict_file = tempfile.mkstemp(prefix="gradmatrix-verdict-", suffix=".txt")
    os.close(fd)
    os.unlink(verdict_file)
    child = subprocess.Popen([sys.executable, "-m", "gradmatrix", *argv], pass_fds=(held.fd,),
                             env=dict(os.environ, **{CHILD: verdict_file, LOCK_FD: str(held.fd)}))

    def forward(signum, frame):
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    handlers = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = child.wait()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    try:
        reported = int(Path(verdict_file).read_text(encoding="ascii"))
        os.unlink(verdict_file)
    except (OSError, ValueError):
        reported = None
    if reported is None:
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        print(f"gradmatrix: error: the run ended without a verdict ({how}): something in the process ended it "
              f"before it finished (code under test calling os._exit or sys.exit, a crash, a kill); "
              f"{out / IN_PROGRESS} marks the report directory as unfinished", file=sys.stderr)
        return 2
    if reported == 2 and (out / IN_PROGRESS).exists():
        abandon(out)  # a usage error before anything ran: the reports from before stand
    return reported if reported else code


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    given = list(argv)  # as typed, pytest arguments after -- included: what a child process gets
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if args.verb is None:
        parser.print_help()
        return 2
    if extra and args.verb not in ("run", "check"):
        print(f"gradmatrix: error: {args.verb} takes no pytest arguments after --", file=sys.stderr)
        return 2
    verdict_file = os.environ.pop(CHILD, None)  # popped: pytest-xdist workers must not report too
    try:
        if args.verb in ("run", "check") and verdict_file is None:
            return _supervise(given, args)
        code = args.func(args, extra)
    except UsageError as exc:
        print(f"gradmatrix: error: {' '.join(str(exc).split())}", file=sys.stderr)  # one line, whatever it quotes
        code = 2
    except KeyboardInterrupt:
        print("gradmatrix: interrupted", file=sys.stderr)
        code = 1
    if verdict_file is not None:
        sys.stdout.flush()
        Path(verdict_file).write_text(str(code), encoding="ascii")
    return code


if __name__ == "__main__":
    sys.exit(main())
