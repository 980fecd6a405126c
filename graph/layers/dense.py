"""Dense layers and weight initialization, so an MLP is a few lines.

>>> import numpy as np
>>> from gates import SoftmaxCrossEntropyGate
>>> from graph import ComputationalGraph
>>> from graph.layers import mlp
>>> g = ComputationalGraph()
>>> x = g.add_input("x", requires_grad=False)
>>> y = g.add_input("y", requires_grad=False)
>>> scores = mlp(g, x, [64, 128, 10], rng=np.random.default_rng(0))
>>> loss = g.add_gate(SoftmaxCrossEntropyGate(), scores, y, name="loss")
>>> sorted(g.params)
['fc1.W', 'fc1.b', 'fc2.W', 'fc2.b']

A dense layer is nothing new: it is ``x @ W + b`` built from a MatMulGate and
an AddGate.  The bias b: (H,) is broadcast over the N rows of x @ W: (N, H),
and the graph sums its gradient back over them, so one graph serves batches
of any size.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from gates import AddGate, Gate, MatMulGate, ReLUGate
from graph.computational_graph import ComputationalGraph
from graph.errors import GraphBuildError
from graph.layers.building import check_rng, check_sizes, one_step
from graph.node import Node


def he_normal(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Weights (fan_in, fan_out) drawn from N(0, 2 / fan_in), for layers followed by ReLU.

    He et al. (2015): with this variance a ReLU layer keeps the size of its
    activations from shrinking or growing with depth.
    """
    check_rng(rng)
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))


def xavier_uniform(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Weights (fan_in, fan_out) drawn from U(-a, a), a = sqrt(6 / (fan_in + fan_out)), for tanh or sigmoid.

    Glorot and Bengio (2010): the variance a**2 / 3 = 2 / (fan_in + fan_out)
    balances the forward and the backward signal.
    """
    check_rng(rng)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


INITIALIZERS: dict[str, Callable[[int, int, np.random.Generator], np.ndarray]] = {
    "he": he_normal,
    "xavier": xavier_uniform,
}


@one_step
def dense(
    g: ComputationalGraph,
    x: Node,
    in_features: int,
    out_features: int,
    name: str,
    rng: np.random.Generator,
    init: str = "he",
) -> Node:
    """Add a fully connected layer ``x @ W + b`` to ``g``; return its output node.

    Parameters
    ----------
    g : ComputationalGraph
    x : Node
        The layer's input, (N, in_features) for any N (or (in_features,)).
    in_features, out_features : int
        D and H: the layer maps D features to H.
    name : str
        Adds parameters ``{name}.W``: (D, H), drawn by ``init``, and
        ``{name}.b``: (H,), zeros; the output node is named ``name``.
    rng : numpy.random.Generator
        Draws W, e.g. ``np.random.default_rng(0)``.
    init : {"he", "xavier"}
        :func:`he_normal` (for ReLU) or :func:`xavier_uniform` (for tanh, sigmoid).

    Returns
    -------
    Node: (N, out_features).

    Raises
    ------
    GraphBuildError
        For an unknown ``init`` or sizes that are not positive (a
        GraphBuildTypeError for sizes that are not whole numbers or an
        ``rng`` that is not a numpy Generator).  The graph is left as it was.
    """
    if init not in INITIALIZERS:
        raise GraphBuildError(f"dense {name!r}: unknown init {init!r}; choose one of {', '.join(INITIALIZERS)}")
    check_sizes("dense", name, in_features=in_features, out_features=out_features)
    W = g.add_param(f"{name}.W", INITIALIZERS[init](in_features, out_features, rng))
    b = g.add_param(f"{name}.b", np.zeros(out_features))
    xW = g.add_gate(MatMulGate(), x, W, name=f"{name}.xW")
    return g.add_gate(AddGate(), xW, b, name=name)


@one_step
def mlp(
    g: ComputationalGraph,
    x: Node,
    sizes: Sequence[int],
    rng: np.random.Generator,
    activation: Callable[[], Gate] = ReLUGate,
    init: str = "he",
    name: str = "fc",
) -> Node:
    """A multilayer perceptron: dense layers with ``activation`` between them, none after the last.

    Parameters
    ----------
    g : ComputationalGraph
    x : Node
        The input, (N, sizes[0]).
    sizes : sequence of int
        Layer widths from input to output, e.g. ``[64, 128, 10]``: D, hidden
        sizes, C.  At least two.
    rng : numpy.random.Generator
    activation : gate class (or any callable returning a new gate)
        Called once per hidden layer, since each gate is used once.
    init : {"he", "xavier"}
    name : str
        Layers are named ``{name}1``, ``{name}2``, ..., their parameters
        ``{name}1.W``, ``{name}1.b``, ...; activations ``{name}1.act``, ...

    Returns
    -------
    Node: the scores (N, sizes[-1]), before any softmax.
    """
    if len(sizes) < 2:
        raise GraphBuildError(f"mlp needs at least an input and an output size, got sizes {list(sizes)}")
    out = x
    for layer, (D, H) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        out = dense(g, out, D, H, f"{name}{layer}", rng, init)
        if layer < len(sizes) - 1:
            out = g.add_gate(activation(), out, name=f"{name}{layer}.act")
    return out
