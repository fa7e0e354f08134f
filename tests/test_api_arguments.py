"""The Python API's arguments: what ``gradmatrix.check`` and ``gradmatrix.check_layer``
accept, and the one-line error, naming the argument, for what they do not.

* A list option (ops, dtypes, oracles, modes) given as one string is a list of that one
  name, never of its characters; a name given twice counts once.
* Every other wrong type is a ``TypeError`` and every wrong value a ``ValueError`` naming
  the argument, raised before the candidate is imported or a layer's function is called.
* A shape with a dimension of 0 is such an error too: an empty array has no gradient to get
  wrong, and a check of it could only pass or blame the user's code for gradmatrix's
  division by zero.
* A shape listed twice is checked once: a case is known by its id, and two cases under one
  id made a run that looked incomplete although everything ran and agreed.
"""

import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gradmatrix
from gradmatrix.oracles import numeric
from gradmatrix.oracles.cases import Case, _distinct, draw_inputs, matrix_cases
from gradmatrix.oracles.declared import DeclarationError, build, declare

NO_MODULE = "no_such_candidate_module.py"  # an argument error must come before the import would fail
FAST = {"dtypes": ["float64"], "oracles": ["numeric"], "modes": ["reverse"], "seeds": 1}


class Counted:
    """A layer ``out = 2 x`` whose functions count their calls."""

    def __init__(self):
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return 2.0 * x, x

    def backward(self, dout, cache):
        self.calls += 1
        return 2.0 * dout


@pytest.fixture
def counted():
    return Counted()


def _ids(result) -> list:
    return [r["id"] for r in result.document["comparisons"]]


# --- (a) shapes: a dimension of 0 is a usage error; a shape twice is one case ---

@pytest.mark.parametrize("shapes, where", [
    ({"x": (0, 5)}, "shapes['x']"),
    ({"x": (4, 0)}, "shapes['x']"),
    ({"x": gradmatrix.Floats((3, 0))}, "shapes['x']"),
    ({"x": (4, 5), "idx": gradmatrix.Integers((0,), 0, 4)}, "shapes['idx']"),
    ([{"x": (4, 5)}, {"x": (0, 5)}], "shapes[1]['x']"),
])
def test_a_dimension_of_zero_is_refused_naming_the_argument_before_anything_runs(counted, shapes, where):
    with pytest.raises(DeclarationError) as info:
        gradmatrix.check_layer(counted.forward, counted.backward, shapes)
    message = str(info.value)
    assert message.startswith(f"{where}: a dimension of 0 leaves no element to check, got (")
    assert "\n" not in message and "numeric" not in message
    assert counted.calls == 0  # refused where the argument entered: the forward never ran


def test_a_forward_with_an_empty_output_is_refused_naming_it():
    def first_none_forward(x):
        return x[:, :0], x

    def first_none_backward(dout, cache):
        return np.zeros_like(cache)

    with pytest.raises(DeclarationError, match=r"^first_none_forward returned an empty output of shape \(4, 0\)"):
        gradmatrix.check_layer(first_none_forward, first_none_backward, {"x": (4, 5)})


def test_the_numeric_oracle_differentiates_an_empty_case_without_dividing_by_zero():
    result = numeric.evaluate(draw_inputs(Case("relu", (("N", 0), ("D", 3)), 0, "float64")))
    assert result.forward.shape == (0, 3) and result.grads["x"].shape == (0, 3)


def test_the_same_shape_twice_is_checked_once(counted):
    once = gradmatrix.check_layer(counted.forward, counted.backward, {"x": (4, 5)}, seeds=2)
    twice = gradmatrix.check_layer(counted.forward, counted.backward, [{"x": (4, 5)}, {"x": (4, 5)}], seeds=2)
    assert str(twice) == f"layer forward: PASS, {len(_ids(once))} comparisons agree"
    assert _ids(twice) == _ids(once) and len(set(_ids(twice))) == len(_ids(twice))
    summary = twice.document["summary"]
    assert (summary["complete"], summary["missing"], summary["problems"]) == (True, 0, [])
    # a repeat among other shapes keeps the order of first appearance
    three = gradmatrix.check_layer(counted.forward, counted.backward,
                                   [{"x": (2, 3)}, {"x": (4, 5)}, {"x": (2, 3)}], **FAST)
    assert [r["case"] for r in three.document["comparisons"]] == ["forward-x2x3-seed0-float64",
                                                                   "forward-x4x5-seed0-float64"]
    assert three.passed


