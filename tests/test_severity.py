"""Severity (``reports.severity``): a difference that leaves every value right is a warning,
shown and not failed; a wrong value is an error, named before any warning (issue "A verdict
you can trust").  The correct files are written as students write them (tests/severity)."""

import warnings
from pathlib import Path

import numpy as np
import pytest

import gradmatrix
from gradmatrix.reports import console, severity

HERE = Path(__file__).parent / "severity"
KINDS = {severity.DTYPE_PROMOTED, severity.SHAPE_SIZE_1, severity.WROTE_INTO_ARGUMENT, severity.NON_FINITE_AT_EXTREME}


@pytest.fixture(scope="module")
def student():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the course's softmax logs 0 at logits of 1e4
        return gradmatrix.check(str(HERE / "student_layers.py"))


def test_correct_code_written_as_students_write_it_passes_with_a_warning_per_idiom(student):
    document = student.document
    assert student.status == 0 and student.passed
    found = {(w["op"], w["kind"], w.get("tensor") or w.get("parameter")) for w in document["warnings"]}
    assert {
        ("relu", severity.WROTE_INTO_ARGUMENT, "dout"),  # dx = dout; dx[x <= 0] = 0
        ("lstm_step", severity.WROTE_INTO_ARGUMENT, "dnext_c"),  # dnext_c += ..., its own parameter named
        ("dropout_train", severity.DTYPE_PROMOTED, "dx"),  # (rand < p) / p is float64
        ("batchnorm", severity.SHAPE_SIZE_1, "dgamma"), ("batchnorm", severity.SHAPE_SIZE_1, "dbeta"),
        ("softmax_loss", severity.NON_FINITE_AT_EXTREME, "loss"),  # log(0) at logits of 1e4
    } <= found
    assert document["summary"]["warnings"] == len(document["warnings"])
    assert not document["findings"]
    # the values behind each warning were compared: every tensor of those ops was measured
    for record in document["comparisons"]:
        if record.get("warnings") and record["op"] != "softmax_loss":
            assert all("metrics" in t for t in record["tensors"]), record["id"]


def test_the_console_shows_one_line_per_kind_of_warning(student):
    lines = console.render(student.document)
    assert lines[0].startswith("PASS:") and "warnings, below" in lines[0]
    shown = [line for line in lines if line.startswith("warning (")]
    assert sorted(line.split(")")[0].removeprefix("warning (") for line in shown) == sorted(KINDS)
    assert any("relu_backward wrote into its parameter dout" in line for line in shown)


def test_strict_makes_warnings_fail():
    result = gradmatrix.check(str(HERE / "student_layers.py"), ops=["relu"], modes=["reverse"], strict=True)
    assert not result.passed and result.status == 1
    assert console.render(result.document)[0].startswith("FAIL (strict)")


def test_a_bug_among_warnings_is_an_error_shown_first():
    # (its batchnorm_forward has no test mode: batchnorm_test, which checks it, is left out here)
    result = gradmatrix.check(str(HERE / "one_bug_and_warnings.py"), ["relu", "affine", "batchnorm"], modes=["reverse"])
    assert result.status == 1
    lines = console.render(result.document)
    first_warning = next(i for i, line in enumerate(lines) if line.startswith("warning ("))
    bug = next(i for i, line in enumerate(lines) if line.startswith("1. batchnorm dx"))
    assert bug < first_warning and lines[0].startswith("FAIL")
    assert "in batchnorm_backward" in lines[bug]
    assert {w["kind"] for w in result.document["warnings"]} == {severity.WROTE_INTO_ARGUMENT, severity.DTYPE_PROMOTED}
    # only the real bug is a finding: the warnings take no finding's place
    assert {(f["op"], f["tensor"]) for f in result.document["findings"]} == {("batchnorm", "dx")}


def test_a_backward_reading_state_outside_its_cache_is_caught():
    result = gradmatrix.check(str(HERE / "relu_mask_in_global.py"), modes=["reverse"])
    assert result.status == 1
    first = result.document["findings"][0]
    assert (first["op"], first["tensor"], first["pattern"]) == ("relu", "dx", "state-outside-cache")
    assert first["cause"]["kind"] == "state-outside-cache"
    lines = console.render(result.document)
    assert "in relu_backward" in lines[1] and "backward reads state outside its cache" in lines[2]


