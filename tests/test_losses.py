"""SquaredErrorGate, SoftmaxCrossEntropyGate and LogSoftmaxGate: values, gradients, stability, misuse."""

import re
import warnings

import numpy as np
import pytest

import gates
from gates import LogSoftmaxGate, SoftmaxCrossEntropyGate, SquaredErrorGate, SumGate
from graph import ComputationalGraph, GateForwardError
from graph.checking import numerical_gradient


def cross_entropy_graph(labels_need_grad=False):
    g = ComputationalGraph()
    scores = g.add_input("scores")
    labels = g.add_input("labels", requires_grad=labels_need_grad)
    g.add_gate(SoftmaxCrossEntropyGate(), scores, labels, name="loss")
    return g


def assert_matches_numerical(g, feeds, name, upstream=1.0, atol=1e-8):
    g.forward(feeds)
    analytic = g.backward(upstream)[name]
    numeric = numerical_gradient(lambda: g.forward(feeds), feeds[name], upstream)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=atol)


def test_exported_from_gates():
    assert gates.SoftmaxCrossEntropyGate is SoftmaxCrossEntropyGate
    assert "LogSoftmaxGate" in gates.__all__ and "SoftmaxCrossEntropyGate" in gates.__all__


def test_cross_entropy_value_by_hand():
    # Row 0: label 2, -log(e^3 / (e^1 + e^2 + e^3)) = log(1 + e^-1 + e^-2).
    # Row 1: equal scores, -log(1/3) = log 3.
    scores = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])
    loss = SoftmaxCrossEntropyGate().forward(scores, np.array([2.0, 0.0]))
    expected = (np.log(1 + np.exp(-1) + np.exp(-2)) + np.log(3)) / 2
    assert loss == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_backward_is_softmax_minus_onehot_over_n():
    scores = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])
    gate = SoftmaxCrossEntropyGate()
    gate.forward(scores, np.array([2.0, 0.0]))
    dscores, dlabels = gate.backward(1.0)
    softmax = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    onehot = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(dscores, (softmax - onehot) / 2, rtol=1e-12)
    assert dlabels is None


def test_cross_entropy_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    g = cross_entropy_graph()
    feeds = {"scores": rng.standard_normal((5, 4)), "labels": np.array([0.0, 3.0, 1.0, 1.0, 2.0])}
    assert_matches_numerical(g, feeds, "scores")
    assert_matches_numerical(g, feeds, "scores", upstream=-2.5)


def test_cross_entropy_gives_labels_no_gradient():
    g = cross_entropy_graph(labels_need_grad=True)
    g.forward({"scores": np.zeros((2, 3)), "labels": np.array([1.0, 2.0])})
    np.testing.assert_array_equal(g.backward()["labels"], np.zeros(2))
    g = cross_entropy_graph()
    g.forward({"scores": np.zeros((2, 3)), "labels": np.array([1.0, 2.0])})
    assert set(g.backward()) == {"scores"}


@pytest.mark.parametrize("size", [1e4, -1e4, 1e300])
def test_cross_entropy_is_stable_for_huge_scores(size):
    rng = np.random.default_rng(1)
    g = cross_entropy_graph()
    feeds = {"scores": size * (1 + rng.random((4, 3))), "labels": np.array([0.0, 1.0, 2.0, 1.0])}
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        loss = float(g.forward(feeds))
        grad = g.backward()["scores"]
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    # Each row's softmax is one-hot on its largest score.
    winners = np.argmax(feeds["scores"], axis=1)
    expected = np.zeros((4, 3))
    expected[np.arange(4), winners] += 0.25
    expected[np.arange(4), [0, 1, 2, 1]] -= 0.25
    np.testing.assert_allclose(grad, expected, atol=1e-12)


def test_cross_entropy_gradient_at_huge_scores_matches_finite_differences():
    # Scores around 1e4 that stay within a few units of each other, so the
    # softmax is not one-hot and the check is not trivial.
    rng = np.random.default_rng(2)
    g = cross_entropy_graph()
    feeds = {"scores": 1e4 + rng.standard_normal((3, 4)), "labels": np.array([3.0, 0.0, 2.0])}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_matches_numerical(g, feeds, "scores", atol=1e-6)


def test_cross_entropy_of_equal_huge_scores_is_log_c():
    gate = SoftmaxCrossEntropyGate()
    scores = np.full((2, 5), 1e4)
    assert gate.forward(scores, np.array([4.0, 0.0])) == pytest.approx(np.log(5), rel=1e-12)
    dscores, _ = gate.backward(1.0)
    np.testing.assert_allclose(dscores[0], np.array([0.2, 0.2, 0.2, 0.2, -0.8]) / 2)


def test_cross_entropy_single_example():
    rng = np.random.default_rng(3)
    g = cross_entropy_graph()
    feeds = {"scores": rng.standard_normal(4), "labels": np.array(2.0)}
    loss = float(g.forward(feeds))
    assert loss == pytest.approx(-np.log(np.exp(feeds["scores"][2]) / np.exp(feeds["scores"]).sum()))
    assert g.backward()["scores"].shape == (4,)
    assert_matches_numerical(g, feeds, "scores")


def test_cross_entropy_serves_any_batch_size():
    g = cross_entropy_graph()
    for n in (1, 7, 3):
        g.forward({"scores": np.zeros((n, 3)), "labels": np.zeros(n)})
        assert g.backward()["scores"].shape == (n, 3)


