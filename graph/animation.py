"""The backward pass as an animation, one gate at a time: ``animate(g, "backprop.gif")``.

After ``g.forward(feeds)`` and ``g.backward()``, each frame shows the graph
as :mod:`graph.drawing` draws it (forward values in green above every wire)
with one gate highlighted, in reverse topological order:

* the gate, filled orange, and the wires its upstream gradient came from,
  drawn orange, with ``upstream`` written under the gate;
* what it sends to each input, in bold red on the input wires, and the
  chain rule at the top: ``upstream × local gradient = sent``;
* the gradients sent by the gates already visited stay on their wires.

The last frame shows every gradient and, under each input and parameter,
its total, summed where a value feeds several gates.

* ``.gif``: frames drawn with matplotlib (Agg), assembled with Pillow (which
  matplotlib depends on); each step shows for ``seconds_per_frame``, the end
  three times as long, and the animation loops.
* ``.html``: one self-contained file (no internet needed), the frames as
  embedded SVG images with their text below, and buttons, a slider and the
  arrow keys to step through them.

Graphs of up to :data:`MAX_ANIMATION_GATES` gates are animated; a bigger one
would be unreadable frame by frame (use ``g.draw`` and ``g.explain``).
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
from typing import Any

from graph.drawing import AUTO_NAME, GRAD_COLOR, WireLabels, wire_text
from graph.errors import DrawingError
from graph.explain import chain_rule_steps, expression, gradient_contributions, step_text, sum_text
from graph.formatting import format_value
from graph.layout import Layout, column_width_for, gate_size

#: Graphs with more gates than this are refused.
MAX_ANIMATION_GATES = 40
HIGHLIGHT = "#e6550d"  # the gate of the current step and its upstream wires
HIGHLIGHT_FILL = "#fdd0a2"
CAPTION_LINES = 12  # at most this many lines of chain rule per frame; more are summarized
DPI = 80


class Frame:
    """One picture of the animation: the gate of one backward step, or the end.

    Attributes
    ----------
    gate : str or None
        The node name of the gate this frame highlights; None for the last frame.
    done : frozenset of str
        The gates whose gradients are on the wires in this frame (``gate`` included).
    caption : list of str
        The text above the graph: the step and its chain rule, or the summed gradients.
    """

    __slots__ = ("gate", "done", "caption")

    def __init__(self, gate: str | None, done: frozenset, caption: list[str]):
        self.gate = gate
        self.done = done
        self.caption = caption

    def __repr__(self) -> str:
        return f"Frame({self.gate!r}, {len(self.done)} gates done)"


def animate(g: Any, path: str, seconds_per_frame: float = 1.5) -> str:
    """Write an animation of the last backward pass of ``g`` to ``path``; return the path.

    Parameters
    ----------
    g : ComputationalGraph
        After ``g.forward(feeds)`` and ``g.backward()``, with at most
        :data:`MAX_ANIMATION_GATES` gates.
    path : str
        Ends in ``.gif`` or ``.html``.
    seconds_per_frame : float
        How long each step shows in the GIF (the last frame three times as
        long); the HTML player uses it when playing.

    Returns
    -------
    str : ``path``.

    Raises
    ------
    DrawingError
        For another extension, a graph with too many gates, no backward
        pass yet, or no gate the output depends on.
    ModuleNotFoundError
        Without matplotlib (``pip install gategraph[draw]``).
    """
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".gif", ".html"):
        raise DrawingError(f"cannot animate to {path!r}: use a .gif or .html file name")
    if not seconds_per_frame > 0:
        raise DrawingError(f"seconds_per_frame must be positive, got {seconds_per_frame!r}")
    gate_count = sum(1 for node in g.nodes if node.kind == "gate")
    if gate_count > MAX_ANIMATION_GATES:
        raise DrawingError(
            f"the graph has {gate_count} gates; an animation of more than {MAX_ANIMATION_GATES} would be "
            f"unreadable frame by frame. Animate a smaller circuit, or use g.draw() and g.explain()"
        )
    frames = backward_frames(g)
    renderer = _FrameRenderer(g, frames)
    if extension == ".gif":
        _write_gif(renderer, frames, path, seconds_per_frame)
    else:
        _write_html(renderer, frames, path, seconds_per_frame)
    return path


def backward_frames(g: Any) -> list[Frame]:
    """The frames of the animation: one per gate of the last backward pass, in its order, then the end.

    Raises
    ------
    DrawingError
        Before a backward pass, or when no gate sent a gradient.
    """
    if not g.has_forward or not g.has_backward:
        raise DrawingError("an animation shows the last backward pass: run g.forward(feeds), then g.backward()")
    contributions = gradient_contributions(g)
    order = g.nodes_topologically_sorted()
    steps = chain_rule_steps(g, contributions)
    if not steps:
        raise DrawingError(f"nothing to animate: no gate sends a gradient towards {g.output.name!r}")
    out = g.output.name
    frames, done = [], set()
    for number, step in enumerate(steps, start=1):
        node = step.node
        done.add(node.name)
        caption = [
            f"Step {number} of {len(steps)}: {node.name} = {expression(g, node)}",
            f"upstream d{out}/d{node.name} = {step.received}",
        ]
        caption += [f"  -> {source.name}: {step_text(step, source, sent, local)}" for source, sent, local in step.sent]
        frames.append(Frame(node.name, frozenset(done), _capped(caption)))
    leaves = [node for node in order if node.kind in ("input", "param") and node.requires_grad]
    caption = [f"Gradients of {out}, summed where a value feeds several gates:"]
    for node in leaves:
        caption.append(f"  d{out}/d{node.name} = {sum_text(contributions.received.get(node.name, []), g.grad(node))}")
    frames.append(Frame(None, frozenset(done), _capped(caption)))
    return frames


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= CAPTION_LINES:
        return lines
    hidden = len(lines) - CAPTION_LINES + 1
    return lines[: CAPTION_LINES - 1] + [f"  ... and {hidden} more lines (see g.explain())"]


# ---------------------------------------------------------------- drawing the frames


class _FrameRenderer:
    """Draws frames of one graph on one matplotlib Figure of a fixed size."""

    def __init__(self, g: Any, frames: list[Frame]):
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ModuleNotFoundError as error:
            raise ModuleNotFoundError(
                "an animation needs matplotlib: pip install 'gategraph[draw]' (or pip install matplotlib)"
            ) from error
        self.g = g
        self.labels = WireLabels(g)
        self.layout = Layout(g, column_width_for(self.labels.texts()))
        self.nodes = {node.name: node for node in g.nodes}
        position = self.layout.position
        xs = [x for x, _ in position.values()]
        ys = [y for _, y in position.values()]
        leaf_texts = [name for name, node in self.nodes.items() if node.kind != "gate"]
        leaf_texts += [self._leaf_total(name) for name, node in self.nodes.items() if node.kind != "gate"]
        self.left = min(xs) - 0.11 * max(map(len, leaf_texts), default=1) - 0.4
        output = g.output
        self.right = max(max(xs) + 0.6, position[output.name][0] + self._half_width(output.name) + 1.5
                         + 0.12 * len(output.name))
        self.bottom, self.top = min(ys) - 0.95, max(ys) + 0.75
        caption_lines = max(len(frame.caption) for frame in frames)
        caption_chars = max(len(line) for frame in frames for line in frame.caption)
        self.caption_height = 0.22 * caption_lines + 0.35
        graph_width = self.right - self.left
        self.width = max(graph_width, 0.085 * caption_chars + 0.5)
        graph_height = self.top - self.bottom
        self.height = graph_height + self.caption_height
        self.figure = Figure(figsize=(self.width, self.height))
        FigureCanvasAgg(self.figure)
        self.graph_box = (0.0, 0.0, graph_width / self.width, graph_height / self.height)

    def _half_width(self, name: Any) -> float:
        node = self.nodes.get(name) if isinstance(name, str) else None
        if node is None:
            return 0.0
        if node.kind == "gate":
            return gate_size(node.gate.label())[0] / 2.0
        return 0.05

    def _leaf_total(self, name: str) -> str:
        """What the last frame writes under an input or parameter: its gradient, Σ when summed."""
        node = self.nodes[name]
        if node.kind not in ("input", "param") or not node.requires_grad:
            return ""
        return self.labels.totals.get(name) or format_value(self.g.grad(name), wire=True)

    def draw(self, frame: Frame) -> Any:
        """Draw ``frame`` on the figure (cleared first) and return the figure."""
        import matplotlib
        from matplotlib.patches import Circle, Ellipse

        figure, g, labels, position = self.figure, self.g, self.labels, self.layout.position
        figure.clear()
        current = frame.gate
        end = current is None
        upstream_targets = {consumer for consumer in g.digraph.successors(current)} if current else set()
        with matplotlib.rc_context({"svg.fonttype": "none", "font.family": "DejaVu Sans"}):
            figure.text(0.15 / self.width, 1 - 0.15 / self.height, "\n".join(frame.caption), ha="left", va="top",
                        fontsize=10, family="DejaVu Sans Mono", linespacing=1.35)
            axes = figure.add_axes(self.graph_box)
            axes.set_xlim(self.left, self.left + (self.graph_box[2] * self.width))
            axes.set_ylim(self.bottom, self.top)
            axes.set_aspect("equal")
            axes.axis("off")

            fan_out = {name: g.digraph.out_degree(name) for name in self.nodes}
            for source, target, waypoints in self.layout.chains:
                x0, y0 = position[source]
                x1, y1 = position[target]
                points = [(x0 + self._half_width(source), y0)]
                points += [position[waypoint] for waypoint in waypoints]
                points.append((x1 - self._half_width(target), y1))
                if target == current:  # what the current gate sends
                    color, width = GRAD_COLOR, 2.6
                elif source == current and target in upstream_targets:  # where its upstream came from
                    color, width = HIGHLIGHT, 2.6
                else:
                    color, width = "black", 1.1
                axes.plot([p[0] for p in points], [p[1] for p in points], color=color, linewidth=width, zorder=1)
                grad = labels.wire_grads.get((source, target)) if target in frame.done else None
                spread = 0.62 if fan_out[source] > 1 and not waypoints else 0.5
                wire_text(axes, points[-2], points[-1], labels.values[source], grad, spread)
                if target == current and grad is not None:  # the gradient this step sends, in bold
                    axes.texts[-1].set_fontweight("bold")

            for name, node in self.nodes.items():
                x, y = position[name]
                if node.kind == "gate":
                    gate_width, gate_height = gate_size(node.gate.label())
                    shape = (Circle((x, y), gate_width / 2.0) if gate_width == gate_height
                             else Ellipse((x, y), gate_width, gate_height))
                    if name == current:
                        shape.set(facecolor=HIGHLIGHT_FILL, edgecolor=HIGHLIGHT, linewidth=2.8, zorder=3)
                    else:
                        shape.set(facecolor="white", edgecolor="black", linewidth=1.3, zorder=3)
                    axes.add_patch(shape)
                    axes.text(x, y, node.gate.label(), ha="center", va="center", fontsize=12, zorder=4)
                    if not AUTO_NAME.match(name) and node is not g.output:
                        axes.text(x, y + gate_height / 2.0 + 0.05, name, ha="center", va="bottom", fontsize=8.5,
                                  color="gray", zorder=4)
                    under = y - gate_height / 2.0 - 0.05
                    if name == current:
                        axes.text(x, under, f"upstream {format_value(g.grad(name), 3)}", ha="center", va="top",
                                  fontsize=9, color=HIGHLIGHT, fontweight="bold", zorder=4)
                else:
                    is_auto_constant = node.kind == "constant" and AUTO_NAME.match(name)
                    text = labels.values.get(name, "const") if is_auto_constant else name
                    color = "dimgray" if node.kind == "constant" else "black"
                    axes.text(x, y, text, ha="right", va="center", fontsize=12, color=color, zorder=4)
                    if end and self._leaf_total(name):
                        axes.text(x, y - 0.18, self._leaf_total(name), ha="right", va="top", fontsize=9,
                                  color=GRAD_COLOR, fontweight="bold", zorder=4)

            output = g.output
            x, y = position[output.name]
            start = (x + self._half_width(output.name), y)
            stop = (x + self._half_width(output.name) + 1.3, y)
            is_upstream = current == output.name
            axes.plot([start[0], stop[0]], [y, y], color=HIGHLIGHT if is_upstream else "black",
                      linewidth=2.6 if is_upstream else 1.1, zorder=1)
            axes.text(stop[0] + 0.06, y, output.name, ha="left", va="center", fontsize=12, zorder=4)
            wire_text(axes, start, stop, labels.values[output.name], labels.output_grad)
            axes.text(self.left + 0.15, self.bottom + 0.12,
                      "green: forward value   red: gradient   orange: the gate of this step and its upstream",
                      ha="left", va="bottom", fontsize=8, color="gray")
        return figure

    def rgb_image(self, frame: Frame) -> Any:
        """The frame as a Pillow RGB image."""
        from PIL import Image

        self.draw(frame)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=DPI)
        buffer.seek(0)
        return Image.open(buffer).convert("RGB")

    def svg_text(self, frame: Frame) -> str:
        """The frame as SVG text, without matplotlib's metadata block (which carries the date)."""
        import matplotlib

        self.draw(frame)
        buffer = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "gategraph"}):
            self.figure.savefig(buffer, format="svg", dpi=DPI)
        return re.sub(r"\s*<metadata>.*?</metadata>", "", buffer.getvalue(), flags=re.DOTALL)


