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

The layout is a small Sugiyama-style one: columns by generation, long wires
split by invisible waypoints, a few barycenter sweeps to order each column,
then each column nudged towards its neighbours' heights.  Nothing recurses.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

import networkx as nx
import numpy as np

from graph.errors import DrawingError
from graph.explain import Contributions, gate_label, gradient_contributions
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
COLUMN_WIDTH = 2.3  # inches between columns
ROW_HEIGHT = 1.1  # inches between rows
GATE_RADIUS = 0.27  # inches
# Every text is drawn with parse_math=False: a "$" in a node name is a dollar sign, not mathtext.
_AUTO_NAME = re.compile(r"^(\w+Gate|constant)_\d+$")


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
    labels = _WireLabels(g)
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
    longest = max((len(text) for text in [*labels.values.values(), *labels.wire_grads.values()]), default=0)
    column_width = max(COLUMN_WIDTH, 0.075 * longest + 1.3)
    # The layout of a wide and deep graph takes many seconds: refuse at once what is too large anyway.
    picture_dpi(*_least_picture_size(g, column_width), path)
    _render(g, labels, _Layout(g, column_width), path)
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


def _least_picture_size(g: Any, column_width: float) -> tuple[float, float]:
    """A lower bound on the (width, height) in inches of the picture, found without laying it out.

    One column per topological generation; a column is at least as tall as
    its nodes plus the wires passing through it (each gets a waypoint
    there).  Constants, which the layout moves next to their gate, are
    left out, so this never exceeds what ``_Layout`` gives.
    """
    depth = {name: index for index, generation in enumerate(nx.topological_generations(g.digraph))
             for name in generation}
    constants = {node.name for node in g.nodes if node.kind is NodeKind.CONSTANT}
    columns = max(depth.values()) + 1
    rows = [0] * (columns + 1)
    passing = [0] * (columns + 1)  # differences: +1 where a long wire starts passing, -1 where it stops
    for name, column in depth.items():
        if name not in constants:
            rows[column] += 1
    for source, target in g.digraph.edges():
        if source not in constants and depth[target] - depth[source] > 1:
            passing[depth[source] + 1] += 1
            passing[depth[target]] -= 1
    tallest, through = 1, 0
    for column in range(columns):
        through += passing[column]
        tallest = max(tallest, rows[column] + through)
    return (columns - 1) * column_width + 1.0, tallest * ROW_HEIGHT


# ---------------------------------------------------------------- what the wires say


def short_number(number: float) -> str:
    """A number as on the slides: two decimals (0.73, -0.20), or two figures when tiny or huge."""
    number = float(number) + 0.0
    if number == 0.0 or 0.01 <= abs(number) < 1000.0:
        return f"{number:.2f}"
    if not math.isfinite(number):
        return str(number)
    return f"{number:.2g}"


def short_value(value: Any) -> str:
    """A scalar as a number, an array of up to 3 elements in full, a larger one as shape and range."""
    if np.ndim(value) == 0:
        return short_number(value)
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 1 and array.size <= 3:
        return "[" + ", ".join(short_number(v) for v in array) + "]"
    shape = f"({array.shape[0]},)" if array.ndim == 1 else "×".join(str(n) for n in array.shape)
    if array.size == 0:
        return f"{shape} empty"
    if not np.all(np.isfinite(array)):
        return f"{shape} has NaN/inf"
    return f"{shape} ∈[{short_number(array.min())}, {short_number(array.max())}]"


class _WireLabels:
    """The value and gradient texts of every wire, or None before a pass."""

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
            self.values[node.name] = short_value(g.value(node))
        if not self.has_grads:
            return
        contributions: Contributions = gradient_contributions(g)
        if g.output.requires_grad:
            self.output_grad = short_value(g.grad(g.output))
        for node in g.nodes:
            if node.kind is not NodeKind.GATE:
                continue
            sums: dict[str, Any] = {}
            for position, source in enumerate(node.inputs):
                sent = contributions.sent.get((node.name, position))
                if sent is not None:  # x * x sends two gradients along one wire: add them
                    sums[source.name] = sent if source.name not in sums else sums[source.name] + sent
            for source_name, total in sums.items():
                self.wire_grads[(source_name, node.name)] = short_value(total)
        for name, received in contributions.received.items():
            if len({gate for gate, _ in received}) > 1:
                self.totals[name] = "Σ " + short_value(g.grad(name))


# ---------------------------------------------------------------- DOT text


def graph_to_dot(g: Any, labels: _WireLabels | None = None) -> str:
    """The graph as Graphviz DOT text: one node statement per graph node, one edge per wire."""
    labels = labels or _WireLabels(g)
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


