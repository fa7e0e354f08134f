"""The ``gradmatrix`` command: run, check, report, diff, merge.

Exit status everywhere: 0 all agree (or nothing got worse), 1 a discrepancy (or something
got worse, or a run was incomplete), 2 a usage or setup error, with a one-line reason.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

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


def _progress_mode(requested: str) -> str:
    """'auto' becomes a live bar on a terminal and plain lines otherwise or under CI."""
    if requested != "auto":
        return requested
    return "bar" if sys.stdout.isatty() and not os.environ.get("CI") else "lines"


def _pytest_args(args, candidate: str, extra: list) -> list:
    # no:logging: the matrix logs nothing, and capturing logs around each of its thousands of
    # tiny tests took a fifth of a run; --assert=plain: the matrix test asserts nothing, and
    # rewriting the modules it imports took a second
    # pytest's own report (a failure block per comparison, the short summary) is what the
    # findings condense: shown only when asked for, or when arguments go to pytest
    quiet = [] if args.pytest_output or extra else ["-q", "--no-summary"]
    argv = ["--pyargs", "gradmatrix.matrix_test", "-q", *quiet, "-p", "no:cacheprovider",
            "-p", "no:logging", "--assert=plain",
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


def _run_matrix(args, candidate: str, extra: list) -> dict:
    import pytest

    _plan_or_usage_error(args, candidate)
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
    if not candidate.ops:
        from gradmatrix.oracles.catalog import CATALOG

        wanted = "; ".join(" + ".join(spec.contract) for spec in CATALOG.values())
        raise UsageError(f"{args.module} provides no op gradmatrix knows (looked for: {wanted})")
    checking = _list(args.ops) or candidate.ops
    print(f"gradmatrix check: {candidate.name} provides {', '.join(candidate.ops)}"
          + (f"; checking {', '.join(checking)}" if checking != candidate.ops else ""), flush=True)
    # the verdict and the findings are printed by the pytest plugin's summary, from the document
    return CheckResult(_run_matrix(args, args.module, extra)).status


def cmd_report(args, extra) -> int:
    from gradmatrix.reports.writers import write_reports

    from gradmatrix.reports import findings

    document = _load(args.results)
    if "findings" not in document:  # a report written before findings existed
        candidate = document["run"].get("candidate", "")
        document["verdict"] = findings.verdict(document["comparisons"], candidate, document["summary"]["complete"])
        document["findings"] = findings.build(document["comparisons"], candidate)
    for path in write_reports(document, args.out, tuple(args.format)):
        print(f"report: {path}")
    return 0


def cmd_diff(args, extra) -> int:
    from gradmatrix.reports import diff

    result = diff.diff(_load(args.old), _load(args.new), factor=args.factor)
    print(json.dumps(result, indent=1) if args.json else diff.render(result), end="" if not args.json else "\n")
    return 1 if result["worse"] else 0


def cmd_merge(args, extra) -> int:
    from gradmatrix.reports.markdown import verdict_line
    from gradmatrix.reports.merge import merge
    from gradmatrix.reports.writers import write_reports

    documents = [_load(p) for p in args.shards]
    try:
        merged = merge(documents, names=list(args.shards))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.output)
    if out.name != "agreement.json":
        raise UsageError(f"-o must name a file agreement.json (its directory gets the other formats), got {out}")
    for path in write_reports(merged, out.parent, tuple(args.format)):
        print(f"report: {path}")
    m = merged["merge"]
    print(f"merged {len(documents)} shards: {merged['summary']['comparisons']} comparisons, "
          f"{len(m['overlaps'])} overlapping (identical), {len(m['conflicts'])} conflicting, "
          f"{len(m['environment_differences'])} environment differences")
    for conflict in m["conflicts"][:10]:
        print(f"  conflict: {conflict['id']} in {' and '.join(conflict['shards'])}: {' vs '.join(conflict['verdicts'])}")
    for d in m["environment_differences"][:10]:
        print(f"  environment: {d['shard']}: {d['key']} differs")
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


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
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
    try:
        return args.func(args, extra)
    except UsageError as exc:
        print(f"gradmatrix: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gradmatrix: interrupted", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
