"""The schedule: what a forward and a backward pass do, worked out once per change of the graph.

The lecture's recipe is a loop over the gates in topological order::

    for gate in order:            values[gate] = gate.forward(*inputs)
    for gate in reversed(order):  gradients = gate.backward(upstream); add them up

:class:`Schedule` computes that order (networkx) and flattens it into lists
of steps, so a pass needs no graph walks or dictionary lookups.  For a graph
of up to :data:`STRAIGHT_LINE_LIMIT` gates it also writes the loop out as
straight-line Python, one line per gate, much like the lecture's hand-written
loop::

    def forward_pass(values):
        values[4] = forward_4(values[0], values[2])  # 'h1' = MatMulGate('x', 'w1')
        ...

Python runs such code faster than a loop over steps, whose one call site
keeps changing its callee: about 1% of each iteration of the lecture's
two-layer net (scripts/bench.py).  Writing and compiling it costs about
0.2 ms per gate, so bigger graphs use the loop.  ``Schedule.source`` is
the code, for the curious.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import networkx as nx

from graph.node import CONSTANT, GATE, INPUT, PARAM, Node

if TYPE_CHECKING:
    from graph.computational_graph import ComputationalGraph

#: Graphs with at most this many gates get straight-line forward and backward code.
STRAIGHT_LINE_LIMIT = 1000


class Schedule:
    """What a pass needs, computed once per change of the graph.

    order: the nodes in topological order (networkx);
    template: a value list with the constants filled in (one slot per node);
    inputs, params: (name, slot) of each input and parameter;
    gradient_leaves: (name, slot) of each input and parameter that gets a gradient;
    forward_steps: (gate.forward, input slots, output slot) per gate, in order;
    backward_steps: (gate.backward, number of inputs, (position, slot) of each
    input that needs a gradient, output slot) for the gates that need a
    gradient, in reverse order;
    forward_pass, backward_pass: the same steps as straight-line functions,
    or None for a graph bigger than STRAIGHT_LINE_LIMIT gates; source: their code.
    """

    def __init__(self, graph: ComputationalGraph):
        by_name = graph._by_name
        self.order: list[Node] = [by_name[name] for name in nx.topological_sort(graph.digraph)]
        self.template: list = [None] * len(graph._nodes)
        for slot, value in graph._constants.items():
            self.template[slot] = value
        self.inputs = [(node.name, node.index) for node in self.order if node.kind == INPUT]
        self.params = [(node.name, node.index) for node in self.order if node.kind == PARAM]
        self.gradient_leaves = [
            (node.name, node.index) for node in self.order if node.kind in (INPUT, PARAM) and node.requires_grad
        ]
        self.forward_steps, self.backward_steps = [], []
        for node in self.order:
            if node.kind != GATE:
                continue
            slots = tuple([source.index for source in node.inputs])
            self.forward_steps.append((node.gate.forward, slots, node.index))
            if node.requires_grad:
                targets = tuple(
                    [(position, source.index) for position, source in enumerate(node.inputs) if source.requires_grad]
                )
                self.backward_steps.append((node.gate.backward, len(slots), targets, node.index))
        self.backward_steps.reverse()
        self.output_slot = graph.output.index
        self.forward_pass: Callable | None = None
        self.backward_pass: Callable | None = None
        self.forward_lines: dict[int, int] = {}  # line of forward_pass -> the slot of the gate it runs
        self.backward_lines: dict[int, int] = {}
        if len(self.forward_steps) <= STRAIGHT_LINE_LIMIT:
            self._write_straight_line_code(graph._nodes)

    def set_output(self, output: Node) -> None:
        self.output_slot = output.index

    def failing_slot(self, traceback, backward: bool) -> int | None:
        """The slot of the gate whose line in forward_pass/backward_pass raised, from a traceback."""
        code = (self.backward_pass if backward else self.forward_pass).__code__
        lines = self.backward_lines if backward else self.forward_lines
        while traceback is not None:
            if traceback.tb_frame.f_code is code:
                return lines.get(traceback.tb_lineno)
            traceback = traceback.tb_next
        return None

    def _write_straight_line_code(self, nodes: list[Node]) -> None:
        """Write forward_pass(values) and backward_pass(values, grads, fit, as_tuple)."""
        namespace: dict = {}
        forward = ["def forward_pass(values):"]
        for gate_forward, slots, out in self.forward_steps:
            namespace[f"forward_{out}"] = gate_forward
            arguments = ", ".join(f"values[{slot}]" for slot in slots)
            self.forward_lines[len(forward) + 1] = out
            forward.append(f"    values[{out}] = forward_{out}({arguments})  # {_describe(nodes[out])}")
        forward.append("    return values")

        # fit(grad, value, gate slot, input slot) brings a gradient to its
        # input's shape (or raises); as_tuple(returned, gate slot) checks what
        # a backward returned.
        backward = ["def backward_pass(values, grads, fit, as_tuple):"]
        written = {self.output_slot}  # slots whose gradient has been set once
        for gate_backward, arity, targets, out in self.backward_steps:
            namespace[f"backward_{out}"] = gate_backward
            backward.append(f"    # {_describe(nodes[out])}")
            backward.append(f"    if grads[{out}] is not None:")
            self.backward_lines[len(backward) + 1] = out
            backward.append(f"        returned = backward_{out}(grads[{out}])")
            backward.append(f"        if type(returned) is not tuple or len(returned) != {arity}:")
            backward.append(f"            returned = as_tuple(returned, {out})")
            for position, slot in targets:
                backward.append(f"        grad = returned[{position}]")
                backward.append("        if grad is not None:")
                backward.append(
                    f'            if getattr(grad, "shape", None) != getattr(values[{slot}], "shape", None):'
                )
                backward.append(f"                grad = fit(grad, values[{slot}], {out}, {slot})")
                if slot in written:  # a branch: the gradients add (never in place: grad may be a shared view)
                    accumulate = f"grad if grads[{slot}] is None else grads[{slot}] + grad"
                    backward.append(f"            grads[{slot}] = {accumulate}")
                else:
                    backward.append(f"            grads[{slot}] = grad")
                    written.add(slot)
        backward.append("    return grads")

        exec(compile("\n".join(forward), "<gategraph forward_pass>", "exec"), namespace)
        exec(compile("\n".join(backward), "<gategraph backward_pass>", "exec"), namespace)
        self.forward_pass, self.backward_pass = namespace["forward_pass"], namespace["backward_pass"]
        self.source = "\n".join(forward) + "\n\n\n" + "\n".join(backward) + "\n"


def _describe(node: Node) -> str:
    """e.g. "'h' = SigmoidGate('xW')" for a comment in the generated code."""
    names = ", ".join(repr(source.name) if source.kind != CONSTANT else "constant" for source in node.inputs)
    return " ".join(f"{node.name!r} = {type(node.gate).__name__}({names})".splitlines())  # one line, whatever the names
