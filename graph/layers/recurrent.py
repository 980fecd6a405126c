"""Recurrent layers: a vanilla RNN and an LSTM, unrolled over a fixed number of time steps.

Recurrence is reuse.  An unrolled RNN is the same parameter nodes feeding
every time step::

    h_t = tanh(x_t @ Wx + h_{t-1} @ Wh + b)        t = 1..T

so ``Wh`` feeds T matrix products, and the graph adds up the T gradients
that come back to it, exactly as it adds gradients wherever a value
branches.  That sum is backpropagation through time; there is no special
recurrent engine.

>>> import numpy as np
>>> from graph import ComputationalGraph
>>> from graph.layers import rnn
>>> g = ComputationalGraph()
>>> x = g.add_input("x", requires_grad=False)      # (N, T) character indices
>>> h0 = g.add_input("h0", requires_grad=False)    # (N, H)
>>> hs, h_last = rnn(g, x, h0, input_size=10, hidden_size=4, steps=3,
...                  rng=np.random.default_rng(0), indices=True)
>>> sorted(g.params), [h.name for h in hs]
(['rnn.Wh', 'rnn.Wx', 'rnn.b'], ['rnn.h1', 'rnn.h2', 'rnn.h3'])

With ``indices=True`` x holds class indices standing for one-hot vectors,
and ``onehot(x_t) @ Wx`` is row x_t of Wx: the rows of every step come from
one lookup (:class:`gates.EmbeddingGate`) before the recurrence, and each
step takes its own with a :class:`gates.SliceGate` (a view).  Dense inputs
x: (N, T, D) are sliced per step and multiplied by Wx.  The pre-activation
is added up as ``(x_t @ Wx + h_{t-1} @ Wh) + b``, in the order of
min-char-rnn's ``np.dot(Wxh, x) + np.dot(Whh, h) + bh``, so that
``scripts/train_char_rnn.py`` repeats its numbers bit for bit.
"""

from __future__ import annotations

import numpy as np

from gates import (
    AddGate,
    EmbeddingGate,
    MatMulGate,
    MultiplyGate,
    SigmoidGate,
    SliceGate,
    TanhGate,
)
from graph.computational_graph import ComputationalGraph
from graph.layers.building import check_sizes, one_step
from graph.layers.dense import xavier_uniform
from graph.node import Node

NodeLike = Node | str


@one_step
def rnn(
    g: ComputationalGraph,
    x: NodeLike,
    h0: NodeLike,
    input_size: int,
    hidden_size: int,
    steps: int,
    rng: np.random.Generator,
    name: str = "rnn",
    indices: bool = False,
) -> tuple[list[Node], Node]:
    """Unroll a vanilla RNN, ``h_t = tanh(x_t @ Wx + h_{t-1} @ Wh + b)``, over ``steps`` time steps.

    Parameters
    ----------
    g : ComputationalGraph
    x : Node or name
        The sequence: (N, T, D) features, or with ``indices=True`` (N, T)
        class indices 0..D-1 (characters), T >= steps.
    h0 : Node or name
        The initial hidden state, (N, H); feed zeros to start afresh, or the
        last state of the previous chunk to carry it on.
    input_size, hidden_size : int
        D (the vocabulary size V with indices) and H.
    steps : int
        T, the number of time steps to unroll, >= 1.
    rng : numpy.random.Generator
        Draws Wx and Wh (:func:`~graph.layers.xavier_uniform`, for tanh);
        overwrite ``g.params`` to start from other values.
    name : str
        Adds parameters ``{name}.Wx``: (D, H), ``{name}.Wh``: (H, H) and
        ``{name}.b``: (1, H), zeros (a row: with one sequence, N = 1, its
        gradient at each step needs no summing over rows, which at
        char-rnn sizes costs a tenth of an iteration); the hidden states are named
        ``{name}.h1`` ... ``{name}.h{T}``.
    indices : bool
        x holds indices standing for one-hot vectors: ``x_t @ Wx`` becomes a
        row lookup (:class:`gates.EmbeddingGate`).

    Returns
    -------
    (hs, h_last): the T hidden states, each (N, H), and the last one
    (``hs[-1]``), to feed as the next chunk's ``h0``.
    """
    check_sizes("rnn", name, input_size=input_size, hidden_size=hidden_size, steps=steps)
    Wx = g.add_param(f"{name}.Wx", xavier_uniform(input_size, hidden_size, rng))
    Wh = g.add_param(f"{name}.Wh", xavier_uniform(hidden_size, hidden_size, rng))
    b = g.add_param(f"{name}.b", np.zeros((1, hidden_size)))
    step_inputs = _input_projections(g, x, Wx, steps, name, indices)
    hs, h = [], h0
    for t in range(1, steps + 1):
        a = _pre_activation(g, step_inputs[t - 1], h, Wh, b, name, t)
        h = g.add_gate(TanhGate(), a, name=f"{name}.h{t}")
        hs.append(h)
    return hs, h


