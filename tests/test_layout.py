"""The package's shape: one ``gradmatrix`` namespace, data flowing one way, a plugin that
costs nothing to a session that runs no matrix."""

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from cli_helpers import gradmatrix_process

ROOT = Path(__file__).resolve().parents[1]

# Folder -> layer.  An import may go to its own layer or a lower one, never up:
# catalog -> case inputs -> implementations -> comparison -> findings -> report, with the
# runner, checker, plugin and command (the gradmatrix folder) on top.
LAYERS = {"manual": 0, "oracles": 1, "reports": 2, "gradmatrix": 3}
PACKAGE = {"gradmatrix.manual": "manual", "gradmatrix.oracles": "oracles", "gradmatrix.reports": "reports"}


def _imports(path: Path):
    """(line, module) for every import of ``path``, relative ones made absolute."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    folder = path.parent.name
    package = "gradmatrix" if folder == "gradmatrix" else f"gradmatrix.{folder}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                if not node.module:  # from . import compare
                    yield from ((node.lineno, f"{base}.{alias.name}") for alias in node.names)
                    continue
                module = f"{base}.{node.module}"
            else:
                module = node.module or ""
            if module == "gradmatrix":  # from gradmatrix import oracles
                yield from ((node.lineno, f"gradmatrix.{alias.name}") for alias in node.names)
            else:
                yield node.lineno, module


def _layer_of(module: str) -> str | None:
    for prefix, folder in PACKAGE.items():
        if module == prefix or module.startswith(prefix + "."):
            return folder
    if module == "gradmatrix" or module.startswith("gradmatrix."):
        return "gradmatrix"
    return None


def test_imports_flow_one_way():
    back_edges, bare = [], []
    for folder, layer in LAYERS.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            for line, module in _imports(path):
                top = module.split(".")[0]
                if top in ("manual", "oracles", "reports"):
                    bare.append(f"{path.relative_to(ROOT)}:{line} imports {module} (outside the gradmatrix namespace)")
                target = _layer_of(module)
                if target is not None and LAYERS[target] > layer:
                    back_edges.append(f"{path.relative_to(ROOT)}:{line} imports {module} ({folder} -> {target})")
                if folder == "manual" and target not in (None, "manual"):
                    back_edges.append(f"{path.relative_to(ROOT)}:{line}: manual imports {module}")
    assert not bare, "\n".join(bare)
    assert not back_edges, "imports against the flow of data:\n" + "\n".join(back_edges)


def test_the_import_check_sees_a_back_edge(tmp_path):
    """The check above can fail: a reports module importing the runner is found."""
    fake = tmp_path / "reports" / "bad.py"
    fake.parent.mkdir()
    fake.write_text("from gradmatrix.runner import Runner\nfrom . import compare\n")
    found = [(m, _layer_of(m)) for _, m in _imports(fake)]
    assert found == [("gradmatrix.runner", "gradmatrix"), ("gradmatrix.reports.compare", "reports")]


def test_only_the_gradmatrix_namespace_is_installed():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert all(p == "gradmatrix" or p.startswith("gradmatrix.") for p in config["packages"])
    assert config["package-dir"] == {"gradmatrix": "gradmatrix", **{k: v for k, v in PACKAGE.items()}}


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_plugin_costs_nothing_without_a_matrix(tmp_path):
    """A session of plain tests imports neither torch nor JAX and writes no report."""
    run = _python(f"""
        import sys, pytest
        code = pytest.main([{str(ROOT / 'tests' / 'test_manual_values.py')!r}, "-q", "-p", "no:cacheprovider",
                            "-p", "no:xdist"])
        heavy = sorted(m for m in ("torch", "jax") if m in sys.modules)
        print("RESULT", int(code), heavy)
    """, tmp_path)
    assert "RESULT 0 []" in run.stdout, run.stdout + run.stderr
    assert not (tmp_path / "gradmatrix-report").exists()


def test_collect_only_writes_no_report(tmp_path):
    out = tmp_path / "gradmatrix-report"
    out.mkdir()
    (out / "agreement.json").write_text('{"kept": true}')
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          str(ROOT / "tests" / "test_matrix.py"), "--gm-ops", "relu"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "test_agreement[relu-" in run.stdout
    assert json.loads((out / "agreement.json").read_text()) == {"kept": True}
    assert sorted(p.name for p in out.iterdir()) == ["agreement.json"]


def test_a_user_project_with_its_own_reports_and_manual_packages(tmp_path):
    """Packages called reports and manual in the user's project shadow nothing of ours."""
    for name in ("reports", "manual", "oracles"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"WHO = 'the user project {name}'\n")
    (tmp_path / "mine.py").write_text(textwrap.dedent("""
        import numpy as np
        def relu_forward(x):
            return np.maximum(x, 0), x
        def relu_backward(dout, x):
            return dout * (x > 0)
    """))
    run = _python("""
        import reports, gradmatrix
        result = gradmatrix.check("mine.py", ops=["relu"], seeds=1, dtypes=["float64"], oracles=["numeric"],
                                  modes=["reverse"])
        print("RESULT", result.status, reports.WHO)
    """, tmp_path)
    assert "RESULT 0 the user project reports" in run.stdout, run.stdout + run.stderr
    # a fresh interpreter started in the project (``python -m`` puts it first on sys.path)
    cli = gradmatrix_process("--help", cwd=tmp_path)
    assert cli.returncode == 0 and "usage: gradmatrix" in cli.stdout, cli.stderr


def test_plugin_loads_without_frameworks(tmp_path):
    run = _python("""
        import sys
        import gradmatrix.pytest_plugin
        print("RESULT", sorted(m for m in ("torch", "jax") if m in sys.modules))
    """, tmp_path)
    assert "RESULT []" in run.stdout, run.stdout + run.stderr
