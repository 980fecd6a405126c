"""Convolutional layers: convolution, pooling, batch norm, dropout and flatten, so a LeNet is a few lines.

>>> import numpy as np
>>> from gates import ReLUGate, SoftmaxCrossEntropyGate
>>> from graph import ComputationalGraph
>>> from graph.layers import conv2d, dense, flatten, max_pool2d
>>> g = ComputationalGraph()
>>> rng = np.random.default_rng(0)
>>> x = g.add_input("x", requires_grad=False)                       # (N, 1, 28, 28)
>>> y = g.add_input("y", requires_grad=False)
>>> h = max_pool2d(g, g.add_gate(ReLUGate(), conv2d(g, x, 1, 8, 3, "conv1", rng, padding=1)))
>>> h = max_pool2d(g, g.add_gate(ReLUGate(), conv2d(g, h, 8, 16, 3, "conv2", rng, padding=1)))
>>> scores = dense(g, flatten(g, h), 16 * 7 * 7, 10, "fc", rng)
>>> loss = g.add_gate(SoftmaxCrossEntropyGate(), scores, y, name="loss")
>>> sorted(g.params)
['conv1.b', 'conv1.w', 'conv2.b', 'conv2.w', 'fc.W', 'fc.b']
"""

from __future__ import annotations

import numpy as np

from gates import AvgPool2DGate, BatchNormGate, Conv2DGate, DropoutGate, FlattenGate, MaxPool2DGate
from graph.computational_graph import ComputationalGraph
from graph.layers.building import check_rng, check_sizes, one_step
from graph.node import Node


@one_step
def conv2d(
    g: ComputationalGraph,
    x: Node,
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int],
    name: str,
    rng: np.random.Generator,
    stride: int = 1,
    padding: int = 0,
) -> Node:
    """Add a convolution layer to ``g`` (a :class:`~gates.Conv2DGate`); return its output node.

    Parameters
    ----------
    g : ComputationalGraph
    x : Node
        The input, (N, C, H, W) with C = in_channels, for any N, H, W.
    in_channels, out_channels : int
        C and F.
    kernel_size : int or (HH, WW)
    name : str
        Adds ``{name}.w``: (F, C, HH, WW), He-initialized, N(0, 2 / (C HH WW)),
        and ``{name}.b``: (F,), zeros; the output node is named ``name``.
    rng : numpy.random.Generator
        Draws w.
    stride, padding : int
        As for Conv2DGate.

    Returns
    -------
    Node: (N, F, H', W'), H' = (H + 2 padding - HH) // stride + 1.
    """
    check_rng(rng)
    HH, WW = (kernel_size, kernel_size) if np.ndim(kernel_size) == 0 else tuple(kernel_size)
    check_sizes("conv2d", name, in_channels=in_channels, out_channels=out_channels, kernel_height=HH, kernel_width=WW)
    gate = Conv2DGate(stride, padding)  # checks stride and padding before anything is added
    fan_in = in_channels * HH * WW
    w = g.add_param(f"{name}.w", rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(out_channels, in_channels, HH, WW)))
    b = g.add_param(f"{name}.b", np.zeros(out_channels))
    return g.add_gate(gate, x, w, b, name=name)


@one_step
def max_pool2d(
    g: ComputationalGraph, x: Node, size: int = 2, stride: int | None = None, name: str | None = None
) -> Node:
    """Add a :class:`~gates.MaxPool2DGate` (size x size windows, stride defaults to size); return its output."""
    return g.add_gate(MaxPool2DGate(size, stride), x, name=name)


@one_step
def avg_pool2d(
    g: ComputationalGraph, x: Node, size: int = 2, stride: int | None = None, name: str | None = None
) -> Node:
    """Add an :class:`~gates.AvgPool2DGate` (size x size windows, stride defaults to size); return its output."""
    return g.add_gate(AvgPool2DGate(size, stride), x, name=name)


@one_step
def batch_norm(
    g: ComputationalGraph, x: Node, num_features: int, name: str, momentum: float = 0.9, eps: float = 1e-5
) -> Node:
    """Add batch normalization (a :class:`~gates.BatchNormGate`); return its output node.

    Parameters
    ----------
    x : Node
        (N, D) with D = num_features, or (N, C, H, W) with C = num_features
        (normalized per channel).
    name : str
        Adds ``{name}.gamma`` (ones) and ``{name}.beta`` (zeros), both
        (num_features,); the output node is named ``name``.  The running
        averages live in the gate (``g.node(name).gate.state_dict()``).
    momentum, eps : float
        As for BatchNormGate.
    """
    check_sizes("batch_norm", name, num_features=num_features)
    gate = BatchNormGate(momentum, eps, num_features=num_features)
    gamma = g.add_param(f"{name}.gamma", np.ones(num_features))
    beta = g.add_param(f"{name}.beta", np.zeros(num_features))
    return g.add_gate(gate, x, gamma, beta, name=name)


@one_step
def dropout(g: ComputationalGraph, x: Node, p: float, rng: np.random.Generator, name: str | None = None) -> Node:
    """Add inverted dropout (a :class:`~gates.DropoutGate`) dropping with probability p in training; return its output.

    The gate gets its own Generator, seeded from ``rng``: two dropout layers
    draw different masks, and the same ``rng`` seed repeats them all.
    """
    check_rng(rng)
    own = np.random.default_rng(rng.integers(2**63))
    return g.add_gate(DropoutGate(p, own), x, name=name)


@one_step
def flatten(g: ComputationalGraph, x: Node, name: str | None = None) -> Node:
    """Add a :class:`~gates.FlattenGate`: (N, C, H, W) -> (N, C H W), for a dense layer after convolutions."""
    return g.add_gate(FlattenGate(), x, name=name)