@one_step
def lstm(
    g: ComputationalGraph,
    x: NodeLike,
    h0: NodeLike,
    c0: NodeLike,
    input_size: int,
    hidden_size: int,
    steps: int,
    rng: np.random.Generator,
    name: str = "lstm",
    indices: bool = False,
) -> tuple[list[Node], Node, Node]:
    """Unroll an LSTM over ``steps`` time steps, with the course's gate order i, f, o, g.

    At each step, with a = x_t @ Wx + h_{t-1} @ Wh + b of shape (N, 4H)::

        i = sigmoid(a[:, 0:H])      input gate
        f = sigmoid(a[:, H:2H])     forget gate
        o = sigmoid(a[:, 2H:3H])    output gate
        g = tanh(a[:, 3H:4H])       candidate
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)

    The four blocks are taken out of ``a`` with :class:`gates.SliceGate`;
    one sigmoid covers the first three.

    Parameters
    ----------
    g, x, h0, input_size, hidden_size, steps, rng, indices
        As for :func:`rnn`.
    c0 : Node or name
        The initial cell state, (N, H).
    name : str
        Adds ``{name}.Wx``: (D, 4H), ``{name}.Wh``: (H, 4H) and
        ``{name}.b``: (1, 4H), zeros (a row, as in :func:`rnn`); states ``{name}.h1``..., ``{name}.c1``...

    Returns
    -------
    (hs, h_last, c_last): the T hidden states (N, H), the last hidden state
    and the last cell state, to feed as the next chunk's ``h0`` and ``c0``.
    """
    check_sizes("lstm", name, input_size=input_size, hidden_size=hidden_size, steps=steps)
    H = hidden_size
    Wx = g.add_param(f"{name}.Wx", xavier_uniform(input_size, 4 * H, rng))
    Wh = g.add_param(f"{name}.Wh", xavier_uniform(H, 4 * H, rng))
    b = g.add_param(f"{name}.b", np.zeros((1, 4 * H)))
    step_inputs = _input_projections(g, x, Wx, steps, name, indices)
    hs, h, c = [], h0, c0
    for t in range(1, steps + 1):
        a = _pre_activation(g, step_inputs[t - 1], h, Wh, b, name, t)
        ifo = g.add_gate(SigmoidGate(), g.add_gate(SliceGate(slice(0, 3 * H)), a), name=f"{name}.ifo{t}")
        i = g.add_gate(SliceGate(slice(0, H)), ifo, name=f"{name}.i{t}")
        f = g.add_gate(SliceGate(slice(H, 2 * H)), ifo, name=f"{name}.f{t}")
        o = g.add_gate(SliceGate(slice(2 * H, 3 * H)), ifo, name=f"{name}.o{t}")
        candidate = g.add_gate(TanhGate(), g.add_gate(SliceGate(slice(3 * H, 4 * H)), a), name=f"{name}.g{t}")
        kept = g.add_gate(MultiplyGate(), f, c)
        written = g.add_gate(MultiplyGate(), i, candidate)
        c = g.add_gate(AddGate(), kept, written, name=f"{name}.c{t}")
        h = g.add_gate(MultiplyGate(), o, g.add_gate(TanhGate(), c), name=f"{name}.h{t}")
        hs.append(h)
    return hs, h, c


def _input_projections(g, x, Wx, steps, name, indices) -> list[Node]:
    """x_t @ Wx for t = 1..steps, each (N, H) (or (N, 4H)): the part of each step that needs no recurrence."""
    if indices:
        # Every step in one lookup, then a slice (a view) per step.
        projected = g.add_gate(EmbeddingGate(), x, Wx, name=f"{name}.xWx")
        return [g.add_gate(SliceGate(t, axis=1), projected, name=f"{name}.xWx{t + 1}") for t in range(steps)]
    projections = []
    for t in range(steps):
        x_t = g.add_gate(SliceGate(t, axis=1), x, name=f"{name}.x{t + 1}")
        projections.append(g.add_gate(MatMulGate(), x_t, Wx, name=f"{name}.xWx{t + 1}"))
    return projections


def _pre_activation(g, xWx, h, Wh, b, name, t) -> Node:
    """(x_t @ Wx + h_{t-1} @ Wh) + b, added in min-char-rnn's order so that its numbers repeat bit for bit."""
    hWh = g.add_gate(MatMulGate(), h, Wh, name=f"{name}.hWh{t}")
    return g.add_gate(AddGate(), g.add_gate(AddGate(), xWx, hWh), b, name=f"{name}.a{t}")