def test_a_backward_that_changes_its_cache_is_caught(tmp_path):
    path = tmp_path / "relu_scales_cache.py"
    path.write_text("import numpy as np\n\n"
                    "def relu_forward(x):\n    return np.maximum(0, x), [x.copy(), 1.0]\n\n"
                    "def relu_backward(dout, cache):\n"
                    "    cache[1] *= 2.0  # a counter kept in the cache: the second call doubles\n"
                    "    return dout * (cache[0] > 0) * (cache[1] / 2.0)\n")
    result = gradmatrix.check(str(path), modes=["reverse"])
    assert result.status == 1
    assert result.document["findings"][0]["pattern"] == "not-repeatable"


def _tanh_forward(x):
    out = np.tanh(x)
    return out, out


def _tanh_backward_in_float32(dout, cache):
    out = cache.astype(np.float32)
    return ((1 - out * out) * dout.astype(np.float32)).astype(np.float64)


@pytest.mark.parametrize("size", [20, 64, 200])
def test_a_float64_gradient_computed_in_float32_fails_at_any_size(size):
    # 20 x 20 is differenced element by element; 64 x 64 and 200 x 200 along random directions
    result = gradmatrix.check_layer(_tanh_forward, _tanh_backward_in_float32, {"x": (size, size)},
                                    dtypes=["float64"], seeds=1)
    assert result.status == 1
    ok = gradmatrix.check_layer(_tanh_forward, lambda dout, out: (1 - out * out) * dout, {"x": (size, size)},
                                dtypes=["float64"], seeds=1)
    assert ok.status == 0


def _gelu_forward(x):
    c = np.sqrt(2 / np.pi)  # a NumPy float64: float32 x times it is float64 under NumPy 2
    inner = c * (x + 0.044715 * x ** 3)
    return 0.5 * x * (1 + np.tanh(inner)), (x, inner, c)


def _gelu_backward(dout, cache):
    x, inner, c = cache
    t = np.tanh(inner)
    return dout * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x))


def test_a_declared_layer_with_a_float64_constant_passes_with_a_warning():
    result = gradmatrix.check_layer(_gelu_forward, _gelu_backward, {"x": (4, 5)}, modes=["reverse"])
    assert result.status == 0
    kinds = {(w["kind"], w["tensor"]) for w in result.document["warnings"]}
    assert (severity.DTYPE_PROMOTED, "out") in kinds and (severity.DTYPE_PROMOTED, "dx") in kinds


def _record(case: str, dims: dict, verdict: str, tensors=(), error=None) -> dict:
    record = {"id": f"{case}-mine~torch", "case": case, "op": "affine", "case_kind": "random", "dims": dims,
              "seed": 0, "dtype": "float64", "pair": ["mine", "torch"], "kind": "autodiff",
              "tensors": list(tensors), "verdict": verdict, "message": "m"}
    if error:
        record["error"] = {"impl": "mine", "exception": error}
    return record


def _values(tensor: str, agree: bool) -> dict:
    metrics = {"max_abs_err": 0.0, "normwise_rel_err": 0.0 if agree else 0.5, "rel_error": 0.0, "worst_index": [0],
               "a_value": 1.0, "b_value": 1.0 if agree else 2.0, "ref_scale": 1.0}
    return {"tensor": tensor, "role": "gradient", "agree": agree, "metrics": metrics, "of_allowed": 0.0 if agree else 9.0,
            "rtol": 1e-10}


def test_cause_inference_reads_value_comparisons_only():
    from gradmatrix.reports import findings

    dtype_problem = {"tensor": "dx", "role": "gradient", "agree": False,
                     "problem": "dx: mine returned dtype float32 for a float64 case",
                     "problem_detail": {"kind": "dtype", "impl": "mine"}, "structural": True}
    records = [
        _record("a", {"N": 2, "pad": 0}, "disagree", [_values("dx", False)]),
        _record("b", {"N": 4, "pad": 0}, "disagree", [_values("dx", False)]),
        # dx could not be compared here: no evidence that dx agrees at pad = 1
        _record("c", {"N": 3, "pad": 1}, "disagree", [dtype_problem]),
        _record("d", {"N": 5, "pad": 2}, "agree", [_values("dx", True)]),
    ]
    values = next(f for f in findings.build(records, "mine") if f["pattern"] == "values")
    assert values["passing_cases"] == ["d"]
    assert "pad = 1" not in (values["cause"] or {}).get("text", "")


