"""The last pass of a graph told as text: ``g.explain()``.

Forward: every value in topological order.  Backward: gate by gate in
reverse order, each step written as the lecture's chain rule,

    upstream × local gradient = gradient sent to each input,

and, where a value feeds several gates, the sum of what it receives
(``x: 6 + 5 = 11``).  What each gate sent is read from the graph's record of
the real backward (``g.gradients_sent``): no gate's backward is called again,
so a gate that frees its cache in backward explains as well as any.

Values are written by :func:`graph.formatting.format_value`; the helpers
:func:`expression`, :func:`chain_rule_steps` and :func:`gradient_contributions`
are shared with :mod:`graph.drawing`, :mod:`graph.notebook` and :mod:`graph.animation`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graph.errors import BackwardError
from graph.formatting import format_number, format_value
from graph.node import NodeKind

#: Gate symbols written between their two inputs (x + y) rather than as f(x, y).
INFIX = {"+", "-", "*", "/", "@"}


class Explanation(str):
    """The text of ``g.explain()``; in Jupyter it shows as tables (:func:`graph.notebook.explain_html`)."""

    def __new__(cls, text: str, graph: Any):
        explanation = super().__new__(cls, text)
        explanation.graph = graph
        return explanation

    def _repr_html_(self) -> str:
        from graph.notebook import explain_html

        return explain_html(self.graph)


def explain_pass(g: Any) -> str:
    """The last forward (and backward, if any) pass of ``g`` as text.

    Parameters
    ----------
    g : ComputationalGraph
        After ``g.forward(feeds)``, and usually ``g.backward()``.

    Returns
    -------
    str
        Several lines: "Forward" then "Backward" then the gradients at the
        inputs and parameters.

    Raises
    ------
    BackwardError
        If no forward pass has succeeded yet.

    Examples
    --------
    >>> from graph import ComputationalGraph
    >>> g = ComputationalGraph()
    >>> x, y, z = g.add_input("x"), g.add_input("y"), g.add_input("z")
    >>> f = (x + y) * z
    >>> _ = g.forward({"x": -2, "y": 5, "z": -4}); _ = g.backward()
    >>> print(g.explain())  # doctest: +ELLIPSIS
    Forward pass, in topological order:
      x = -2
    ...
    """
    if not g.has_forward:
        raise BackwardError("explain() tells the last pass: run g.forward(feeds) first, then g.backward()")
    order = g.nodes_topologically_sorted()
    output = g.output
    lines = ["Forward pass, in topological order:"]
    for node in order:
        if node.kind is NodeKind.CONSTANT:
            continue  # written as a number inside the expressions that use it
        lines.append(f"  {_forward_line(g, node)}{'   (output)' if node is output else ''}")
    if not g.has_backward:
        lines.append("No backward pass yet: call g.backward() to see the gradients.")
        return Explanation("\n".join(lines), g)

    contributions = gradient_contributions(g)
    out = output.name
    lines.append("")
    lines.append(
        f"Backward pass, gate by gate in reverse order, starting from d{out}/d{out} = "
        f"{format_value(g.grad(output))}."
    )
    lines.append("Each step: upstream × local gradient = gradient sent to the input.")
    if any(np.ndim(g.value(node)) for node in order if node.kind is NodeKind.GATE):
        lines.append(
            "For an array, 'upstream · dz/dx' is the product with the local Jacobian, "
            "which backward computes without building it."
        )
    for step in chain_rule_steps(g, contributions):
        node = step.node
        lines.append(f"  {node.name} = {expression(g, node)}    upstream d{out}/d{node.name} = {step.received}")
        for source, sent, local in step.sent:
            lines.append(f"    -> {source.name}: {step_text(step, source, sent, local)}")

    leaves = [node for node in order if node.kind in (NodeKind.INPUT, NodeKind.PARAM) and node.requires_grad]
    if leaves:
        lines.append("")
        lines.append(f"Gradients of {out}, summed where a value feeds several gates:")
        for node in leaves:
            total = sum_text(contributions.received.get(node.name, []), g.grad(node))
            lines.append(f"  d{out}/d{node.name} = {total}")
    return Explanation("\n".join(lines), g)


class Contributions:
    """The gradients each gate sent to each of its inputs during the last backward.

    Attributes
    ----------
    sent : dict of (gate node name, input position) to gradient
        Already summed over broadcast axes, so each has its input's shape.
    received : dict of node name to list of (gate node name, gradient)
        What each node received, in the order backward sent it.
    senders : set of str
        The gates that sent anything (those the output depends on).
    """

    def __init__(self) -> None:
        self.sent: dict[tuple[str, int], Any] = {}
        self.received: dict[str, list[tuple[str, Any]]] = {}
        self.senders: set[str] = set()


def gradient_contributions(g: Any) -> Contributions:
    """The gradient each gate sent to each input in the last backward, gate by gate in reverse order.

    Read from the graph's record of that backward (``g.gradients_sent``),
    already summed over broadcast axes by the graph's one check.
    """
    result = Contributions()
    for node in reversed(g.nodes_topologically_sorted()):
        if node.kind is not NodeKind.GATE:
            continue
        gradients = g.gradients_sent(node)
        if gradients is None:
            continue
        result.senders.add(node.name)
        for position, (source, gradient) in enumerate(zip(node.inputs, gradients)):
            if gradient is None or not source.requires_grad:
                continue
            result.sent[(node.name, position)] = gradient
            result.received.setdefault(source.name, []).append((node.name, gradient))
    return result


def expression(g: Any, node: Any) -> str:
    """How a gate node is computed from its inputs, e.g. 'x + y', 'max(z, w)', '1/d', 'q**2'."""
    names = [_operand(g, source) for source in node.inputs]
    symbol = gate_label(node.gate)
    if len(names) == 2 and symbol in INFIX:
        return f"{names[0]} {symbol} {names[1]}"
    if len(names) == 1 and re.search(r"\bx\b", symbol):
        return re.sub(r"\bx\b", names[0], symbol)  # '1/x' -> '1/d', '-x' -> '-s'
    if len(names) == 1 and symbol.startswith("**"):
        return f"{names[0]}{symbol}"
    return f"{symbol}({', '.join(names)})"


# ---------------------------------------------------------------- helpers


def _forward_line(g: Any, node: Any) -> str:
    value = format_value(g.value(node))
    if node.kind is not NodeKind.GATE:
        kind = " (parameter)" if node.kind is NodeKind.PARAM else ""
        return f"{node.name} = {value}{kind}"
    text = f"{node.name} = {expression(g, node)}"
    if all(np.ndim(g.value(source)) == 0 for source in node.inputs):
        substituted = with_numbers(g, node)
        if substituted not in (expression(g, node), value):
            text += f" = {substituted}"
    return f"{text} = {value}"


def with_numbers(g: Any, node: Any) -> str:
    """The expression with each input's value in place of its name: '-2 + 5', '3 * (-4)'."""
    numbers = [format_number(g.value(source)) for source in node.inputs]
    symbol = gate_label(node.gate)
    if len(numbers) == 2 and symbol in INFIX:
        return f"{numbers[0]} {symbol} {_parenthesized(numbers[1])}"
    if len(numbers) == 1 and re.search(r"\bx\b", symbol):
        return re.sub(r"\bx\b", _parenthesized(numbers[0]), symbol)
    if len(numbers) == 1 and symbol.startswith("**"):
        return f"{_parenthesized(numbers[0])}{symbol}"
    return f"{symbol}({', '.join(numbers)})"


