"""Transformer layers: layer norm, causal self-attention (composed or fused), a block, and a character GPT.

A decoder-only transformer, as in nanoGPT, is embeddings, then blocks::

    x = tokens_table[tokens] + positions_table[:T]             (B, T, C)
    x = x + attention(layer_norm(x))                            each block,
    x = x + mlp(layer_norm(x)),  mlp = linear 4C, GELU, linear C     pre-norm
    logits = layer_norm(x) @ tokens_table^T                     (B, T, V)

>>> import numpy as np
>>> from graph import ComputationalGraph
>>> from graph.layers import gpt
>>> g = ComputationalGraph()
>>> tokens = g.add_input("tokens", requires_grad=False)      # (B, T) character indices
>>> targets = g.add_input("targets", requires_grad=False)    # (B, T) the next characters
>>> logits, loss = gpt(g, tokens, vocab=10, layers=1, heads=2, width=8, context=6,
...                    rng=np.random.default_rng(0), targets=targets)
>>> loss_value = g.forward({"tokens": np.zeros((3, 6)), "targets": np.ones((3, 6))})
>>> g.value(logits).shape, bool(abs(loss_value - np.log(10)) < 0.01)   # small weights: near-uniform guesses
((3, 6, 10), True)

Attention is built either from small gates (``fused=False``: reshape,
matmul, scale, mask, softmax, matmul, each a node that ``explain()``, the
pictures and ``check_gates`` show) or with one
:class:`gates.ScaledDotProductAttentionGate` (``fused=True``, the default:
faster).  Both give the same values and gradients.

The output head shares the token table (``logits = x @ table^T``): one
parameter used twice, whose two gradients the graph adds.  Weights start as
nanoGPT's: normal(0, 0.02), the projections back into the residual stream
normal(0, 0.02 / sqrt(2 layers)), biases zero, layer norms gamma 1, beta 0.
"""

from __future__ import annotations

import math

import numpy as np

from gates import (
    AddGate,
    CausalMaskGate,
    EmbeddingGate,
    FlattenLastGate,
    GELUGate,
    LayerNormGate,
    LinearGate,
    MatMulGate,
    MultiplyGate,
    PositionEmbeddingGate,
    ReshapeGate,
    ScaledDotProductAttentionGate,
    SoftmaxCrossEntropyGate,
    SoftmaxGate,
    TransposeGate,
    UnflattenGate,
)
from graph.computational_graph import ComputationalGraph
from graph.errors import GraphBuildError
from graph.layers.building import check_rng, check_sizes, one_step
from graph.node import Node

NodeLike = Node | str

#: nanoGPT's standard deviation for every weight matrix and embedding table.
INIT_STD = 0.02


@one_step
def linear(
    g: ComputationalGraph,
    x: NodeLike,
    in_features: int,
    out_features: int,
    name: str,
    rng: np.random.Generator,
    std: float = INIT_STD,
) -> Node:
    """``x @ W + b`` at every position, W drawn from normal(0, std), b zeros; return its output node.

    One :class:`gates.LinearGate` (a MatMulGate and an AddGate in one, faster).

    Parameters
    ----------
    g : ComputationalGraph
    x : Node or name
        (..., in_features), e.g. (B, T, C).
    in_features, out_features : int
    name : str
        Adds ``{name}.W``: (in_features, out_features) and ``{name}.b``: (out_features,);
        the output node is named ``name``.
    rng : numpy.random.Generator
    std : float
        The weights' standard deviation.

    Returns
    -------
    Node: (..., out_features).

    Raises
    ------
    GraphBuildError
        If the sizes are not positive whole numbers (GraphBuildTypeError for
        ones that are not whole numbers, or an ``rng`` that is not a Generator).
    """
    check_sizes("linear", name, in_features=in_features, out_features=out_features)
    check_rng(rng)
    W = g.add_param(f"{name}.W", rng.normal(0.0, std, size=(in_features, out_features)))
    b = g.add_param(f"{name}.b", np.zeros(out_features))
    return g.add_gate(LinearGate(), x, W, b, name=name)


@one_step
def layer_norm(g: ComputationalGraph, x: NodeLike, width: int, name: str, eps: float = 1e-5) -> Node:
    """Layer normalization over the last axis, with a learned scale and shift (:class:`gates.LayerNormGate`).

    Parameters
    ----------
    g : ComputationalGraph
    x : Node or name
        (..., width).
    width : int
        C, the size of the last axis.
    name : str
        Adds ``{name}.gamma``: (C,), ones, and ``{name}.beta``: (C,), zeros;
        the output node is named ``name``.
    eps : float
        Added to the variance, as PyTorch's default 1e-5.

    Returns
    -------
    Node: x's shape.
    """
    check_sizes("layer_norm", name, width=width)
    gamma = g.add_param(f"{name}.gamma", np.ones(width))
    beta = g.add_param(f"{name}.beta", np.zeros(width))
    return g.add_gate(LayerNormGate(eps), x, gamma, beta, name=name)


