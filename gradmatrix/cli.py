"""The ``gradmatrix`` command: run, check, report, diff, merge.

Exit status everywhere: 0 all agree (or nothing got worse), 1 a discrepancy (or something
got worse, or a run was incomplete), 2 a usage or setup error, with a one-line reason.

``run`` and ``check`` run the matrix in a child process of their own and stand by: code
under test that ends its process (``os._exit(0)`` inside a function, a segfault) cannot end
the command with a status it did not earn.  The child reports its verdict's status through a
file; a child that ends without one is an error (status 2) naming what happened.  Ctrl-C and
SIGTERM reach the child, which writes its incomplete report.
"""

from __future__ import annotations

import argparse
import json
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


def _list(values) -> list | None:
    """Flatten ``--ops a b,c`` into ['a', 'b', 'c']."""
    if not values:
        return None
    return [v for value in values for v in value.split(",") if v]


def _load(path: str) -> dict:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path} as an agreement report: {exc}") from None
    try:
        from gradmatrix.reports.schema import validate

        validate(document)
    except Exception as exc:  # jsonschema.ValidationError, with a long message: keep its first line
        raise UsageError(f"{path} is not a valid agreement report: {str(exc).splitlines()[0]}") from None
    return document


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


def _add_matrix_options(parser: argparse.ArgumentParser, ops_flags=("--ops", "--op")) -> None:
    from gradmatrix.oracles.catalog import CATALOG, DTYPES, MATRICES
    from gradmatrix.oracles.implementations import ORACLES

    parser.add_argument(*ops_flags, dest="ops", nargs="+", metavar="OP", help=f"ops (default: all): {', '.join(CATALOG)}")
    parser.add_argument("--dtypes", nargs="+", metavar="DTYPE", help=f"dtypes (default: {' '.join(DTYPES)})")
    parser.add_argument("--oracles", nargs="+", metavar="ORACLE", help=f"oracles (default: {' '.join(ORACLES)})")
    parser.add_argument("--seeds", type=int, metavar="N", help="seeds per shape (default: the matrix's own)")
    parser.add_argument("--modes", nargs="+", metavar="MODE",
                        help="checks: reverse (gradients), jvp (forward mode against reverse mode), hvp "
                             "(Hessian-vector products of the losses) (default: all three)")
    parser.add_argument("--matrix", choices=MATRICES, default="default", help="matrix size (default: default)")
    parser.add_argument("-n", dest="workers", metavar="WORKERS", help="pytest-xdist workers (a number or auto)")
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
    parser.add_argument("--case-timeout", type=float, default=None, metavar="SECONDS",
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
    """Plan the run before pytest starts, so that a bad option or candidate is a one-line
    usage error (exit 2) instead of a collection error inside pytest."""
    from gradmatrix.oracles import devices
    from gradmatrix.oracles.candidate import Candidate, load_module
    from gradmatrix.runner import default_plan

    try:
        module = load_module(candidate)
    except ImportError as exc:
        raise UsageError(f"cannot import {candidate}: {exc}") from None
    try:
        plan = default_plan(args.matrix, _list(args.ops), _list(args.dtypes), args.seeds,
                            _list(args.oracles) or _default_oracles(), Candidate(module), args.only, _list(args.modes))
        if args.shard:
            from gradmatrix.pytest_plugin import shard

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
    from gradmatrix.reports.writers import publish

    document = verify(_load(args.results))  # the summary recomputed from records and plan, never trusted
    written, kept = publish(document, _writable(args.out), tuple(args.format), "gradmatrix report")
    for path in written:
        print(f"report: {path}")
    if kept:
        print(f"note: {kept}")
    print(verdict_line(document["summary"]).replace("**", ""))
    return 0 if document["summary"]["passed"] else 1


def cmd_diff(args, extra) -> int:
    from gradmatrix.reports import diff

    result = diff.diff(_load(args.old), _load(args.new), factor=args.factor)
    print(json.dumps(result, indent=1) if args.json else diff.render(result), end="" if not args.json else "\n")
    return 1 if result["worse"] else 0


def cmd_merge(args, extra) -> int:
    from gradmatrix.reports.markdown import verdict_line
    from gradmatrix.reports.merge import merge
    from gradmatrix.reports.writers import publish

    documents = [_load(p) for p in args.shards]
    try:
        merged = merge(documents, names=list(args.shards))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.output)
    if out.name != "agreement.json":
        raise UsageError(f"-o must name a file agreement.json (its directory gets the other formats), got {out}")
    written, kept = publish(merged, _writable(out.parent), tuple(args.format), "gradmatrix merge")
    for path in written:
        print(f"report: {path}")
    if kept:
        print(f"note: {kept}")
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
    parser = argparse.ArgumentParser(prog="gradmatrix", description="Cross-framework gradient verification: "
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
    diff.add_argument("--factor", type=float, default=10.0, help="an error grew when it is this many times larger (default 10)")
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
    """Run this very command in a child process and stand by (see the module docstring).

    Returns:
        The child's exit status, when it reported one; 2 with a message when it ended
        without a verdict.
    """
    from gradmatrix.reports.writers import IN_PROGRESS, abandon, begin

    existed = Path(args.out).exists()
    out = _writable(args.out)  # refused before anything runs
    try:
        begin(out, f"gradmatrix {args.verb}")  # until the child finishes, no stale report passes for its verdict
    except OSError as exc:
        raise UsageError(f"cannot write reports to {args.out}: {exc.strerror or exc}") from None
    fd, verdict_file = tempfile.mkstemp(prefix="gradmatrix-verdict-", suffix=".txt")
    os.close(fd)
    os.unlink(verdict_file)
    child = subprocess.Popen([sys.executable, "-m", "gradmatrix", *argv], env=dict(os.environ, **{CHILD: verdict_file}))

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
        abandon(out, remove=not existed)  # a usage error before anything ran: the reports from before stand
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
        print(f"gradmatrix: error: {exc}", file=sys.stderr)
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