def test_a_crash_only_at_a_size_of_one_is_said_so_not_a_transpose():
    from gradmatrix.reports import findings

    records = [
        _record("n1", {"N": 1, "D": 4}, "error", error="ValueError"),
        _record("n8", {"N": 8, "D": 4}, "agree", [_values("dw", True)]),
        _record("n4", {"N": 4, "D": 3}, "agree", [_values("dw", True)]),
    ]
    records[0]["message"] = "mine raised ValueError: shapes (4,) and (3,) not aligned: 4 (dim 0) != 3 (dim 0)"
    found = findings.build(records, "mine")[0]
    assert found["pattern"] == "raised ValueError"
    assert "N = 1" in found["cause"]["text"] and "transpose" not in found["cause"]["text"]


def test_the_command_exits_0_on_the_student_file_and_shows_each_kind_of_warning(tmp_path):
    from cli_helpers import gradmatrix as gradmatrix_cli

    run = gradmatrix_cli("check", HERE / "student_layers.py", "--progress", "none", "--format", "json", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    shown = {line.split(")")[0].removeprefix("warning (") for line in run.stdout.splitlines()
             if line.startswith("warning (")}
    assert shown == KINDS
    strict = gradmatrix_cli("check", HERE / "student_layers.py", "--ops", "relu", "--strict", "--progress", "none",
                            "--format", "json", cwd=tmp_path)
    assert strict.returncode == 1 and "FAIL (strict)" in strict.stdout


def test_a_conv_slicing_pad_to_minus_pad_is_blamed_on_pad_0_not_on_a_dtype(tmp_path):
    # x[pad:-pad] is empty at pad = 0; the module also promotes float32 to float64 (a warning):
    # the promoted cases are value comparisons, so no "agrees only where pad = 1" can follow
    path = tmp_path / "conv_slices.py"
    path.write_text(
        "import numpy as np\n"
        "from gradmatrix.manual import conv_forward as _cf, conv_backward as _cb\n\n"
        "def conv_forward(x, w, b, stride, pad):\n"
        "    out, cache = _cf(x, w, b, stride, pad)\n"
        "    return out * np.float64(1.0), cache\n\n"
        "def conv_backward(dout, cache):\n"
        "    x, w, b, (stride, pad) = cache[0], cache[1], cache[2], cache[3]\n"
        "    dx, dw, db = _cb(dout, cache)\n"
        "    padded = np.pad(dx, ((0, 0), (0, 0), (pad, pad), (pad, pad)))\n"
        "    return padded[:, :, pad:-pad, pad:-pad], dw, db\n")
    result = gradmatrix.check(str(path), modes=["reverse"], oracles=("torch", "numeric"), seeds=1)
    assert result.status in (1, 2)
    first = result.document["findings"][0]
    assert (first["op"], first["tensor"]) == ("conv", "dx")
    failing = [r for r in result.document["comparisons"] if r["case"] in first["cases"]]
    assert failing and all(r["dims"]["pad"] == 0 for r in failing)
    cause = (first["cause"] or {}).get("text", "")
    assert "pad = 1" not in cause and "agrees only" not in cause, cause
    assert {w["kind"] for w in result.document["warnings"]} == {severity.DTYPE_PROMOTED}


def test_a_cause_over_dims_of_numbers_and_words_is_stated_not_a_crash():
    # a declared layer's params may be words (mode="same") beside numbers: the partition that
    # names where a finding agrees orders both kinds
    from gradmatrix.reports import findings

    records = [_record("a", {"N": 2, "mode": "same"}, "disagree", [_values("dx", False)]),
               _record("b", {"N": 3, "mode": "same"}, "disagree", [_values("dx", False)]),
               _record("c", {"N": 4, "mode": "valid"}, "agree", [_values("dx", True)])]
    cause = findings.build(records, "mine")[0]["cause"]
    assert cause["kind"] == "only-at" and {cause["dim"], cause["value"]} in ({"N", 4}, {"mode", "valid"})
