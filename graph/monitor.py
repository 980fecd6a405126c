"""Watch a network learn: the course's "babysitting the learning process" in numbers and plots.

A :class:`TrainingMonitor` records, over training, what tells whether a
network is healthy:

* per layer, the distribution of the **activations** (the values of nodes you
  name, read with ``g.value`` after forward): do they keep their size from one
  layer to the next, or collapse towards zero, or saturate?
* per layer, the distribution of the **gradients** flowing back into those
  nodes (``g.grad`` after backward): do they vanish or explode with depth?
* per parameter, the ratio of the **update** to the parameter,
  ``||update|| / ||parameter||`` (Frobenius norms of the whole array, as in the
  CS231n notes: ``np.linalg.norm(update.ravel()) / np.linalg.norm(W.ravel())``).
  The heuristic is a ratio around 1e-3: much lower and the learning rate is
  probably too low, much higher and it is probably too high.

It only reads values, gradients and parameters and copies what it keeps, so
training gives the same numbers to the last bit with or without it::

    monitor = TrainingMonitor(g, ["fc1.act", "fc2"])
    for X_batch, y_batch in batches:
        g.forward({"x": X_batch, "y": y_batch})
        grads = g.backward()
        monitor.record()           # activations and gradients; remembers the parameters
        optimizer.step(grads)
        monitor.record_update()    # how far this step moved each parameter
    monitor.figure().savefig("stats.png")

Plotting needs matplotlib (``pip install gategraph[draw]``) and uses the
Figure API only, never pyplot's global state.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from graph.errors import GraphError

#: The percentiles recorded for every distribution.
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
#: At most this many elements of an array are kept to draw its histogram.
SAMPLE_SIZE = 4000
#: The course's rule of thumb for ||update|| / ||parameter||.
GOOD_UPDATE_RATIO = 1e-3


class MonitorError(GraphError, ValueError):
    """A TrainingMonitor is used out of order (record_update before record) or asked for a missing node."""


class Distribution:
    """Summary of the elements of one array at one step.

    Attributes
    ----------
    mean, std : float
    percentiles : dict of int to float
        Keys are :data:`PERCENTILES` (1, 5, 25, 50, 75, 95, 99).
    zero_fraction : float
        The fraction of elements exactly zero (dead ReLU units, for instance).
    sample : numpy.ndarray
        Up to :data:`SAMPLE_SIZE` elements (float64, a copy), for histograms.
    """

    __slots__ = ("mean", "std", "percentiles", "zero_fraction", "sample")

    def __init__(self, array: Any, rng: np.random.Generator):
        flat = np.asarray(array, dtype=np.float64).ravel()
        if flat.size == 0:
            raise MonitorError("cannot summarize an empty array")
        self.mean = float(flat.mean())
        self.std = float(flat.std())
        self.percentiles = dict(zip(PERCENTILES, (float(v) for v in np.percentile(flat, PERCENTILES))))
        self.zero_fraction = float(np.count_nonzero(flat == 0.0)) / flat.size
        if flat.size > SAMPLE_SIZE:
            flat = flat[rng.choice(flat.size, SAMPLE_SIZE, replace=False)]
        self.sample = flat.copy()

    def __repr__(self) -> str:
        return f"Distribution(mean={self.mean:.3g}, std={self.std:.3g}, zeros={self.zero_fraction:.0%})"


class TrainingMonitor:
    """Record activations, gradients and update ratios of a graph over training, and plot them.

    Parameters
    ----------
    g : ComputationalGraph
    layers : sequence of Node or str
        The nodes to watch, in order from input to output: usually each
        layer's activation (``"fc1.act"``) and the scores.  Their values are
        recorded after forward; their gradients too, for those that require one.
    params : sequence of str, optional
        Parameter names whose update ratio is recorded; all of ``g.params``
        by default (in their order).
    seed : int
        Seeds the choice of the elements kept for histograms (never the
        training: the monitor draws from its own generator).

    Attributes
    ----------
    steps : list of int
        The step number of each :meth:`record` call (0, 1, 2, ... unless given).
    activations, gradients : dict of layer name to list of Distribution
        One entry per recorded step (``gradients`` only for layers that
        require a gradient).
    update_steps : list of int
        The step number of each :meth:`record_update` call.
    update_ratios : dict of parameter name to list of float
        ``||p_after - p_before|| / ||p_before||`` per recorded update; NaN
        while the parameter is all zeros (a bias before its first step).
    """

    def __init__(self, g: Any, layers: Sequence[Any], params: Sequence[str] | None = None, seed: int = 0):
        if isinstance(layers, str) or not len(layers):
            raise MonitorError("TrainingMonitor needs a list of nodes or node names to watch, e.g. ['fc1.act']")
        self.graph = g
        self.layers = [g.node(layer).name for layer in layers]  # g.node names unknown nodes
        unknown = [name for name in (params or []) if name not in g.params]
        if unknown:
            raise MonitorError(
                f"TrainingMonitor: {', '.join(map(repr, unknown))} not among the graph's parameters "
                f"({', '.join(g.params) or 'none'})"
            )
        self.params = list(params) if params is not None else list(g.params)
        self.steps: list[int] = []
        self.activations: dict[str, list[Distribution]] = {name: [] for name in self.layers}
        self.gradients: dict[str, list[Distribution]] = {
            name: [] for name in self.layers if g.node(name).requires_grad
        }
        self.update_steps: list[int] = []
        self.update_ratios: dict[str, list[float]] = {name: [] for name in self.params}
        self._before: dict[str, np.ndarray] | None = None
        self._step = 0
        self._rng = np.random.default_rng(seed)

    def record(self, step: int | None = None) -> None:
        """Record the watched activations and gradients of the last pass, and remember the parameters.

        Call after ``g.backward()`` and before the optimizer's step (after a
        forward alone, only activations are recorded).

        Raises
        ------
        BackwardError
            If no forward pass has run yet.
        """
        g = self.graph
        for name in self.layers:  # read everything first: a failure records nothing
            g.value(name)
        has_grads = g.has_backward
        step = len(self.steps) if step is None else int(step)
        self.steps.append(step)
        for name in self.layers:
            self.activations[name].append(Distribution(g.value(name), self._rng))
        for name, history in self.gradients.items():
            if has_grads:
                history.append(Distribution(g.grad(name), self._rng))
        self._before = {name: np.array(g.params[name], dtype=np.float64, copy=True) for name in self.params}
        self._step = step

    def record_update(self) -> dict[str, float]:
        """Record ``||update|| / ||parameter||`` of each parameter since the last :meth:`record`.

        Call right after the optimizer's step.  Returns the ratios of this step.

        Raises
        ------
        MonitorError
            If :meth:`record` has not been called since the last update.
        """
        if self._before is None:
            raise MonitorError("record_update() measures the step since record(): call record() before the step")
        ratios = {}
        for name, before in self._before.items():
            after = np.asarray(self.graph.params[name], dtype=np.float64)
            scale = float(np.linalg.norm(before.ravel()))
            change = float(np.linalg.norm((after - before).ravel()))
            ratios[name] = change / scale if scale > 0.0 else float("nan")
            self.update_ratios[name].append(ratios[name])
        self.update_steps.append(self._step)
        self._before = None
        return ratios

    def std_per_layer(self, kind: str = "activations", step: int = -1) -> list[float]:
        """The standard deviation of each watched layer at one recorded step (the last by default)."""
        history = self._history(kind)
        return [history[name][step].std for name in history]

    def figure(self, title: str | None = None) -> Any:
        """The recorded statistics as a matplotlib Figure (not attached to pyplot).

        Top row, over the recorded steps: the 5th to 95th percentile band and
        the median of the activations of each layer; the standard deviation
        of the gradients of each layer (log scale); the update ratio of each
        parameter (log scale, with the 1e-3 rule of thumb dashed).  Bottom
        row, at the last recorded step: histograms of the activations and of
        the gradients of each layer, and their standard deviation layer by
        layer.

        Raises
        ------
        MonitorError
            If nothing was recorded.
        ModuleNotFoundError
            Without matplotlib (``pip install gategraph[draw]``).
        """
        if not self.steps:
            raise MonitorError("nothing recorded yet: call record() after each backward pass")
        figure = new_figure(figsize=(15, 8.5), layout="constrained")
        (band_axes, grad_axes, ratio_axes), (act_hist, grad_hist, std_axes) = figure.subplots(2, 3)
        colors = _layer_colors(len(self.layers))

        for color, name in zip(colors, self.layers):
            history = self.activations[name]
            low = [d.percentiles[5] for d in history]
            high = [d.percentiles[95] for d in history]
            median = [d.percentiles[50] for d in history]
            band_axes.fill_between(self.steps, low, high, color=color, alpha=0.2, linewidth=0)
            band_axes.plot(self.steps, median, color=color, label=name)
        band_axes.set_title("activations: median, 5th-95th percentile")
        band_axes.set_xlabel("step")
        band_axes.legend(fontsize=8)

        for color, name in zip(colors, self.layers):
            if name in self.gradients and self.gradients[name]:
                grad_axes.plot(self.steps[: len(self.gradients[name])],
                               [max(d.std, 1e-300) for d in self.gradients[name]], color=color, label=name)
        grad_axes.set_yscale("log")
        grad_axes.set_title("gradients: standard deviation")
        grad_axes.set_xlabel("step")
        if self.gradients:
            grad_axes.legend(fontsize=8)

        if self.update_steps:
            for color, name in zip(_layer_colors(len(self.params)), self.params):
                ratios = np.asarray(self.update_ratios[name], dtype=np.float64)
                ratios[ratios <= 0.0] = np.nan  # a frozen parameter: nothing to draw on a log scale
                ratio_axes.plot(self.update_steps, ratios, color=color, label=name, linewidth=1)
            ratio_axes.axhline(GOOD_UPDATE_RATIO, color="gray", linestyle="--", linewidth=1)
            ratio_axes.set_yscale("log")
            ratio_axes.legend(fontsize=8)
        else:
            ratio_axes.text(0.5, 0.5, "no update recorded\n(call record_update() after each step)",
                            ha="center", va="center", transform=ratio_axes.transAxes, color="gray")
        ratio_axes.set_title("||update|| / ||parameter||  (rule of thumb ~1e-3)")
        ratio_axes.set_xlabel("step")

        step = self.steps[-1]
        for axes, kind in ((act_hist, "activations"), (grad_hist, "gradients")):
            history = self._history(kind)
            for color, name in zip(colors, self.layers):
                if name in history and history[name]:
                    last = history[name][-1]
                    label = f"{name} ({last.zero_fraction:.0%} zeros)" if last.zero_fraction else name
                    axes.hist(last.sample, bins=60, histtype="step", color=color, label=label)
            axes.set_yscale("log")  # a spike at zero (ReLU) would hide the rest on a linear scale
            axes.set_title(f"{kind} at step {step}")
            axes.set_ylabel("count in a sample")
            if history:
                axes.legend(fontsize=8)

        positions = range(1, len(self.layers) + 1)
        std_axes.plot(positions, [max(v, 1e-300) for v in self.std_per_layer("activations")], "o-",
                      label="activations")
        if self.gradients and all(self.gradients.values()):
            std_axes.plot([self.layers.index(name) + 1 for name in self.gradients],
                          [max(v, 1e-300) for v in self.std_per_layer("gradients")], "s--", label="gradients")
        std_axes.set_yscale("log")
        std_axes.set_xticks(list(positions), self.layers, rotation=30, ha="right", fontsize=8)
        std_axes.set_title(f"standard deviation per layer at step {step}")
        std_axes.legend(fontsize=8)
        if title:
            figure.suptitle(title)
        return figure

    def plot(self, path: str, title: str | None = None) -> str:
        """Save :meth:`figure` to ``path`` (.png, .svg, .pdf); return the path."""
        self.figure(title).savefig(path, dpi=100)
        return path

    def _history(self, kind: str) -> dict[str, list[Distribution]]:
        if kind == "activations":
            return self.activations
        if kind == "gradients":
            return self.gradients
        raise MonitorError(f"kind must be 'activations' or 'gradients', got {kind!r}")


def new_figure(**options: Any) -> Any:
    """A matplotlib Figure on an Agg canvas, not attached to pyplot (``options`` go to Figure).

    Raises
    ------
    ModuleNotFoundError
        Without matplotlib, naming the extra to install (``pip install gategraph[draw]``).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError("plotting needs matplotlib: pip install 'gategraph[draw]'") from error
    figure = Figure(**options)
    FigureCanvasAgg(figure)
    return figure


def _layer_colors(count: int) -> list:
    """``count`` colors from light to dark along viridis, so depth reads as a gradient."""
    from matplotlib import colormaps

    return [colormaps["viridis"](0.9 * index / max(count - 1, 1)) for index in range(count)]