def test_an_op_or_dtype_asked_for_twice_is_one_case_each():
    assert matrix_cases("default", ["relu", "relu"], ["float64", "float64"]) == matrix_cases("default", ["relu"],
                                                                                               ["float64"])
    result = gradmatrix.check("gradmatrix.manual", ops=["relu", "relu"], **{**FAST, "dtypes": ["float64", "float64"]})
    assert result.passed and result.document["summary"]["complete"]
    assert result.document["run"]["ops"] == ["relu"] and result.document["run"]["dtypes"] == ["float64"]


def test_two_different_cases_under_one_id_are_refused():
    one, other = Case("relu", (("D", 1),), 0, "float64"), Case("relu", (("D", "1"),), 0, "float64")
    assert one != other and one.id == other.id
    assert _distinct([one, one]) == [one]
    with pytest.raises(ValueError, match=r"two cases share the id 'relu-D1-seed0-float64'"):
        _distinct([one, other])


def test_the_same_shapes_drawn_differently_are_refused(counted):
    def positive(rng, shape):
        return rng.uniform(0.5, 2.0, shape)

    with pytest.raises(DeclarationError, match=r"^shapes\[0\] and shapes\[1\] declare the same shapes .* but draw \['x'\]"):
        gradmatrix.check_layer(counted.forward, counted.backward, [{"x": (3, 4)}, {"x": gradmatrix.Floats((3, 4), positive)}])
    with pytest.raises(DeclarationError, match=r"^shapes\[1\]\['i'\] is Integers but shapes\[0\]\['i'\] is Floats"):
        gradmatrix.check_layer(lambda x, i: (x, x), lambda dout, cache: dout,
                               [{"x": (3,), "i": (3,)}, {"x": (3,), "i": gradmatrix.Integers((3,), 0, 3)}], wrt="x")


def test_each_shape_dict_draws_with_its_own_draw():
    def small(rng, shape):
        return rng.uniform(1.0, 2.0, shape)

    def large(rng, shape):
        return rng.uniform(10.0, 20.0, shape)

    declaration = declare(lambda x: (np.log(x), x), lambda dout, x: dout / x,
                          [{"x": gradmatrix.Floats((3,), small)}, {"x": gradmatrix.Floats((2, 2), large)}],
                          name="each_its_own_draw")
    spec, _ = build(declaration)
    drawn = {c.id: draw_inputs(c).arrays["x"]
             for c in matrix_cases("default", [spec.name], ["float64"], 2, ["reverse"], catalog={spec.name: spec})}
    assert sorted(drawn) == ["each_its_own_draw-x2x2-seed0-float64", "each_its_own_draw-x2x2-seed1-float64",
                             "each_its_own_draw-x3-seed0-float64", "each_its_own_draw-x3-seed1-float64"]
    for case_id, x in drawn.items():
        low, high = (10.0, 20.0) if "x2x2" in case_id else (1.0, 2.0)
        assert np.all((low <= x) & (x < high)), (case_id, x)


# --- (b) list options: one string is one name; wrong types and values name the argument ---

def test_one_string_is_one_name_in_check():
    result = gradmatrix.check("gradmatrix.manual", ops="relu", dtypes="float64", oracles="numeric", modes="reverse",
                              seeds=1)
    run = result.document["run"]
    assert (run["ops"], run["dtypes"], run["oracles"], run["modes"]) == (["relu"], ["float64"], ["numeric"], ["reverse"])
    records = result.document["comparisons"]
    assert records and {(r["op"], r["dtype"], tuple(r["pair"])) for r in records} == {
        ("relu", "float64", ("manual", "numeric"))}
    assert {r["case_kind"] for r in records} == {"random", "kink"}
    assert result.passed


