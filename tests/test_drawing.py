"""g.draw: PNG and SVG pictures with values and gradients on the wires, and Graphviz DOT text."""

import os
import re
import sys

import numpy as np
import pytest

import gates
from graph import ComputationalGraph
from graph.drawing import MAX_PICTURE_NODES, DrawingError
from graph.formatting import format_value

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import lecture_circuits  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def neuron(run=True):
    g, feeds = lecture_circuits.sigmoid_neuron_gates()
    if run:
        g.forward(feeds)
        g.backward()
    return g


def parse_dot(text):
    """A small DOT reader for what draw writes: (graph kind, node ids, edges)."""
    header = re.match(r"\s*(digraph|graph)\s+\w*\s*\{", text)
    assert header and text.rstrip().endswith("}"), "not a DOT graph"
    quoted = r'"((?:[^"\\]|\\.)*)"'
    nodes, edges = [], []
    for line in text.splitlines():
        edge = re.match(rf"\s*{quoted}\s*->\s*{quoted}", line)
        node = re.match(rf"\s*{quoted}\s*\[", line)
        if edge:
            edges.append((edge.group(1), edge.group(2)))
        elif node:
            nodes.append(node.group(1))
    assert text.count("{") == text.count("}")
    return header.group(1), nodes, edges


def test_png_is_a_real_png(tmp_path):
    path = neuron().draw(str(tmp_path / "neuron.png"))
    with open(path, "rb") as file:
        assert file.read(8) == PNG_MAGIC
    assert os.path.getsize(path) > 10_000


def test_png_before_any_pass_shows_the_structure(tmp_path):
    path = neuron(run=False).draw(str(tmp_path / "structure.png"))
    with open(path, "rb") as file:
        assert file.read(8) == PNG_MAGIC


def test_svg_shows_the_forward_values_and_gradients_of_the_sigmoid_neuron(tmp_path):
    path = neuron().draw(str(tmp_path / "neuron.svg"))
    with open(path, encoding="utf-8") as file:
        svg = file.read()
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    # The slide: values 2.00 -1.00 -3.00 -2.00 -3.00 ... 0.37 1.37 0.73 and
    # gradients -0.20 0.39 -0.39 -0.59 0.20 ... -0.53 1.00.
    for number in ["2.00", "-1.00", "-3.00", "-2.00", "6.00", "4.00", "0.37", "1.37", "0.73"]:
        assert number in texts, number
    for number in ["-0.20", "0.39", "-0.39", "-0.59", "0.20", "-0.53", "1.00"]:
        assert number in texts, number
    for gate_symbol in ["*", "+", "-x", "exp", "1/x"]:
        assert gate_symbol in texts


def test_svg_before_any_pass_has_no_numbers(tmp_path):
    path = neuron(run=False).draw(str(tmp_path / "structure.svg"))
    with open(path, encoding="utf-8") as file:
        texts = re.findall(r"<text[^>]*>([^<]*)</text>", file.read())
    assert "exp" in texts and "w0" in texts
    assert "0.73" not in texts and "-0.20" not in texts


def test_dot_parses_as_a_digraph_with_one_node_per_graph_node(tmp_path):
    g = neuron()
    path = g.draw(str(tmp_path / "neuron.dot"))
    with open(path, encoding="utf-8") as file:
        text = file.read()
    kind, nodes, edges = parse_dot(text)
    assert kind == "digraph"
    assert sorted(nodes) == sorted(node.name for node in g.nodes)
    assert len(set(nodes)) == len(nodes)
    assert sorted(edges) == sorted(g.digraph.edges())
    assert "rankdir=LR" in text
    assert "0.73" in text and "-0.20" in text and "1/x" in text


def test_dot_before_any_pass_is_structure_only_and_escapes_names(tmp_path):
    g = ComputationalGraph()
    a, b = g.add_input('a "quoted"'), g.add_input("b<c")
    g.add_gate(gates.AddGate(), a, b, name="sum & more")
    path = g.draw(str(tmp_path / "escaped.dot"))
    with open(path, encoding="utf-8") as file:
        text = file.read()
    _, nodes, edges = parse_dot(text)
    assert sorted(nodes) == sorted(['a \\"quoted\\"', "b<c", "sum & more"])
    assert len(edges) == 2
    assert "label=<<font" not in text  # no values before a pass
    assert "b&lt;c" in text and "sum &amp; more" in text


