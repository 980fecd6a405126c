"""Layers: functions that add a familiar block of gates and its parameters to a graph.

Each returns the output node of the block, so a network is a few lines.
Families: :mod:`graph.layers.dense` (fully connected layers, MLPs and weight
initialization), :mod:`graph.layers.recurrent` (RNN and LSTM unrolled over
time steps with shared parameters) and :mod:`graph.layers.convolution` (convolution, pooling,
batch norm, dropout, flatten) and :mod:`graph.layers.transformer` (layer norm,
causal self-attention, transformer blocks, embeddings and a GPT).
"""

from graph.layers.convolution import avg_pool2d, batch_norm, conv2d, dropout, flatten, max_pool2d
from graph.layers.dense import INITIALIZERS, dense, he_normal, mlp, xavier_uniform
from graph.layers.recurrent import lstm, rnn
from graph.layers.transformer import causal_self_attention, embeddings, gpt, layer_norm, linear, transformer_block

__all__ = [
    "dense",
    "mlp",
    "he_normal",
    "xavier_uniform",
    "INITIALIZERS",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "batch_norm",
    "dropout",
    "flatten",
    "rnn",
    "lstm",
    "linear",
    "layer_norm",
    "causal_self_attention",
    "transformer_block",
    "embeddings",
    "gpt",
]