def _dot_node_attributes(g: Any, node: Any, labels: _WireLabels) -> str:
    if node.kind is NodeKind.GATE:
        text = _html(gate_label(node.gate))
        if not _AUTO_NAME.match(node.name):
            text += f'<br/><font point-size="9" color="gray40">{_html(node.name)}</font>'
        shape = "doublecircle" if node is g.output else "circle"
        extra = ""
        if node is g.output and labels.has_values:
            grad = f"<br/><font color=\"{GRAD_COLOR}\">{_html(labels.output_grad)}</font>" if labels.output_grad else ""
            extra = f', xlabel=<<font color="{VALUE_COLOR}">{_html(labels.values[node.name])}</font>{grad}>'
        return f'shape={shape}, margin=0.02, label=<{text}>{extra}'
    if node.kind is NodeKind.CONSTANT:
        value = labels.values.get(node.name, "")
        text = value if _AUTO_NAME.match(node.name) else f"{node.name} {value}".strip()
        return f'shape=plaintext, fontcolor="gray40", label=<{_html(text or node.name)}>'
    total = labels.totals.get(node.name)
    text = _html(node.name)
    if total:
        text += f'<br/><font point-size="9" color="{GRAD_COLOR}">{_html(total)}</font>'
    return f"shape=plaintext, label=<{text}>"


def _dot_edge_label(labels: _WireLabels, source: str, target: str) -> str:
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


# ---------------------------------------------------------------- layout


class _Layout:
    """Columns, rows and waypoints of every node and wire, in inches.

    Attributes
    ----------
    position : dict of node name to (x, y)
    wires : list of (source name, target name, [(x, y) waypoints between them])
    """

    def __init__(self, g: Any, column_width: float = COLUMN_WIDTH):
        digraph = g.digraph
        column = {}
        for depth, generation in enumerate(nx.topological_generations(digraph)):
            for name in generation:
                column[name] = depth
        # Constants sit just left of the gate that uses them, not at the far left.
        for node in g.nodes:
            if node.kind is NodeKind.CONSTANT:
                consumers = [column[name] for name in digraph.successors(node.name)]
                column[node.name] = max(min(consumers, default=1) - 1, 0)
        creation = {node.name: index for index, node in enumerate(g.nodes)}

        # Long wires get one waypoint per column they cross.
        columns: list[list[Any]] = [[] for _ in range(max(column.values()) + 1)]
        for name in sorted(column, key=creation.get):
            columns[column[name]].append(name)
        predecessors: dict[Any, list[Any]] = {name: [] for name in column}
        successors: dict[Any, list[Any]] = {name: [] for name in column}
        self.chains: list[tuple[str, str, list[Any]]] = []
        for source, target in digraph.edges():
            chain = [source]
            for depth in range(column[source] + 1, column[target]):
                waypoint = ("waypoint", source, target, depth)
                columns[depth].append(waypoint)
                predecessors[waypoint], successors[waypoint] = [], []
                chain.append(waypoint)
            chain.append(target)
            for a, b in zip(chain, chain[1:]):
                successors[a].append(b)
                predecessors[b].append(a)
            self.chains.append((source, target, chain[1:-1]))

        rank = _order_columns(columns, predecessors, successors)
        columns = [sorted(items, key=rank.get) for items in columns]
        constants = {node.name for node in g.nodes if node.kind is NodeKind.CONSTANT}
        height = _heights(columns, predecessors, successors, lambda item: item in constants)
        self.position = {
            item: (column_index * column_width, height[item] * ROW_HEIGHT)
            for column_index, items in enumerate(columns)
            for item in items
        }
        self.rows = max(len(items) for items in columns)
        self.columns = len(columns)


def _order_columns(columns, predecessors, successors, sweeps: int = 4) -> dict:
    """Order each column by the mean rank of its neighbours (barycenter sweeps).

    Returns the rank of every item in the order with the fewest crossings seen.
    """
    rank = {item: index for items in columns for index, item in enumerate(items)}
    best, best_crossings = dict(rank), _crossings(columns, rank, successors)
    for sweep in range(sweeps):
        forward = sweep % 2 == 0
        indices = range(1, len(columns)) if forward else range(len(columns) - 2, -1, -1)
        neighbours = predecessors if forward else successors
        for index in indices:
            items = columns[index]

            def barycenter(item, rank=rank, neighbours=neighbours):
                near = neighbours[item]
                return sum(rank[other] for other in near) / len(near) if near else rank[item]

            for position, item in enumerate(sorted(items, key=lambda item: (barycenter(item), rank[item]))):
                rank[item] = position
        crossings = _crossings(columns, rank, successors)
        if crossings < best_crossings:
            best, best_crossings = dict(rank), crossings
    return best