def _parenthesized(number: str) -> str:
    return f"({number})" if number.startswith("-") else number


def _operand(g: Any, source: Any) -> str:
    """An input as written in an expression: its name, or its value for a scalar constant."""
    if source.kind is NodeKind.CONSTANT and g.has_forward and np.ndim(g.value(source)) == 0:
        return format_number(g.value(source))
    return source.name


def local_gradient(upstream: Any, sent: Any) -> Any:
    """d(gate)/d(input) for a gate with a scalar output: what it sent divided by the upstream.

    None when the upstream is 0 (then nothing tells the local gradient) or
    the sent gradient is an array (written as a product instead).
    """
    if np.ndim(sent) != 0 or float(upstream) == 0.0:
        return None
    return sent / upstream


@dataclass
class ChainRuleStep:
    """One gate's step of the last backward: upstream x local gradient = what it sent each input.

    Attributes
    ----------
    node : the gate's Node
    upstream : d(output)/d(node), what the gate received
    received : the upstream as text, as a sum where the node feeds several gates
    sent : list of (input Node, gradient sent, local gradient or None); the
        local gradient is known only for a scalar output (sent / upstream),
        otherwise it is a Jacobian backward never builds
    """

    node: Any
    upstream: Any
    received: str
    sent: list = field(default_factory=list)


def chain_rule_steps(g: Any, contributions: Contributions | None = None) -> list[ChainRuleStep]:
    """Each gate that sent gradients in the last backward, in backward order, as a :class:`ChainRuleStep`.

    The one description of the chain rule at each gate that explain(),
    the notebook's tables and the animation all write out.
    """
    contributions = contributions if contributions is not None else gradient_contributions(g)
    steps = []
    for node in reversed(g.nodes_topologically_sorted()):
        if node.kind is not NodeKind.GATE or node.name not in contributions.senders:
            continue
        upstream = g.grad(node)
        step = ChainRuleStep(node, upstream, sum_text(contributions.received.get(node.name, []), upstream))
        scalar_output = np.ndim(g.value(node)) == 0
        for position, source in enumerate(node.inputs):
            sent = contributions.sent.get((node.name, position))
            if sent is not None:
                step.sent.append((source, sent, local_gradient(upstream, sent) if scalar_output else None))
        steps.append(step)
    return steps


def step_text(step: ChainRuleStep, source: Any, sent: Any, local: Any) -> str:
    """'1 × (-4) = -4', or for an array output 'upstream · dq/dx = sent'."""
    upstream = format_value(step.upstream)
    if local is None:
        return f"{upstream} · d{step.node.name}/d{source.name} = {format_value(sent)}"
    factor = format_value(local)
    return f"{upstream} × {_parenthesized(factor)} = {format_value(sent)}"


def gate_label(gate: Any) -> str:
    """A gate's short label: ``gate.label()``, else its symbol, else its class name without 'Gate'."""
    label = getattr(gate, "label", None)
    if callable(label):
        return str(label())
    return str(getattr(gate, "symbol", "") or type(gate).__name__.removesuffix("Gate"))


def sum_text(parts: list[tuple[str, Any]], total: Any) -> str:
    """'6 + 5 = 11' for several contributions, '11' for one."""
    if len(parts) <= 1:
        return format_value(total)
    return " + ".join(format_value(gradient) for _, gradient in parts) + f" = {format_value(total)}"
