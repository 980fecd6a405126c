"""The schedule: what a forward and a backward pass do, worked out once per change of the graph.

The lecture's recipe is two loops over the gates in topological order::

    for gate in order:            values[gate] = gate.forward(*inputs)
    for gate in reversed(order):  gradients = gate.backward(upstream); add them up

:class:`Schedule` computes that order with networkx and flattens it into two
lists of steps, so that a pass (``ComputationalGraph.forward`` and
``backward``) is a plain loop with no graph walks and no dictionary lookups.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING

import networkx as nx

from graph.node import CONSTANT, GATE, INPUT, Node

if TYPE_CHECKING:
    from graph.computational_graph import ComputationalGraph


class Schedule:
    """What a pass needs, computed once per change of the graph.

    Attributes
    ----------
    order : list of Node
        Every node, each after the nodes it depends on
        (``nx.topological_sort`` of ``g.digraph``).
    inputs, params : list of (name, slot)
        Each input and parameter, and the slot of its value.
    empty_values : list
        The value list a pass starts from: one entry per node, the constants
        in their slots, None elsewhere.  A pass fills in a copy of it.
    forward_steps : list of (node, gate.forward, inputs_of, output slot)
        One per gate, in topological order; ``inputs_of(values)`` picks the
        gate's input values out of the value list, in order.
    backward_steps : list of (node, gate.backward, inputs_of, output slot, (position, slot) of each input needing a gradient)
        One per gate that needs a gradient, in reverse order.
    leaves : list of (name, slot)
        The inputs and parameters whose gradients backward returns.
    """

    def __init__(self, graph: ComputationalGraph):
        by_name = graph.nodes_by_name
        self.order: list[Node] = [by_name[name] for name in nx.topological_sort(graph.digraph)]
        self.inputs, self.params, self.leaves = [], [], []
        self.empty_values = [None] * len(self.order)
        self.forward_steps, self.backward_steps = [], []
        for node in self.order:
            kind, slot = node.kind, node.index
            if kind is GATE:
                inputs_of = _picker([source.index for source in node.inputs])
                self.forward_steps.append((node, node.gate.forward, inputs_of, slot))
                if node.requires_grad:
                    targets = tuple([(position, source.index) for position, source in enumerate(node.inputs) if source.requires_grad])
                    self.backward_steps.append((node, node.gate.backward, inputs_of, slot, targets))
            elif kind is CONSTANT:
                self.empty_values[slot] = graph.constant_value(node)
            else:
                (self.inputs if kind is INPUT else self.params).append((node.name, slot))
                if node.requires_grad:
                    self.leaves.append((node.name, slot))
        self.backward_steps.reverse()


def _picker(slots: list[int]):
    """A function of the value list giving the values at ``slots``, as a sequence.

    operator.itemgetter does it in C; alone it would give one input as the
    value itself, so one slot is picked as a one-element slice.
    """
    if len(slots) == 1:
        return operator.itemgetter(slice(slots[0], slots[0] + 1))
    if not slots:
        return lambda values: ()
    return operator.itemgetter(*slots)
