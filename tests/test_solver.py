"""graph.Solver: the course's training loop for a graph, its histories, best parameters, checkpoints and checks."""

import os
import shutil
import sys

import numpy as np
import pytest

import graph.solver
from gates import ReLUGate, SoftmaxCrossEntropyGate
from graph import CheckpointError, ComputationalGraph, GraphError, Solver
from graph.layers import batch_norm, dense, dropout
from graph.monitor import TrainingMonitor
from graph.optimizers import SGD, Adam
from graph.solver import SolverError, SolverTypeError

D, C = 6, 3


def blobs(n, seed):
    """n points in D dimensions around C centers: learnable, not perfectly."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).standard_normal((C, D)) * 1.5
    y = rng.integers(0, C, n)
    return centers[y] + rng.standard_normal((n, D)), y


def make_data(n_train=90, n_val=40):
    (x_train, y_train), (x_val, y_val) = blobs(n_train, 1), blobs(n_val, 2)
    return {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val}


def make_net(seed=0, bn_and_dropout=False):
    """dense -> [batch norm] -> ReLU -> [dropout] -> dense -> softmax cross-entropy; (graph, scores, generator)."""
    rng = np.random.default_rng(seed)
    g = ComputationalGraph()
    x, y = g.add_input("x", requires_grad=False), g.add_input("y", requires_grad=False)
    hidden = dense(g, x, D, 16, "fc1", rng)
    if bn_and_dropout:
        hidden = batch_norm(g, hidden, 16, "bn")
    hidden = g.add_gate(ReLUGate(), hidden, name="relu")
    if bn_and_dropout:
        hidden = dropout(g, hidden, 0.3, rng, name="drop")
    scores = dense(g, hidden, 16, C, "fc2", rng)
    g.add_gate(SoftmaxCrossEntropyGate(), scores, y, name="loss")
    return g, scores, rng


def solver_for(seed=0, bn_and_dropout=False, data=None, **options):
    g, scores, rng = make_net(seed, bn_and_dropout)
    settings = dict(scores=scores, batch_size=16, epochs=4, seed=rng, progress=False)
    settings.update(options)
    return Solver(g, data or make_data(), Adam(g.params, lr=1e-2), **settings)


def params_of(g):
    return {name: value.copy() for name, value in g.params.items()}


def assert_same_params(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name


# ---------------------------------------------------------------- what a run records


def test_histories_have_one_loss_per_iteration_and_accuracies_per_epoch():
    solver = solver_for(epochs=5, keep_best=False).train()
    assert solver.iterations_per_epoch == 6  # 90 images in batches of 16: the last has 10
    assert len(solver.loss_history) == 30 and solver.iteration == 30
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == len(solver.epoch_loss_history) == 5
    assert solver.loss_history[-1] < solver.loss_history[0]
    assert solver.val_acc_history[-1] > 0.8  # chance is 1/3
    # The epoch loss is the mean over images: batches weighted by their size.
    sizes = [16] * 5 + [10]
    assert solver.epoch_loss_history[0] == pytest.approx(np.dot(solver.loss_history[:6], sizes) / 90, rel=1e-12)


def test_training_is_the_course_loop_bit_for_bit():
    """Same generator, same order of draws: the solver's parameters equal a hand-written loop's."""
    solver = solver_for(keep_best=False, num_train_samples=20)
    solver.train()
    g, _, rng = make_net(0)
    data, optimizer = make_data(), Adam(g.params, lr=1e-2)
    for epoch in range(4):
        order = rng.permutation(90)
        for start in range(0, 90, 16):
            batch = order[start:start + 16]
            g.forward({"x": data["x_train"][batch], "y": data["y_train"][batch]})
            optimizer.step(g.backward())
    assert_same_params(solver.g.params, g.params)


def test_the_training_accuracy_sample_does_not_change_the_batches():
    everything = solver_for(keep_best=False, num_train_samples=None).train()
    sampled = solver_for(keep_best=False, num_train_samples=7).train()
    assert_same_params(everything.g.params, sampled.g.params)
    assert everything.val_acc_history == sampled.val_acc_history
    assert all(round(acc * 7) == pytest.approx(acc * 7) for acc in sampled.train_acc_history)  # k of 7 images


def test_same_seed_same_run_other_seed_other_run():
    a, b, c = (solver_for(seed=seed, keep_best=False).train() for seed in (0, 0, 1))
    assert a.loss_history == b.loss_history and a.loss_history != c.loss_history

    def run(seed):  # the same initial weights; an int seed: the solver makes its own generator for the order
        g, scores, _ = make_net(0)
        return Solver(g, make_data(), SGD(g.params, lr=0.1), scores=scores, batch_size=30, epochs=2, seed=seed,
                      progress=False).train().loss_history

    assert run(5) == run(5) != run(6)


def test_the_best_parameters_are_left_in_the_graph():
    best = solver_for(epochs=8, bn_and_dropout=True).train()
    best_epoch = int(np.argmax(best.val_acc_history)) + 1  # the first epoch at the best accuracy
    assert best.best_val_acc == max(best.val_acc_history)
    shorter = solver_for(epochs=best_epoch, bn_and_dropout=True, keep_best=False).train()
    assert_same_params(best.g.params, shorter.g.params)
    assert_same_params(best.best_params, shorter.g.params)
    running = {key: best.g.node("bn").gate.state_dict()[key] for key in ("running_mean", "running_var")}
    for key, value in shorter.g.node("bn").gate.state_dict().items():
        assert np.array_equal(running[key], value), key  # batch norm's averages come back with them


def test_evaluation_runs_in_eval_mode_and_puts_the_mode_back():
    solver = solver_for(bn_and_dropout=True, keep_best=False).train()
    g = solver.g
    assert g.training
    state = {key: value.copy() for key, value in g.node("bn").gate.state_dict().items()}
    first = solver.check_accuracy(solver.X_val, solver.y_val, batch_size=7)
    assert solver.check_accuracy(solver.X_val, solver.y_val) == first  # dropout off, batch norm averages
    g.eval()
    g.forward({"x": solver.X_val, "y": solver.y_val})
    assert first == np.mean(np.argmax(g.value("fc2"), axis=1) == solver.y_val)
    assert solver.check_accuracy(solver.X_val, solver.y_val) == first and not g.training  # eval stays eval
    for key, value in g.node("bn").gate.state_dict().items():
        assert np.array_equal(value, state[key])


def test_a_schedule_sets_the_learning_rate_before_every_step():
    asked = []

    def schedule(iteration):
        asked.append(iteration)
        return 0.01 / (1 + iteration)

    solver = solver_for(epochs=2, lr_schedule=schedule, keep_best=False)
    asked.clear()  # the solver tries the schedule once when it is built
    solver.train()
    assert asked == list(range(12)) and solver.optimizer.lr == 0.01 / 12


def test_a_monitor_records_every_step():
    g, scores, rng = make_net(0)
    monitor = TrainingMonitor(g, ["relu", scores])
    Solver(g, make_data(), Adam(g.params, lr=1e-2), scores=scores, batch_size=30, epochs=2, seed=rng,
           monitor=monitor, progress=False).train()
    assert len(monitor.steps) == len(monitor.update_steps) == 6


def test_progress_bar_on_stderr_and_the_course_lines_when_verbose(capsys):
    solver_for(epochs=2, progress=True).train()
    captured = capsys.readouterr()
    assert "val_acc=" in captured.err and "12/12" in captured.err and captured.out == ""
    solver_for(epochs=2, progress=False, verbose=True, print_every=5).train()
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert lines[0].startswith("(Iteration 5 / 12) loss: ") and "(Epoch 2 / 2) train acc: " in lines[-1]


def test_without_tqdm_the_solver_trains_silently(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    solver = solver_for(epochs=2, progress=True).train()
    assert len(solver.val_acc_history) == 2
    assert capsys.readouterr() == ("", "")


def test_plot_draws_the_histories(tmp_path):
    solver = solver_for(epochs=2)
    with pytest.raises(SolverError, match="nothing to plot yet"):
        solver.plot()
    figure = solver.train().plot(tmp_path / "curves.png", title="blobs")
    assert len(figure.axes) == 2 and figure.canvas.manager is None  # a plain Figure, pyplot untouched
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_names_the_extra(monkeypatch):
    solver = solver_for(epochs=1).train()
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ModuleNotFoundError, match=r"gategraph\[draw\]"):
        solver.plot()


# ---------------------------------------------------------------- bad arguments, refused before any work


def bad_data(**changes):
    data = make_data()
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


@pytest.mark.parametrize(
    "options, error, message",
    [
        (dict(data=bad_data(y_val=None)), SolverError, r"data lacks y_val"),
        (dict(data=[1, 2]), SolverTypeError, r"data must be a dict with x_train"),
        (dict(data=bad_data(x_train=np.zeros((90, 5)), x_val=np.zeros((40, 5)))), SolverError,
         r"x_train \(90, 5\) does not fit the graph: .*fc1"),
        (dict(data=bad_data(x_val=np.zeros((40, 7)))), SolverError, r"x_val images are \(7,\) but x_train"),
        (dict(data=bad_data(y_train=np.zeros(89, int))), SolverError, r"y_train must hold one integer label per"),
        (dict(data=bad_data(y_train=np.zeros(90))), SolverError, r"y_train must hold one integer label .* float64"),
        (dict(data=bad_data(y_val=np.r_[np.zeros(39, int), 3])), SolverError,
         r"y_val must hold labels 0 to 2 .* found 0\.\.3"),
        (dict(data=bad_data(x_train=np.zeros((0, D)), y_train=np.zeros(0, int))), SolverError, r"x_train is empty"),
        (dict(data=bad_data(x_train=np.full((90, D), "a"))), SolverError, r"x_train must be an array of numbers"),
        (dict(batch_size=0), SolverError, r"batch_size must be a whole number >= 1, got 0"),
        (dict(batch_size=2.5), SolverTypeError, r"batch_size must be a whole number"),
        (dict(batch_size=True), SolverTypeError, r"batch_size must be a whole number"),
        (dict(epochs=-1), SolverError, r"epochs must be a whole number >= 0"),
        (dict(seed=-1), SolverError, r"seed must be a whole number >= 0"),
        (dict(num_train_samples=0), SolverError, r"num_train_samples must be a whole number >= 1"),
        (dict(data_input="images"), SolverError, r"the graph has no input 'images'; its inputs are x, y"),
        (dict(scores="nowhere"), SolverError, r"scores= must be a node of the graph"),
        (dict(checkpoint_every=5), SolverError, r"checkpoint_every needs checkpoint="),
        (dict(checkpoint="/no/such/folder/ck.npz"), CheckpointError, r"its folder does not exist"),
        (dict(lr_schedule=0.1), SolverTypeError, r"lr_schedule must be a callable"),
        (dict(lr_schedule=lambda step: float("nan")), SolverError, r"lr_schedule\(0\) gave nan"),
        (dict(lr_schedule=lambda step: "fast"), SolverError, r"lr_schedule\(0\) gave 'fast'"),
        (dict(monitor=object()), SolverTypeError, r"monitor must be a TrainingMonitor"),
        (dict(optimizer="sgd"), SolverTypeError, r"optimizer must have step"),
        (dict(optimizer={"w": np.zeros(3)}), SolverError, r"optimizer must be built on the graph's parameters"),
        (dict(optimizer="copies"), SolverError, r"optimizer must be built on the graph's parameters"),
    ],
)
def test_bad_arguments_are_refused_before_anything_changes(options, error, message):
    g, scores, rng = make_net(0, bn_and_dropout=True)
    data = options.pop("data", make_data())
    optimizer = options.pop("optimizer", None)
    if optimizer is None:
        optimizer = Adam(g.params, lr=1e-2)
    elif isinstance(optimizer, dict):
        optimizer = Adam(optimizer, lr=1e-2)
    elif optimizer == "copies":  # the same names, other arrays: its steps would never reach the graph
        optimizer = Adam(params_of(g), lr=1e-2)
    settings = dict(scores=scores, batch_size=16, epochs=2, seed=rng, progress=False)
    settings.update(options)
    before, generator = params_of(g), rng.bit_generator.state
    bn_state = {key: value.copy() for key, value in g.node("bn").gate.state_dict().items()}
    with pytest.raises(error, match=message) as caught:
        Solver(g, data, optimizer, **settings)
    assert isinstance(caught.value, GraphError)
    assert_same_params(before, g.params)
    assert rng.bit_generator.state == generator and g.training and not g.has_forward
    for key, value in g.node("bn").gate.state_dict().items():
        assert np.array_equal(value, bn_state[key])
    Solver(g, make_data(), Adam(g.params, lr=1e-2), scores=scores, epochs=1, progress=False).train()  # still works


def test_check_accuracy_refuses_mismatched_arrays():
    solver = solver_for()
    with pytest.raises(SolverError, match=r"y must hold one integer label per image of X \(40, 6\)"):
        solver.check_accuracy(make_data()["x_val"], np.zeros(39, int))


# ---------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def every_checkpoint(tmp_path_factory):
    """A run with batch norm and dropout checkpointing every 4 iterations; a copy of each checkpoint written."""
    folder = tmp_path_factory.mktemp("solver-checkpoints")
    copies = []
    original = graph.solver.save_checkpoint

    def keep_a_copy(path, **arguments):
        original(path, **arguments)
        copy = folder / f"copy-{len(copies)}.npz"
        shutil.copyfile(path, copy)
        copies.append(copy)

    graph.solver.save_checkpoint = keep_a_copy
    try:
        solver = solver_for(epochs=3, bn_and_dropout=True, checkpoint=folder / "ck.npz", checkpoint_every=4,
                            lr_schedule=lambda step: 0.01 * 0.9**step, settings={"lr": 0.01}, num_train_samples=50)
        solver.train()
    finally:
        graph.solver.save_checkpoint = original
    return solver, copies


def test_checkpoints_are_written_every_k_iterations_and_after_every_epoch(every_checkpoint):
    import json

    _, copies = every_checkpoint
    progress = []
    for copy in copies:
        with np.load(copy) as archive:
            progress.append(json.loads(str(archive["meta"][()]))["progress"])
    # 6 iterations per epoch: every 4 iterations within an epoch, and at the end of each.
    assert [p["iteration"] for p in progress] == [4, 6, 8, 12, 16, 18]
    assert progress[2] == {"epoch": 1, "batch": 2, "iteration": 8}


def test_resuming_from_any_checkpoint_ends_bit_identical(every_checkpoint):
    reference, copies = every_checkpoint
    for copy in copies:
        resumed = solver_for(epochs=3, bn_and_dropout=True, resume=copy, lr_schedule=lambda step: 0.01 * 0.9**step,
                             settings={"lr": 0.01}, num_train_samples=50)
        resumed.train()
        assert_same_params(reference.g.params, resumed.g.params)
        for key, value in reference.g.node("bn").gate.state_dict().items():
            assert np.array_equal(resumed.g.node("bn").gate.state_dict()[key], value), key
        assert resumed.loss_history == reference.loss_history
        assert resumed.train_acc_history == reference.train_acc_history
        assert resumed.val_acc_history == reference.val_acc_history


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(name="other"), r"was written by 'solver', not 'other'"),
        (dict(settings={"lr": 0.02}), r"setting lr was 0\.01, now 0\.02"),
        (dict(batch_size=8), r"setting batch_size was 16, now 8"),
        (dict(bn_and_dropout=False), r"'bn.gamma'"),
        (dict(epochs=1), r"it is at epoch 2, beyond epochs=1"),
    ],
)
def test_a_checkpoint_that_does_not_fit_is_refused_and_nothing_changes(every_checkpoint, options, message):
    _, copies = every_checkpoint
    arguments = dict(epochs=3, bn_and_dropout=True, settings={"lr": 0.01}, num_train_samples=50)
    arguments.update(options)
    g, scores, rng = make_net(0, arguments.pop("bn_and_dropout"))
    optimizer = Adam(g.params, lr=1e-2)
    before, generator = params_of(g), rng.bit_generator.state
    with pytest.raises(CheckpointError, match=message):
        Solver(g, make_data(), optimizer, scores=scores, seed=rng, progress=False,
               resume=copies[-2], **{"batch_size": 16, **arguments})
    assert_same_params(before, g.params)
    assert rng.bit_generator.state == generator and optimizer.steps == 0


def test_a_checkpoint_whose_numbers_do_not_add_up_is_refused(every_checkpoint, tmp_path):
    import json

    _, copies = every_checkpoint
    with np.load(copies[0]) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays["meta"][()]))
    meta["progress"]["iteration"] += 1
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "crafted.npz", **arrays)
    g, scores, rng = make_net(0, True)
    optimizer = Adam(g.params, lr=1e-2)
    generator = rng.bit_generator.state
    with pytest.raises(CheckpointError, match=r"it is damaged: its epoch 0, batch 4, iteration 5, the optimizer's 4"):
        Solver(g, make_data(), optimizer, scores=scores, seed=rng, batch_size=16, epochs=3, progress=False,
               settings={"lr": 0.01}, num_train_samples=50, resume=tmp_path / "crafted.npz")
    assert optimizer.steps == 0 and rng.bit_generator.state == generator


def test_the_checkpoint_stores_the_first_learning_rate(every_checkpoint):
    _, copies = every_checkpoint
    with np.load(copies[1]) as archive:
        assert float(archive["optimizer.hyper.lr"]) == 1e-2  # not the scheduled one
        assert {"param.state:bn.running_mean", "param.best:fc1.W", "param.best:state:bn.running_var"} <= set(
            archive.files)
    assert os.path.exists(copies[-1])
