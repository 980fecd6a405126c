"""Pictures of a graph, as on the lecture's slides: ``g.draw(path)``.

Inputs on the left, the output on the right, gates in columns by topological
generation (networkx ``topological_generations``), each gate a circle with its
symbol.  After a pass every wire carries its forward value (green, above) and
the gradient flowing back along it (red, below); where a value feeds several
gates, the sum of those gradients is written under it (``Σ 11.00``).

* ``.png`` and ``.svg`` are drawn with matplotlib (``pip install gategraph[draw]``),
  imported only when a picture is asked for;
* ``.dot`` is Graphviz DOT text, written by hand: no Graphviz needed to write
  it (``dot -Tpng graph.dot -o graph.png`` renders it if you have Graphviz).

Where each node and wire goes is :mod:`graph.layout`'s, shared with the
notebook's picture and the animation.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

from graph.errors import DrawingError
from graph.explain import Contributions, gate_label, gradient_contributions
from graph.formatting import format_value
from graph.layout import Layout, column_width_for, gate_size, least_picture_size
from graph.node import NodeKind

#: Pictures (png, svg) of more nodes than this are refused: they would be a hairball.
MAX_PICTURE_NODES = 500
#: A png is drawn at DPI, or at a lower resolution (down to MIN_DPI) to stay within
#: MAX_PICTURE_PIXELS and MAX_PICTURE_SIDE pixels a side; a picture that needs less
#: than MIN_DPI (png or svg) is refused: its text would be unreadable.
DPI = 100
MIN_DPI = 50
MAX_PICTURE_PIXELS = 20_000_000
MAX_PICTURE_SIDE = 65_535

VALUE_COLOR = "#1a7f1a"  # forward values: green, above the wire
GRAD_COLOR = "#d62728"  # gradients: red, below the wire
# Every text is drawn with parse_math=False: a "$" in a node name is a dollar sign, not mathtext.
#: Names the graph made up (``SigmoidGate_3``, ``constant_1``): pictures leave them out.
AUTO_NAME = re.compile(r"^(\w+Gate|constant)_\d+$")


def draw_graph(g: Any, path: str) -> str:
    """Save a picture of ``g`` as it stands; return the path written.

    Parameters
    ----------
    g : ComputationalGraph
    path : str
        Ends in ``.png`` or ``.svg`` (matplotlib) or ``.dot`` (Graphviz text).

    Returns
    -------
    str : ``path``.

    Raises
    ------
    DrawingError
        For another extension, a graph without nodes, or a png/svg of more
        than ``MAX_PICTURE_NODES`` nodes (write ``.dot`` instead).
    ModuleNotFoundError
        For png/svg when matplotlib is not installed.
    """
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".png", ".svg", ".dot"):
        raise DrawingError(f"cannot draw to {path!r}: use a .png, .svg or .dot file name")
    nodes = g.nodes
    if not nodes:
        raise DrawingError("the graph is empty: add inputs and gates before drawing it")
    labels = WireLabels(g)
    if extension == ".dot":
        text = graph_to_dot(g, labels)
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
        return path
    if len(nodes) > MAX_PICTURE_NODES:
        raise DrawingError(
            f"the graph has {len(nodes)} nodes; a picture of more than {MAX_PICTURE_NODES} would be "
            f"unreadable. Draw a smaller part, or write a .dot file and lay it out with Graphviz"
        )
    column_width = column_width_for(labels.texts())
    # The layout of a wide and deep graph takes many seconds: refuse at once what is too large anyway.
    picture_dpi(*least_picture_size(g, column_width), path)
    render_picture(g, labels, Layout(g, column_width), path)
    return path


def picture_dpi(width: float, height: float, path: str) -> float:
    """The resolution to draw a ``width`` x ``height`` inch picture at, or a DrawingError if it is too large.

    DPI if the picture fits MAX_PICTURE_PIXELS and MAX_PICTURE_SIDE there,
    else the resolution at which it fits, if that is at least MIN_DPI.
    """
    scale = min(1.0, math.sqrt(MAX_PICTURE_PIXELS / (width * height * DPI * DPI)),
                MAX_PICTURE_SIDE / (max(width, height) * DPI))
    if scale * DPI < MIN_DPI:
        raise DrawingError(
            f"cannot draw {os.path.basename(path)!r}: the picture would be {width:.0f} x {height:.0f} inches, "
            f"{width * height * DPI * DPI / 1e6:.0f} megapixels at {DPI} dpi, too large to read even at "
            f"{MIN_DPI} dpi (the limit is {MAX_PICTURE_PIXELS / 1e6:.0f} megapixels). Draw a smaller part, "
            f"or write a .dot file and lay it out with Graphviz"
        )
    return scale * DPI


# ---------------------------------------------------------------- what the wires say


class WireLabels:
    """The value and gradient texts of every wire after a pass, as the pictures write them.

    Attributes
    ----------
    has_values, has_grads : bool
        Whether a forward (and a backward) pass has run.
    values : dict of node name to str
        Each node's value (empty before a forward).
    wire_grads : dict of (source name, gate name) to str
        The gradient each gate sent back along each wire.
    totals : dict of node name to str
        "Σ ..." for a node whose gradient sums what several gates sent.
    output_grad : str or None
        The output's own gradient.
    """

    def __init__(self, g: Any):
        self.has_values = g.has_forward
        self.has_grads = g.has_backward
        self.values: dict[str, str] = {}
        self.wire_grads: dict[tuple[str, str], str] = {}
        self.totals: dict[str, str] = {}
        self.output_grad: str | None = None
        if not self.has_values:
            return
        for node in g.nodes:
            self.values[node.name] = format_value(g.value(node), wire=True)
        if not self.has_grads:
            return
        contributions: Contributions = gradient_contributions(g)
        if g.output.requires_grad:
            self.output_grad = format_value(g.grad(g.output), wire=True)
        for node in g.nodes:
            if node.kind is not NodeKind.GATE:
                continue
            sums: dict[str, Any] = {}
            for position, source in enumerate(node.inputs):
                sent = contributions.sent.get((node.name, position))
                if sent is not None:  # x * x sends two gradients along one wire: add them
                    sums[source.name] = sent if source.name not in sums else sums[source.name] + sent
            for source_name, total in sums.items():
                self.wire_grads[(source_name, node.name)] = format_value(total, wire=True)
        for name, received in contributions.received.items():
            if len({gate for gate, _ in received}) > 1:
                self.totals[name] = "Σ " + format_value(g.grad(name), wire=True)

    def texts(self) -> list[str]:
        """Every text written along a wire: the values and the gradients (the widest sets the column width)."""
        return [*self.values.values(), *self.wire_grads.values()]


# ---------------------------------------------------------------- DOT text


def graph_to_dot(g: Any, labels: WireLabels | None = None) -> str:
    """The graph as Graphviz DOT text: one node statement per graph node, one edge per wire."""
    labels = labels or WireLabels(g)
    lines = [
        "digraph gategraph {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10, arrowsize=0.6];',
    ]
    sources = []
    for node in g.nodes:
        attributes = _dot_node_attributes(g, node, labels)
        lines.append(f"  {_dot_id(node.name)} [{attributes}];")
        if node.kind in ("input", "param"):
            sources.append(_dot_id(node.name))
    if sources:
        lines.append(f"  {{ rank=source; {'; '.join(sources)}; }}")
    for node in g.nodes:
        seen = set()
        for source in node.inputs:
            if source.name in seen:
                continue
            seen.add(source.name)
            label = _dot_edge_label(labels, source.name, node.name)
            lines.append(f"  {_dot_id(source.name)} -> {_dot_id(node.name)}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_node_attributes(g: Any, node: Any, labels: WireLabels) -> str:
    if node.kind is NodeKind.GATE:
        text = _html(gate_label(node.gate))
        if not AUTO_NAME.match(node.name):
            text += f'<br/><font point-size="9" color="gray40">{_html(node.name)}</font>'
        shape = "doublecircle" if node is g.output else "circle"
        extra = ""
        if node is g.output and labels.has_values:
            grad = f"<br/><font color=\"{GRAD_COLOR}\">{_html(labels.output_grad)}</font>" if labels.output_grad else ""
            extra = f', xlabel=<<font color="{VALUE_COLOR}">{_html(labels.values[node.name])}</font>{grad}>'
        return f'shape={shape}, margin=0.02, label=<{text}>{extra}'
    if node.kind is NodeKind.CONSTANT:
        value = labels.values.get(node.name, "")
        text = value if AUTO_NAME.match(node.name) else f"{node.name} {value}".strip()
        return f'shape=plaintext, fontcolor="gray40", label=<{_html(text or node.name)}>'
    total = labels.totals.get(node.name)
    text = _html(node.name)
    if total:
        text += f'<br/><font point-size="9" color="{GRAD_COLOR}">{_html(total)}</font>'
    return f"shape=plaintext, label=<{text}>"


def _dot_edge_label(labels: WireLabels, source: str, target: str) -> str:
    if not labels.has_values:
        return ""
    text = f'<font color="{VALUE_COLOR}">{_html(labels.values[source])}</font>'
    grad = labels.wire_grads.get((source, target))
    if grad is not None:
        text += f'<br/><font color="{GRAD_COLOR}">{_html(grad)}</font>'
    return f" [label=<{text}>]"


def _dot_id(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# ---------------------------------------------------------------- rendering


def render_picture(g: Any, labels: WireLabels, layout: Layout, path: Any) -> None:
    """Draw ``g`` with its wire labels at the layout's positions and save it with matplotlib.

    Parameters
    ----------
    g : ComputationalGraph
    labels : WireLabels
        The texts of the wires, ``WireLabels(g)``.
    layout : Layout
        Where every node and wire goes, ``Layout(g, column_width_for(labels.texts()))``.
    path : str or file object
        Where ``savefig`` writes: a file name (.png, .svg) or a file object,
        whose format is matplotlib's ``savefig.format``.

    Raises
    ------
    DrawingError
        If the picture would need less than MIN_DPI (:func:`picture_dpi`).
    ModuleNotFoundError
        Without matplotlib.
    """
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Circle, Ellipse
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            f"drawing {os.path.basename(path)!r} needs matplotlib: pip install 'gategraph[draw]' "
            f"(or pip install matplotlib); a .dot file needs nothing"
        ) from error

    nodes = {node.name: node for node in g.nodes}
    position = layout.position
    output = g.output

    def half_width(name) -> float:
        """Horizontal extent, right of the anchor, of what is drawn for a node."""
        node = nodes.get(name) if isinstance(name, str) else None
        if node is None:
            return 0.0
        if node.kind is NodeKind.GATE:
            return gate_size(gate_label(node.gate))[0] / 2.0
        return 0.05

    xs = [x for x, _ in position.values()]
    ys = [y for _, y in position.values()]
    leaf_texts = [name for name, node in nodes.items() if node.kind is not NodeKind.GATE]
    leaf_texts += [labels.totals.get(name, "") for name, node in nodes.items() if node.kind is not NodeKind.GATE]
    left = min(xs) - 0.11 * max(map(len, leaf_texts), default=1) - 0.4
    right = max(xs) + 0.6
    if output is not None:
        right = max(right, position[output.name][0] + half_width(output.name) + 1.5 + 0.12 * len(output.name))
    bottom, top = min(ys) - 0.85, max(ys) + 0.75
    width, height = right - left, top - bottom
    dpi = picture_dpi(width, height, path)

    with matplotlib.rc_context({"svg.fonttype": "none", "font.family": "DejaVu Sans"}):
        figure = Figure(figsize=(width, height))
        FigureCanvasAgg(figure)
        axes = figure.add_axes((0, 0, 1, 1))
        axes.set_xlim(left, right)
        axes.set_ylim(bottom, top)
        axes.set_aspect("equal")
        axes.axis("off")

        fan_out = {name: g.digraph.out_degree(name) for name in nodes}
        for source, target, waypoints in layout.chains:
            x0, y0 = position[source]
            x1, y1 = position[target]
            points = [(x0 + half_width(source), y0)]
            points += [position[waypoint] for waypoint in waypoints]
            points.append((x1 - half_width(target), y1))
            axes.plot([p[0] for p in points], [p[1] for p in points], color="black", linewidth=1.1, zorder=1)
            if labels.has_values:  # on the last stretch, where the value enters the gate
                spread = 0.62 if fan_out[source] > 1 and not waypoints else 0.5  # apart from sibling wires
                wire_text(axes, points[-2], points[-1], labels.values[source],
                           labels.wire_grads.get((source, target)), spread)

        for name, node in nodes.items():
            x, y = position[name]
            if node.kind is NodeKind.GATE:
                gate_width, gate_height = gate_size(gate_label(node.gate))
                if gate_width == gate_height:
                    shape = Circle((x, y), gate_width / 2.0)
                else:
                    shape = Ellipse((x, y), gate_width, gate_height)
                shape.set(facecolor="white", edgecolor="black", linewidth=1.3, zorder=3)
                axes.add_patch(shape)
                axes.text(x, y, gate_label(node.gate), ha="center", va="center", fontsize=12, zorder=4,
                          parse_math=False)
                if not AUTO_NAME.match(name) and node is not output:
                    axes.text(x, y + gate_height / 2.0 + 0.05, name, ha="center", va="bottom", fontsize=8.5,
                              color="gray", zorder=4, parse_math=False)
                under = y - gate_height / 2.0 - 0.05
            else:
                is_auto_constant = node.kind is NodeKind.CONSTANT and AUTO_NAME.match(name)
                text = labels.values.get(name, "const") if is_auto_constant else name
                color = "dimgray" if node.kind is NodeKind.CONSTANT else "black"
                axes.text(x, y, text, ha="right", va="center", fontsize=12, color=color, zorder=4,
                          parse_math=False)
                under = y - 0.18
            total = labels.totals.get(name)
            if total:
                axes.text(x, under, total, ha="center" if node.kind is NodeKind.GATE else "right", va="top",
                          fontsize=9, color=GRAD_COLOR, fontweight="bold", zorder=4, parse_math=False)

        if output is not None:
            x, y = position[output.name]
            start = (x + half_width(output.name), y)
            end = (x + half_width(output.name) + 1.3, y)
            axes.plot([start[0], end[0]], [y, y], color="black", linewidth=1.1, zorder=1)
            axes.text(end[0] + 0.06, y, output.name, ha="left", va="center", fontsize=12, zorder=4,
                      parse_math=False)
            if labels.has_values:
                wire_text(axes, start, end, labels.values[output.name], labels.output_grad)

        if labels.has_values:
            legend = "green: forward value" + ("   red: gradient of the output" if labels.has_grads else "")
            axes.text(left + 0.15, bottom + 0.12, legend, ha="left", va="bottom", fontsize=8, color="gray",
                      parse_math=False)
        figure.savefig(path, dpi=dpi)


def wire_text(axes: Any, start: tuple, end: tuple, value: str, grad: str | None, at: float = 0.5) -> None:
    """Write the value above and the gradient below a wire segment, ``at`` of the way along it, along it.

    Parameters
    ----------
    axes : matplotlib Axes
    start, end : (x, y)
        The segment's ends, in inches.
    value : str
        Written above, in VALUE_COLOR.
    grad : str or None
        Written below, in GRAD_COLOR (nothing when None).
    at : float
        Where along the segment, from 0 (start) to 1 (end).
    """
    (x0, y0), (x1, y1) = start, end
    angle = math.degrees(math.atan2(y1 - y0, x1 - x0))
    xm, ym = x0 + at * (x1 - x0), y0 + at * (y1 - y0)
    normal = (-math.sin(math.radians(angle)), math.cos(math.radians(angle)))
    gap = 0.04
    axes.text(xm + normal[0] * gap, ym + normal[1] * gap, value, color=VALUE_COLOR, fontsize=10,
              ha="center", va="bottom", rotation=angle, rotation_mode="anchor", zorder=2, parse_math=False)
    if grad is not None:
        axes.text(xm - normal[0] * gap, ym - normal[1] * gap, grad, color=GRAD_COLOR, fontsize=10,
                  ha="center", va="top", rotation=angle, rotation_mode="anchor", zorder=2, parse_math=False)
