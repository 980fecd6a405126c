"""Where each node and wire of a graph goes in a picture.

The one layout that ``g.draw`` (:mod:`graph.drawing`), the notebook's
picture (:mod:`graph.notebook`) and the animation (:mod:`graph.animation`)
all use: inputs on the left, the output on the right, gates in columns by
topological generation (networkx ``topological_generations``).

It is a small Sugiyama-style layout: columns by generation, long wires
split by invisible waypoints, a few barycenter sweeps to order each column,
then each column nudged towards its neighbours' heights.  Nothing recurses.
All sizes are in inches.
"""

from __future__ import annotations

from typing import Any, Iterable

import networkx as nx

from graph.node import NodeKind

COLUMN_WIDTH = 2.3  # inches between columns, at least
ROW_HEIGHT = 1.1  # inches between rows
GATE_RADIUS = 0.27  # inches


def column_width_for(texts: Iterable[str]) -> float:
    """The width of a column, in inches: COLUMN_WIDTH, or wider so that the longest wire label fits.

    Parameters
    ----------
    texts : iterable of str
        The labels written along the wires (values and gradients).

    Returns
    -------
    float
    """
    longest = max((len(text) for text in texts), default=0)
    return max(COLUMN_WIDTH, 0.075 * longest + 1.3)


def gate_size(label: str) -> tuple[float, float]:
    """(width, height) in inches of a gate's circle, or ellipse for a long label."""
    if len(label) <= 3:
        return 2 * GATE_RADIUS, 2 * GATE_RADIUS
    return 0.13 * len(label) + 0.2, 2 * GATE_RADIUS


def least_picture_size(g: Any, column_width: float) -> tuple[float, float]:
    """A lower bound on the (width, height) in inches of the picture, found without laying it out.

    One column per topological generation; a column is at least as tall as
    its nodes plus the wires passing through it (each gets a waypoint
    there).  Constants, which the layout moves next to their gate, are
    left out, so this never exceeds what :class:`Layout` gives.
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


class Layout:
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
