"""Every command and code block the README and docs/ show works: an example that breaks fails here.

Commands come from the README's ``sh`` blocks and from inline code spans that start with
``gradmatrix``.  Runs on a GPU (``--device cuda``) and of the full or large matrix are left
out (they need a GPU or minutes of CPU).  The other ``gradmatrix run`` and ``check``
commands are planned exactly as the command would plan them (every option parsed, the module
imported, every op, dtype, mode, shard and ``--only`` id checked against the matrix);
``--help`` and the verbs that read saved runs (``report``, ``diff``, ``merge``) are run for
real on a small saved run, with the shell's globs (``shard*/agreement.json``) expanded.

Every ```python block of the README and docs/ runs as written, in a folder of its own where
the repository's ``tests/`` is reachable, and asserts what the text around it says; a block
that cannot run is fenced ``python no-run`` and listed in ``FRAGMENTS`` with the reason (two
at most).  Every relative link resolves to a file, and an ``#anchor`` to one of its headings
by GitHub's rules.

The modules the README checks are illustrative paths (a student's
``assignment2/cs231n/layer_utils.py``); ``STAND_INS`` maps each onto the repository's fixture
of the same kind, and a README command that checks a module the table does not know fails.
"""

import glob
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import gradmatrix
from gradmatrix import cli

TESTS = Path(__file__).parent
README = TESTS.parent / "README.md"
PAGES = [README, *sorted((TESTS.parent / "docs").glob("*.md"))]  # the README and the docs/ pages
SKIP = ("--device cuda", "--matrix full", "--matrix large")

# README placeholder module -> what stands in for it here: a path relative to tests/, or a
# name resolved in the saved run's folder (``my_layers.py`` is written there by ``saved``)
# or on the import path.
STAND_INS = {
    "my_layers.py": "my_layers.py",  # provides manual's functions under their own names
    "mine.py": "my_layers.py",
    "mypackage.layers": "gradmatrix.manual",
    "tests/mutants/batchnorm_missing_mean_branch.py": TESTS / "mutants" / "batchnorm_missing_mean_branch.py",
    "mymodule.py": TESTS / "layers" / "gelu.py",  # a layer declared with @gradmatrix.layer
    "layers.py": TESTS / "cs231n" / "layers.py",  # assignment 2's layers.py
    "cs231n/rnn_layers.py": TESTS / "cs231n" / "rnn_layers.py",
    "assignment1/cs231n/classifiers/neural_net.py": TESTS / "cs231n" / "neural_net.py",
    "assignment2/cs231n/classifiers/fc_net.py": TESTS / "cs231n" / "fc_net.py",
    "assignment2/cs231n/classifiers/cnn.py": TESTS / "cs231n" / "cnn.py",
    "assignment2/cs231n/layer_utils.py": TESTS / "cs231n" / "layer_utils.py",
}


def readme_commands() -> list:
    """(line, argv) for every gradmatrix command in the README and docs/, comments and prefixes stripped."""
    text = "\n".join(page.read_text(encoding="utf-8") for page in PAGES)
    lines, in_sh = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_sh = line.strip() == "```sh"
            continue
        if in_sh:
            lines.append(line)
    joined = "\n".join(lines).replace("\\\n", " ")
    commands = [c.split(" #")[0].strip() for c in joined.splitlines()]
    for span in text.split("`")[1::2]:
        if span.startswith("gradmatrix ") and len(span.split()) > 2:  # "gradmatrix check" alone is prose
            commands.append(span)
    out = []
    for command in commands:
        command = command.removeprefix(".venv/bin/")
        if not command.startswith("gradmatrix ") or any(s in command for s in SKIP):
            continue
        out.append((command, shlex.split(command)[1:]))
    return out


COMMANDS = readme_commands()


def test_the_readme_shows_commands():
    verbs = {argv[0] for _, argv in COMMANDS}
    assert {"run", "check", "report", "diff", "merge"} <= verbs, verbs
    assert any("--only" in argv for _, argv in COMMANDS)


def test_every_readme_command_is_on_one_line():
    """An inline command broken across lines does not paste into a shell as one command."""
    assert [c for c, _ in COMMANDS if "\n" in c] == []


def _is_class(argv: list) -> bool:
    """A check of a class of submissions (course staff's batch mode, tests/test_class_mode.py)."""
    args = cli.build_parser().parse_args(argv)
    return args.verb == "check" and (args.class_folder is not None or len(args.module) > 1)


def _checked_module(argv: list) -> str:
    return cli.build_parser().parse_args(argv).module[0]


