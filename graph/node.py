"""Nodes: the handles a ComputationalGraph gives back, with arithmetic operators.

``x + y``, ``x - y``, ``x * y``, ``x / y``, ``x ** p``, ``-x`` and ``x @ W``
add the matching gate to the node's graph and return the new node, so
``f = (x + y) * z`` builds the lecture's first circuit.  Plain numbers and
arrays on either side become constants.
"""

from __future__ import annotations

import enum
from typing import Any

import gates
from graph.errors import ReadOnlyAttributeError, OperandError


class NodeKind(str, enum.Enum):
    """What a node is.  A str, so ``node.kind == "param"`` reads naturally too."""

    INPUT = "input"  # fed by name to forward
    PARAM = "param"  # trainable, lives in g.params
    CONSTANT = "constant"  # a fixed value, never gets a gradient
    GATE = "gate"  # a gate's output

    def __str__(self) -> str:
        return self.value


INPUT, PARAM, CONSTANT, GATE = NodeKind.INPUT, NodeKind.PARAM, NodeKind.CONSTANT, NodeKind.GATE


class Node:
    """One value in a graph: an input, a parameter, a constant or a gate's output.

    Every attribute is fixed when the node is added: the graph's schedule,
    feeds, ``g.params`` and saved files rely on them.  Setting one raises
    :class:`ReadOnlyAttributeError` saying how to build what was meant (for
    example ``g.add_input("x", requires_grad=True)``).

    Attributes
    ----------
    graph : ComputationalGraph
        The graph the node belongs to.
    name : str
        Unique within its graph.
    kind : NodeKind
        INPUT, PARAM, CONSTANT or GATE.
    index : int
        The node's place in ``graph.nodes``, and the slot of its value in a pass.
    gate : Gate or None
        The gate computing this node (kind "gate" only).
    inputs : tuple of Node
        The gate's inputs, in order (empty for the other kinds).
    requires_grad : bool
        Whether the output's gradient with respect to this node is computed:
        True for parameters, inputs added with requires_grad=True, and gates
        with at least one such input.
    """

    __slots__ = ("graph", "name", "kind", "gate", "inputs", "requires_grad", "index")
    __array_ufunc__ = None  # make `array * node` call node.__rmul__ instead of numpy

    def __init__(self, graph, name, kind, index, requires_grad, gate=None, inputs=()):
        _set(self, "graph", graph)
        _set(self, "name", name)
        _set(self, "kind", kind)
        _set(self, "index", index)  # the slot of this node's value in the graph's value list
        _set(self, "requires_grad", requires_grad)
        _set(self, "gate", gate)
        _set(self, "inputs", inputs)

    def __setattr__(self, attribute: str, value: Any) -> None:
        raise ReadOnlyAttributeError(_how_to_change(self, attribute, value))

    def __delattr__(self, attribute: str) -> None:
        raise ReadOnlyAttributeError(_how_to_change(self, attribute))

    def __getstate__(self) -> dict:
        return {attribute: getattr(self, attribute) for attribute in Node.__slots__}

    def __setstate__(self, state: dict) -> None:
        """For copy.deepcopy and pickle (g.copy()), which cannot go through __setattr__."""
        for attribute, value in state.items():
            _set(self, attribute, value)

    @property
    def value(self) -> Any:
        """This node's value after the last forward (see ComputationalGraph.value)."""
        return self.graph.value(self)

    @property
    def grad(self) -> Any:
        """d(output)/d(this node) after the last backward (see ComputationalGraph.grad)."""
        return self.graph.grad(self)

    def __repr__(self) -> str:
        described = type(self.gate).__name__ if self.gate is not None else self.kind.value
        return f"<Node {self.name!r}: {described}>"

    def _apply(self, gate: gates.Gate, *inputs: Any) -> Node:
        return self.graph.add_gate(gate, *inputs)

    def __add__(self, other):
        return self._apply(gates.AddGate(), self, other)

    def __radd__(self, other):
        return self._apply(gates.AddGate(), other, self)

    def __sub__(self, other):
        return self._apply(gates.SubtractGate(), self, other)

    def __rsub__(self, other):
        return self._apply(gates.SubtractGate(), other, self)

    def __mul__(self, other):
        return self._apply(gates.MultiplyGate(), self, other)

    def __rmul__(self, other):
        return self._apply(gates.MultiplyGate(), other, self)

    def __truediv__(self, other):
        return self._apply(gates.DivideGate(), self, other)

    def __rtruediv__(self, other):
        return self._apply(gates.DivideGate(), other, self)

    def __matmul__(self, other):
        return self._apply(gates.MatMulGate(), self, other)

    def __rmatmul__(self, other):
        return self._apply(gates.MatMulGate(), other, self)

    def __neg__(self):
        return self._apply(gates.NegateGate(), self)

    def __pow__(self, exponent):
        if isinstance(exponent, Node) or not _is_number(exponent):
            raise OperandError(
                f"{self.name!r} ** {exponent!r}: the exponent of PowerGate must be a plain number; "
                "for a variable exponent write exp(p * log(x)) with ExpGate and LogGate"
            )
        return self._apply(gates.PowerGate(exponent), self)

    def __rpow__(self, base):
        raise OperandError(
            f"{base!r} ** {self.name!r}: PowerGate takes a constant exponent, not a node; "
            "for b ** x write exp(x * log(b)) with ExpGate"
        )


_set = object.__setattr__  # how a Node's own methods set its (otherwise read-only) attributes


def _how_to_change(node: Node, attribute: str, value: Any = None) -> str:
    """Why ``node.<attribute>`` cannot be changed, and how to build what was meant instead."""
    name, kind = node.name, node.kind
    said = f"{name!r}.{attribute} cannot be changed after the node is added"
    if attribute == "requires_grad":
        if kind is INPUT:
            wanted = "False" if node.requires_grad else "True"
            return (f"{said}: the gates built on it already rely on it; add the input with "
                    f"g.add_input({name!r}, requires_grad={wanted}) before building on it")
        if kind is PARAM:
            return f"{said}: a parameter always gets a gradient; for a fixed value use g.add_constant(value)"
        if kind is CONSTANT:
            return f"{said}: a constant never gets a gradient; for one that does use g.add_param or g.add_input"
        return f"{said}: a gate's output needs a gradient exactly when one of its inputs does"
    if attribute == "name":
        wanted = repr(value) if isinstance(value, str) else "'new_name'"
        adds = {
            INPUT: f"g.add_input({wanted})" if node.requires_grad else f"g.add_input({wanted}, requires_grad=False)",
            PARAM: f"g.add_param({wanted}, value)",
            CONSTANT: f"g.add_constant(value, name={wanted})",
            GATE: f"g.add_gate(gate, *inputs, name={wanted})",
        }[kind]
        return (f"{said}: feeds, g.params and saved files know the node by its name; "
                f"give the name when adding the node: {adds}")
    if attribute in Node.__slots__:
        return f"{said}: the graph sets {attribute} when the node is added; build a new node instead"
    return f"a Node has no attribute {attribute!r} to set; its attributes are {', '.join(Node.__slots__)}, all read-only"


def _is_number(value: Any) -> bool:
    """A real number (not text such as "2", not a complex number)."""
    if isinstance(value, (str, bytes)):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
