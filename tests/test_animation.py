"""graph.animation.animate: the backward pass gate by gate, as a GIF or a self-contained HTML page."""

import base64
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from PIL import Image

import gates
from graph import ComputationalGraph, DrawingError
from graph.animation import MAX_ANIMATION_GATES, animate, backward_frames

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import lecture_circuits  # noqa: E402


def circuit(name, run=True):
    g, feeds = lecture_circuits.CIRCUITS[name]()
    if run:
        g.forward(feeds)
        g.backward()
    return g


def backward_gates(g):
    """The gates backward runs, in its order: those needing a gradient that the output depends on."""
    return [node.name for node in reversed(g.nodes_topologically_sorted())
            if node.kind == "gate" and node.requires_grad]


def test_frames_follow_the_reverse_topological_order_and_end_with_the_sums():
    g = circuit("sigmoid_neuron_gates")
    frames = backward_frames(g)
    assert [frame.gate for frame in frames] == backward_gates(g) + [None]
    assert frames[0].gate == "f" and len(frames) == 9  # 8 gates, then the end
    assert [len(frame.done) for frame in frames] == list(range(1, 9)) + [8]
    assert frames[0].caption[:2] == ["Step 1 of 8: f = 1/denominator", "upstream df/df = 1"]
    end = "\n".join(frames[-1].caption)
    assert "df/dw0 = -0.1966" in end and "df/dx1 = -0.5898" in end


def test_frame_captions_are_the_chain_rule():
    frames = backward_frames(circuit("add_multiply"))
    assert frames[0].caption == ["Step 1 of 2: f = q * z", "upstream df/df = 1",
                                 "  -> q: 1 × (-4) = -4", "  -> z: 1 × 3 = 3"]
    assert frames[1].caption == ["Step 2 of 2: q = x + y", "upstream df/dq = -4",
                                 "  -> x: -4 × 1 = -4", "  -> y: -4 × 1 = -4"]


def test_branches_are_summed_in_the_last_frame():
    frames = backward_frames(circuit("branches"))
    assert "  df/dx = 5 + 6 = 11" in frames[-1].caption  # in the order backward sent them, as explain() writes


@pytest.mark.slow
def test_gif_has_one_frame_per_backward_gate_plus_the_end(tmp_path):
    for name in ("add_multiply", "patterns", "vectorized"):
        g = circuit(name)
        path = animate(g, str(tmp_path / f"{name}.gif"))
        with Image.open(path) as image:
            assert image.format == "GIF"
            assert image.n_frames == len(backward_gates(g)) + 1
            assert image.info.get("loop") == 0
            first = np.asarray(image.convert("RGB"))
            image.seek(image.n_frames - 1)
            last = np.asarray(image.convert("RGB"))
            assert first.shape == last.shape and not np.array_equal(first, last)


def test_gif_highlights_the_current_gate_in_orange(tmp_path):
    path = animate(circuit("add_multiply"), str(tmp_path / "a.gif"))
    orange = np.array([0xE6, 0x55, 0x0D])

    def has_orange(image):
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
        return np.any(np.abs(pixels - orange).sum(axis=1) < 40)

    with Image.open(path) as image:
        assert has_orange(image)  # frame 1: gate f
        image.seek(image.n_frames - 1)
        assert not has_orange(image)  # the end: no gate is current


def test_html_is_self_contained_and_holds_every_frame(tmp_path):
    g = circuit("patterns")
    path = animate(g, str(tmp_path / "patterns.html"))
    text = open(path, encoding="utf-8").read()
    assert text.startswith("<!DOCTYPE html>")
    assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text
    images = re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == len(backward_gates(g)) + 1
    gates_in_order = re.findall(r'<div class="frame" data-gate="([^"]*)"', text)
    assert gates_in_order == backward_gates(g) + [""]
    first = base64.b64decode(images[0]).decode("utf-8")
    root = ElementTree.fromstring(first)  # each frame is valid SVG
    assert root.tag.endswith("svg")
    assert "upstream 1" in first and "Step 1 of 4: f = sum * 2" in first
    assert "df/dx = -8" in base64.b64decode(images[-1]).decode("utf-8")
    assert 'max="4"' in text and "1 / 5" in text  # the slider and the counter know the frame count


@pytest.mark.skipif(shutil.which("node") is None, reason="node checks the player's JavaScript syntax")
@pytest.mark.slow
def test_html_player_script_is_valid_javascript(tmp_path):
    path = animate(circuit("add_multiply"), str(tmp_path / "a.html"))
    script = re.search(r"<script>(.*)</script>", open(path, encoding="utf-8").read(), re.DOTALL).group(1)
    js = tmp_path / "player.js"
    js.write_text(script)
    result = subprocess.run(["node", "--check", str(js)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_refusals_raise_drawing_error(tmp_path):
    with pytest.raises(DrawingError, match="use a .gif or .html"):
        animate(circuit("add_multiply"), str(tmp_path / "a.png"))
    with pytest.raises(DrawingError, match="run g.forward"):
        animate(circuit("add_multiply", run=False), str(tmp_path / "a.gif"))
    g = circuit("add_multiply", run=False)
    g.forward({"x": -2.0, "y": 5.0, "z": -4.0})
    with pytest.raises(DrawingError, match="then g.backward"):
        animate(g, str(tmp_path / "a.gif"))
    with pytest.raises(DrawingError, match="positive"):
        animate(circuit("add_multiply"), str(tmp_path / "a.gif"), seconds_per_frame=0)
    assert not os.listdir(tmp_path)


def chain(gate_count):
    g = ComputationalGraph()
    node = g.add_input("x")
    for _ in range(gate_count):
        node = g.add_gate(gates.TanhGate(), node)
    g.forward({"x": 0.5})
    g.backward()
    return g


def test_graphs_of_more_than_the_limit_are_refused_with_a_clear_message(tmp_path):
    with pytest.raises(DrawingError, match=f"{MAX_ANIMATION_GATES + 1} gates.*more than {MAX_ANIMATION_GATES}"):
        animate(chain(MAX_ANIMATION_GATES + 1), str(tmp_path / "big.gif"))
    assert not os.listdir(tmp_path)


def test_nothing_to_animate_when_no_gate_sends_a_gradient(tmp_path):
    g = ComputationalGraph()
    x = g.add_input("x", requires_grad=False)
    w = g.add_input("w")
    g.add_gate(gates.TanhGate(), x, name="t")
    g.output = w
    g.forward({"x": 1.0, "w": 2.0})
    g.backward()
    with pytest.raises(DrawingError, match="nothing to animate"):
        animate(g, str(tmp_path / "a.gif"))


def test_constants_and_data_inputs_get_no_frame():
    g = circuit("patterns")  # 'two' is a constant: the gate f sends it nothing
    frames = backward_frames(g)
    assert not any("-> two" in line for line in frames[0].caption)
    assert frames[0].caption[2:] == ["  -> sum: 1 × 2 = 2"]


@pytest.mark.slow
def test_lecture_circuits_writes_one_animation_per_circuit(tmp_path, capsys):
    lecture_circuits.main(["--out", str(tmp_path), "--formats", "", "--animate",
                           "--only", "add_multiply", "--only", "branches"])
    assert sorted(os.listdir(tmp_path)) == ["add_multiply_backward.gif", "branches_backward.gif"]
    lecture_circuits.main(["--out", str(tmp_path), "--formats", "", "--animate", "html", "--only", "vectorized"])
    assert "vectorized_backward.html" in os.listdir(tmp_path)
    assert "wrote" in capsys.readouterr().out