def test_every_module_the_readme_checks_has_a_stand_in():
    checked = {_checked_module(argv) for _, argv in COMMANDS
               if argv[0] == "check" and "--help" not in argv and not _is_class(argv)}
    assert checked - STAND_INS.keys() == set(), "add the README's new module to STAND_INS"
    assert STAND_INS.keys() - checked == set(), "the README no longer checks these: drop them from STAND_INS"
    for stand_in in STAND_INS.values():
        assert isinstance(stand_in, str) or stand_in.is_file(), stand_in


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small saved run, twice, and a directory with a module that provides manual's functions."""
    root = tmp_path_factory.mktemp("readme")
    (root / "my_layers.py").write_text(
        "from gradmatrix import manual as _manual\n\n"
        "globals().update({k: v for k, v in vars(_manual).items() if k.endswith(('_forward', '_backward', '_loss'))})\n")
    # the runs the README's commands read, made in this process (the commands themselves each
    # run in a fresh interpreter, as a reader types them)
    for out in ("gradmatrix-report", "shard0", "shard1", "shard2", "shard3"):
        shard = ["--shard", f"{out[-1]}/4"] if out.startswith("shard") else []
        run = gradmatrix("run", "--ops", "relu", "--seeds", "1", "--oracles", "torch", "--modes", "reverse",
                         "--dtypes", "float64", "--format", "json", "--out", out, "--progress", "none", *shard, cwd=root)
        assert run.returncode == 0, run.stdout + run.stderr
    for copy in ("before", "after"):
        (root / copy).mkdir()
        (root / copy / "agreement.json").write_bytes((root / "gradmatrix-report" / "agreement.json").read_bytes())
    return root


def _substitute(argv: list, root: Path) -> list:
    """The README's placeholders made real: its globs as a shell expands them, ``$i`` as 0."""
    out = []
    for a in argv:
        if "*" in a:
            matches = sorted(glob.glob(a, root_dir=root))
            assert matches, f"{a} matches nothing in the saved runs"
            out += matches
            continue
        out.append(a.replace("$i", "0"))
    return out


# One worker builds the saved runs for all of them, where --dist loadgroup groups (pytest-xdist
# 3.8 under pytest 9.2 does not: pytest-dev/pytest-xdist#1386; each worker builds them then).
@pytest.mark.xdist_group("readme_saved_runs")
@pytest.mark.parametrize("command, argv", [pytest.param(c, a, id=c[:80]) for c, a in COMMANDS])
def test_readme_command_works(command, argv, saved, monkeypatch):
    monkeypatch.chdir(saved)
    monkeypatch.setattr(sys, "path", list(sys.path))  # importing a fixture puts its folder on the path
    argv = _substitute(argv, saved)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    verb = argv[0]
    if verb == "check" and "--help" not in argv and _is_class(argv):
        return  # parsed; a class run is exercised on a real class in tests/test_class_mode.py
    if verb in ("run", "check", "watch") and "--help" not in argv:  # watch: planned as check, it never ends
        args = cli.build_parser().parse_args(argv)
        module = getattr(args, "module", None)
        module = module if verb == "watch" or module is None else module[0]
        candidate = "gradmatrix.manual" if verb == "run" else str(STAND_INS[module])
        verb = "check" if verb == "watch" else verb
        cli.plan(cli._request(args, candidate, verb)).close()  # raises UsageError on anything the command refuses
        assert not extra, "gradmatrix takes no pytest arguments after --"
        return
    if verb == "diff":  # the README's "after a torch/jax upgrade": two runs that agree
        argv = ["diff", "before/agreement.json", "after/agreement.json", *argv[3:]]
    # the store of compiled functions in the saved run's folder: gradmatrix cache clear must
    # not empty this machine's own
    env = {k: v for k, v in os.environ.items() if k != "GRADMATRIX_JAX_CACHE"}
    env["XDG_CACHE_HOME"] = str(saved / "cache")
    result = subprocess.run([sys.executable, "-m", "gradmatrix", *argv], cwd=saved, capture_output=True, text=True,
                            timeout=600, env=env)
    assert result.returncode == 0, (command, result.stdout + result.stderr)
    if argv[0] == "cache":
        assert str(saved / "cache" / "gradmatrix" / "jax") in result.stdout


def _example_after(marker: str) -> list:
    """The lines of the README's first unlabelled block after ``marker`` (a console example)."""
    text = README.read_text(encoding="utf-8")
    after = text[text.index(marker):]
    block = after[after.index("\n```\n") + 5:]
    return block[:block.index("\n```")].splitlines()


EXAMPLES = {"batchnorm_missing_mean_branch.py": "Read the finding:",  # the quick start
            "softmax_missing_1_over_n.py": "`tests/mutants/softmax_missing_1_over_n.py`:"}