@one_step
def causal_self_attention(
    g: ComputationalGraph,
    x: NodeLike,
    width: int,
    heads: int,
    name: str,
    rng: np.random.Generator,
    fused: bool = True,
    proj_std: float = INIT_STD,
) -> Node:
    """Multi-head causal self-attention: each position attends to itself and the positions before it.

    With q = x Wq + bq, k = x Wk + bk, v = x Wv + bv, each split into H heads
    of D = C / H values, per head::

        heads_out = softmax(q k^T / sqrt(D) + causal mask) v         (B, H, T, D)

    and the heads side by side go through an output projection.

    Parameters
    ----------
    g : ComputationalGraph
    x : Node or name
        (B, T, C).
    width, heads : int
        C and H; H must divide C.
    name : str
        Adds the linear layers ``{name}.q``, ``{name}.k``, ``{name}.v`` and
        ``{name}.proj`` (parameters ``{name}.q.W``: (C, C), ``{name}.q.b``: (C,), ...);
        the output node is ``{name}.proj``.  With ``fused=False`` the
        attention weights (B, H, T, T) are the node ``{name}.weights``.
    rng : numpy.random.Generator
    fused : bool
        True: one :class:`gates.ScaledDotProductAttentionGate` (``{name}.attention``).
        False: the small gates, ``{name}.scores`` (q @ k^T), ``{name}.scaled``,
        ``{name}.masked``, ``{name}.weights`` (softmax) and ``{name}.mixed`` (@ v).
    proj_std : float
        Standard deviation of the output projection's weights (nanoGPT:
        0.02 / sqrt(2 layers)); the others use 0.02.

    Returns
    -------
    Node: (B, T, C).

    Raises
    ------
    GraphBuildError
        If the sizes are not positive or H does not divide C; the graph is left as it was.
    """
    check_heads("causal_self_attention", name, width, heads)
    D = width // heads
    per_head = {}
    for part in ("q", "k", "v"):
        projected = linear(g, x, width, width, f"{name}.{part}", rng)
        split = g.add_gate(UnflattenGate((heads, D)), projected, name=f"{name}.{part}.split")  # (B, T, H, D)
        order = (0, 2, 3, 1) if part == "k" and not fused else (0, 2, 1, 3)  # k^T: (B, H, D, T)
        per_head[part] = g.add_gate(TransposeGate(order), split, name=f"{name}.{part}.heads")
    if fused:
        mixed = g.add_gate(
            ScaledDotProductAttentionGate(causal=True), per_head["q"], per_head["k"], per_head["v"],
            name=f"{name}.attention",
        )
    else:
        scores = g.add_gate(MatMulGate(), per_head["q"], per_head["k"], name=f"{name}.scores")  # (B, H, T, T)
        scaled = g.add_gate(MultiplyGate(), scores, 1.0 / math.sqrt(D), name=f"{name}.scaled")
        masked = g.add_gate(CausalMaskGate(), scaled, name=f"{name}.masked")
        weights = g.add_gate(SoftmaxGate(), masked, name=f"{name}.weights")
        mixed = g.add_gate(MatMulGate(), weights, per_head["v"], name=f"{name}.mixed")  # (B, H, T, D)
    positions_first = g.add_gate(TransposeGate((0, 2, 1, 3)), mixed, name=f"{name}.heads_out")  # (B, T, H, D)
    merged = g.add_gate(FlattenLastGate(2), positions_first, name=f"{name}.merged")  # (B, T, C)
    return linear(g, merged, width, width, f"{name}.proj", rng, std=proj_std)


@one_step
def transformer_block(
    g: ComputationalGraph,
    x: NodeLike,
    width: int,
    heads: int,
    name: str,
    rng: np.random.Generator,
    fused: bool = True,
    proj_std: float = INIT_STD,
    gelu: str = "none",
) -> Node:
    """A pre-norm transformer block: ``x + attention(ln1(x))``, then ``+ mlp(ln2(.))``.

    The MLP is linear (C -> 4C), GELU, linear (4C -> C).

    Parameters
    ----------
    g : ComputationalGraph
    x : Node or name
        (B, T, C).
    width, heads : int
        C and H (H divides C).
    name : str
        Parts ``{name}.ln1``, ``{name}.attn`` (see :func:`causal_self_attention`),
        ``{name}.ln2``, ``{name}.mlp.fc``, ``{name}.mlp.gelu``, ``{name}.mlp.proj``;
        the residual sums ``{name}.residual1`` and ``name`` (the output).
    rng : numpy.random.Generator
    fused : bool
        Attention as one gate (True) or as small gates (False).
    proj_std : float
        Standard deviation of the two projections back into the residual
        stream (``{name}.attn.proj.W`` and ``{name}.mlp.proj.W``).
    gelu : {"none", "tanh"}
        :class:`gates.GELUGate`'s ``approximate``: exact (nanoGPT's) or the tanh form.

    Returns
    -------
    Node: (B, T, C).
    """
    attended = causal_self_attention(
        g, layer_norm(g, x, width, f"{name}.ln1"), width, heads, f"{name}.attn", rng, fused, proj_std
    )
    x = g.add_gate(AddGate(), x, attended, name=f"{name}.residual1")
    hidden = linear(g, layer_norm(g, x, width, f"{name}.ln2"), width, 4 * width, f"{name}.mlp.fc", rng)
    hidden = g.add_gate(GELUGate(approximate=gelu), hidden, name=f"{name}.mlp.gelu")
    out = linear(g, hidden, 4 * width, width, f"{name}.mlp.proj", rng, std=proj_std)
    return g.add_gate(AddGate(), x, out, name=name)


