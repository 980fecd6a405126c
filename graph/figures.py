"""Figures the scripts save: loss curves, a transformer's attention weights, a deep net's layer histograms.

Both return a matplotlib Figure not attached to pyplot (no global state), so
a notebook can show them as well (``display(figure)``).  They need matplotlib
(``pip install gategraph[draw]``).
"""

from __future__ import annotations

from typing import Any, Collection, Sequence

import numpy as np

from graph.monitor import new_figure


def loss_curves(
    curves: Sequence[tuple[Sequence[float], Sequence[float], dict]],
    ylabel: str,
    path: str | None = None,
    title: str | None = None,
    log: bool = False,
) -> Any:
    """Curves against the iteration on one pair of axes, with a legend if any curve has a label.

    Parameters
    ----------
    curves : sequence of (x, y, style)
        Each curve's iterations and values, and the keywords for matplotlib's
        ``plot`` (``label``, ``color``, ``linestyle``, ``marker``...).
    ylabel : str
        What the values are.
    path : str, optional
        A .png, .svg or .pdf file to write (at 100 dpi).
    title : str, optional
    log : bool
        A logarithmic value axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    figure = new_figure(figsize=(6, 4))
    axes = figure.subplots()
    for x, y, style in curves:
        axes.plot(x, y, **style)
    axes.set_xlabel("iteration")
    axes.set_ylabel(ylabel)
    if log:
        axes.set_yscale("log")
    if title:
        axes.set_title(title)
    if any("label" in style for _, _, style in curves):
        axes.legend()
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure


def attention_map(weights: Sequence[np.ndarray], line: str, path: str | None = None) -> Any:
    """Every head's attention weights for ``line``: a grid of heatmaps, blocks down, heads across.

    Parameters
    ----------
    weights : sequence of numpy.ndarray
        One (heads, T, T) array per block, row i the weights query i gives
        the keys (a causal model's are zero above the diagonal).
    line : str
        The T characters the model read, labelling the axes.
    path : str, optional
        A .png, .svg or .pdf file to write (at 110 dpi).

    Returns
    -------
    matplotlib.figure.Figure
    """
    layers, heads = len(weights), len(weights[0])
    labels = [repr(char)[1:-1] for char in line]
    figure = new_figure(figsize=(2.6 * heads, 2.6 * layers))
    axes = figure.subplots(layers, heads, squeeze=False)
    for layer in range(layers):
        for head in range(heads):
            ax = axes[layer, head]
            ax.imshow(weights[layer][head], cmap="viridis", vmin=0, vmax=1)
            ax.set_title(f"block {layer + 1}, head {head + 1}", fontsize=8)
            ax.set_xticks(range(len(labels)), labels if layer == layers - 1 else [], fontsize=5)
            ax.set_yticks(range(len(labels)), labels if head == 0 else [], fontsize=5)
    figure.suptitle(f"attention weights (row: query position, column: key) for {line!r}", fontsize=9)
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=110)
    return figure


def layer_histograms(monitors: dict[str, Any], relu: Collection[str] = (), title: str | None = None) -> Any:
    """One row per monitor: the histogram of each layer's activations, then the std per layer.

    ``scripts/init_study.py``'s figure: the activations of a deep net after
    one forward pass, one row per initialization.

    Parameters
    ----------
    monitors : dict of str to graph.monitor.TrainingMonitor
        Each row's label and the monitor that recorded its pass (the same
        number of layers in each).
    relu : collection of str
        The labels of rows whose layers are ReLUs: half their units are
        exactly 0, counted apart (the spike would hide the rest) and the
        histogram spans [0, 3] instead of [-1, 1].
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    layers = len(next(iter(monitors.values())).layers)
    figure = new_figure(figsize=(1.6 * layers + 3.2, 2.3 * len(monitors)), layout="constrained")
    grid = figure.add_gridspec(len(monitors), layers + 1, width_ratios=[1.0] * layers + [1.9])
    for row, (label, monitor) in enumerate(monitors.items()):
        is_relu = label in relu
        for column, name in enumerate(monitor.layers):
            axes = figure.add_subplot(grid[row, column])
            distribution = monitor.activations[name][-1]
            sample = distribution.sample
            if is_relu:  # half the units are exactly 0: count them apart, or the spike hides the rest
                sample = sample[sample != 0.0]
                axes.text(0.95, 0.92, f"{distribution.zero_fraction:.0%} zeros", transform=axes.transAxes,
                          ha="right", va="top", fontsize=7)
            bins = np.linspace(0.0, 3.0, 41) if is_relu else np.linspace(-1.0, 1.0, 41)
            axes.hist(np.clip(sample, bins[0], bins[-1]), bins=bins, color=f"C{row}")
            axes.set_yticks([])
            axes.tick_params(labelsize=7)
            if row == 0:
                axes.set_title(f"layer {column + 1}", fontsize=9)
            if column == 0:
                axes.set_ylabel(label, fontsize=9)
        std_axes = figure.add_subplot(grid[row, layers])
        positions = range(1, layers + 1)
        std_axes.semilogy(positions, monitor.std_per_layer("activations"), "o-", color=f"C{row}",
                          label="activations")
        std_axes.semilogy(positions, monitor.std_per_layer("gradients"), "s--", color="gray",
                          label="gradients", markersize=4)
        std_axes.set_xticks(list(positions))
        std_axes.tick_params(labelsize=7)
        std_axes.set_ylim(1e-8, 1e4)
        if row == 0:
            std_axes.set_title("std per layer", fontsize=9)
            std_axes.legend(fontsize=7, loc="lower left")
    if title:
        figure.suptitle(title, fontsize=11)
    return figure
