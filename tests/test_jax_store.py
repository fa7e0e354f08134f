"""The store of compiled JAX functions trusts no file: a stored file carries its key in full
and its payload's digest, checked on load, and a loaded function is run on a probe against
the numeric oracle's float64 forward before it is used.  Whatever is wrong with an entry
(another op's file in its place, a truncated or damaged file, random bytes, an entry that
cannot be read, another function sealed under the right key), the oracle's result is the
op's own, the entry is compiled again and rewritten, and a note says so: never a wrong
oracle, never a crash.  Real JAX, a temporary store (``GRADMATRIX_JAX_CACHE``)."""

import pickle
import re
import threading

import jax
import numpy as np
import pytest
from jax.experimental.serialize_executable import deserialize_and_load

from gradmatrix import manual
from gradmatrix.oracles import jax_oracle, jax_store
from gradmatrix.oracles.candidate import Candidate
from gradmatrix.oracles.cases import Case, draw_inputs
from gradmatrix.reports.tolerances import tolerance_for
from gradmatrix.runner import Comparison, Runner

DIMS = (("N", 8), ("D", 7))  # a default-matrix shape of both relu and sigmoid: same arguments
SIGMOID = Case("sigmoid", DIMS, 0, "float32")
RELU = Case("relu", DIMS, 0, "float32")




def _new_process() -> None:
    """What a new process finds: nothing compiled in memory, only the store on disk."""
    jax_store._EXECUTABLES.clear()


def _key(case: Case, kind: str = "vjp") -> jax_store.StoreKey:
    dims, args = jax_oracle._arguments(kind, draw_inputs(case), "cpu")
    return jax_store.store_key(kind, case.spec, dims, case.dtype, "cpu", args)


def _close(got, truth, dtype: str) -> bool:
    """Within the float32 (or float64) tolerance against the float64 truth, relative to its largest value."""
    rtol = tolerance_for(dtype, "numeric").rtol
    return np.shape(got) == np.shape(truth) and \
        float(np.max(np.abs(got - truth))) <= rtol * float(np.max(np.abs(truth)))


def _is_sigmoid(result, inputs) -> bool:
    """The result's forward and dx are sigmoid's, s = 1 / (1 + exp(-x)) and dout * s (1 - s)."""
    s = 1 / (1 + np.exp(-inputs.arrays["x"].astype(np.float64)))
    dx = inputs.dout.astype(np.float64) * s * (1 - s)
    return _close(result.forward, s, "float32") and _close(result.grads["x"], dx, "float32")


def _swap_in_relus_file(path, relu_key):
    path.write_bytes(relu_key.path.read_bytes())


def _truncate(path, relu_key):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _random_bytes(path, relu_key):
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


def _tamper_payload(path, relu_key):
    data = bytearray(path.read_bytes())
    data[-64:] = bytes(b ^ 0xFF for b in data[-64:])  # the payload's end; the header (and key) untouched
    path.write_bytes(bytes(data))


def _reseal_relus_payload(path, relu_key):
    """relu's function sealed under sigmoid's key, with a digest that matches: only the
    check on a probe can tell."""
    payload = jax_store.unseal(relu_key.path.read_bytes(), relu_key)
    path.write_bytes(jax_store.seal(_key(SIGMOID), payload))


def _unreadable(path, relu_key):
    path.unlink()
    path.mkdir()  # read_bytes raises IsADirectoryError (the tests run as root: chmod would not stop a read)


DAMAGE = [
    pytest.param(_swap_in_relus_file, "its file holds relu's vjp (the key differs in op)",
                 id="relus-file-over-sigmoids"),
    pytest.param(_truncate, "truncated", id="truncated"),
    pytest.param(_random_bytes, "not a stored function", id="random-bytes"),
    pytest.param(_tamper_payload, "does not match the digest", id="tampered-payload-right-key"),
    pytest.param(_reseal_relus_payload, "on a probe its forward differs", id="relus-function-resealed-right-key"),
    pytest.param(_unreadable, "cannot be read", id="unreadable"),
]