def test_one_string_is_one_name_in_check_layer(counted):
    result = gradmatrix.check_layer(counted.forward, counted.backward, {"x": (3, 2)}, dtypes="float32",
                                    oracles="numeric", modes="jvp", seeds=1)
    assert [r["case"] for r in result.document["comparisons"]] == ["forward-jvp-x3x2-seed0-float32"]
    run = result.document["run"]
    assert (run["dtypes"], run["oracles"], run["modes"]) == (["float32"], ["numeric"], ["jvp"])
    assert result.passed


def test_a_path_object_names_a_candidate_file(tmp_path):
    mine = tmp_path / "my_relu.py"
    mine.write_text("from gradmatrix.manual import relu_forward, relu_backward\n")
    result = gradmatrix.check(mine, ops="relu", **FAST)
    assert result.passed and result.document["run"]["candidate_module"] == str(mine)


CHECK_ERRORS = [
    ({"ops": 3}, TypeError, r"^ops must be one op or a list of ops, as str; got int 3"),
    ({"ops": [b"relu"]}, TypeError, r"^ops must be one op or a list of ops, as str; got bytes b'relu'"),
    ({"ops": {"relu": 1}}, TypeError, r"^ops must be one op or a list of ops"),
    ({"ops": []}, ValueError, r"^ops is empty, which would check nothing"),
    ({"dtypes": "float8"}, ValueError,
     r"^dtypes: unknown dtype\(s\) \['float8'\]; choose from \['float64', 'float32', 'float16', 'bfloat16'\]"),
    ({"dtypes": [np.float32]}, TypeError, r"^dtypes must be one dtype or a list of dtypes, as str"),
    ({"oracles": "tensorflow"}, ValueError, r"^oracles: unknown oracle\(s\) \['tensorflow'\]"),
    ({"oracles": ["torch", None]}, TypeError, r"^oracles must be one oracle or a list of oracles"),
    ({"oracles": ()}, ValueError, r"^oracles is empty"),
    ({"modes": "sideways"}, ValueError, r"^modes: unknown mode\(s\) \['sideways'\]"),
    ({"modes": 1}, TypeError, r"^modes must be one mode or a list of modes"),
    ({"seeds": 0}, ValueError, r"^seeds must be at least 1, got 0"),
    ({"seeds": 1.5}, TypeError, r"^seeds must be an integer, got float 1.5"),
    ({"seeds": "3"}, TypeError, r"^seeds must be an integer, got str '3'"),
    ({"seeds": True}, TypeError, r"^seeds must be an integer, got bool True"),
    ({"case_timeout": -1}, ValueError, r"^case_timeout must be a finite number of seconds >= 0 \(0: no limit\), got -1"),
    ({"case_timeout": math.nan}, ValueError, r"^case_timeout must be a finite number of seconds >= 0 .*, got nan"),
    ({"case_timeout": math.inf}, ValueError, r"^case_timeout must be a finite number of seconds >= 0 .*, got inf"),
    ({"case_timeout": "5"}, TypeError, r"^case_timeout must be a number of seconds, got str '5'"),
    ({"case_timeout": True}, TypeError, r"^case_timeout must be a number of seconds, got bool True"),
    ({"matrix": ["default"]}, TypeError, r"^matrix must be a str, one of \['default', 'full', 'large'\]"),
    ({"matrix": "huge"}, ValueError, r"^matrix: unknown 'huge'"),
    ({"strict_kinks": "no"}, TypeError, r"^strict_kinks must be True or False, got str 'no'"),
    ({"device": 0}, TypeError, r"^device must be a str"),
    ({"device": "tpu"}, ValueError, r"^device: unknown 'tpu'"),
    ({"matmul_precision": "max"}, ValueError, r"^matmul_precision: unknown 'max'"),
    ({"progress": "bar"}, TypeError, r"^progress must be a function"),
]


@pytest.mark.parametrize("kwargs, exception, message", CHECK_ERRORS, ids=[
    f"{next(iter(k))}-{next(iter(k.values()))!r}" for k, _, _ in CHECK_ERRORS])
def test_check_names_a_wrong_argument_before_importing_the_candidate(kwargs, exception, message):
    with pytest.raises(exception, match=message) as info:
        gradmatrix.check(NO_MODULE, **kwargs)
    assert type(info.value) is exception and "\n" not in str(info.value)


