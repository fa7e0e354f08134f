"""What the package says of itself holds: the license file its metadata names, the Python
versions it claims (classifiers from requires-python up, and code that parses as Python 3.10),
every dependency declared with a range and pinned in constraints.txt."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_the_license_file_is_mit_for_the_contributors():
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "gradmatrix contributors" in text


def test_the_python_versions_claimed_are_classified_and_the_code_parses_as_the_oldest():
    oldest = tuple(int(p) for p in re.fullmatch(r">=(\d+)\.(\d+)", PROJECT["requires-python"]).groups())
    classified = sorted(tuple(int(p) for p in c.rsplit(" :: ", 1)[1].split("."))
                        for c in PROJECT["classifiers"] if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c))
    assert classified and classified[0] == oldest
    too_new = []
    for folder in ("gradmatrix", "manual", "oracles", "reports"):
        for path in (ROOT / folder).rglob("*.py"):
            try:
                ast.parse(path.read_text(encoding="utf-8"), feature_version=oldest)
            except SyntaxError as exc:
                too_new.append(f"{path.relative_to(ROOT)}: {exc}")
    assert not too_new, too_new


def test_the_oldest_pytest_declared_is_the_one_tested():
    # the plugin is the only user of pytest: its declared minimum is the version pinned, which
    # the suite (the plugin's tests among it) runs on
    declared = next(r for r in PROJECT["dependencies"] if re.match(r"pytest\b", r) and not r.startswith("pytest-"))
    pinned = next(line for line in (ROOT / "constraints.txt").read_text().splitlines() if line.startswith("pytest=="))
    minimum = re.search(r">=\s*([0-9.]+)", declared).group(1)
    assert tuple(map(int, pinned.split("==")[1].split("."))) == tuple(map(int, (minimum + ".0.0").split(".")[:3]))
    assert pytest.__version__ == pinned.split("==")[1]  # ... and the one this suite runs on


def test_every_dependency_has_a_range_and_a_pin():
    pins = {line.split("==")[0].lower().replace("_", "-") for line in (ROOT / "constraints.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#")}
    for requirement in PROJECT["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower().replace("_", "-")
        assert re.search(r">=", requirement), f"{requirement}: no range"
        assert name in pins, f"{name} is not pinned in constraints.txt"