@pytest.mark.parametrize("damage, reason", DAMAGE)
def test_a_bad_entry_gives_the_ops_own_values_a_note_and_is_rewritten(empty_store, damage, reason):
    inputs = draw_inputs(SIGMOID)
    jax_oracle.evaluate(draw_inputs(RELU))
    first = jax_oracle.evaluate(inputs)
    assert first.notes == [] and _is_sigmoid(first, inputs)
    path = _key(SIGMOID).path
    damage(path, _key(RELU))
    _new_process()
    rejected = jax_store.COMPILE_STATS["rejected"]
    with pytest.warns(jax_store.StoreWarning, match=re.escape(reason)):
        result = jax_oracle.evaluate(inputs)
    assert _is_sigmoid(result, inputs), f"the rebuilt function is not sigmoid's: {result.forward.ravel()[:4]}"
    assert jax_store.COMPILE_STATS["rejected"] == rejected + 1
    (note,) = result.notes
    assert note.startswith("jax: the stored vjp of sigmoid (N8-D7, float32) was rejected and rebuilt: ")
    assert reason in note
    assert note.endswith("compiled again and stored anew")
    assert jax_store.unseal(path.read_bytes(), _key(SIGMOID))  # rewritten, sigmoid's own

    _new_process()  # the next process loads the rewritten entry: no note, the same values
    loaded = jax_store.COMPILE_STATS["loaded"]
    again = jax_oracle.evaluate(inputs)
    assert jax_store.COMPILE_STATS["loaded"] == loaded + 1 and again.notes == []
    assert np.array_equal(again.forward, result.forward) and np.array_equal(again.grads["x"], result.grads["x"])


def test_the_note_reaches_the_records_of_the_jax_pairs(empty_store):
    """Trusted, relu's file in sigmoid's place would make manual disagree with jax; rejected and
    rebuilt, they agree, and the records of the pairs with jax say why it was compiled again."""
    inputs = draw_inputs(SIGMOID)
    jax_oracle.evaluate(inputs), jax_oracle.evaluate(draw_inputs(RELU))
    relus = deserialize_and_load(*pickle.loads(jax_store.unseal(_key(RELU).path.read_bytes(), _key(RELU))))
    out, _ = relus(*jax_oracle._arguments("vjp", inputs, "cpu")[1])
    assert np.array_equal(out, np.maximum(inputs.arrays["x"], 0))  # relu's function runs on sigmoid's arguments
    _swap_in_relus_file(_key(SIGMOID).path, _key(RELU))
    _new_process()
    runner = Runner(Candidate(manual, "manual"))
    with pytest.warns(jax_store.StoreWarning):
        records = [runner.run(Comparison(SIGMOID, pair)) for pair in (("manual", "jax"), ("jax", "numeric"))]
    assert [r["verdict"] for r in records] == ["agree", "agree"], [r.get("message") for r in records]
    assert all(any("relu's vjp" in n and "rebuilt" in n for n in r.get("notes", ())) for r in records)


def test_a_bad_entry_met_while_compiling_ahead_leaves_its_note_for_the_evaluation(empty_store):
    inputs = draw_inputs(SIGMOID)
    jax_oracle.evaluate(inputs), jax_oracle.evaluate(draw_inputs(RELU))
    _swap_in_relus_file(_key(SIGMOID).path, _key(RELU))
    _new_process()
    with pytest.warns(jax_store.StoreWarning, match="relu's vjp"):
        ahead = jax_oracle.compile_ahead([SIGMOID])
        ahead._thread.join()  # its one job done
    ahead.stop()
    result = jax_oracle.evaluate(inputs)
    assert _is_sigmoid(result, inputs) and len(result.notes) == 1 and "relu's vjp" in result.notes[0]
    assert jax_oracle.evaluate(inputs).notes == []  # told once, to the first evaluation


def test_unseal_names_only_what_it_checked():
    """A foreign header's own words never reach a note: only a catalog op's name is quoted."""
    key = jax_store.StoreKey({"kind": "vjp", "op": "sigmoid"}, root=None)
    foreign = jax_store.StoreKey({"kind": "vjp", "op": "<script>alert(1)</script>"}, root=None)
    with pytest.raises(jax_store.Rejected) as found:
        jax_store.unseal(jax_store.seal(foreign, b"payload"), key)
    assert "script" not in str(found.value) and "another function" in str(found.value)
    assert jax_store.unseal(jax_store.seal(key, b"payload"), key) == b"payload"


