"""manual against values worked out by hand (exact in binary floating point where possible)."""

import numpy as np
import pytest

from gradmatrix import manual


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_masks_at_and_below_zero(dtype):
    # seed 000: dx = mask * y_grad, with the indicator 1(x > 0); at exactly 0 the gradient is 0
    x = np.array([[-2.0, -0.0, 0.0, 0.5, 3.0]], dtype=dtype)
    out, cache = manual.relu_forward(x)
    np.testing.assert_array_equal(out, np.array([[0, 0, 0, 0.5, 3.0]], dtype=dtype))
    dout = np.array([[10.0, 20.0, 30.0, 40.0, 50.0]], dtype=dtype)
    dx = manual.relu_backward(dout, cache)
    np.testing.assert_array_equal(dx, np.array([[0, 0, 0, 40.0, 50.0]], dtype=dtype))
    assert out.dtype == dx.dtype == dtype
    np.testing.assert_array_equal(dout, [[10.0, 20.0, 30.0, 40.0, 50.0]])  # upstream gradient untouched


def test_affine_by_hand():
    # out = x w + b; dx = dout w^T, dw = x^T dout, db = column sums of dout (seed 000, 002)
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    w = np.array([[1.0, -1.0, 0.5], [2.0, 0.0, -0.5]])
    b = np.array([0.25, 0.5, 0.75])
    out, cache = manual.affine_forward(x, w, b)
    np.testing.assert_array_equal(out, [[5.25, -0.5, 0.25], [11.25, -2.5, 0.25], [17.25, -4.5, 0.25]])
    dout = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0], [-1.0, 1.0, 1.0]])
    dx, dw, db = manual.affine_backward(dout, cache)
    np.testing.assert_array_equal(dx, [[2.0, 1.0], [-1.0, 0.0], [-1.5, -2.5]])
    np.testing.assert_array_equal(dw, [[-4.0, 8.0, 7.0], [-4.0, 10.0, 10.0]])
    np.testing.assert_array_equal(db, [0.0, 2.0, 3.0])


def test_affine_keeps_multidimensional_x_shape():
    x = np.arange(12.0).reshape(2, 3, 2)
    w = np.ones((6, 4))
    out, cache = manual.affine_forward(x, w, np.zeros(4))
    np.testing.assert_array_equal(out, [[15.0] * 4, [51.0] * 4])
    dx, dw, db = manual.affine_backward(np.ones((2, 4)), cache)
    assert dx.shape == (2, 3, 2) and dw.shape == (6, 4) and db.shape == (4,)
    np.testing.assert_array_equal(dx, np.full((2, 3, 2), 4.0))


def test_softmax_loss_uniform_scores():
    # equal scores: p = 1/C, loss = log C; dscores = (p - onehot) / N (seed 002)
    loss, dscores = manual.softmax_loss(np.zeros((2, 4)), np.array([0, 3]))
    assert loss == pytest.approx(np.log(4.0), abs=0, rel=1e-15)
    assert loss == 1.3862943611198906
    np.testing.assert_array_equal(dscores, [[-0.375, 0.125, 0.125, 0.125], [0.125, 0.125, 0.125, -0.375]])


def test_softmax_loss_two_classes_to_the_digit():
    # scores (0, ln 3): p = (1/4, 3/4); with label 0 the loss is ln 4 and dscores = (p - e0) / 1
    loss, dscores = manual.softmax_loss(np.array([[0.0, np.log(3.0)]]), np.array([0]))
    assert loss == pytest.approx(1.3862943611198906, rel=1e-15)
    np.testing.assert_allclose(dscores, [[-0.75, 0.75]], rtol=1e-15)


def test_softmax_loss_is_stable_for_large_float32_scores():
    scores = np.array([[1e4, 0.0, -1e4], [3.0, 2.0, 1.0]], dtype=np.float32)
    loss, dscores = manual.softmax_loss(scores, np.array([1, 0]))
    assert loss.dtype == np.float32 and dscores.dtype == np.float32
    assert np.isfinite(loss) and np.all(np.isfinite(dscores))
    # row 0: loss 1e4 (label 1 is 1e4 below the max); row 1: log(1 + e^-1 + e^-2)
    expected = (1e4 + np.log1p(np.exp(-1.0) + np.exp(-2.0))) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-7)
    np.testing.assert_allclose(dscores[0], [0.5, -0.5, 0.0], atol=1e-7)