@pytest.mark.parametrize("module", list(EXAMPLES))
def test_readme_console_examples_are_what_prints(module, tmp_path):
    """The console examples, as the README shows them, line by line (``...`` stands for what
    varies: times, ids, the absolute path of the reports)."""
    shown = _example_after(EXAMPLES[module])
    (tmp_path / "tests" / "mutants").mkdir(parents=True)
    (tmp_path / "tests" / "mutants" / module).write_bytes((TESTS / "mutants" / module).read_bytes())
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    run = subprocess.run([sys.executable, "-m", "gradmatrix", "check", f"tests/mutants/{module}", "--progress", "lines"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    printed = run.stdout.splitlines()
    printed = [line for line in printed if not line.startswith("gradmatrix: ") or line.startswith("gradmatrix: 1/")]
    assert run.returncode == 1 and len(printed) == len(shown), "\n".join(printed)
    for readme_line, line in zip(shown, printed):
        pattern = ".*".join(re.escape(part) for part in readme_line.split("..."))
        assert re.fullmatch(pattern, line), f"README: {readme_line}\nprints: {line}"


NO_RUN = "python no-run"  # a fence marking an illustrative fragment: not run, and listed in FRAGMENTS
# The few Python blocks that are not run, by their first line, each with the reason.
FRAGMENTS = {
    'gelu = gradmatrix.layer(MyGelu.apply, shapes={"x": (4, 5)}, reference=gelu_reference, framework="torch",':
        "declarations in a module, after the block above; tests/layers/framework_functions_right.py is that"
        " module, checked through the command by tests/test_custom_backward.py",
}


def python_blocks() -> list:
    """(page, first line, info, code) of every fenced Python block in the README and docs/."""
    blocks = []
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            info = lines[i].strip()[3:].strip() if lines[i].startswith("```") else None
            if info and info.split()[0] == "python":
                end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
                blocks.append((page, i + 1, info, "\n".join(lines[i + 1:end])))
                i = end
            i += 1
    return blocks


BLOCKS = python_blocks()


def test_python_blocks_are_run_or_listed_fragments():
    infos = {info for _, _, info, _ in BLOCKS}
    assert infos <= {"python", NO_RUN}, infos
    assert len([b for b in BLOCKS if b[2] == "python"]) >= 10
    fragments = {code.splitlines()[0]: f"{page.name}:{line}" for page, line, info, code in BLOCKS if info == NO_RUN}
    assert fragments.keys() - FRAGMENTS.keys() == set(), f"run these blocks, or list them in FRAGMENTS: {fragments}"
    assert FRAGMENTS.keys() - fragments.keys() == set(), "FRAGMENTS lists blocks that are run or gone"
    assert len(FRAGMENTS) <= 2, "keep fragments few: make the example runnable"


# Each block runs as written in a fresh folder where the repository's tests/ is reachable
# (``from tests.layers.gelu import ...``, ``gradmatrix.check("tests/cs231n/layers.py")``),
# in a process of its own; they share an xdist group, away from the saved runs' commands.
@pytest.mark.xdist_group("readme_python_blocks")
@pytest.mark.parametrize("page, line, info, code", [pytest.param(*b, id=f"{b[0].name}:{b[1]}") for b in BLOCKS
                                                   if b[2] == "python"])
def test_python_block_runs(page, line, info, code, tmp_path):
    (tmp_path / "tests").symlink_to(TESTS, target_is_directory=True)
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"{page.name}:{line}\n{result.stdout}{result.stderr}"


def _prose(text: str) -> list:
    """The lines of a Markdown text outside its fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def github_anchors(text: str) -> set:
    """The anchors GitHub gives a Markdown text's headings: the heading lowercased, markup
    and punctuation dropped (``_`` and ``-`` kept), spaces to ``-``, a repeated one numbered."""
    anchors, seen = set(), {}
    for line in _prose(text):
        heading = re.match(r"#{1,6} (.*)", line)
        if not heading:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1).strip())  # a link: its text
        anchor = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        n = seen.get(anchor, 0)
        seen[anchor] = n + 1
        anchors.add(anchor if n == 0 else f"{anchor}-{n}")
    return anchors


def test_github_anchors_follow_githubs_rules():
    text = ("# Your own layer: `check_layer`\n```sh\n# not a heading\n```\n## `manual`'s ops, float16\n"
            "## Watch mode\n## Watch mode\n### See [the report](docs/reports.md)\n#hashtag\n")
    assert github_anchors(text) == {"your-own-layer-check_layer", "manuals-ops-float16", "watch-mode", "watch-mode-1",
                                    "see-the-report"}


def relative_links() -> list:
    """(page, target) of every link in the README and docs/ that is not to a web address."""
    links = []
    for page in PAGES:
        for line in _prose(page.read_text(encoding="utf-8")):
            for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", line):
                if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                    links.append((page, target))
    return links


def test_the_docs_link_among_themselves():
    pages = {page for page, _ in relative_links()}
    assert README in pages and len(pages) == len(PAGES), pages


@pytest.mark.parametrize("page, target", [pytest.param(p, t, id=f"{p.name}:{t}") for p, t in relative_links()])
def test_relative_link_resolves(page, target):
    path, _, anchor = target.partition("#")
    linked = (page.parent / path).resolve() if path else page
    assert linked.exists(), f"{page.name}: link to {target}: no file {path}"
    if anchor:
        assert linked.suffix == ".md", f"{page.name}: link to {target}: an anchor in a file that is not Markdown"
        assert anchor in github_anchors(linked.read_text(encoding="utf-8")), f"{page.name}: link to {target}: {linked.name} has no such heading"