# The check on load itself, on the kinds of function the store holds: a right function passes
# it (no false alarm: a rejected right function would be compiled in every run), one that is
# wrong in its forward or in its derivative alone does not.

CONV = (("N", 2), ("C", 3), ("HW", (5, 5)), ("F", 2), ("K", (3, 3)), ("stride", 1), ("pad", 1))
NET = (("N", 8), ("D", 6), ("H", 6), ("C", 3), ("reg", 0.1))
SCORES = (("N", 8), ("C", 10))
KINDS = [pytest.param(kind, case, id=f"{kind}-{case.op}-{case.dtype}") for kind, case in (
    ("vjp", Case("conv", CONV, 0, "float32")),
    ("vjp", Case("layernorm", (("N", 8), ("D", 4), ("eps", 1e-5)), 0, "float64")),
    ("jvp", Case("affine", (("N", 4), ("Dx", (2, 3)), ("M", 4)), 0, "float32", "jvp")),  # the vjp with J v
    ("jvp", Case("softmax_loss", SCORES, 0, "float64", "jvp")),
    ("jvp", Case("relu", (("N", 8), ("D", 7)), 0, "float64")),  # a random case whose op, dims and dtype have a jvp case
    ("hvp", Case("two_layer_net", NET, 0, "float32", "hvp")),
    ("hvp", Case("softmax_loss", SCORES, 0, "float64", "hvp")),
)]


def _compiled(kind: str, case: Case):
    dims, args = jax_oracle._arguments(kind, draw_inputs(case), "cpu")
    return jax_oracle._BUILDS[kind](case.spec, dims).lower(*args).compile()


def _scaled(function, forward: float, derivative: float, tangent: float = 1.0):
    """``function`` with its forward, its derivative part (the vjp's gradients, the hvp) and
    the vjp's J v multiplied (a wrong function that keeps the right one's shapes and dtypes)."""
    def wrong(*args):
        out, part, *jv = function(*args)
        part = {k: v * derivative for k, v in part.items()}
        return (out * forward, part, *(t * tangent for t in jv))

    return wrong


@pytest.mark.parametrize("kind, case", KINDS)
def test_the_check_on_load_passes_the_right_function_and_catches_a_wrong_forward_or_derivative(kind, case):
    right = _compiled(kind, case)
    assert jax_oracle.check_loaded(kind, case, "cpu", right) is None
    assert "forward differs" in jax_oracle.check_loaded(kind, case, "cpu", _scaled(right, 1.5, 1.0))
    what = {"vjp": "its sum_k <g_k, v_k> is", "jvp": "its sum_k <g_k, v_k> is", "hvp": "its <w, H v> is"}[kind]
    assert what in jax_oracle.check_loaded(kind, case, "cpu", _scaled(right, 1.0, 1.5))
    if kind == "jvp":  # its forward mode alone wrong
        assert "its J v differs" in jax_oracle.check_loaded(kind, case, "cpu", _scaled(right, 1.0, 1.0, 1.5))


def test_a_bad_hvp_entry_is_rebuilt_with_a_warning(empty_store):
    """jvp and hvp functions go through the same store and check (their evaluations return
    tuples, without notes: the warning tells)."""
    case = Case("softmax_loss", SCORES, 0, "float32", "hvp")
    inputs = draw_inputs(case)
    loss, hv = jax_oracle.evaluate_hvp(inputs)
    _truncate(_key(case, "hvp").path, None)
    _new_process()
    with pytest.warns(jax_store.StoreWarning, match="the stored hvp of softmax_loss .* truncated"):
        again = jax_oracle.evaluate_hvp(inputs)
    assert np.array_equal(again[0], loss) and all(np.array_equal(again[1][k], hv[k]) for k in hv)