@pytest.mark.parametrize(
    "labels, message",
    [
        ([0.0, 1.5], r"labels must be class indices 0\.\.2, got 1\.5"),
        ([0.0, 3.0], r"class indices 0\.\.2, got 3"),
        ([-1.0, 0.0], r"class indices 0\.\.2, got -1"),
        ([0.0, np.nan], r"class indices 0\.\.2, got nan"),
        ([0.0, 1.0, 2.0], r"need labels of shape \(2,\), got shape \(3,\)"),
        ([[0.0], [1.0]], r"need labels of shape \(2,\), got shape \(2, 1\)"),
    ],
)
def test_cross_entropy_rejects_bad_labels(labels, message):
    g = cross_entropy_graph()
    with pytest.raises(GateForwardError, match=r"'loss' \(SoftmaxCrossEntropyGate\).*" + message):
        g.forward({"scores": np.zeros((2, 3)), "labels": np.array(labels)})


@pytest.mark.parametrize("shape", [(2, 3, 4), (0, 3), (2, 0)])
def test_cross_entropy_rejects_scores_of_other_ranks_or_empty(shape):
    g = cross_entropy_graph()
    message = r"scores of shape \(N, C\) or \(C,\), N and C > 0, got shape " + re.escape(str(shape))
    with pytest.raises(GateForwardError, match=message):
        g.forward({"scores": np.zeros(shape), "labels": np.zeros(shape[0])})


def log_softmax_graph():
    g = ComputationalGraph()
    g.add_gate(LogSoftmaxGate(), g.add_input("x"), name="log_softmax")
    return g


@pytest.mark.parametrize("shape", [(3, 4), (5,)])
def test_log_softmax_gradient_matches_finite_differences(shape):
    rng = np.random.default_rng(4)
    g = log_softmax_graph()
    feeds = {"x": rng.standard_normal(shape)}
    assert_matches_numerical(g, feeds, "x", upstream=rng.standard_normal(shape))


def test_log_softmax_rows_are_log_probabilities_even_for_huge_scores():
    x = np.array([[1e4, 1e4 - 1.0, -1e4], [1.0, 2.0, 3.0]])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        out = LogSoftmaxGate().forward(x)
    np.testing.assert_allclose(np.exp(out).sum(axis=1), [1.0, 1.0])
    assert out[0, 0] == pytest.approx(-np.log1p(np.exp(-1.0)))
    assert out[0, 2] == pytest.approx(-2e4 - np.log1p(np.exp(-1.0)), rel=1e-12)


def test_log_softmax_and_picking_the_label_is_cross_entropy():
    """-mean(log_softmax(s)[i, y_i]) composed from gates equals the fused gate, value and gradient."""
    rng = np.random.default_rng(5)
    scores, labels = rng.standard_normal((4, 3)), np.array([2.0, 0.0, 1.0, 1.0])
    onehot = np.eye(3)[labels.astype(int)]
    g = ComputationalGraph()
    s = g.add_input("scores")
    picked = g.add_gate(SumGate(), g.add_gate(LogSoftmaxGate(), s) * onehot)
    picked * (-1.0 / 4)  # the last gate added: the output
    composed = float(g.forward({"scores": scores}))
    composed_grad = g.backward()["scores"]
    fused = cross_entropy_graph()
    assert float(fused.forward({"scores": scores, "labels": labels})) == pytest.approx(composed, rel=1e-12)
    np.testing.assert_allclose(fused.backward()["scores"], composed_grad, rtol=1e-12, atol=1e-15)


def test_log_softmax_rejects_a_scalar():
    g = log_softmax_graph()
    message = r"LogSoftmaxGate takes scores of shape \(C,\) or \(N, C\), got shape \(\)"
    with pytest.raises(GateForwardError, match=message):
        g.forward({"x": 1.0})


# ---------------------------------------------------------------- the sum of squared errors


def test_squared_error_is_the_lecture_loss_and_its_gradient():
    """loss = np.square(y_pred - y).sum();  grad_y_pred = 2.0 * (y_pred - y), as in the lecture's loop."""
    rng = np.random.default_rng(0)
    y_pred, y = rng.standard_normal((64, 10)), rng.standard_normal((64, 10))
    gate = SquaredErrorGate()
    assert gate.forward(y_pred, y) == np.square(y_pred - y).sum()
    dprediction, dtarget = gate.backward(1.0)
    np.testing.assert_array_equal(dprediction, 2.0 * (y_pred - y))
    np.testing.assert_array_equal(dtarget, -2.0 * (y_pred - y))
    np.testing.assert_array_equal(gate.backward(0.5)[0], y_pred - y)


def test_squared_error_gives_what_subtract_square_sum_give():
    rng = np.random.default_rng(1)
    feeds = {"p": rng.standard_normal((5, 3)), "t": rng.standard_normal(3)}  # t broadcasts over rows
    results = []
    for fused in (True, False):
        g = ComputationalGraph()
        p, t = g.add_input("p"), g.add_input("t")
        if fused:
            g.add_gate(SquaredErrorGate(), p, t)
        else:
            g.add_gate(SumGate(), (p - t) ** 2)
        results.append((g.forward(feeds), g.backward()))
    (fused_loss, fused_grads), (loss, grads) = results
    assert fused_loss == pytest.approx(loss, rel=1e-15)
    assert fused_grads["t"].shape == (3,)
    for name in ("p", "t"):
        np.testing.assert_allclose(fused_grads[name], grads[name], rtol=1e-14, err_msg=name)


def test_squared_error_skips_the_target_gradient_nobody_needs():
    g = ComputationalGraph()
    prediction, target = g.add_input("prediction"), g.add_input("target", requires_grad=False)
    gate = SquaredErrorGate()
    g.add_gate(gate, prediction, target)
    g.forward({"prediction": np.array([1.0, 2.0]), "target": np.array([0.0, 4.0])})
    assert gate.backward(1.0)[1] is None
    assert list(g.backward()) == ["prediction"]
    np.testing.assert_array_equal(g.backward()["prediction"], [2.0, -4.0])
