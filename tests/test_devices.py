"""--device and --matmul-precision: device resolution, precision settings set and restored
in the real frameworks, the float32 re-check at precision "highest", the large matrix, and
the GPU matrix itself where a CUDA device exists (skipped here with the reason otherwise)."""

from pathlib import Path

import jax
import pytest
import torch

from gradmatrix import manual
from gradmatrix.oracles import devices
from gradmatrix.oracles.candidate import Candidate, load_module
from gradmatrix.oracles.cases import Case
from gradmatrix.runner import Comparison, Runner, default_plan
from gradmatrix.reports import document as documents
from gradmatrix.reports import environment, markdown
from cli_helpers import gradmatrix as gradmatrix_cli

MUTANTS = Path(__file__).parent / "mutants"

HAS_CUDA = torch.cuda.is_available()
NO_CUDA = pytest.mark.skipif(not HAS_CUDA, reason=f"no CUDA device: {devices.cuda_reason()}")


def test_device_resolution():
    assert devices.resolve("cpu") == "cpu"
    assert devices.resolve("auto") == ("cuda" if HAS_CUDA else "cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'; choose from cpu, cuda, auto"):
        devices.resolve("tpu")
    if not HAS_CUDA:
        with pytest.raises(devices.DeviceUnavailable, match=r"--device cuda: torch .* sees no CUDA device"):
            devices.resolve("cuda")


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA device is present")
def test_cuda_without_a_gpu_is_a_usage_error_with_the_reason(tmp_path):
    run = gradmatrix_cli("run", "--ops", "relu", "--seeds", "1", "--device", "cuda", "--progress", "none", cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "--device cuda: torch" in run.stdout + run.stderr and "sees no CUDA device" in run.stdout + run.stderr
    assert not (tmp_path / "gradmatrix-report").exists()  # nothing ran, so no report claims anything


@pytest.mark.parametrize("level, tf32, jax_setting", [("high", True, "high"), ("highest", False, "highest")])
def test_matmul_precision_is_set_for_both_frameworks_and_restored(level, tf32, jax_setting):
    before = (torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32,
              torch.backends.cudnn.allow_tf32, jax.config.jax_default_matmul_precision)
    with devices.matmul_precision(level):
        assert torch.get_float32_matmul_precision() == level
        assert torch.backends.cuda.matmul.allow_tf32 is tf32 and torch.backends.cudnn.allow_tf32 is tf32
        assert jax.config.jax_default_matmul_precision == jax_setting
        env = environment.collect("cpu", level)
        assert env["frameworks"]["torch"]["cuda_matmul_allow_tf32"] is tf32
        assert env["frameworks"]["jax"]["default_matmul_precision"] == jax_setting
    after = (torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32, jax.config.jax_default_matmul_precision)
    assert after == before
    with pytest.raises(ValueError, match="unknown matmul precision 'medium'"):
        with devices.matmul_precision("medium"):
            pass


def test_settings_are_read_and_set_only_for_the_oracles_used_here():
    # a process whose JAX is another's (a user's script calling gradmatrix.check, a candidate
    # in its worker): setting the matmul precision and reading the environment import none of
    # the oracles' modules, and so leave JAX's 64-bit mode as it was
    import subprocess
    import sys

    script = ("import sys, jax\n"
              "from gradmatrix.oracles import devices\n"
              "from gradmatrix.reports import environment\n"
              "with devices.matmul_precision('high'):\n"
              "    frameworks = environment.collect('cpu', 'high')['frameworks']\n"
              "assert frameworks == {}, frameworks\n"
              "assert not jax.config.jax_enable_x64\n"
              "assert 'gradmatrix.oracles.jax_oracle' not in sys.modules\n"
              "assert 'gradmatrix.oracles.torch_oracle' not in sys.modules and 'torch' not in sys.modules\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr


def test_a_float32_disagreement_is_repeated_at_highest_precision_and_reported():
    # a real mistake persists at "highest": the report says so, and does not excuse it
    candidate = Candidate(load_module(str(MUTANTS / "affine_missing_transpose.py")))
    case = Case("affine", (("N", 8), ("Dx", 5), ("M", 5)), 0, "float32")
    high = Runner(candidate, ("torch", "jax"), matmul_precision="high")
    records = [high.run(Comparison(case, (candidate.name, o))) for o in ("torch", "jax")]
    assert all(r["verdict"] == "disagree" and r["at_highest_precision"]["verdict"] == "disagree" for r in records)
    assert high.run(Comparison(case, ("torch", "jax")))["verdict"] == "agree"
    doc = documents.build(records, environment.collect(), {"candidate": candidate.name, "matrix": "default",
                                                              "oracles": ["torch", "jax"]})
    assert doc["matmul_precision"] == {"rechecked": 2, "disappear_at_highest": 0}
    md = markdown.render(doc).replace("\\", "")  # as read, without Markdown's escapes
    assert "persists at matmul precision 'highest' (disagree): not explained by matmul precision" in md
    # the run's summary line: noise on a CPU (no reduced-precision matmul there), shown on a GPU
    assert "float32 disagreement(s) involving torch or JAX" not in md
    doc["environment"]["device"] = "NVIDIA H100 80GB HBM3"
    md = markdown.render(doc)
    assert "2 float32 disagreement(s) involving torch or JAX" in md and "0 disappear there" in md
    # not repeated: already at "highest", float64 cases, or no framework in the pair
    highest = Runner(candidate, ("torch", "numeric"), matmul_precision="highest")
    assert "at_highest_precision" not in highest.run(Comparison(case, (candidate.name, "torch")))
    f64 = Case("affine", (("N", 8), ("Dx", 5), ("M", 5)), 0, "float64")
    assert "at_highest_precision" not in high.run(Comparison(f64, (candidate.name, "torch")))
    numeric = Runner(candidate, ("numeric",), matmul_precision="high")
    assert "at_highest_precision" not in numeric.run(Comparison(case, (candidate.name, "numeric")))


def test_the_note_names_reduced_precision_when_the_disagreement_disappears():
    record = {"at_highest_precision": {"verdict": "agree", "message": ""}}
    assert "the cause is the framework's reduced-precision float32 matmul" in documents.precision_note(record)
    assert documents.precision_note({}) is None


def test_the_large_matrix_reaches_4096_without_numeric_or_kink_cases():
    comparisons = default_plan("large")
    dims = [dict(c.case.dims) for c in comparisons]
    assert max(d["N"] for d in dims) == 4096 and max(d.get("H", 0) for d in dims) == 4096
    assert max(d.get("Dx", d.get("D", 0)) if not isinstance(d.get("Dx"), tuple) else 0 for d in dims) == 4096
    assert all("numeric" not in c.pair for c in comparisons)
    assert {c.case.kind for c in comparisons} <= {"random", "jvp", "hvp"}
    assert {c.case.op for c in comparisons} == {"relu", "affine", "softmax_loss", "two_layer_net"}


@NO_CUDA
def test_gpu_oracles_agree_with_the_cpu_reference_at_highest_precision():
    runner = Runner(Candidate(manual, "manual"), ("torch", "jax", "numeric"), device="cuda", matmul_precision="highest")
    records = [runner.run(c) for c in default_plan("default", ["affine", "two_layer_net"], None, 2)]
    assert records and all(r["verdict"] in ("agree", "convention") for r in records), \
        [r["message"] for r in records if r["verdict"] not in ("agree", "convention")][:5]
    env = environment.collect("cuda", "highest")
    assert env["frameworks"]["torch"]["device"] != "cpu"


@NO_CUDA
def test_gpu_large_matrix_runs_and_explains_tf32(tmp_path):
    run = gradmatrix_cli("run", "--matrix", "large", "--ops", "affine", "--device", "cuda", "--matmul-precision", "high",
                         "--progress", "none", cwd=tmp_path)
    assert run.returncode in (0, 1), run.stdout + run.stderr
    md = (tmp_path / "gradmatrix-report" / "agreement.md").read_text()
    assert "matmul precision high" in md or "PASS" in md
