"""graph.notebook (a graph's SVG, explain() as HTML) and docs/tutorial.ipynb, executed from the repository."""

import os
import re
import sys
import xml.etree.ElementTree as ElementTree

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

import gates
from graph import BackwardError, ComputationalGraph, DrawingError
from graph.notebook import explain_html, graph_svg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "docs", "tutorial.ipynb")
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import lecture_circuits  # noqa: E402


def first_circuit():
    g = ComputationalGraph()
    x, y, z = g.add_input("x"), g.add_input("y"), g.add_input("z")
    q = g.add_gate(gates.AddGate(), x, y, name="q")
    g.add_gate(gates.MultiplyGate(), q, z, name="f")
    return g, {"x": -2.0, "y": 5.0, "z": -4.0}


def svg_texts(svg):
    root = ElementTree.fromstring(svg)  # valid XML, or this raises
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return [element.text for element in root.iter("{http://www.w3.org/2000/svg}text") if element.text]


def test_svg_before_a_pass_shows_the_structure_only():
    g, _ = first_circuit()
    texts = svg_texts(graph_svg(g))
    for name in ("x", "y", "z", "q", "f", "+", "*"):
        assert name in texts
    assert not any(re.fullmatch(r"-?\d+\.\d\d", text) for text in texts)


def test_svg_after_a_pass_shows_values_and_gradients():
    g, feeds = first_circuit()
    g.forward(feeds)
    before_backward = svg_texts(graph_svg(g))
    assert "-12.00" in before_backward and "-4.00" in before_backward  # f's value, z's value
    assert "3.00" in before_backward and "1.00" not in before_backward
    g.backward()
    texts = svg_texts(graph_svg(g))
    assert "1.00" in texts  # df/df on the output wire
    assert texts.count("-4.00") >= 3  # z's value and the gradients sent to x and y
    assert graph_svg(g) == graph_svg(g)  # no date or random ids: a rerun gives the same text


def test_svg_refusals():
    with pytest.raises(DrawingError, match="empty"):
        graph_svg(ComputationalGraph())
    g = ComputationalGraph()
    node = g.add_input("x")
    for _ in range(501):
        node = g.add_gate(gates.TanhGate(), node)
    with pytest.raises(DrawingError, match="502 nodes"):
        graph_svg(g)


def html_rows(text):
    """The cells of every table row, as text, from explain_html's output (which is well-formed XML)."""
    root = ElementTree.fromstring(text)
    return [["".join(cell.itertext()) for cell in row.findall("td")] for row in root.iter("tr")
            if row.findall("td")]


@pytest.mark.parametrize("name", ["first", "branches", "patterns", "vectorized", "sigmoid_neuron_gates"])
def test_explain_html_has_every_chain_rule_step_of_explain(name):
    g, feeds = first_circuit() if name == "first" else lecture_circuits.CIRCUITS[name]()
    g.forward(feeds)
    g.backward()
    rows = html_rows(explain_html(g))
    steps = re.findall(r"^    -> (\S+): (.+?) (?:×|·) (.+) = (\S+|\[.*\]|shape .*)$", g.explain(), re.MULTILINE)
    assert steps
    for source, upstream, factor, sent in steps:
        factor = factor[1:-1] if factor.startswith("(") and factor.endswith(")") else factor
        assert [source, upstream, factor, sent] in rows, (source, upstream, factor, sent)
    totals = re.findall(r"^  (d\w+/d[\w.]+) = (.+)$", g.explain(), re.MULTILINE)
    for gradient, value in totals:
        assert [gradient, value] in rows


def test_explain_html_before_backward_and_before_forward():
    g, feeds = first_circuit()
    with pytest.raises(BackwardError, match="run g.forward"):
        explain_html(g)
    g.forward(feeds)
    text = explain_html(g)
    assert "No backward pass yet" in text and "Backward pass" not in text
    assert ["q", "x + y = -2 + 5", "3"] in html_rows(text)


def test_explain_html_escapes_names():
    g = ComputationalGraph()
    a = g.add_input("a<b&c")
    g.add_gate(gates.SumGate(), g.add_gate(gates.TanhGate(), a, name="t"), name="s")
    g.forward({"a<b&c": np.array([0.5, -0.5])})
    g.backward()
    text = explain_html(g)
    assert "a&lt;b&amp;c" in text
    html_rows(text)  # still well-formed


def test_a_graph_shows_itself_in_jupyter():
    g, feeds = first_circuit()
    before = svg_texts(g._repr_svg_())  # what Jupyter calls for a graph as a cell's last expression
    for name in ("x", "y", "z", "q", "f"):
        assert name in before
    assert "-12.00" not in before
    g.forward(feeds)
    g.backward()
    after = svg_texts(g._repr_svg_())
    for name in ("x", "y", "z", "q", "f", "-12.00", "1.00"):
        assert name in after
    assert ComputationalGraph()._repr_svg_() is None  # an empty graph: Jupyter falls back to the text repr


def test_explain_shows_as_html_in_jupyter():
    g, feeds = first_circuit()
    g.forward(feeds)
    g.backward()
    explanation = g.explain()
    assert isinstance(explanation, str) and "q = x + y = -2 + 5 = 3" in explanation
    text = explanation._repr_html_()
    assert text == explain_html(g)
    assert ["q", "x + y = -2 + 5", "3"] in html_rows(text)


# ---------------------------------------------------------------- the tutorial notebook


def test_committed_notebook_carries_its_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code) > 10
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))  # run top to bottom
    kinds = {key for cell in code for output in cell.outputs for key in output.get("data", {})}
    assert {"image/svg+xml", "image/png", "text/html"} <= kinds
    assert not any(output.output_type == "error" for cell in code for output in cell.outputs)
    # graphs show themselves (_repr_svg_) and explain() as tables (_repr_html_): no display helpers needed
    assert not any("graph_svg(" in cell.source or "explain_html(" in cell.source for cell in code)
    assert any(cell.source.strip().endswith("g.explain()") for cell in code)


@pytest.mark.slow
def test_notebook_runs_from_the_repository():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": os.path.join(ROOT, "docs")}})
    client.execute()  # raises CellExecutionError naming the cell if any cell fails
    streams = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for output in cell.outputs if output.output_type == "stream")
    assert "f = -12.0" in streams
    assert "{'x': -4.0, 'y': -4.0, 'z': 3.0}" in streams
    assert "gate SquareGate: passed" in streams and "gate BrokenSquareGate: FAILED" in streams
    assert "['squared']" in streams and "check_gates: 1 of 5 gates wrong: 'squared'" in streams
    accuracy = float(re.search(r"test accuracy (0\.\d+)", streams).group(1))
    assert accuracy > 0.9