def test_a_value_used_twice_by_one_gate_is_one_wire_with_the_summed_gradient(tmp_path):
    g = ComputationalGraph()
    x = g.add_input("x")
    g.add_gate(gates.MultiplyGate(), x, x, name="square")
    g.forward({"x": 3.0})
    g.backward()
    _, nodes, edges = parse_dot(open(g.draw(str(tmp_path / "square.dot")), encoding="utf-8").read())
    assert edges == [("x", "square")]
    assert "6.00" in open(tmp_path / "square.dot", encoding="utf-8").read()


def test_fan_out_shows_the_sum_of_gradients(tmp_path):
    g, feeds = lecture_circuits.branches()
    g.forward(feeds)
    g.backward()
    text = open(g.draw(str(tmp_path / "branches.dot")), encoding="utf-8").read()
    assert "Σ 11.00" in text
    svg = open(g.draw(str(tmp_path / "branches.svg")), encoding="utf-8").read()
    assert "Σ 11.00" in svg


def test_arrays_show_shape_and_a_short_summary(tmp_path):
    g, feeds = lecture_circuits.vectorized()
    g.forward(feeds)
    g.backward()
    text = open(g.draw(str(tmp_path / "vectorized.dot")), encoding="utf-8").read()
    assert "[0.22, 0.26]" in text and "[0.44, 0.52]" in text
    assert "2×2 ∈[-0.30, 0.80]" in text
    assert format_value(np.zeros((64, 100)), wire=True) == "64×100 ∈[0.00, 0.00]"
    assert format_value(np.arange(5.0), wire=True) == "(5,) ∈[0.00, 4.00]"
    assert format_value(-0.19661193, wire=True) == "-0.20"
    assert format_value(1.5e-5, wire=True) == "1.5e-05"


def test_draw_refuses_unknown_formats_and_huge_pictures(tmp_path):
    g = ComputationalGraph()
    node = g.add_input("x")
    for _ in range(MAX_PICTURE_NODES):
        node = g.add_gate(gates.NegateGate(), node)
    with pytest.raises(DrawingError, match=r"\.png, \.svg or \.dot"):
        g.draw(str(tmp_path / "graph.jpg"))
    with pytest.raises(DrawingError, match=f"{MAX_PICTURE_NODES + 1} nodes"):
        g.draw(str(tmp_path / "graph.png"))
    assert not os.path.exists(tmp_path / "graph.png")


def test_dot_of_a_long_chain_needs_no_recursion(tmp_path):
    g = ComputationalGraph()
    node = g.add_input("x")
    for _ in range(5000):
        node = g.add_gate(gates.NegateGate(), node)
    g.forward({"x": 1.0})
    g.backward()
    _, nodes, edges = parse_dot(open(g.draw(str(tmp_path / "chain.dot")), encoding="utf-8").read())
    assert len(nodes) == 5001 and len(edges) == 5000


def test_picture_of_a_few_dozen_nodes(tmp_path):
    g = ComputationalGraph()
    xs = [g.add_input(f"x{i}") for i in range(3)]
    hidden = []
    for j in range(3):
        score = sum((g.add_input(f"w{j}{i}") * xs[i] for i in range(3)), g.add_input(f"b{j}"))
        hidden.append(g.add_gate(gates.SigmoidGate(), score))
    g.add_gate(gates.SigmoidGate(), hidden[0] * 0.5 + hidden[1] * 0.25 - hidden[2])
    assert 40 <= len(g.nodes) <= 60
    feeds = {node.name: 0.1 * (i + 1) for i, node in enumerate(g.nodes) if node.kind == "input"}
    g.forward(feeds)
    g.backward()
    with open(g.draw(str(tmp_path / "dozens.png")), "rb") as file:
        assert file.read(8) == PNG_MAGIC