def test_two_layer_net_scores_and_l2_gradient():
    # with W1 = I, b1 = 0 the hidden layer is relu(X); the L2 term adds 2 reg W (seed 002 + weight decay)
    params = {"W1": np.eye(2), "b1": np.zeros(2), "W2": np.array([[1.0, 0.0], [0.0, 1.0]]), "b2": np.zeros(2)}
    X = np.array([[1.0, -1.0]])
    scores = manual.two_layer_net_loss(params, X)
    np.testing.assert_array_equal(scores, [[1.0, 0.0]])
    loss0, g0 = manual.two_layer_net_loss(params, X, np.array([1]))
    loss1, g1 = manual.two_layer_net_loss(params, X, np.array([1]), reg=0.5)
    assert loss1 - loss0 == pytest.approx(0.5 * (2 + 2), rel=1e-15)
    np.testing.assert_allclose(g1["W1"] - g0["W1"], 2 * 0.5 * params["W1"], rtol=1e-15)
    np.testing.assert_allclose(g1["W2"] - g0["W2"], 2 * 0.5 * params["W2"], rtol=1e-15)
    np.testing.assert_array_equal(g1["b1"], g0["b1"])
    # dscores = p - e1 with p = softmax(1, 0); only the active hidden unit (index 0) passes gradient to W1
    p = np.exp([1.0, 0.0]) / np.exp([1.0, 0.0]).sum()
    np.testing.assert_allclose(g0["b2"], p - [0, 1], rtol=1e-15)
    np.testing.assert_allclose(g0["W2"], [[p[0], p[1] - 1], [0, 0]], rtol=1e-15)
    np.testing.assert_allclose(g0["W1"], [[p[0], 0.0], [-p[0], 0.0]], rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((3, 4)), "b1": rng.standard_normal(4),
              "W2": rng.standard_normal((4, 2)), "b2": rng.standard_normal(2)}
    params = {k: v.astype(dtype) for k, v in params.items()}
    loss, grads = manual.two_layer_net_loss(params, rng.standard_normal((5, 3)).astype(dtype), np.arange(5) % 2, reg=0.1)
    assert np.asarray(loss).dtype == dtype
    assert all(g.dtype == dtype and g.shape == params[k].shape for k, g in grads.items())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_seed_001_graph_to_the_digit(dtype):
    # seed 001, "f(x, y, z) = (x + y) max(y, z)" at "x = 1, y = 2, z = 0", through its forward
    # steps "a = x + y", "b = max(y, z)", "f = ab", each gate a manual function on shape (1,)
    x, y, z = (np.array([v], dtype=dtype) for v in (1.0, 2.0, 0.0))
    a, add_cache = manual.add_forward(x, y)
    b, max_cache = manual.max_forward(y, z)
    f, mul_cache = manual.multiply_forward(a, b)
    np.testing.assert_array_equal(a, [3.0])
    np.testing.assert_array_equal(b, [2.0])
    np.testing.assert_array_equal(f, [6.0])  # (1 + 2) max(2, 0) = 6
    one = np.ones(1, dtype=dtype)
    # local gradients, each gate fed an upstream gradient of 1:
    # "da/dx = 1, da/dy = 1"; "db/dy = 1(y > z) = 1, db/dz = 1(z > y) = 0"; "df/da = b = 2, df/db = a = 3"
    assert [g.tolist() for g in manual.add_backward(one, add_cache)] == [[1.0], [1.0]]
    assert [g.tolist() for g in manual.max_backward(one, max_cache)] == [[1.0], [0.0]]
    # backprop: "initialize output gradient = 1", visit the nodes in reverse order
    df_da, df_db = manual.multiply_backward(one, mul_cache)
    assert df_da.tolist() == [2.0] and df_db.tolist() == [3.0]
    df_dx, df_dy_via_a = manual.add_backward(df_da, add_cache)  # + "distributes"
    df_dy_via_b, df_dz = manual.max_backward(df_db, max_cache)  # max "routes"
    # "Gradients sum at outward branches": df/dy = df/da da/dy + df/db db/dy = 2 * 1 + 3 * 1
    df_dy = df_dy_via_a + df_dy_via_b
    # the seed's text gives the local gradients above and the sum rule; df/dx = 2, df/dy = 5 and
    # df/dz = 0 are what they compose to (the slide's figure, not reproduced in the text, shows them)
    np.testing.assert_array_equal(df_dx, [2.0])
    np.testing.assert_array_equal(df_dy, [5.0])
    np.testing.assert_array_equal(df_dz, [0.0])
    assert all(g.dtype == dtype for g in (f, df_dx, df_dy, df_dz))
    # the seed's MultiplyGate: "dx = self.y * dz", "dy = self.x * dz" (it "switches")
    dx, dy = manual.multiply_backward(np.array([10.0], dtype=dtype), mul_cache)
    assert dx.tolist() == [20.0] and dy.tolist() == [30.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_tanh_at_zero_by_hand(dtype):
    # the seeds work no sigmoid numbers in their text (seed 000's CS 231n sigmoid example is a
    # photographed page); by hand: sigma(0) = 1/2, sigma'(0) = 1/2 (1 - 1/2) = 1/4; tanh(0) = 0, tanh'(0) = 1
    x = np.zeros((1, 1), dtype=dtype)
    dout = np.array([[8.0]], dtype=dtype)
    out, cache = manual.sigmoid_forward(x)
    assert out.tolist() == [[0.5]] and manual.sigmoid_backward(dout, cache).tolist() == [[2.0]]
    out, cache = manual.tanh_forward(x)
    assert out.tolist() == [[0.0]] and manual.tanh_backward(dout, cache).tolist() == [[8.0]]
