"""gategraph's gates: one class per operation, each with forward and backward.

Families: :mod:`gates.arithmetic`, :mod:`gates.activations`,
:mod:`gates.reductions`, :mod:`gates.linalg`, :mod:`gates.losses`,
:mod:`gates.indexing`, :mod:`gates.sequence_losses`,
:mod:`gates.convolution`, :mod:`gates.pooling`, :mod:`gates.normalization`,
:mod:`gates.shape`, :mod:`gates.attention`.  Write your
own by subclassing :class:`Gate`.
"""

from gates.activations import ELUGate, GELUGate, LeakyReLUGate, ReLUGate, SigmoidGate, SoftmaxGate, TanhGate
from gates.arithmetic import (
    AddGate,
    DivideGate,
    ExpGate,
    LogGate,
    MaxGate,
    MinGate,
    MultiplyGate,
    NegateGate,
    PowerGate,
    ReciprocalGate,
    SubtractGate,
)
from gates.attention import CausalMaskGate, PositionEmbeddingGate, ScaledDotProductAttentionGate
from gates.base import Gate, input_count
from gates.indexing import ConcatenateGate, EmbeddingGate, SliceGate, StackGate
from gates.convolution import Conv2DGate
from gates.linalg import LinearGate, MatMulGate
from gates.losses import LogSoftmaxGate, SoftmaxCrossEntropyGate, SquaredErrorGate
from gates.normalization import BatchNormGate, DropoutGate, LayerNormGate
from gates.pooling import AvgPool2DGate, MaxPool2DGate
from gates.reductions import MeanGate, SumGate
from gates.sequence_losses import SoftmaxCrossEntropySumGate
from gates.shape import FlattenGate, FlattenLastGate, ReshapeGate, TransposeGate, UnflattenGate

__all__ = [
    "Gate",
    "input_count",
    "AddGate",
    "SubtractGate",
    "MultiplyGate",
    "DivideGate",
    "MaxGate",
    "MinGate",
    "NegateGate",
    "ExpGate",
    "LogGate",
    "ReciprocalGate",
    "PowerGate",
    "SigmoidGate",
    "TanhGate",
    "ReLUGate",
    "LeakyReLUGate",
    "ELUGate",
    "MatMulGate",
    "LogSoftmaxGate",
    "SoftmaxCrossEntropyGate",
    "SquaredErrorGate",
    "SumGate",
    "MeanGate",
    "EmbeddingGate",
    "SliceGate",
    "StackGate",
    "ConcatenateGate",
    "SoftmaxCrossEntropySumGate",
    "Conv2DGate",
    "MaxPool2DGate",
    "AvgPool2DGate",
    "BatchNormGate",
    "DropoutGate",
    "FlattenGate",
    "ReshapeGate",
    "GELUGate",
    "SoftmaxGate",
    "LayerNormGate",
    "TransposeGate",
    "UnflattenGate",
    "FlattenLastGate",
    "CausalMaskGate",
    "ScaledDotProductAttentionGate",
    "PositionEmbeddingGate",
    "LinearGate",
]
