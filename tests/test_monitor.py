"""graph.monitor.TrainingMonitor and scripts/init_study.py: what a student reads off while babysitting training."""

import os
import sys

import numpy as np
import pytest

from gates import ReLUGate, SumGate
from graph import BackwardError, ComputationalGraph, GraphBuildError
from graph.monitor import PERCENTILES, MonitorError, TrainingMonitor
from graph.optimizers import SGD, Adam

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import init_study  # noqa: E402
import train_digits  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def small_nets():
    """The init study at a size the suite can afford: 10 layers of 100 units, 200 examples."""
    return {setup: init_study.run_setup(setup, layers=10, width=100, batch=200) for setup in init_study.SETUPS}


def test_too_small_init_collapses_layer_by_layer(small_nets):
    stds = small_nets["small"].std_per_layer("activations")
    assert len(stds) == 10
    # 0.01 * sqrt(100) = 0.1: each tanh layer shrinks its input about tenfold
    for before, after in zip(stds, stds[1:]):
        assert after < 0.2 * before
    assert stds[-1] < 1e-8


def test_xavier_keeps_the_spread(small_nets):
    stds = small_nets["xavier"].std_per_layer("activations")
    for before, after in zip(stds, stds[1:]):
        assert after > 0.75 * before
    assert stds[-1] > 0.15


def test_he_relu_keeps_the_spread_and_zeroes_half(small_nets):
    monitor = small_nets["he"]
    stds = monitor.std_per_layer("activations")
    assert max(stds) < 2.0 * min(stds)
    for name in monitor.layers:
        assert 0.35 < monitor.activations[name][-1].zero_fraction < 0.65


def test_gradients_vanish_towards_the_input_with_too_small_init(small_nets):
    small = small_nets["small"].std_per_layer("gradients")
    xavier = small_nets["xavier"].std_per_layer("gradients")
    assert small[0] < 1e-6 * small[-1]
    assert xavier[0] > 0.1 * xavier[-1]


def test_distribution_summary_matches_numpy():
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    w = g.add_param("w", np.full(3, 2.0))
    h = g.add_gate(ReLUGate(), x * w, name="h")
    g.add_gate(SumGate(), h, name="out")
    X = np.random.default_rng(0).standard_normal((50, 3))
    g.forward({"x": X})
    g.backward()
    monitor = TrainingMonitor(g, ["h"])
    monitor.record()
    summary = monitor.activations["h"][0]
    expected = np.maximum(X * 2.0, 0.0)
    assert summary.mean == pytest.approx(expected.mean())
    assert summary.std == pytest.approx(expected.std())
    assert summary.zero_fraction == pytest.approx(np.mean(expected == 0.0))
    assert [summary.percentiles[p] for p in PERCENTILES] == pytest.approx(np.percentile(expected, PERCENTILES))
    assert monitor.gradients["h"][0].std == 0.0  # the gradient of a sum is all ones


def digits_graph(seed=0):
    rng = np.random.default_rng(seed)
    g, scores = train_digits.build_classifier([64, 32, 10], rng)
    X = rng.standard_normal((40, 64))
    y = rng.integers(0, 10, size=40)
    return g, scores, {"x": X, "y": y}


def train(g, feeds, monitor, steps=5, optimizer_class=Adam):
    optimizer = optimizer_class(g.params, lr=1e-2)
    losses = []
    for _ in range(steps):
        losses.append(float(g.forward(feeds)))
        grads = g.backward()
        if monitor is not None:
            monitor.record()
        optimizer.step(grads)
        if monitor is not None:
            monitor.record_update()
    return losses


def test_monitor_does_not_change_training():
    g1, _, feeds = digits_graph()
    g2, scores, _ = digits_graph()
    plain = train(g1, feeds, None)
    monitor = TrainingMonitor(g2, ["fc1.act", scores])
    watched = train(g2, feeds, monitor)
    assert plain == watched  # bit for bit
    for name in g1.params:
        np.testing.assert_array_equal(g1.params[name], g2.params[name])
    assert monitor.steps == [0, 1, 2, 3, 4] and monitor.update_steps == [0, 1, 2, 3, 4]
    assert len(monitor.activations["fc2"]) == 5 and len(monitor.gradients["fc1.act"]) == 5