# ---------------------------------------------------------------- writing the files


def _write_gif(renderer: _FrameRenderer, frames: list[Frame], path: str, seconds: float) -> None:
    from PIL import Image

    images = [renderer.rgb_image(frame) for frame in frames]
    # One palette from all frames together, so that each colour (the orange of
    # the current gate too) keeps its shade and nothing flickers between frames.
    width, height = images[0].size
    strip = Image.new("RGB", (width, height * len(images)))
    for index, image in enumerate(images):
        strip.paste(image, (0, height * index))
    palette = strip.quantize(colors=128)
    frames_p = [image.quantize(palette=palette, dither=0) for image in images]
    durations = [int(1000 * seconds)] * (len(frames) - 1) + [int(3000 * seconds)]
    frames_p[0].save(path, save_all=True, append_images=frames_p[1:], duration=durations, loop=0,
                     optimize=False, disposal=1)


def _write_html(renderer: _FrameRenderer, frames: list[Frame], path: str, seconds: float) -> None:
    g = renderer.g
    slides = []
    for index, frame in enumerate(frames):
        svg = base64.b64encode(renderer.svg_text(frame).encode("utf-8")).decode("ascii")
        title = f"step {index + 1}: gate {frame.gate}" if frame.gate else "the summed gradients"
        slides.append(
            f'<div class="frame" data-gate="{html.escape(frame.gate or "")}"'
            f'{"" if index == 0 else " hidden"}>\n'
            f'<img alt="{html.escape(title)}" src="data:image/svg+xml;base64,{svg}">\n'
            f"<pre>{html.escape(chr(10).join(frame.caption))}</pre>\n</div>"
        )
    title = f"Backward pass of {g.output.name}, gate by gate"
    text = _HTML_PAGE.format(
        title=html.escape(title),
        slides="\n".join(slides),
        count=len(frames),
        count_minus_one=len(frames) - 1,
        milliseconds=int(1000 * seconds),
    )
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)