def test_a_store_that_cannot_be_located_while_compiling_ahead_fails_the_evaluation_instead_of_hanging(
        empty_store, monkeypatch):
    # a failure before the entry is loaded or compiled (here: no cache directory can be named, as
    # with platformdirs missing) must reach the evaluation waiting for that entry, not leave it waiting
    def no_store():
        raise ModuleNotFoundError("No module named 'platformdirs'")

    monkeypatch.setattr(jax_store, "cache_dir", no_store)
    _new_process()
    ahead = jax_oracle.compile_ahead([SIGMOID])
    ahead._thread.join()  # its one job done, and failed
    ahead.stop()
    outcome = {}

    def evaluate():
        try:
            jax_oracle.evaluate(draw_inputs(SIGMOID))
        except ModuleNotFoundError as exc:
            outcome["raised"] = exc

    waiting = threading.Thread(target=evaluate, daemon=True)
    waiting.start()
    waiting.join(60)
    assert not waiting.is_alive(), "the evaluation still waits for a compilation that failed"
    assert "platformdirs" in str(outcome.get("raised"))


@pytest.fixture
def expecting(empty_store, monkeypatch):
    """A process that knows the cases it will evaluate and stores no function (the JAX host of
    a check on an empty store, ``gradmatrix.oracle_host``): what it expects is forgotten after."""
    monkeypatch.setattr(jax_store, "SAVE", False)
    monkeypatch.setattr(jax_oracle, "_EXPECTED", {})
    monkeypatch.setattr(jax_oracle, "_WITH_JV", {})
    monkeypatch.setattr(jax_oracle, "_ALONE", set())
    return empty_store


EXPECTED = [Case("relu", DIMS, 0, "float64"), Case("sigmoid", DIMS, 0, "float32"),
            Case("softmax_loss", (("N", 6), ("C", 5)), 0, "float64", "hvp"), Case("tanh", DIMS, 0, "float64", "jvp")]


def _outputs(case) -> list:
    """Every output of a case's JAX function, as NumPy arrays."""
    kind = jax_oracle._kind_of(case)
    dims, args = jax_oracle._arguments(kind, draw_inputs(case), "cpu")
    function, _ = jax_oracle._function(kind, case, "cpu", dims, args)
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(function(*args))]


def _within_rounding(mine: list, theirs: list, dtype: str) -> bool:
    """The same values but for rounding: a few units in the last place of the largest
    (XLA decides fusion and contraction per module, so one op among others may round one
    operation differently)."""
    eps = float(np.finfo(dtype).eps)
    return len(mine) == len(theirs) and all(
        a.shape == b.shape and float(np.max(np.abs(a - b), initial=0)) <= 8 * eps * float(np.max(np.abs(b), initial=0))
        for a, b in zip(mine, theirs))


def test_functions_expected_are_compiled_together_and_compute_the_same_values(expecting):
    alone = [_outputs(case) for case in EXPECTED]
    _new_process()
    together = jax_store.COMPILE_STATS["together"]
    jax_oracle.expect(EXPECTED)
    first = _outputs(EXPECTED[0])  # needs the first: all four are compiled, as one module
    assert jax_store.COMPILE_STATS["together"] == together + len(EXPECTED)
    assert all(jax_store.in_memory(jax_oracle._kind_of(c), c.spec, tuple(c.dim_map.items()), c.dtype, "cpu")
               for c in EXPECTED)
    for case, mine, theirs in zip(EXPECTED, [first] + [_outputs(c) for c in EXPECTED[1:]], alone):
        assert _within_rounding(mine, theirs, case.dtype), case.id
    # another seed of an op compiled together runs in its slot: its own values, not the first seed's
    other = Case("sigmoid", DIMS, 1, "float32")
    inputs = draw_inputs(other)
    assert _is_sigmoid(jax_oracle.evaluate(inputs), inputs)