def test_update_ratio_is_the_norm_of_the_step_over_the_norm_of_the_parameter():
    g, _, feeds = digits_graph()
    monitor = TrainingMonitor(g, ["fc1.act"], params=["fc1.W", "fc1.b"])
    g.forward(feeds)
    grads = g.backward()
    monitor.record()
    before = g.params["fc1.W"].copy()
    SGD(g.params, lr=0.1).step(grads)
    ratios = monitor.record_update()
    expected = np.linalg.norm(0.1 * grads["fc1.W"]) / np.linalg.norm(before)
    assert ratios["fc1.W"] == pytest.approx(expected, rel=1e-12)
    assert np.isnan(ratios["fc1.b"])  # biases start at zero: no ratio yet
    assert list(monitor.update_ratios) == ["fc1.W", "fc1.b"]


def test_misuse_is_refused_with_clear_messages():
    g, _, feeds = digits_graph()
    with pytest.raises(GraphBuildError, match="nope"):
        TrainingMonitor(g, ["nope"])
    with pytest.raises(MonitorError, match="list of nodes"):
        TrainingMonitor(g, "fc1.act")
    with pytest.raises(MonitorError, match="'fc9.W' not among"):
        TrainingMonitor(g, ["fc1.act"], params=["fc9.W"])
    monitor = TrainingMonitor(g, ["fc1.act"])
    with pytest.raises(BackwardError):
        monitor.record()
    assert monitor.steps == []
    with pytest.raises(MonitorError, match="call record"):
        monitor.record_update()
    with pytest.raises(MonitorError, match="nothing recorded"):
        monitor.figure()
    with pytest.raises(MonitorError, match="kind"):
        monitor.std_per_layer("weights")


def test_figure_is_a_plain_matplotlib_figure(tmp_path):
    g, scores, feeds = digits_graph()
    monitor = TrainingMonitor(g, ["fc1.act", scores])
    train(g, feeds, monitor, steps=3)
    figure = monitor.figure(title="test")
    assert figure.canvas.manager is None  # a plain Figure: pyplot never knew about it
    assert len(figure.axes) == 6
    assert figure.axes[2].get_yscale() == "log" and len(figure.axes[2].get_lines()) == 4 + 1  # 4 params + 1e-3


@pytest.mark.slow
def test_train_digits_plot_stats(tmp_path, capsys):
    stats = tmp_path / "stats.png"
    train_digits.main(["--epochs", "2", "--hidden", "16", "--plot-stats", str(stats)])
    assert stats.read_bytes()[:8] == PNG_MAGIC
    assert f"training statistics saved to {stats}" in capsys.readouterr().out


def test_train_digits_checks_the_plot_stats_path_first(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_digits.parse_args(["--plot-stats", str(tmp_path / "missing" / "stats.png")])
    assert "--plot-stats" in capsys.readouterr().err


def test_init_study_script_checks_its_options_first(tmp_path, capsys):
    for bad in (["--layers", "1"], ["--width", "0"], ["--seed", "-1"], ["--out", str(tmp_path / "x.txt")],
                ["--out", str(tmp_path / "missing" / "x.png")]):
        with pytest.raises(SystemExit):
            init_study.main(bad)
    assert "error" in capsys.readouterr().err


@pytest.mark.slow
def test_init_study_script_writes_its_figure(tmp_path, capsys):
    out = tmp_path / "study.png"
    monitors = init_study.main(["--layers", "4", "--width", "40", "--batch", "50", "--out", str(out)])
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert set(monitors) == {"small", "xavier", "he"}
    assert "tanh, Xavier" in capsys.readouterr().out