_HTML_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
  body {{ font-family: sans-serif; margin: 1.5em; }}
  .frame img {{ max-width: 100%; height: auto; border: 1px solid #ddd; }}
  .frame pre {{ font-size: 0.95em; }}
  .controls button {{ font-size: 1em; min-width: 3em; }}
  .controls input {{ width: 20em; vertical-align: middle; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>One frame per gate in reverse topological order: the gate in orange with its upstream gradient,
what it sends to each input in bold red, then the gradients summed at the inputs.
Arrow keys step, space plays.</p>
<div class="controls">
  <button id="first" title="first frame">&#x23EE;</button>
  <button id="previous" title="previous frame (left arrow)">&#x25C0;</button>
  <button id="play" title="play / pause (space)">&#x25B6;</button>
  <button id="next" title="next frame (right arrow)">&#x25B6;&#x25B6;</button>
  <input id="slider" type="range" min="0" max="{count_minus_one}" value="0">
  <span id="counter">1 / {count}</span>
</div>
{slides}
<script>
(function () {{
  var frames = document.querySelectorAll(".frame"), slider = document.getElementById("slider");
  var counter = document.getElementById("counter"), play = document.getElementById("play");
  var current = 0, timer = null;
  function show(index) {{
    current = Math.max(0, Math.min(frames.length - 1, index));
    for (var i = 0; i < frames.length; i++) frames[i].hidden = i !== current;
    slider.value = current;
    counter.textContent = (current + 1) + " / " + frames.length;
  }}
  function toggle() {{
    if (timer) {{ clearInterval(timer); timer = null; play.innerHTML = "&#x25B6;"; return; }}
    if (current === frames.length - 1) show(0);
    play.innerHTML = "&#x23F8;";
    timer = setInterval(function () {{
      if (current === frames.length - 1) {{ toggle(); return; }}
      show(current + 1);
    }}, {milliseconds});
  }}
  document.getElementById("first").onclick = function () {{ show(0); }};
  document.getElementById("previous").onclick = function () {{ show(current - 1); }};
  document.getElementById("next").onclick = function () {{ show(current + 1); }};
  play.onclick = toggle;
  slider.oninput = function () {{ show(parseInt(slider.value, 10)); }};
  document.addEventListener("keydown", function (event) {{
    if (event.key === "ArrowRight") show(current + 1);
    else if (event.key === "ArrowLeft") show(current - 1);
    else if (event.key === " ") {{ event.preventDefault(); toggle(); }}
  }});
  show(0);
}})();
</script>
</body>
</html>
"""
