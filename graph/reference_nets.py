"""The networks the scripts train and ``scripts/bench.py`` times, built from gates.

The lecture's two-layer net and the char-RNN are those of
:mod:`graph.reference_loops`: the scripts train them (``train_two_layer.py``,
``train_char_rnn.py``), the tests check their numbers against the
hand-written loops, and bench.py times them against those loops.  The LeNet
of ``train_cnn.py`` is timed against PyTorch's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gates import (
    AddGate, ConcatenateGate, MatMulGate, ReLUGate, SigmoidGate, SoftmaxCrossEntropyGate, SoftmaxCrossEntropySumGate,
    SquaredErrorGate,
)
from graph.computational_graph import ComputationalGraph
from graph.layers import batch_norm, conv2d, dense, dropout, flatten, lstm, max_pool2d, rnn
from graph.node import Node
from graph.text_data import draw_character


def build_two_layer_net(w1: np.ndarray, w2: np.ndarray, dtype=np.float64) -> ComputationalGraph:
    """The lecture's net as a graph, computing in ``dtype`` (float64 or float32).

    Parameters
    ----------
    w1 : numpy.ndarray
        Initial first-layer weights, (D_in, H), the parameter ``w1``.
    w2 : numpy.ndarray
        Initial second-layer weights, (H, D_out), the parameter ``w2``.
    dtype : numpy dtype
        What the graph computes in.

    Returns
    -------
    ComputationalGraph
        Inputs x (N, D_in) and y (N, D_out), both data (no gradient); output
        ``sum((sigmoid(x @ w1) @ w2 - y) ** 2)``, the lecture's loss.
    """
    g = ComputationalGraph(dtype=dtype)
    x = g.add_input("x", requires_grad=False)
    y = g.add_input("y", requires_grad=False)
    w1, w2 = g.add_param("w1", w1), g.add_param("w2", w2)
    h = g.add_gate(SigmoidGate(), x @ w1, name="h")
    y_pred = g.add_gate(MatMulGate(), h, w2, name="y_pred")
    # np.square(y_pred - y).sum() as one gate; ((y_pred - y) ** 2) through a
    # SumGate gives the same numbers with two gates more.
    g.add_gate(SquaredErrorGate(), y_pred, y, name="loss")
    return g


def build_cnn(g: ComputationalGraph, image_shape: tuple[int, int, int], filters: list[int], rng: np.random.Generator,
              use_batch_norm: bool = False, dropout_p: float = 0.0) -> Node:
    """Add conv-[bn]-ReLU-pool twice, [dropout], dense -> 10 and the loss to ``g``: train_cnn.py's LeNet.

    Each convolution is 3x3 with padding 1 (``conv{l}.W``, ``conv{l}.b``),
    followed by batch norm (``bn{l}``) if ``use_batch_norm``, ReLU and a 2x2
    max pool; then dropout with probability ``dropout_p`` if > 0, a dense
    layer ``fc`` to 10 scores and softmax cross-entropy.

    Parameters
    ----------
    g : ComputationalGraph
        The graph to add to; it gets the inputs x (N, C, H, W) images and
        y (N,) labels, both data (no gradient).
    image_shape : tuple of int
        (C, H, W), H and W divisible by 4.
    filters : list of int
        (F1, F2): the two convolutions' filters.
    rng : numpy.random.Generator
        Draws the initial weights (and dropout's masks).

    Returns
    -------
    Node
        The scores, (N, 10).
    """
    C, H, W = image_shape
    x = g.add_input("x", requires_grad=False)
    y = g.add_input("y", requires_grad=False)
    out, channels = x, C
    for layer, F in enumerate(filters, start=1):
        out = conv2d(g, out, channels, F, 3, f"conv{layer}", rng, padding=1)
        if use_batch_norm:
            out = batch_norm(g, out, F, f"bn{layer}")
        out = g.add_gate(ReLUGate(), out, name=f"relu{layer}")
        out = max_pool2d(g, out, 2, name=f"pool{layer}")
        channels, H, W = F, H // 2, W // 2
    out = flatten(g, out, name="flatten")
    if dropout_p > 0.0:
        out = dropout(g, out, dropout_p, rng, name="dropout")
    scores = dense(g, out, channels * H * W, 10, "fc", rng)
    g.add_gate(SoftmaxCrossEntropyGate(), scores, y, name="loss")
    return scores


@dataclass
class CharModel:
    """One unrolled graph: ``steps`` characters in, the chunk's summed loss (or the scores) out.

    Feeds: ``x`` (1, T) and ``targets`` (T,) character indices, ``h0`` (1, H)
    and for the LSTM ``c0`` (1, H).
    """

    graph: ComputationalGraph
    steps: int
    scores: Node
    h_last: Node
    c_last: Node | None = None


def build_char_model(cell: str, V: int, H: int, steps: int, with_loss: bool = True) -> CharModel:
    """The char-RNN (``cell="rnn"``) or LSTM (``"lstm"``) unrolled over ``steps`` characters of a V-letter vocabulary.

    Per step the scores are ``y_t = h_t @ out.W + out.b``: (1, V), as the
    reference computes ``Why h_t + by`` step by step; the T rows go through
    one SoftmaxCrossEntropySumGate, the sum over steps of -log p(target).
    Parameters (names in g.params): ``{cell}.Wx`` (V, H) or (V, 4H),
    ``{cell}.Wh``, ``{cell}.b`` (1, H), ``out.W`` (H, V), ``out.b`` (1, V); set
    them with :func:`reference_parameters`.

    Returns
    -------
    CharModel
        With ``with_loss=False`` the graph's output is the scores (T, V) and
        it has no ``targets`` input.
    """
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    h0 = g.add_input("h0", requires_grad=False)
    rng = np.random.default_rng(0)  # placeholders: the caller sets every parameter
    c_last = None
    if cell == "lstm":
        c0 = g.add_input("c0", requires_grad=False)
        hs, h_last, c_last = lstm(g, x, h0, c0, V, H, steps, rng, name="lstm", indices=True)
    else:
        hs, h_last = rnn(g, x, h0, V, H, steps, rng, name="rnn", indices=True)
    W = g.add_param("out.W", np.zeros((H, V)))
    b = g.add_param("out.b", np.zeros((1, V)))
    ys = [
        g.add_gate(AddGate(), g.add_gate(MatMulGate(), h, W), b, name=f"y{t}") for t, h in enumerate(hs, start=1)
    ]
    scores = g.add_gate(ConcatenateGate(axis=0), *ys, name="scores") if steps > 1 else ys[0]
    if with_loss:
        targets = g.add_input("targets", requires_grad=False)
        g.add_gate(SoftmaxCrossEntropySumGate(), scores, targets, name="loss")
    else:
        g.output = scores
    return CharModel(g, steps, scores, h_last, c_last)


def reference_parameters(cell: str, V: int, H: int, seed: int) -> dict[str, np.ndarray]:
    """min-char-rnn's initial weights, drawn in its order, stored the way the graph uses them.

    ``np.random.seed(seed)``; ``Wxh = randn(H, V) * 0.01``, ``Whh = randn(H, H)
    * 0.01``, ``Why = randn(V, H) * 0.01``; biases zero.  For the LSTM the
    first two have 4H rows (gates i, f, o, g), drawn the same way.

    Returns
    -------
    dict of str to numpy.ndarray
        ``{"{cell}.Wx": Wxh.T, "{cell}.Wh": Whh.T, "{cell}.b": (1, H) zeros,
        "out.W": Why.T, "out.b": (1, V) zeros}``: the graph multiplies row
        vectors, so it keeps the transposes.
    """
    rows = 4 * H if cell == "lstm" else H
    np.random.seed(seed)
    Wxh = np.random.randn(rows, V) * 0.01
    Whh = np.random.randn(rows, H) * 0.01
    Why = np.random.randn(V, H) * 0.01
    return {
        f"{cell}.Wx": Wxh.T,
        f"{cell}.Wh": Whh.T,
        f"{cell}.b": np.zeros((1, rows)),
        "out.W": Why.T,
        "out.b": np.zeros((1, V)),
    }


class CharModels:
    """One graph per chunk length, built on first use, all sharing one set of parameter arrays.

    Parameters
    ----------
    cell : str
        "rnn" or "lstm".
    V, H : int
        Vocabulary and hidden sizes.
    params : dict of str to numpy.ndarray
        The parameter arrays (as :func:`reference_parameters` returns), shared by every graph.
    """

    def __init__(self, cell: str, V: int, H: int, params: dict[str, np.ndarray]):
        self.cell, self.V, self.H = cell, V, H
        self.params = params
        self._models: dict[tuple[int, bool], CharModel] = {}

    def get(self, steps: int, with_loss: bool = True) -> CharModel:
        """The model unrolled over ``steps`` characters (built the first time it is asked for)."""
        key = (steps, with_loss)
        if key not in self._models:
            model = build_char_model(self.cell, self.V, self.H, steps, with_loss)
            for name in model.graph.params:
                model.graph.params[name] = self.params[name]  # the same arrays: updates show everywhere
            self._models[key] = model
        return self._models[key]

    def sample(self, h: np.ndarray, c: np.ndarray | None, seed_ix: int, length: int) -> list[int]:
        """``length`` character indices drawn one by one from the model, starting after ``seed_ix``.

        As min-char-rnn's ``sample``: ``np.random.choice`` on the softmax of
        the scores (:func:`graph.text_data.draw_character`), so it draws from
        numpy's global generator; the parameters do not change.

        Parameters
        ----------
        h : numpy.ndarray
            (1, H) the hidden state to start from.
        c : numpy.ndarray or None
            (1, H) the LSTM's cell state; None for the RNN.
        seed_ix : int
            The character fed first.
        length : int
            Characters to draw.

        Returns
        -------
        list of int
            The drawn indices, each fed back in as the next input.
        """
        model = self.get(1, with_loss=False)
        ixes, ix = [], seed_ix
        for _ in range(length):
            feeds = {"x": np.array([[ix]], dtype=np.float64), "h0": h}
            if c is not None:
                feeds["c0"] = c
            scores = model.graph.forward(feeds)[0]
            h = model.graph.value(model.h_last)
            c = model.graph.value(model.c_last) if c is not None else None
            ix = draw_character(scores, np.random)
            ixes.append(ix)
        return ixes
