"""gategraph's graph: build circuits of gates, run them forward and backward.

>>> from graph import ComputationalGraph
"""

from graph.computational_graph import ComputationalGraph
from graph.checking import GatesCheckResult, GradientCheckResult, check_gate, check_gates, gradcheck, jacobian
from graph.errors import (
    BackwardError,
    CheckError,
    ConcurrentUseError,
    DrawingError,
    FeedError,
    FeedTypeError,
    GateForwardError,
    GateInputCountError,
    GradientError,
    GraphBuildError,
    GraphBuildTypeError,
    GraphError,
    JacobianTooLargeError,
    NonFiniteError,
    ReadOnlyAttributeError,
    NotAGateError,
    OperandError,
    OptimizerError,
    OptimizerTypeError,
    CheckpointError,
    ParameterFileError,
)
from graph.node import Node, NodeKind
from graph.solver import Solver
from graph.values import sum_to_shape

__all__ = [
    "ComputationalGraph",
    "Solver",
    "Node",
    "NodeKind",
    "sum_to_shape",
    "gradcheck",
    "check_gate",
    "check_gates",
    "GatesCheckResult",
    "jacobian",
    "GradientCheckResult",
    "GraphError",
    "GraphBuildError",
    "GraphBuildTypeError",
    "GateInputCountError",
    "NotAGateError",
    "ReadOnlyAttributeError",
    "OperandError",
    "ConcurrentUseError",
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
