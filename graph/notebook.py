"""A graph in Jupyter: its picture as SVG text and its last pass as an HTML table.

* :func:`graph_svg` draws the graph as :mod:`graph.drawing` does (the
  structure before a pass, values and gradients on the wires after one) into
  SVG text in memory, for ``IPython.display.SVG`` or a ``_repr_svg_``.
* :func:`explain_html` gives what ``g.explain()`` tells as HTML: the forward
  values, one table per backward step with the chain rule
  (upstream × local gradient = sent), and the summed gradients.

>>> from IPython.display import SVG, HTML          # doctest: +SKIP
>>> SVG(graph_svg(g)); HTML(explain_html(g))       # doctest: +SKIP
"""

from __future__ import annotations

import html
import io
import re
from typing import Any

import numpy as np

from graph.drawing import GRAD_COLOR, MAX_PICTURE_NODES, VALUE_COLOR, WireLabels, render_picture
from graph.errors import BackwardError, DrawingError
from graph.explain import chain_rule_steps, expression, gradient_contributions, sum_text, with_numbers
from graph.formatting import format_value
from graph.layout import Layout, column_width_for


def graph_svg(g: Any) -> str:
    """The picture of ``g`` (as ``g.draw("x.svg")`` would save it) as SVG text.

    Before a pass it shows the structure; after a forward, the values in
    green above the wires; after a backward too, the gradients in red below.

    Raises
    ------
    DrawingError
        For a graph without nodes or with more than ``MAX_PICTURE_NODES`` nodes.
    ModuleNotFoundError
        Without matplotlib (``pip install gategraph[draw]``).
    """
    nodes = g.nodes
    if not nodes:
        raise DrawingError("the graph is empty: add inputs and gates before drawing it")
    if len(nodes) > MAX_PICTURE_NODES:
        raise DrawingError(
            f"the graph has {len(nodes)} nodes; a picture of more than {MAX_PICTURE_NODES} would be unreadable"
        )
    try:
        import matplotlib
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError("a graph's picture needs matplotlib: pip install 'gategraph[draw]'") from error
    labels = WireLabels(g)
    layout = Layout(g, column_width_for(labels.texts()))  # as draw_graph lays it out
    buffer = io.BytesIO()
    # render_picture saves to what it is given; a file object takes the format from savefig.format.
    with matplotlib.rc_context({"savefig.format": "svg", "svg.hashsalt": "gategraph"}):
        render_picture(g, labels, layout, buffer)
    text = buffer.getvalue().decode("utf-8")
    # matplotlib's metadata block only carries the date: drop it so a rerun gives the same text.
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.DOTALL)


def explain_html(g: Any) -> str:
    """What ``g.explain()`` tells, as HTML tables: forward values, each backward step, the summed gradients.

    Raises
    ------
    BackwardError
        If no forward pass has succeeded yet.
    """
    if not g.has_forward:
        raise BackwardError("explain() tells the last pass: run g.forward(feeds) first, then g.backward()")
    order = g.nodes_topologically_sorted()
    output = g.output
    out = output.name
    parts = [f'<div class="gategraph-explain" style="{_BOX}">', _heading("Forward pass, in topological order")]
    rows = []
    for node in order:
        if node.kind == "constant":
            continue  # written as a number inside the expressions that use it
        if node.kind == "gate":
            how = expression(g, node)
            if all(np.ndim(g.value(source)) == 0 for source in node.inputs):
                substituted = with_numbers(g, node)
                if substituted != how:
                    how += f" = {substituted}"
        else:
            how = "parameter" if node.kind == "param" else "input"
        name = _code(node.name) + (" (output)" if node is output else "")
        rows.append([name, _code(how), (_code(format_value(g.value(node))), f"color: {VALUE_COLOR}")])
    parts.append(_table(["node", "computed as", "value"], rows))
    if not g.has_backward:
        parts.append("<p>No backward pass yet: call <code>g.backward()</code> to see the gradients.</p></div>")
        return "\n".join(parts)

    contributions = gradient_contributions(g)
    parts.append(_heading(
        f"Backward pass, gate by gate in reverse order, starting from "
        f"{_code(f'd{out}/d{out} = {format_value(g.grad(output))}')}",
        escape=False,
    ))
    parts.append('<p style="margin: 0.2em 0">Each step: upstream × local gradient = gradient sent to the input.</p>')
    for number, step in enumerate(chain_rule_steps(g, contributions), start=1):
        node = step.node
        rows = [
            [
                _code(source.name),
                _code(format_value(step.upstream)),
                # for an array output: the product with the local Jacobian, never built
                _code(format_value(local) if local is not None else f"d{node.name}/d{source.name}"),
                (f"<b>{_code(format_value(sent))}</b>", f"color: {GRAD_COLOR}"),
            ]
            for source, sent, local in step.sent
        ]
        caption = (
            f"{number}. {_code(f'{node.name} = {expression(g, node)}')}, upstream "
            f'<span style="color: {GRAD_COLOR}">{_code(f"d{out}/d{node.name} = {step.received}")}</span>'
        )
        parts.append(_table(["to input", "upstream", "× local gradient", "= sent"], rows, caption))

    leaves = [node for node in order if node.kind in ("input", "param") and node.requires_grad]
    if leaves:
        parts.append(_heading(f"Gradients of {_code(out)}, summed where a value feeds several gates", escape=False))
        rows = [
            [_code(f"d{out}/d{node.name}"),
             (_code(sum_text(contributions.received.get(node.name, []), g.grad(node))), f"color: {GRAD_COLOR}")]
            for node in leaves
        ]
        parts.append(_table(["gradient", "value"], rows))
    parts.append("</div>")
    return "\n".join(parts)


_BOX = "font-family: sans-serif; font-size: 0.95em; line-height: 1.3"
_CELL = "border: 1px solid #ccc; padding: 2px 8px; text-align: left"


def _code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def _heading(text: str, escape: bool = True) -> str:
    return f'<h4 style="margin: 0.8em 0 0.3em">{html.escape(text) if escape else text}</h4>'


def _table(header: list[str], rows: list[list[Any]], caption: str | None = None) -> str:
    """An HTML table; each cell is HTML text, or (HTML text, extra CSS) for a coloured one."""
    head = "".join(f'<th style="{_CELL}; background: #f3f3f3">{html.escape(name)}</th>' for name in header)
    lines = []
    for row in rows:
        cells = []
        for cell in row:
            content, style = cell if isinstance(cell, tuple) else (cell, "")
            cells.append(f'<td style="{_CELL}{"; " + style if style else ""}">{content}</td>')
        lines.append("<tr>" + "".join(cells) + "</tr>")
    caption_html = f'<caption style="text-align: left; padding: 4px 0">{caption}</caption>' if caption else ""
    body = "\n".join(lines)
    return (f'<table style="border-collapse: collapse; margin: 0.3em 0 0.6em">{caption_html}'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>")
