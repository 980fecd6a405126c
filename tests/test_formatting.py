"""One value formatter (graph.formatting) and one layout (graph.layout) for every teaching tool; no private imports."""

from __future__ import annotations

import ast
import doctest
import os

import numpy as np
import pytest

import graph.formatting
from graph import ComputationalGraph, drawing, layout, messages
from graph.formatting import format_number, format_value, slide_number

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("value, text", [
    (0.7310585786, "0.7311"),
    (-0.0, "0"),
    (np.float32(2.5), "2.5"),
    (np.array([1.0, -1.0]), "[1, -1]"),
    (np.array([[0.1, 0.5], [-0.3, 0.8]]), "[[0.1, 0.5], [-0.3, 0.8]]"),
    (np.zeros(0), "[]"),
    (np.arange(7.0), "shape (7,), mean 3, range [0, 6]"),
    (np.array([1.0, np.nan, 2, 3, 4, 5, 6]), "shape (7,), contains NaN or inf"),
    (None, "none"),
])
def test_the_text_form(value, text):
    assert format_value(value) == text


@pytest.mark.parametrize("value, text", [
    (-0.19661193, "-0.20"),
    (11.0, "11.00"),
    (1.5e-5, "1.5e-05"),
    (np.array([0.73, -0.2]), "[0.73, -0.20]"),
    (np.arange(5.0), "(5,) ∈[0.00, 4.00]"),
    (np.array([[-0.3, 0.8], [0.1, 0.2]]), "2×2 ∈[-0.30, 0.80]"),
    (np.zeros((0, 3)), "0×3 empty"),
    (np.array([np.inf, 0.0, 1.0, 2.0]), "(4,) has NaN/inf"),
])
def test_the_wire_form_writes_numbers_as_the_slides_do(value, text):
    assert format_value(value, wire=True) == text


def test_the_message_form_is_the_same_formatter_with_more_digits_and_no_statistics():
    assert messages.show(np.array([1.0, -1.0])) == format_value(np.array([1.0, -1.0]), digits=6) == "[1, -1]"
    assert messages.show(1.2345678) == "1.23457"
    assert messages.show(np.ones((4, 5))) == "shape (4, 5)"
    assert messages.show(np.arange(10.0)) == "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"


def test_numbers():
    assert format_number(-1e-30 * 0.0) == "0"
    assert format_number(123456.0, 3) == "1.23e+05"
    assert slide_number(float("inf")) == "inf"
    assert slide_number(2500.0) == "2.5e+03"


def test_the_module_examples_run():
    result = doctest.testmod(graph.formatting)
    assert result.attempted >= 5 and result.failed == 0


def test_drawing_notebook_and_animation_lay_a_graph_out_with_the_one_layout():
    for module in ("drawing", "notebook", "animation"):
        with open(os.path.join(ROOT, "graph", f"{module}.py"), encoding="utf-8") as file:
            tree = ast.parse(file.read())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and node.module == "graph.layout" for alias in node.names}
        defined = {node.name for node in ast.walk(tree) if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
        assert "Layout" in imported and "Layout" not in defined, module
    g = ComputationalGraph()
    x, y = g.add_input("x"), g.add_input("y")
    _ = (x + y) * x
    g.forward({"x": 2.0, "y": 3.0})
    g.backward()
    labels = drawing.WireLabels(g)
    positions = layout.Layout(g, layout.column_width_for(labels.texts())).position
    assert {name for name in positions if isinstance(name, str)} == {node.name for node in g.nodes}
    assert labels.values["x"] == "2.00" and labels.totals["x"] == "Σ " + format_value(g.grad("x"), wire=True)


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for package in ("gates", "graph"):
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as file:
                    tree = ast.parse(file.read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("gates", "graph"):
                        offenders += [f"{os.path.relpath(path, ROOT)}: {alias.name}" for alias in node.names
                                      if alias.name.startswith("_")]
    assert offenders == [], offenders


def test_short_repr_cuts_long_text_and_keeps_short_text():
    from graph.formatting import short_repr

    assert short_repr("abc") == "'abc'"
    long = short_repr(list(range(100)))
    assert len(long) == 60 and long.endswith("...") and long.startswith("[0, 1, 2")
