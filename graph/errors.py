"""gategraph's exceptions.

Each is a ValueError or TypeError, so ``except ValueError`` still catches
them, and each message names the node, gate or input involved in the words of
the user's own graph.  Catch :class:`GraphError` to catch them all.
"""


class GraphError(Exception):
    """Base class of every error gategraph raises on purpose."""


class GraphBuildError(GraphError, ValueError):
    """A graph cannot be built as asked: unknown or duplicate name, foreign node, reused gate."""


class GraphBuildTypeError(GraphBuildError, TypeError):
    """A graph or layer was given something of the wrong type to build with: text for a size, a legacy RandomState."""


class OperandError(GraphError, TypeError):
    """An operator on a node got an operand it cannot take: a node or text as an exponent, say."""


class ConcurrentUseError(GraphError, RuntimeError):
    """One graph was used by two passes at once (several threads, or a gate calling its own graph)."""


class ReadOnlyAttributeError(GraphError, AttributeError, TypeError):
    """An attribute the graph relies on was set or deleted (any attribute of a node, a graph's dtype), or set to what it cannot be.

    They are fixed when the node (or graph) is made; the message says how to
    build what was meant, e.g. ``g.add_input("x", requires_grad=True)``.
    """


class GateInputCountError(GraphError, TypeError):
    """A gate was given more or fewer inputs than its forward takes."""


class NotAGateError(GraphError, TypeError):
    """Something that is not a gate (no forward/backward) was added as one."""


class FeedError(GraphError, ValueError):
    """A feed is missing, names no input of the graph, or has the wrong shape."""


class FeedTypeError(GraphError, TypeError):
    """A feed is not numeric (text, objects, ragged lists, complex numbers)."""


class GateForwardError(GraphError, ValueError):
    """A gate's forward failed, typically on shapes that do not fit (names the gate and the shapes)."""


class GradientError(GraphError, ValueError):
    """A gate's backward returned the wrong number of gradients or a gradient of the wrong shape."""


class BackwardError(GraphError, ValueError):
    """backward was called without a successful forward, or with an unusable upstream gradient."""


class NonFiniteError(GraphError, ValueError):
    """check_finite=True found a NaN or inf produced by a gate."""


class ParameterFileError(GraphError, ValueError):
    """A parameter file cannot be loaded into this graph: unreadable, or names/shapes differ."""


class CheckError(GraphError, ValueError):
    """A gradient check cannot run as asked: nothing needs a gradient, or an unknown input."""


class JacobianTooLargeError(CheckError):
    """The Jacobian asked for would have too many elements to build."""


class DrawingError(GraphError, ValueError):
    """A picture cannot be made: unknown file type, or a graph too large to draw readably."""


class OptimizerError(GraphError, ValueError):
    """An optimizer cannot work as asked.

    A hyperparameter out of range (``SGD(lr=-1)``, ``Adam(beta1=1)``, NaN),
    gradients given to step() that do not match the parameters (missing, of
    another shape, not real numbers), or a saved optimizer state that does
    not fit (load_state_dict).
    """


class OptimizerTypeError(OptimizerError, TypeError):
    """An optimizer was given something of the wrong type: a string hyperparameter, a list or complex gradient."""


class CheckpointError(GraphError, ValueError):
    """A training checkpoint cannot be written or resumed: damaged, from another script or model."""