def test_a_function_that_fails_among_others_fails_alone(expecting, monkeypatch):
    """sigmoid's JAX function cannot be traced: the module of four fails, each is then compiled
    alone, and only sigmoid's evaluation meets the error."""
    build = jax_oracle._BUILDS["vjp"]

    def broken(spec, dims):
        if spec.name != "sigmoid":
            return build(spec, dims)
        return jax.jit(lambda *args: (_ for _ in ()).throw(ValueError("sigmoid cannot be traced")))

    monkeypatch.setitem(jax_oracle._BUILDS, "vjp", broken)
    jax_oracle.expect(EXPECTED)
    together = jax_store.COMPILE_STATS["together"]
    relu = draw_inputs(EXPECTED[0])
    assert np.array_equal(jax_oracle.evaluate(relu).forward, np.maximum(relu.arrays["x"], 0))
    assert jax_store.COMPILE_STATS["together"] == together
    with pytest.raises(ValueError, match="sigmoid cannot be traced"):
        jax_oracle.evaluate(draw_inputs(EXPECTED[1]))
    loss, hv = jax_oracle.evaluate_hvp(draw_inputs(EXPECTED[2]))
    assert np.isfinite(loss) and set(hv) == {"scores"}


def test_a_function_in_the_store_is_loaded_not_compiled_together(expecting, monkeypatch):
    monkeypatch.setattr(jax_store, "SAVE", True)  # an earlier process stored relu's function
    jax_oracle.evaluate(draw_inputs(EXPECTED[0]))
    assert _key(EXPECTED[0]).path.exists()
    monkeypatch.setattr(jax_store, "SAVE", False)
    _new_process()
    jax_oracle.expect(EXPECTED)
    loaded, together = jax_store.COMPILE_STATS["loaded"], jax_store.COMPILE_STATS["together"]
    relu = draw_inputs(EXPECTED[0])
    assert np.array_equal(jax_oracle.evaluate(relu).forward, np.maximum(relu.arrays["x"], 0))
    assert jax_store.COMPILE_STATS["loaded"] == loaded + 1 and jax_store.COMPILE_STATS["together"] == together
    jax_oracle.evaluate(draw_inputs(EXPECTED[1]))  # the three others, as one module
    assert jax_store.COMPILE_STATS["together"] == together + 3


def test_a_random_case_shares_the_vjp_with_jv_of_a_jvp_case_to_come(expecting):
    twin, jvp = Case("tanh", DIMS, 0, "float64"), Case("tanh", DIMS, 0, "float64", "jvp")
    alone = Case("tanh", DIMS, 0, "float32")  # no jvp case at these dims and dtype: the vjp alone
    assert jax_oracle._kind_of(twin) == "vjp"  # nothing told yet
    jax_oracle.expect([twin, jvp, alone])
    assert [jax_oracle._kind_of(c) for c in (twin, jvp, alone)] == ["jvp", "jvp", "vjp"]
    compiled = jax_store.COMPILE_STATS["compilations"]
    inputs = draw_inputs(twin)
    result = jax_oracle.evaluate(inputs)
    out, jv = jax_oracle.evaluate_jvp(draw_inputs(jvp))
    jax_oracle.evaluate(draw_inputs(alone))
    assert jax_store.COMPILE_STATS["compilations"] == compiled + 2  # one function for the twins, one for the other
    x = inputs.arrays["x"]
    np.testing.assert_allclose(result.forward, np.tanh(x), rtol=1e-13)
    np.testing.assert_allclose(result.grads["x"], inputs.dout * (1 - np.tanh(x) ** 2), rtol=1e-12)
    directions = draw_inputs(jvp).directions["x"]
    np.testing.assert_allclose(jv, (1 - np.tanh(x) ** 2) * directions, rtol=1e-12)


def test_only_small_cases_and_the_expected_precision_are_compiled_together(expecting, monkeypatch):
    # a module runs all its functions at each call: large cases compile alone, and so does a
    # request at another matmul precision than the cases were expected at
    from gradmatrix.oracles.devices import matmul_precision

    jax_oracle.expect(EXPECTED)
    together = jax_store.COMPILE_STATS["together"]
    with matmul_precision("highest"):
        jax_oracle.evaluate(draw_inputs(EXPECTED[0]))
    assert jax_store.COMPILE_STATS["together"] == together
    monkeypatch.setattr(jax_oracle, "TOGETHER_ELEMENTS", 60)  # relu's x and dout (2 x 56) are over it, sigmoid's too
    relu = draw_inputs(EXPECTED[0])
    assert np.array_equal(jax_oracle.evaluate(relu).forward, np.maximum(relu.arrays["x"], 0))
    assert jax_store.COMPILE_STATS["together"] == together