def _crossings(columns, rank, successors) -> int:
    """Number of wire crossings between neighbouring columns."""
    total = 0
    for items in columns:
        wires = sorted((rank[a], rank[b]) for a in items for b in successors[a])
        for i, (_, b1) in enumerate(wires):
            for a2, b2 in wires[i + 1:]:
                if b2 < b1 and a2 != wires[i][0]:
                    total += 1
    return total


def _heights(columns, predecessors, successors, is_constant, rounds: int = 3) -> dict:
    """A height per item: one row apart within a column, each level with what feeds it.

    The first column is stacked top to bottom.  Then, column by column from
    the left, each item is placed at the mean height of its inputs (a
    constant instead just below the gate it feeds), keeping the column's
    order and one row of spacing (an isotonic regression, by
    pool-adjacent-violators).  A few rounds let constants and gates settle.
    """
    height = {}
    for items in columns:
        for index, item in enumerate(items):
            height[item] = (len(items) - 1) / 2.0 - index
    for _ in range(rounds):
        for items in columns[1:]:
            wanted = []
            for item in items:
                feeding = [other for other in predecessors[item] if not is_constant(other)]
                if feeding:
                    wanted.append(sum(height[other] for other in feeding) / len(feeding))
                elif successors[item]:  # a constant: just below its gate
                    wanted.append(sum(height[other] for other in successors[item]) / len(successors[item]) - 0.6)
                else:
                    wanted.append(height[item])
            for item, value in zip(items, _spaced(wanted)):
                height[item] = value
    middle = (max(height.values()) + min(height.values())) / 2.0
    return {item: value - middle for item, value in height.items()}


def _spaced(wanted: list[float]) -> list[float]:
    """The closest heights to ``wanted`` that decrease by at least 1 from each to the next."""
    targets = [value + index for index, value in enumerate(wanted)]  # must be non-increasing
    blocks: list[list[float]] = []  # [mean, count]
    for value in targets:
        blocks.append([value, 1])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            mean, count = blocks.pop()
            previous_mean, previous_count = blocks[-1]
            total = previous_count + count
            blocks[-1] = [(previous_mean * previous_count + mean * count) / total, total]
    fitted = [mean for mean, count in blocks for _ in range(count)]
    return [value - index for index, value in enumerate(fitted)]


# ---------------------------------------------------------------- rendering


def _render(g: Any, labels: _WireLabels, layout: _Layout, path: str) -> None:
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
            return _gate_size(gate_label(node.gate))[0] / 2.0
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
                _wire_text(axes, points[-2], points[-1], labels.values[source],
                           labels.wire_grads.get((source, target)), spread)

        for name, node in nodes.items():
            x, y = position[name]
            if node.kind is NodeKind.GATE:
                gate_width, gate_height = _gate_size(gate_label(node.gate))
                if gate_width == gate_height:
                    shape = Circle((x, y), gate_width / 2.0)
                else:
                    shape = Ellipse((x, y), gate_width, gate_height)
                shape.set(facecolor="white", edgecolor="black", linewidth=1.3, zorder=3)
                axes.add_patch(shape)
                axes.text(x, y, gate_label(node.gate), ha="center", va="center", fontsize=12, zorder=4,
                          parse_math=False)
                if not _AUTO_NAME.match(name) and node is not output:
                    axes.text(x, y + gate_height / 2.0 + 0.05, name, ha="center", va="bottom", fontsize=8.5,
                              color="gray", zorder=4, parse_math=False)
                under = y - gate_height / 2.0 - 0.05
            else:
                is_auto_constant = node.kind is NodeKind.CONSTANT and _AUTO_NAME.match(name)
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
                _wire_text(axes, start, end, labels.values[output.name], labels.output_grad)

        if labels.has_values:
            legend = "green: forward value" + ("   red: gradient of the output" if labels.has_grads else "")
            axes.text(left + 0.15, bottom + 0.12, legend, ha="left", va="bottom", fontsize=8, color="gray",
                      parse_math=False)
        figure.savefig(path, dpi=dpi)


def _gate_size(label: str) -> tuple[float, float]:
    """(width, height) in inches of a gate's circle, or ellipse for a long label."""
    if len(label) <= 3:
        return 2 * GATE_RADIUS, 2 * GATE_RADIUS
    return 0.13 * len(label) + 0.2, 2 * GATE_RADIUS


def _wire_text(axes: Any, start: tuple, end: tuple, value: str, grad: str | None, at: float = 0.5) -> None:
    """The value above and the gradient below a wire segment (``at`` of the way along), along it."""
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