@pytest.mark.parametrize("module", [3, None, b"my_layers.py", ["my_layers.py"], ""])
def test_check_names_a_module_argument_that_names_no_module(module):
    with pytest.raises(TypeError, match=r"^module must be a module, a dotted module name or a path to a \.py file"):
        gradmatrix.check(module)


def test_check_names_an_op_it_does_not_know():
    with pytest.raises(ValueError, match=r"^ops: unknown op\(s\) \['rleu'\]; choose from \['relu', "):
        gradmatrix.check("gradmatrix.manual", ops="rleu", **FAST)


LAYER_ERRORS = [
    ({"dtypes": "float8"}, ValueError, r"^dtypes: unknown dtype\(s\) \['float8'\]; choose from \['float64', 'float32', 'float16', 'bfloat16'\]"),
    ({"dtypes": []}, ValueError, r"^dtypes is empty"),
    ({"dtypes": 64}, TypeError, r"^dtypes must be one dtype or a list of dtypes"),
    ({"seeds": 0}, ValueError, r"^seeds must be at least 1, got 0"),
    ({"seeds": 2.0}, TypeError, r"^seeds must be an integer, got float 2.0"),
    ({"seeds": None}, TypeError, r"^seeds must be an integer, got NoneType None"),
    ({"oracles": "tensorflow"}, ValueError, r"^oracles: unknown oracle\(s\) \['tensorflow'\]"),
    ({"oracles": 5}, TypeError, r"^oracles must be one oracle or a list of oracles"),
    ({"modes": ["reverse", 3]}, TypeError, r"^modes must be one mode or a list of modes, as str; got int 3"),
    ({"modes": "backward"}, ValueError, r"^modes: unknown mode\(s\) \['backward'\]"),
    ({"only": 3}, TypeError, r"^only must be a comparison id \(str\)"),
    ({"strict_kinks": 1}, TypeError, r"^strict_kinks must be True or False, got int 1"),
    ({"device": "tpu"}, ValueError, r"^device: unknown 'tpu'"),
    ({"matmul_precision": None}, TypeError, r"^matmul_precision must be a str"),
]


@pytest.mark.parametrize("kwargs, exception, message", LAYER_ERRORS, ids=[
    f"{next(iter(k))}-{next(iter(k.values()))!r}" for k, _, _ in LAYER_ERRORS])
def test_check_layer_names_a_wrong_argument_before_calling_the_layer(counted, kwargs, exception, message):
    with pytest.raises(exception, match=message) as info:
        gradmatrix.check_layer(counted.forward, counted.backward, {"x": (3, 2)}, **kwargs)
    assert type(info.value) is exception and "\n" not in str(info.value)
    assert counted.calls == 0


def _scale_backward(dout, cache):
    x, w = cache
    return dout * w, dout * x


def _scale_forward(x, w):
    return x * w, (x, w)


def _scale_with_bias(x, b=0.0, w=None):
    return x * w + b, (x, w)


def _scale_by_keyword(x, *, w):
    return x * w, (x, w)


def _scale_rest(x, *rest):
    return x * rest[0], (x, rest[0])


def _scale_weight(x, weight):
    return x * weight, (x, weight)


PASSED_WRONG = [  # the arrays go by position: each of these would hand one to another argument
    (_scale_forward, ["weight", "x"], "_scale_forward would receive the array 'x' as its argument 'w'"),
    (_scale_with_bias, ["x", "w"], "_scale_with_bias would receive the array 'w' as its argument 'b'"),
    (_scale_by_keyword, ["x", "w"], "_scale_by_keyword takes 'w' by keyword only"),
    (_scale_rest, ["w", "x"], "_scale_rest would receive the array 'x' as its argument '*rest'"),
    (_scale_weight, ["w", "x"], "_scale_weight would receive the array 'x' as its argument 'weight'"),
]


@pytest.mark.parametrize("forward, names, said", PASSED_WRONG, ids=[f.__name__ for f, _, _ in PASSED_WRONG])
def test_an_array_the_forward_would_receive_under_another_name_is_refused(forward, names, said):
    with pytest.raises(DeclarationError) as info:
        gradmatrix.check_layer(forward, _scale_backward, {n: (3, 2) for n in names}, **FAST)
    assert str(info.value) == (f"shapes: {said}: the arrays are passed by position, in the order ({', '.join(names)}); "
                               f"name and order them as {forward.__name__} takes them, or give positional= the ones "
                               f"it takes by position (the others are passed by name)")