@one_step
def embeddings(
    g: ComputationalGraph,
    tokens: NodeLike,
    vocab: int,
    width: int,
    context: int,
    name: str,
    rng: np.random.Generator,
) -> tuple[Node, Node]:
    """Token and position embeddings, added: ``tokens_table[tokens] + positions_table[:T]``.

    Parameters
    ----------
    g : ComputationalGraph
    tokens : Node or name
        (B, T) indices 0..vocab-1, T <= context.
    vocab, width, context : int
        V, C and the longest sequence L.
    name : str
        Adds ``{name}.tokens.table``: (V, C) and ``{name}.positions.table``: (L, C),
        both normal(0, 0.02); the sum is the node ``{name}.embedded``.
    rng : numpy.random.Generator

    Returns
    -------
    (embedded, tokens_table): the (B, T, C) node and the token table's
    parameter node, for an output head that shares it.
    """
    check_sizes("embeddings", name, vocab=vocab, width=width, context=context)
    check_rng(rng)
    table = g.add_param(f"{name}.tokens.table", rng.normal(0.0, INIT_STD, size=(vocab, width)))
    positions_table = g.add_param(f"{name}.positions.table", rng.normal(0.0, INIT_STD, size=(context, width)))
    token_vectors = g.add_gate(EmbeddingGate(), tokens, table, name=f"{name}.tokens")
    position_vectors = g.add_gate(PositionEmbeddingGate(), tokens, positions_table, name=f"{name}.positions")
    return g.add_gate(AddGate(), token_vectors, position_vectors, name=f"{name}.embedded"), table


@one_step
def gpt(
    g: ComputationalGraph,
    tokens: NodeLike,
    vocab: int,
    layers: int,
    heads: int,
    width: int,
    context: int,
    rng: np.random.Generator,
    targets: NodeLike | None = None,
    fused: bool = True,
    name: str = "gpt",
) -> tuple[Node, Node | None]:
    """A decoder-only transformer language model, as nanoGPT's (no dropout), with nanoGPT's initialization.

    Parameters
    ----------
    g : ComputationalGraph
        Its dtype (float64 or float32) is the model's.
    tokens : Node or name
        (B, T) token indices 0..vocab-1, T <= context (an input with requires_grad=False).
    vocab, layers, heads, width, context : int
        V, the number of blocks, H, C (H divides C) and the longest sequence L.
    rng : numpy.random.Generator
        Draws every weight, in the order the parameters are added.
    targets : Node or name, optional
        (B, T) the next token at every position; adds the loss, the mean
        softmax cross-entropy over the B T positions (``{name}.loss``).
    fused : bool
        Attention as one gate per block (True) or as small gates (False).
    name : str
        Parameters ``{name}.tokens.table``, ``{name}.positions.table``,
        ``{name}.block1.ln1.gamma`` ... (see :func:`transformer_block`),
        ``{name}.ln_f.gamma``, ``{name}.ln_f.beta``.  Weight matrices and
        tables have two axes, biases and layer norm parameters one (an
        optimizer can exempt the latter from weight decay, as nanoGPT does).

    Returns
    -------
    (logits, loss): the (B, T, V) scores of the next token (``{name}.logits``)
    and the loss node (None without targets).
    """
    check_sizes("gpt", name, layers=layers)
    check_heads("gpt", name, width, heads)  # before any weight is drawn from rng
    x, table = embeddings(g, tokens, vocab, width, context, name, rng)
    proj_std = INIT_STD / math.sqrt(2 * layers)
    for layer in range(1, layers + 1):
        x = transformer_block(g, x, width, heads, f"{name}.block{layer}", rng, fused, proj_std)
    x = layer_norm(g, x, width, f"{name}.ln_f")
    table_T = g.add_gate(TransposeGate((1, 0)), table, name=f"{name}.head.W")  # (C, V), the shared table
    logits = g.add_gate(MatMulGate(), x, table_T, name=f"{name}.logits")
    if targets is None:
        return logits, None
    rows = g.add_gate(ReshapeGate((-1, vocab)), logits, name=f"{name}.logits_rows")  # (B T, V)
    labels = g.add_gate(ReshapeGate((-1,)), targets, name=f"{name}.targets_rows")
    return logits, g.add_gate(SoftmaxCrossEntropyGate(), rows, labels, name=f"{name}.loss")


def check_heads(layer: str, name: str, width: int, heads: int) -> None:
    """Refuse sizes that are not positive, or heads that do not divide the width (GraphBuildError)."""
    check_sizes(layer, name, width=width, heads=heads)
    if width % heads:
        raise GraphBuildError(f"{layer} {name!r}: heads ({heads}) must divide the width ({width})")
