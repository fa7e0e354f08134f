"""Never a false PASS: each way the harness once said "agree" for a wrong gradient, or
mistreated correct code, as a test (issue "Never a false PASS", scenarios numbered there)."""

import numpy as np
import pytest

import gradmatrix
from gradmatrix import manual
from gradmatrix.oracles.candidate import Candidate, candidate_name, load_module
from gradmatrix.runner import Runner

QUICK = dict(oracles=("torch", "numeric"), seeds=1, modes=["reverse"])
WRONG_DB = ("from gradmatrix.manual import affine_forward\n"
            "from gradmatrix.manual import affine_backward as _ab\n\n"
            "def affine_backward(dout, cache):\n"
            "    dx, dw, db = _ab(dout, cache)\n"
            "    return dx, dw, db * 1.5  # wrong by 1.5x\n")


# 1. a candidate never stands in for an oracle of the same name -------------------------

@pytest.mark.parametrize("stem", ["numeric", "torch", "jax", "mylayers"])
def test_a_candidate_named_like_an_oracle_is_still_checked(tmp_path, stem):
    path = tmp_path / f"{stem}.py"
    path.write_text(WRONG_DB)
    result = gradmatrix.check(str(path), ["affine"], **QUICK)
    name = result.document["run"]["candidate"]
    assert name == (stem if stem == "mylayers" else f"candidate:{stem}")
    assert result.status == 1 and not result.passed
    mine = [r for r in result.document["comparisons"] if r["pair"][0] == name]
    assert {r["pair"][1] for r in mine} == {"torch", "numeric"}
    assert any("db (" in r["message"] for r in mine if r["verdict"] == "disagree")


def test_candidate_names_keep_out_of_the_oracles_namespace():
    assert [candidate_name(n) for n in ("numeric", "torch", "jax", "x.fd", "a~b", "layers", "manual")] == [
        "candidate:numeric", "candidate:torch", "candidate:jax", "candidate:x.fd", "candidate:a-b", "layers", "manual"]
    assert Candidate(manual, "numeric").name == "candidate:numeric"


def test_a_runner_refuses_a_candidate_named_like_an_oracle():
    impostor = Candidate(manual)
    impostor.name = "numeric"
    with pytest.raises(ValueError, match="is an oracle's"):
        Runner(impostor, ("torch", "numeric"))


# 8. what a candidate returns is copied on receipt ---------------------------------------

REUSES_BUFFERS = '''
import numpy as np
from gradmatrix.manual import sigmoid_forward as _sf

_BUFFERS = {}


def _buffer(tag, like):
    key = (tag, like.shape, like.dtype.str)
    if key not in _BUFFERS:
        _BUFFERS[key] = np.empty_like(like)
    return _BUFFERS[key]


def sigmoid_forward(x):
    out = _buffer("out", x)  # one output buffer per shape, reused by every call
    out[...] = _sf(x)[0]
    return out, (out,)


def sigmoid_backward(dout, cache):
    (out,) = cache
    out *= 1 - out  # works on the cached output in place: it is this module's scratch
    out *= dout
    return out
'''


def test_a_candidate_reusing_its_buffers_and_cached_out_passes(tmp_path):
    path = tmp_path / "buffers.py"
    path.write_text(REUSES_BUFFERS)
    result = gradmatrix.check(str(path), ["sigmoid"], oracles=("torch", "numeric"), seeds=2)
    assert result.passed and result.status == 0, [r["message"] for r in result.failures[:3]]
    kinds = {r["case_kind"] for r in result.document["comparisons"]}
    assert kinds == {"random", "jvp"}