@pytest.mark.parametrize("forward, names, positional", [
    (_scale_forward, ["w", "x"], None),  # named as the forward names them: put in its order
    (_scale_with_bias, ["x", "w"], ("x",)),  # w passed by name
    (_scale_by_keyword, ["x", "w"], ("x",)),
    (_scale_rest, ["x", "w"], None),  # x first, w into *rest
    (_scale_weight, ["x", "w"], None),  # w where the forward takes weight: a name it does not use
    (lambda *arrays: _scale_forward(*arrays), ["a", "b"], None),  # *arrays: the dict's order
])
def test_arrays_passed_where_the_forward_takes_them_are_checked_and_right(forward, names, positional):
    result = gradmatrix.check_layer(forward, _scale_backward, {n: (3, 2) for n in names}, positional=positional,
                                    **FAST)
    assert result.passed, [r["message"] for r in result.failures[:2]]


def test_one_array_named_otherwise_than_the_forward_s_argument_is_checked():
    # one array has one place to go: a library function's argument (torch's input) need not be renamed
    def relu_forward(z):
        return z * (z > 0), z

    result = gradmatrix.check_layer(relu_forward, lambda dout, z: dout * (z > 0), {"x": (4, 5)}, **FAST)
    assert result.passed


def test_a_layer_with_named_dims_is_checked_against_its_arrays_order():
    # matrices=: the arrays go by position in the order of shapes, the gradients read back in it
    options = dict(matrices=[{"D": 3}], output=("out", ("N", "D")), reference=lambda xp, a, dims: a["x"] * a["w"],
                   seeds=1, dtypes="float64", oracles="numeric")
    with pytest.raises(DeclarationError) as info:
        gradmatrix.check_layer(_scale_forward, _scale_backward, {"w": ("N", "D"), "x": ("N", "D")}, **options)
    assert str(info.value) == ("shapes: _scale_forward would receive the array 'w' as its argument 'x': the arrays "
                               "are passed by position, in the order (w, x); name and order them as _scale_forward "
                               "takes them (the order of shapes is also the order of the backward's gradients)")
    assert gradmatrix.check_layer(_scale_forward, _scale_backward, {"x": ("N", "D"), "w": ("N", "D")},
                                  **options).passed


def test_a_forward_given_by_name_is_checked_against_its_arrays_order(tmp_path):
    (tmp_path / "by_name.py").write_text(textwrap.dedent('''
        import numpy as np
        import gradmatrix

        def scale_forward(x, w):
            return x * np.log(w), (x, w)

        def scale_backward(dout, cache):
            x, w = cache
            return dout * np.log(w), dout * x / w

        positive = gradmatrix.Floats((3, 2), draw=lambda rng, shape: rng.uniform(0.5, 2.0, shape))
        scale = gradmatrix.layer("scale_forward", "scale_backward", shapes={SHAPES},
                                 reference=lambda xp, *arrays: REFERENCE)
    '''))
    module = tmp_path / "by_name.py"
    text = module.read_text()
    module.write_text(text.replace("SHAPES", '"w": positive, "x": (3, 2)').replace("REFERENCE", "arrays[1] * xp.log(arrays[0])"))
    with pytest.raises(DeclarationError, match=r"^shapes: scale_forward would receive the array 'w' as its argument 'x'"):
        gradmatrix.check(str(module), seeds=1, dtypes="float64", oracles="numeric")
    module.write_text(text.replace("SHAPES", '"x": (3, 2), "w": positive').replace("REFERENCE", "arrays[0] * xp.log(arrays[1])"))
    assert gradmatrix.check(str(module), seeds=1, dtypes="float64", oracles="numeric").passed


def test_matrix_cases_takes_one_name_as_a_list_of_one():
    assert matrix_cases("default", "relu", "float64", 1, "reverse") == matrix_cases("default", ["relu"], ["float64"], 1,
                                                                                      ["reverse"])
