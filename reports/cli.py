"""The ``gradmatrix`` command.

Verbs:
  run     run the agreement matrix (through pytest) and write the reports
"""

from __future__ import annotations

import argparse
import sys

EXAMPLES = {
    "run": "examples:\n  gradmatrix run\n  gradmatrix run --ops relu affine --dtypes float32 -n 2\n"
           "  gradmatrix run --matrix full --out full-report\n"
           "  gradmatrix run -- -x          (arguments after -- go to pytest)",
}


class UsageError(Exception):
    """A usage or setup problem: exit status 2 with a one-line reason."""


def _list(values) -> list | None:
    """Flatten ``--ops a b,c`` into ['a', 'b', 'c']."""
    if not values:
        return None
    return [v for value in values for v in value.split(",") if v]


def _add_matrix_options(parser: argparse.ArgumentParser) -> None:
    from oracles.catalog import CATALOG, DTYPES, MATRICES
    from oracles.implementations import ORACLES

    parser.add_argument("--ops", nargs="+", metavar="OP", help=f"ops to run (default: all): {', '.join(CATALOG)}")
    parser.add_argument("--dtypes", nargs="+", metavar="DTYPE", help=f"dtypes (default: {' '.join(DTYPES)})")
    parser.add_argument("--oracles", nargs="+", metavar="ORACLE", help=f"oracles (default: {' '.join(ORACLES)})")
    parser.add_argument("--seeds", type=int, metavar="N", help="seeds per shape (default: the matrix's own)")
    parser.add_argument("--matrix", choices=MATRICES, default="default", help="matrix size (default: default)")
    parser.add_argument("-n", dest="workers", metavar="WORKERS", help="pytest-xdist workers (a number or auto)")
    parser.add_argument("--out", default="gradmatrix-report", metavar="DIR", help="report directory")
    parser.add_argument("--only", metavar="ID", help="run only the comparison with this id (from a report)")
    parser.add_argument("--format", nargs="+", default=["json", "md"], choices=["json", "md", "html"],
                        help="report formats (default: json md)")


def _pytest_args(args, candidate: str, extra: list) -> list:
    argv = ["-p", "oracles.pytest_plugin", "--pyargs", "oracles.matrix_test", "-q",
            "--gm-matrix", args.matrix, "--gm-out", args.out, "--gm-candidate", candidate,
            "--gm-formats", ",".join(args.format)]
    for flag, value in (("--gm-ops", _list(args.ops)), ("--gm-dtypes", _list(args.dtypes)),
                        ("--gm-oracles", _list(args.oracles))):
        if value:
            argv += [flag, ",".join(value)]
    if args.seeds is not None:
        argv += ["--gm-seeds", str(args.seeds)]
    if args.only:
        argv += ["--gm-only", args.only]
    if args.workers not in (None, "0"):
        argv += ["-n", args.workers, "--dist", "loadgroup"]
    return argv + extra


def _run_matrix(args, candidate: str, extra: list) -> int:
    import pytest

    code = pytest.main(_pytest_args(args, candidate, extra))
    plugin = sys.modules.get("oracles.pytest_plugin")  # imported by pytest itself, for assertion rewriting
    document = getattr(plugin, "LAST_DOCUMENT", None)
    if code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR) or document is None:
        raise UsageError(f"the matrix did not run (pytest exit status {int(code)}); see the messages above")
    return 0 if document["summary"]["passed"] else 1


def cmd_run(args, extra) -> int:
    return _run_matrix(args, "manual", extra)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gradmatrix", description="Cross-framework gradient verification.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    run = verbs.add_parser("run", help="run the agreement matrix and write the reports", epilog=EXAMPLES["run"],
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           description="Run the agreement matrix for manual against torch, jax and numeric "
                                       "differences, through pytest; write agreement.json and agreement.md. "
                                       "Exit 0 when everything agrees, 1 on a discrepancy, 2 on a usage error.")
    _add_matrix_options(run)
    run.set_defaults(func=cmd_run)
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
    try:
        return args.func(args, extra)
    except UsageError as exc:
        print(f"gradmatrix: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
