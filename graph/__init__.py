"""gategraph's graph: build circuits of gates, run them forward and backward.

>>> from graph import ComputationalGraph
"""

from graph.computational_graph import ComputationalGraph
from graph.checking import GradientCheckResult, check_gate, gradcheck, jacobian
from graph.errors import (
    BackwardError,
    CheckError,
    DrawingError,
    FeedError,
    FeedTypeError,
    GateForwardError,
    GateInputCountError,
    GradientError,
    GraphBuildError,
    GraphError,
    JacobianTooLargeError,
    NonFiniteError,
    NotAGateError,
    OptimizerError,
    OptimizerTypeError,
    CheckpointError,
    ParameterFileError,
)
from graph.node import Node
from graph.values import sum_to_shape

__all__ = [
    "ComputationalGraph",
    "Node",
    "sum_to_shape",
    "gradcheck",
    "check_gate",
    "jacobian",
    "GradientCheckResult",
    "GraphError",
    "GraphBuildError",
    "GateInputCountError",
    "NotAGateError",
    "FeedError",
    "FeedTypeError",
    "GateForwardError",
    "GradientError",
    "BackwardError",
    "NonFiniteError",
    "ParameterFileError",
    "CheckError",
    "JacobianTooLargeError",
    "DrawingError",
    "OptimizerError",
    "OptimizerTypeError",
    "CheckpointError",
]
