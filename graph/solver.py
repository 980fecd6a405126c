"""graph.Solver: the course's Solver, for a graph: minibatches, epochs, histories, the best parameters.

A :class:`Solver` trains a classifier built as a graph whose data input is
``"x"``, whose label input is ``"y"`` and whose output is the loss, on the
course's data dict, and keeps what a training run produces::

    solver = Solver(g, data, Adam(g.params, lr=1e-3), scores=scores, batch_size=64, epochs=10, seed=0)
    solver.train()
    solver.loss_history        # one training loss per iteration (a minibatch)
    solver.train_acc_history   # one per epoch, on a sample of num_train_samples training images
    solver.val_acc_history     # one per epoch, on the validation set
    solver.best_params         # the parameters of the best validation accuracy, left in g.params
    solver.check_accuracy(X_test, y_test)
    solver.plot("curves.png")

Each epoch visits the training set once in an order drawn from the
solver's generator; evaluation runs the graph in evaluation mode (batch norm
uses its running averages, dropout passes values through) and puts it back
in training mode.  With ``checkpoint=`` everything the loop carries is
written atomically (:mod:`graph.checkpoint`) after every epoch and every
``checkpoint_every`` iterations; a new solver built the same way with
``resume=`` continues from it and ends bit-identical to a run never
interrupted.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from typing import Any, Callable, Mapping

import numpy as np

from graph.checkpoint import load_checkpoint, save_checkpoint
from graph.errors import CheckpointError, GraphError
from graph.node import INPUT, Node
from graph.parameter_files import check_file_target

DATA_KEYS = ("x_train", "y_train", "x_val", "y_val")
#: The histories a checkpoint holds, besides the time spent so far in the epoch in progress.
HISTORIES = ("loss", "epoch_loss", "train_acc", "val_acc", "epoch_seconds", "epoch_cpu_seconds")


class SolverError(GraphError, ValueError):
    """A Solver cannot train as asked: missing data, shapes that do not fit the graph, a bad setting."""


class SolverTypeError(SolverError, TypeError):
    """A Solver was given something of the wrong type: no graph, no optimizer, a setting that is not a number."""


class Solver:
    """Train a graph with minibatch gradient descent, as the course's Solver trains a model.

    Parameters
    ----------
    g : ComputationalGraph
        Its output is the mean loss of a batch; its data input (``"x"``) takes
        images ``(N, ...)`` and its label input (``"y"``) labels ``(N,)``.
    data : dict
        ``x_train`` (N, ...), ``y_train`` (N,) integer labels, ``x_val`` (M, ...),
        ``y_val`` (M,).  The arrays are read, never copied or changed.
    optimizer : graph.optimizers.Optimizer
        Built on ``g.params``; its ``step(grads)`` updates them in place.
    scores : Node or str
        The class scores ``(N, C)`` the accuracy is read from (argmax per row).
    batch_size : int
        Training images per iteration (the last batch of an epoch may be smaller).
    epochs : int
        Passes over the training set, >= 0.
    seed : int or numpy.random.Generator
        Draws the order of each epoch.  A generator is used as it is (the one
        that drew the initial weights, say), as ``np.random.default_rng`` does.
    data_input, label_input : str
        The names of the graph's inputs for images and labels.
    num_train_samples : int or None
        The training accuracy of each epoch is measured on a sample of this
        many training images (None: all of them), drawn from a generator of
        its own so that measuring it does not change the order of the batches.
    num_val_samples : int or None
        Likewise for the validation accuracy (None, the default: all).
    eval_batch_size : int
        Images per forward pass when measuring accuracy (bounds memory).
    lr_schedule : callable or None
        ``lr_schedule(iteration) -> lr``, called before every step with the
        number of steps done so far (0, 1, ...); the result becomes
        ``optimizer.lr``.  Checkpoints store the optimizer's first lr.
    keep_best : bool
        At the end of :meth:`train`, put the parameters (and gate state such
        as batch norm's running averages) of the best validation accuracy
        back into the graph, as the course does.  False keeps the last ones.
    monitor : graph.monitor.TrainingMonitor or None
        Records after every backward pass and every step.
    progress : bool
        Show a tqdm progress bar on stderr (when tqdm is installed).
    verbose : bool
        Print the course's lines: the loss every ``print_every`` iterations
        and the accuracies after every epoch (off by default).
    print_every : int
    checkpoint : str or None
        Write a checkpoint here after every epoch (and every ``checkpoint_every``
        iterations within one).
    checkpoint_every : int or None
    resume : str or None
        Continue from this checkpoint, restored now: the graph, optimizer and
        generators must be built as for the run that wrote it.
    name : str
        Written into checkpoints: ``resume`` takes only a checkpoint of the same name.
    settings : dict or None
        JSON-able options that change the numbers (seed, lr, ...): a checkpoint
        resumes only with the same ones.  ``batch_size``, the sample sizes
        and, with ``checkpoint`` or ``resume``, a SHA-256 of the data are added.

    Raises
    ------
    SolverError
        Before anything changes: a data key missing, images that do not fit
        the graph's input, labels that are not whole numbers in the range of
        the scores, a setting out of range (``batch_size < 1``, ...).
    SolverTypeError
        Something of the wrong type (not a graph, no optimizer, a non-callable schedule).
    CheckpointError
        ``resume`` names a checkpoint that does not fit this run (nothing changed).
    """

    def __init__(
        self,
        g: Any,
        data: Mapping[str, Any],
        optimizer: Any,
        *,
        scores: Node | str,
        batch_size: int = 100,
        epochs: int = 10,
        seed: int | np.random.Generator = 0,
        data_input: str = "x",
        label_input: str = "y",
        num_train_samples: int | None = 1000,
        num_val_samples: int | None = None,
        eval_batch_size: int = 250,
        lr_schedule: Callable[[int], float] | None = None,
        keep_best: bool = True,
        monitor: Any = None,
        progress: bool = True,
        verbose: bool = False,
        print_every: int = 10,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int | None = None,
        resume: str | os.PathLike | None = None,
        name: str = "solver",
        settings: Mapping[str, Any] | None = None,
    ):
        for what, value, needs in (("g", g, ("forward", "backward", "params", "node", "eval")),
                                   ("optimizer", optimizer, ("step", "lr", "state_dict", "steps"))):
            if not all(hasattr(value, attribute) for attribute in needs):
                raise SolverTypeError(f"Solver: {what} must have {', '.join(needs)}; got {type(value).__name__}")
        if g.output is None:
            raise SolverError("Solver: the graph has no output: its output must be the loss")
        updated = getattr(optimizer, "params", {})
        if sorted(updated) != sorted(g.params) or any(updated[name] is not g.params[name] for name in g.params):
            raise SolverError("Solver: the optimizer must be built on the graph's parameters, e.g. Adam(g.params)")
        self.batch_size = _count("batch_size", batch_size, minimum=1)
        self.epochs = _count("epochs", epochs, minimum=0)
        self.num_train_samples = _count("num_train_samples", num_train_samples, minimum=1, optional=True)
        self.num_val_samples = _count("num_val_samples", num_val_samples, minimum=1, optional=True)
        self.eval_batch_size = _count("eval_batch_size", eval_batch_size, minimum=1)
        self.print_every = _count("print_every", print_every, minimum=1)
        self.checkpoint_every = _count("checkpoint_every", checkpoint_every, minimum=1, optional=True)
        if checkpoint_every is not None and checkpoint is None:
            raise SolverError("Solver: checkpoint_every needs checkpoint= (the file to write)")
        if isinstance(seed, np.random.Generator):
            self.rng = seed
        else:
            self.rng = np.random.default_rng(_count("seed", seed, minimum=0))
        if lr_schedule is not None and not callable(lr_schedule):
            raise SolverTypeError(f"Solver: lr_schedule must be a callable (iteration -> lr), got {lr_schedule!r}")
        if monitor is not None and not (hasattr(monitor, "record") and hasattr(monitor, "record_update")):
            raise SolverTypeError(f"Solver: monitor must be a TrainingMonitor, got {type(monitor).__name__}")
        self.g, self.optimizer, self.lr_schedule, self.monitor = g, optimizer, lr_schedule, monitor
        self.data_input, self.label_input = self._input_name(data_input), self._input_name(label_input)
        try:
            self.scores = g.node(scores)
        except GraphError as error:
            raise SolverError(f"Solver: scores= must be a node of the graph: {error}") from None
        self.X_train, self.y_train = self._data_pair(data, "train")
        self.X_val, self.y_val = self._data_pair(data, "val")
        self._check_fit()
        if lr_schedule is not None:
            self._scheduled_lr(0)
        self.checkpoint = None if checkpoint is None else check_file_target(checkpoint, "a checkpoint", CheckpointError)
        if self.checkpoint is not None and not os.path.isdir(os.path.dirname(os.path.abspath(self.checkpoint))):
            raise CheckpointError(f"cannot write checkpoint {self.checkpoint!r}: its folder does not exist")
        self.keep_best, self.progress, self.verbose, self.name = bool(keep_best), bool(progress), bool(verbose), name
        self.settings = {"batch_size": self.batch_size, "num_train_samples": self.num_train_samples,
                         "num_val_samples": self.num_val_samples, **dict(settings or {})}
        if checkpoint is not None or resume is not None:  # a checkpoint resumes only on the same data
            self.settings["data_sha256"] = _fingerprint(self.X_train, self.y_train, self.X_val, self.y_val)
        # The training-accuracy sample comes from a generator of its own, spawned from the shuffling one.
        self.sample_rng = np.random.default_rng(self.rng.bit_generator.seed_seq.spawn(1)[0])
        self.base_lr = optimizer.lr
        self.iterations_per_epoch = math.ceil(len(self.y_train) / self.batch_size)

        self.epoch = 0  # epochs done
        self.batch = 0  # batches done in the epoch in progress
        self.iteration = 0  # optimizer steps done in all
        self.loss_history: list[float] = []
        self.epoch_loss_history: list[float] = []  # the mean training loss of each epoch's batches
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []
        self.epoch_seconds: list[float] = []  # wall time of each epoch's training steps
        self.epoch_cpu_seconds: list[float] = []
        self.best_val_acc = -1.0
        self.best_params: dict[str, np.ndarray] = {}
        self.best_state: dict[str, dict[str, np.ndarray]] = {}  # gate states (running averages) with them
        self._time_in_epoch = (0.0, 0.0)  # wall and CPU seconds spent in the epoch in progress
        if resume is not None:
            self._resume(os.fspath(resume))

    # ------------------------------------------------------------------ training

    def train(self) -> Solver:
        """Run the remaining epochs (all of them, or those after the resumed checkpoint).

        Each epoch draws an order of the training images, steps once per
        minibatch (one entry of ``loss_history`` each), then measures the
        training and validation accuracy in evaluation mode, keeps the
        parameters if the validation accuracy is the best so far, and writes
        the checkpoint.  At the end the best parameters are put back into
        ``g.params`` (with ``keep_best``).

        Returns
        -------
        Solver
            self, so that ``Solver(...).train().val_acc_history`` reads in one line.

        Raises
        ------
        SolverError
            If ``lr_schedule`` gives something that is not a finite number >= 0.
        GraphError
            What the graph or optimizer raises on the way (a NaN with
            ``check_finite``, say); the histories hold the iterations done.
        """
        bar = self._progress_bar()
        try:
            while self.epoch < self.epochs:
                self._train_epoch(bar)
        finally:
            if bar is not None:
                bar.close()
        if self.keep_best and self.best_params:
            for name, value in self.best_params.items():
                np.copyto(self.g.params[name], value)
            for node_name, state in self.best_state.items():
                self.g.node(node_name).gate.load_state_dict(state)
        return self

    def _train_epoch(self, bar: Any) -> None:
        epoch_start = _copy_generator(self.rng)  # a checkpoint within the epoch redraws its order from this
        order = self.rng.permutation(len(self.y_train))
        first = self.iteration - self.batch
        wall_before, cpu_before = self._time_in_epoch
        started, cpu_started = time.perf_counter(), time.process_time()
        for index in range(self.batch, self.iterations_per_epoch):
            self._step(order[index * self.batch_size:(index + 1) * self.batch_size])
            self.batch = index + 1
            if bar is not None:
                bar.update()
            if self.verbose and self.iteration % self.print_every == 0:
                self._say(f"(Iteration {self.iteration} / {self.epochs * self.iterations_per_epoch}) "
                          f"loss: {self.loss_history[-1]:f}", bar)
            if (self.checkpoint_every and self.iteration % self.checkpoint_every == 0
                    and self.batch < self.iterations_per_epoch):
                self._time_in_epoch = (wall_before + time.perf_counter() - started,
                                       cpu_before + time.process_time() - cpu_started)
                self._save(epoch_start)
        self.epoch_seconds.append(wall_before + time.perf_counter() - started)
        self.epoch_cpu_seconds.append(cpu_before + time.process_time() - cpu_started)
        self.epoch_loss_history.append(self._epoch_loss(first))
        self.train_acc_history.append(self.check_accuracy(self.X_train, self.y_train, self.num_train_samples))
        self.val_acc_history.append(self.check_accuracy(self.X_val, self.y_val, self.num_val_samples))
        self.epoch, self.batch, self._time_in_epoch = self.epoch + 1, 0, (0.0, 0.0)
        self._keep_if_best()
        if bar is not None:
            bar.set_postfix(epoch=self.epoch, loss=f"{self.epoch_loss_history[-1]:.4f}",
                            val_acc=f"{self.val_acc_history[-1]:.4f}")
        if self.verbose:
            self._say(f"(Epoch {self.epoch} / {self.epochs}) train acc: {self.train_acc_history[-1]:f}; "
                      f"val_acc: {self.val_acc_history[-1]:f}", bar)
        if self.checkpoint is not None:
            self._save(self.rng)

    def _step(self, batch: np.ndarray) -> None:
        """One iteration: the scheduled lr, forward, backward, the optimizer's step."""
        if self.lr_schedule is not None:
            self.optimizer.lr = self._scheduled_lr(self.iteration)
        loss = float(self.g.forward({self.data_input: self.X_train[batch], self.label_input: self.y_train[batch]}))
        grads = self.g.backward()
        if self.monitor is not None:
            self.monitor.record()
        self.optimizer.step(grads)
        if self.monitor is not None:
            self.monitor.record_update()
        self.loss_history.append(loss)
        self.iteration += 1

    def _epoch_loss(self, first: int) -> float:
        """The mean loss per image over the epoch whose first iteration was ``first`` (batches weighted by size)."""
        total, N = 0.0, len(self.y_train)
        for index, loss in enumerate(self.loss_history[first:]):
            total += loss * min(self.batch_size, N - index * self.batch_size)
        return total / N

    def _keep_if_best(self) -> None:
        if self.val_acc_history[-1] > self.best_val_acc:
            self.best_val_acc = self.val_acc_history[-1]
            self.best_params = {name: value.copy() for name, value in self.g.params.items()}
            self.best_state = {node.name: {key: np.copy(value) for key, value in node.gate.state_dict().items()}
                               for node in self._stateful_nodes()}

    def _scheduled_lr(self, iteration: int) -> float:
        lr = self.lr_schedule(iteration)
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating)) or not (
                math.isfinite(lr) and lr >= 0):
            raise SolverError(f"Solver: lr_schedule({iteration}) gave {lr!r}; it must give a finite number >= 0")
        return float(lr)

    # ------------------------------------------------------------------ evaluation

    def check_accuracy(self, X: Any, y: Any, num_samples: int | None = None, batch_size: int | None = None) -> float:
        """The fraction of images whose highest score is their label, in evaluation mode.

        Parameters
        ----------
        X : array (N, ...)
            Images, as the graph's data input takes them.
        y : array (N,)
            Integer labels.
        num_samples : int or None
            Measure on a random sample of this many images (without
            replacement, from the solver's sampling generator); None: all.
        batch_size : int or None
            Images per forward pass; the solver's ``eval_batch_size`` by default.

        Returns
        -------
        float
            Correct predictions / images measured.

        Raises
        ------
        SolverError
            If X and y do not have one label per image, or are empty.
        """
        X, y = self._pair(X, y, "X", "y")
        num_samples = _count("num_samples", num_samples, minimum=1, optional=True)
        batch_size = _count("batch_size", batch_size or self.eval_batch_size, minimum=1)
        if num_samples is not None and len(y) > num_samples:
            chosen = self.sample_rng.choice(len(y), num_samples, replace=False)
            X, y = X[chosen], y[chosen]
        was_training = self.g.training
        self.g.eval()
        try:
            correct = 0
            for start in range(0, len(y), batch_size):
                labels = y[start:start + batch_size]
                self.g.forward({self.data_input: X[start:start + batch_size], self.label_input: labels})
                correct += int(np.sum(np.argmax(self.g.value(self.scores), axis=1) == labels))
        finally:
            if was_training:
                self.g.train()
        return correct / len(y)

    # ------------------------------------------------------------------ plotting

    def plot(self, path: str | os.PathLike | None = None, title: str | None = None) -> Any:
        """The loss per iteration and the accuracies per epoch as a matplotlib Figure; saved to ``path`` if given.

        Left: the training loss of every iteration and each epoch's mean (log
        scale).  Right: the training and validation accuracy per epoch.

        Parameters
        ----------
        path : str or PathLike, optional
            A .png, .svg or .pdf file to write.
        title : str, optional

        Returns
        -------
        matplotlib.figure.Figure
            Not attached to pyplot (no global state): show it in a notebook
            with ``display(figure)``, or save it.

        Raises
        ------
        SolverError
            If nothing has been trained yet.
        ModuleNotFoundError
            Without matplotlib (``pip install gategraph[draw]``).
        """
        from graph.monitor import new_figure

        if not self.loss_history:
            raise SolverError("Solver.plot: nothing to plot yet: call train() first")
        figure = new_figure(figsize=(10, 4))
        loss_axes, accuracy_axes = figure.subplots(1, 2)
        loss_axes.plot(range(1, len(self.loss_history) + 1), self.loss_history, alpha=0.3, label="per iteration")
        ends = [self.iterations_per_epoch * epoch for epoch in range(1, len(self.epoch_loss_history) + 1)]
        loss_axes.plot(ends, self.epoch_loss_history, "o-", label="epoch mean")
        loss_axes.set_xlabel("iteration")
        loss_axes.set_ylabel("training loss")
        if min(self.loss_history) > 0:
            loss_axes.set_yscale("log")
        loss_axes.legend()
        epochs = range(1, len(self.val_acc_history) + 1)
        accuracy_axes.plot(epochs, self.train_acc_history, "o-", label="train")
        accuracy_axes.plot(epochs, self.val_acc_history, "o-", label="validation")
        accuracy_axes.set_xlabel("epoch")
        accuracy_axes.set_ylabel("accuracy")
        accuracy_axes.legend()
        if title:
            figure.suptitle(title)
        if path is not None:
            figure.savefig(path, dpi=100)
        return figure

    # ------------------------------------------------------------------ checkpoints

    def _stateful_nodes(self) -> list[Node]:
        return [node for node in self.g.nodes if callable(getattr(node.gate, "state_dict", None))
                and node.gate.state_dict()]

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        """Parameters, gate states (in the graph's dtype) and the best ones so far, named for the checkpoint."""
        states = {f"state:{node.name}.{key}": np.array(value, dtype=self.g.dtype)
                  for node in self._stateful_nodes() for key, value in node.gate.state_dict().items()}
        best_params = self.best_params or self.g.params  # before the first epoch: a placeholder, not read back
        best_states = {f"state:{node}.{key}": np.array(value, dtype=self.g.dtype)
                       for node, state in self.best_state.items() for key, value in state.items()} or states
        return {**self.g.params, **states, **{f"best:{name}": value for name, value in best_params.items()},
                **{f"best:{name}": value for name, value in best_states.items()}}

    def _generators(self, shuffle: np.random.Generator) -> dict[str, np.random.Generator]:
        gates = {f"gate:{node.name}": node.gate.rng for node in self.g.nodes
                 if isinstance(getattr(node.gate, "rng", None), np.random.Generator)}
        return {"shuffle": shuffle, "sample": self.sample_rng, **gates}

    def _histories(self) -> dict[str, list[float]]:
        return {"loss": self.loss_history, "epoch_loss": self.epoch_loss_history,
                "train_acc": self.train_acc_history, "val_acc": self.val_acc_history,
                "epoch_seconds": self.epoch_seconds, "epoch_cpu_seconds": self.epoch_cpu_seconds,
                "time_in_epoch": list(self._time_in_epoch)}

    def _save(self, shuffle: np.random.Generator) -> None:
        """Write the checkpoint; ``shuffle`` is the shuffling generator as the epoch in progress started."""
        scheduled, self.optimizer.lr = self.optimizer.lr, self.base_lr  # a fresh optimizer has the first lr
        try:
            save_checkpoint(
                self.checkpoint, params=self._checkpoint_arrays(), optimizer=self.optimizer,
                rngs=self._generators(shuffle), progress={"epoch": self.epoch, "batch": self.batch,
                                                          "iteration": self.iteration},
                histories=self._histories(), script=self.name, settings=self.settings,
            )
        finally:
            self.optimizer.lr = scheduled

    def _resume(self, path: str) -> None:
        """Restore the checkpoint at ``path`` into the graph, optimizer, generators and histories; all or nothing."""
        arrays = {name: value.copy() for name, value in self._checkpoint_arrays().items()}
        generators = self._generators(self.rng)
        # load_checkpoint restores the optimizer and generators in place (the arrays into the copies above):
        # keep them, to put them back if the progress it holds does not add up.
        before = self.optimizer.state_dict(), {name: rng.bit_generator.state for name, rng in generators.items()}
        done = load_checkpoint(path, script=self.name, params=arrays, optimizer=self.optimizer, rngs=generators,
                               settings=self.settings)
        epoch, batch, iteration = (done.progress.get(key) for key in ("epoch", "batch", "iteration"))
        histories = done.histories
        problem = None
        if None in (epoch, batch, iteration) or sorted(histories) != sorted((*HISTORIES, "time_in_epoch")):
            problem = "it was not written by a Solver"
        elif epoch > self.epochs or (epoch == self.epochs and batch > 0):
            problem = f"it is at epoch {epoch}, beyond epochs={self.epochs}"
        elif not (0 <= batch < self.iterations_per_epoch and iteration == epoch * self.iterations_per_epoch + batch
                  and self.optimizer.steps == iteration and len(histories["loss"]) == iteration
                  and len(histories["time_in_epoch"]) == 2
                  and all(len(histories[name]) == epoch for name in HISTORIES[1:])):
            problem = (f"it is damaged: its epoch {epoch}, batch {batch}, iteration {iteration}, the optimizer's "
                       f"{self.optimizer.steps} steps and its histories do not fit together "
                       f"({self.iterations_per_epoch} batches per epoch)")
        if problem is not None:
            self.optimizer.load_state_dict(before[0])
            for name, rng in generators.items():
                rng.bit_generator.state = before[1][name]
            raise CheckpointError(f"checkpoint {path!r} does not fit this run: {problem}. Nothing was changed.")
        for name in self.g.params:
            np.copyto(self.g.params[name], arrays[name])
        for node in self._stateful_nodes():
            node.gate.load_state_dict({key: arrays[f"state:{node.name}.{key}"] for key in node.gate.state_dict()})
        self.epoch, self.batch, self.iteration = epoch, batch, iteration
        self.loss_history, self.epoch_loss_history = histories["loss"], histories["epoch_loss"]
        self.train_acc_history, self.val_acc_history = histories["train_acc"], histories["val_acc"]
        self.epoch_seconds, self.epoch_cpu_seconds = histories["epoch_seconds"], histories["epoch_cpu_seconds"]
        self._time_in_epoch = tuple(histories["time_in_epoch"])
        if self.val_acc_history:
            self.best_val_acc = max(self.val_acc_history)
            self.best_params = {name: arrays[f"best:{name}"] for name in self.g.params}
            self.best_state = {node.name: {key: arrays[f"best:state:{node.name}.{key}"]
                                           for key in node.gate.state_dict()} for node in self._stateful_nodes()}

    # ------------------------------------------------------------------ checks

    def _input_name(self, name: Any) -> str:
        inputs = [node.name for node in self.g.nodes if node.kind == INPUT]
        if name not in inputs:
            raise SolverError(f"Solver: the graph has no input {name!r}; its inputs are {', '.join(inputs) or 'none'}")
        return name

    def _data_pair(self, data: Any, part: str) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(data, Mapping):
            raise SolverTypeError(f"Solver: data must be a dict with {', '.join(DATA_KEYS)}, got {type(data).__name__}")
        missing = [key for key in DATA_KEYS if key not in data]
        if missing:
            raise SolverError(f"Solver: data lacks {', '.join(missing)} (it needs {', '.join(DATA_KEYS)})")
        return self._pair(data[f"x_{part}"], data[f"y_{part}"], f"x_{part}", f"y_{part}")

    def _pair(self, X: Any, y: Any, x_name: str, y_name: str) -> tuple[np.ndarray, np.ndarray]:
        """(X, y) as arrays, or SolverError unless X (N, ...) holds numbers and y (N,) whole-number labels, N >= 1."""
        X, y = np.asarray(X), np.asarray(y)
        if X.dtype.kind not in "biuf" or X.ndim < 1:
            raise SolverError(f"Solver: {x_name} must be an array of numbers (N, ...), got {X.dtype} {X.shape}")
        if y.dtype.kind not in "iu" or y.shape != X.shape[:1]:
            raise SolverError(
                f"Solver: {y_name} must hold one integer label per image of {x_name} {X.shape}: "
                f"shape ({X.shape[0]},), got {y.dtype} {y.shape}"
            )
        if len(y) == 0:
            raise SolverError(f"Solver: {x_name} is empty")
        return X, y

    def _check_fit(self) -> None:
        """One forward pass on two images of each set, leaving no trace: data that fit the graph, labels the scores."""
        if self.X_val.shape[1:] != self.X_train.shape[1:]:
            raise SolverError(
                f"Solver: x_val images are {self.X_val.shape[1:]} but x_train images {self.X_train.shape[1:]}"
            )
        with self.g.last_pass_kept():
            was_training = self.g.training
            self.g.eval()
            try:
                for part, X, y in (("train", self.X_train, self.y_train), ("val", self.X_val, self.y_val)):
                    try:
                        loss = self.g.forward({self.data_input: X[:2], self.label_input: y[:2]})
                    except GraphError as error:
                        raise SolverError(f"Solver: x_{part} {X.shape} does not fit the graph: {error}") from None
                    scores = np.shape(self.g.value(self.scores))
                    if np.size(loss) != 1 or len(scores) != 2 or scores[0] != len(y[:2]):
                        raise SolverError(
                            f"Solver: the graph's output must be the loss (one number) and scores "
                            f"{self.scores.name!r} (N, C); got {np.shape(loss)} and {scores}"
                        )
                    if y.min() < 0 or y.max() >= scores[1]:
                        raise SolverError(
                            f"Solver: y_{part} must hold labels 0 to {scores[1] - 1} (the scores have "
                            f"{scores[1]} classes), found {y.min()}..{y.max()}"
                        )
            finally:
                if was_training:
                    self.g.train()

    def _progress_bar(self) -> Any:
        if not self.progress or self.epoch >= self.epochs:
            return None
        try:
            from tqdm import tqdm
        except ImportError:
            return None
        return tqdm(total=self.epochs * self.iterations_per_epoch, initial=self.iteration, desc="training",
                    unit="batch", file=sys.stderr, mininterval=1.0)

    def _say(self, line: str, bar: Any) -> None:
        """A verbose line; through the bar when there is one, so the bar stays whole."""
        if bar is not None:
            bar.write(line, file=sys.stdout)
        else:
            print(line)


def _count(name: str, value: Any, minimum: int, optional: bool = False) -> int | None:
    """``value`` as an int >= ``minimum`` (None allowed if ``optional``), or SolverError/SolverTypeError."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SolverTypeError(f"Solver: {name} must be a whole number >= {minimum}, got {value!r}")
    if value < minimum:
        raise SolverError(f"Solver: {name} must be a whole number >= {minimum}, got {value}")
    return int(value)


def _fingerprint(*arrays: np.ndarray) -> str:
    """A SHA-256 of the arrays' dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(np.ascontiguousarray(array))  # no copy when contiguous: hashlib reads the buffer
    return digest.hexdigest()


def _copy_generator(rng: np.random.Generator) -> np.random.Generator:
    """A new generator in ``rng``'s state: drawing from either leaves the other as it was."""
    copy = np.random.Generator(type(rng.bit_generator)())
    copy.bit_generator.state = rng.bit_generator.state
    return copy
