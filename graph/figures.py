"""Figures the training scripts save: loss curves, and a transformer's attention weights as heatmaps.

Both return a matplotlib Figure not attached to pyplot (no global state), so
a notebook can show them as well (``display(figure)``).  They need matplotlib
(``pip install gategraph[draw]``).
"""

from __future__ import annotations

from typing import Any, Sequence

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
