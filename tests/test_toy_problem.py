"""Small 2-D problems no linear model can solve, learned by MLPs built from gates."""

import numpy as np

from gates import SoftmaxCrossEntropyGate, TanhGate
from graph import ComputationalGraph
from graph.layers import mlp
from graph.optimizers import SGD, Adam


def two_spirals(n_per_class, rng):
    """Two interleaved spirals, 1.5 turns each: X (2n, 2), y (2n,) in {0, 1}."""
    t = np.sqrt(rng.random(n_per_class)) * 3 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3 * np.pi)
    X = np.concatenate([arm, -arm]) + 0.02 * rng.standard_normal((2 * n_per_class, 2))
    y = np.repeat([0.0, 1.0], n_per_class)
    return X, y


def classifier(sizes, rng, **kwargs):
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    y = g.add_input("y", requires_grad=False)
    scores = mlp(g, x, sizes, rng, **kwargs)
    g.add_gate(SoftmaxCrossEntropyGate(), scores, y, name="loss")
    return g, scores


def accuracy(g, scores, X, y):
    g.forward({"x": X, "y": y})
    return np.mean(np.argmax(g.value(scores), axis=1) == y)


def test_two_spirals_with_adam_and_minibatches():
    rng = np.random.default_rng(0)
    X, y = two_spirals(150, rng)
    g, scores = classifier([2, 64, 64, 2], rng)
    optimizer = Adam(g.params, lr=0.01)
    first_loss = float(g.forward({"x": X, "y": y}))
    for _ in range(150):
        order = rng.permutation(len(y))
        for start in range(0, len(y), 64):  # 300 = 4 * 64 + 44: the last batch is smaller
            batch = order[start : start + 64]
            g.forward({"x": X[batch], "y": y[batch]})
            optimizer.step(g.backward())
    assert float(g.forward({"x": X, "y": y})) < 0.1 * first_loss
    assert accuracy(g, scores, X, y) >= 0.97


def test_two_spirals_are_not_linearly_separable():
    rng = np.random.default_rng(0)
    X, y = two_spirals(150, rng)
    g, scores = classifier([2, 2], rng)  # one dense layer: a linear classifier
    optimizer = Adam(g.params, lr=0.05)
    for _ in range(300):
        g.forward({"x": X, "y": y})
        optimizer.step(g.backward())
    assert accuracy(g, scores, X, y) < 0.8


def test_xor_with_sgd_momentum():
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    g, scores = classifier([2, 8, 2], np.random.default_rng(0), activation=TanhGate, init="xavier")
    optimizer = SGD(g.params, lr=0.5, momentum=0.9)
    for _ in range(300):
        g.forward({"x": X, "y": y})
        optimizer.step(g.backward())
    assert float(g.forward({"x": X, "y": y})) < 0.05
    assert accuracy(g, scores, X, y) == 1.0
