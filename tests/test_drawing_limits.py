"""g.draw: names with "$" drawn literally, and pictures too large to read scaled down or refused."""

import os
import re
import struct
import sys

import pytest

from graph import ComputationalGraph, DrawingError
from graph import drawing, layout

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))


def png_size(path):
    """(width, height) in pixels, from the PNG's IHDR chunk."""
    with open(path, "rb") as file:
        header = file.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def sum_chain(inputs):
    """((x0 + x1) + x2) + ...: every input in the first column, one column per gate: wide and deep."""
    g = ComputationalGraph()
    xs = [g.add_input(f"x{i}") for i in range(inputs)]
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    return g


@pytest.mark.parametrize("name", ["$x^2$", "cost in $", "$a$b$", r"$\frac{1}{2}$"])
def test_a_dollar_in_a_name_is_drawn_literally(tmp_path, name):
    g = ComputationalGraph()
    x = g.add_input(name)
    f = x * 2.0
    g.forward({name: 3.0})
    g.backward()
    path = str(tmp_path / "dollar.svg")
    g.draw(path)
    text = re.sub(r"<!--.*?-->", "", open(path, encoding="utf-8").read(), flags=re.S)  # matplotlib notes each text
    escaped = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert escaped in text  # svg.fonttype "none": text stays text, so mathtext would have split it
    assert f.name in text
    g.draw(str(tmp_path / "dollar.png"))  # and the png renders without a mathtext error


def test_a_graph_whose_picture_would_be_huge_is_refused_before_its_layout(tmp_path, monkeypatch):
    # 250 inputs feeding a 249-gate chain: 499 nodes, under the node cap, but 250 rows by 250 columns,
    # a 1.6-gigapixel png at 100 dpi.  The lower bound from the generations refuses it before the layout.
    g = sum_chain(250)
    assert len(g.nodes) == 499 < drawing.MAX_PICTURE_NODES

    def no_layout(*args, **kwargs):
        raise AssertionError("laid out a picture that is refused anyway")

    monkeypatch.setattr(drawing, "Layout", no_layout)
    for extension in ("png", "svg"):
        with pytest.raises(DrawingError, match=rf"cannot draw 'sum\.{extension}': the picture would be \d+ x \d+ "
                                               r"inches, \d+ megapixels at 100 dpi, too large to read even at 50 dpi"):
            g.draw(str(tmp_path / f"sum.{extension}"))
    assert list(tmp_path.iterdir()) == []
    g.draw(str(tmp_path / "sum.dot"))  # DOT text has no size: Graphviz lays it out


def test_a_large_picture_is_drawn_at_a_lower_resolution(tmp_path, monkeypatch):
    g = sum_chain(4)
    full = png_size(g.draw(str(tmp_path / "full.png")))
    monkeypatch.setattr(drawing, "MAX_PICTURE_PIXELS", full[0] * full[1] // 3)
    width, height = png_size(g.draw(str(tmp_path / "scaled.png")))
    assert width * height <= full[0] * full[1] // 3
    assert width * height >= full[0] * full[1] // 3 * 0.95  # scaled just enough, same proportions
    assert abs(width / height - full[0] / full[1]) < 0.02


def test_a_long_side_is_limited_too(tmp_path, monkeypatch):
    g = sum_chain(4)
    full = png_size(g.draw(str(tmp_path / "full.png")))
    monkeypatch.setattr(drawing, "MAX_PICTURE_SIDE", int(max(full) * 0.6))
    assert max(png_size(g.draw(str(tmp_path / "side.png")))) <= int(max(full) * 0.6)


def test_a_picture_that_would_need_less_than_the_minimum_resolution_is_refused(tmp_path, monkeypatch):
    g = sum_chain(4)
    full = png_size(g.draw(str(tmp_path / "full.png")))
    monkeypatch.setattr(drawing, "MAX_PICTURE_PIXELS", full[0] * full[1] // 5)  # would need 100 / sqrt(5) = 45 dpi
    with pytest.raises(DrawingError, match=r"too large to read even at 50 dpi \(the limit is"):
        g.draw(str(tmp_path / "small.png"))
    assert not (tmp_path / "small.png").exists()


@pytest.mark.parametrize(
    "width, height, dpi",
    [(10, 10, 100), (40, 50, 100), (100, 40, 100 * 0.5**0.5), (1000, 2, 65.535)],
)
def test_picture_dpi(width, height, dpi):
    assert drawing.picture_dpi(width, height, "g.png") == pytest.approx(dpi)


def test_picture_dpi_refuses_below_the_minimum():
    with pytest.raises(DrawingError, match=r"'g\.svg': the picture would be 500 x 100 inches, 500 megapixels"):
        drawing.picture_dpi(500, 100, "g.svg")


def input_chain(gates):
    """h = x + x + x ...: one input wired to every gate of a chain, a long wire through every column."""
    g = ComputationalGraph()
    x = g.add_input("x")
    h = x
    for _ in range(gates):
        h = h + x
    return g


def test_wires_through_many_columns_count_too(tmp_path, monkeypatch):
    g = input_chain(498)  # 499 nodes, one per column, but up to 497 wires pass through a column
    monkeypatch.setattr(drawing, "Layout", None)  # refused before any layout
    with pytest.raises(DrawingError, match=r"the picture would be \d+ x 5\d\d inches"):
        g.draw(str(tmp_path / "chain.png"))


@pytest.mark.parametrize("build", [lambda: sum_chain(7), lambda: input_chain(9), "circuits"])
def test_the_early_size_is_a_lower_bound_of_the_layout(build):
    import lecture_circuits  # noqa: F401  (scripts is on sys.path)

    graphs = [make()[0] for make in lecture_circuits.CIRCUITS.values()] if build == "circuits" else [build()]
    for g in graphs:
        width, height = layout.least_picture_size(g, layout.COLUMN_WIDTH)
        positions = layout.Layout(g).position
        xs = [x for x, _ in positions.values()]
        ys = [y for _, y in positions.values()]
        assert width <= max(xs) - min(xs) + 1.0 + 1e-9
        assert height <= max(ys) - min(ys) + 1.6 + 1e-9  # the margins render_picture adds above and below
