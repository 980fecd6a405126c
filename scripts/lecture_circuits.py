"""Build the lecture's circuits, run them, explain them and draw them.

Each circuit is run forward and backward at the lecture's numbers; the script
prints the pass step by step (``g.explain()``), checks the gradients against
finite differences (``gradcheck``) and saves a picture of each circuit, with
values in green above the wires and gradients in red below, as on the slides.

    python scripts/lecture_circuits.py --out circuits/

``--animate`` (or ``--animate html``) also writes an animation of each
backward pass, one frame per gate (:mod:`graph.animation`).
"""

from __future__ import annotations

import argparse
import os
from typing import Callable

import numpy as np

from gates import (
    AddGate,
    ExpGate,
    MatMulGate,
    MaxGate,
    MultiplyGate,
    NegateGate,
    PowerGate,
    ReciprocalGate,
    SigmoidGate,
    SumGate,
)
from graph import ComputationalGraph, Node
from graph.animation import animate
from graph.checking import gradcheck
from graph import cli as options

FORMATS = ("png", "svg", "dot")

Circuit = tuple[ComputationalGraph, dict]


def add_multiply() -> Circuit:
    """f = (x + y) z at x = -2, y = 5, z = -4: the lecture's first example."""
    g = ComputationalGraph()
    x, y, z = g.add_input("x"), g.add_input("y"), g.add_input("z")
    q = g.add_gate(AddGate(), x, y, name="q")
    g.add_gate(MultiplyGate(), q, z, name="f")
    return g, {"x": -2.0, "y": 5.0, "z": -4.0}


def _neuron_score(g: ComputationalGraph) -> Node:
    """The neuron's inputs w0, x0, w1, x1, w2 and its score w0 x0 + w1 x1 + w2, gate by gate."""
    w0, x0, w1, x1, w2 = (g.add_input(name) for name in ("w0", "x0", "w1", "x1", "w2"))
    a = g.add_gate(MultiplyGate(), w0, x0, name="w0x0")
    b = g.add_gate(MultiplyGate(), w1, x1, name="w1x1")
    s = g.add_gate(AddGate(), a, b, name="sum")
    return g.add_gate(AddGate(), s, w2, name="score")


NEURON_FEEDS = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}


def sigmoid_neuron_gates() -> Circuit:
    """f = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))) from *, +, -x, exp, +1 and 1/x gates."""
    g = ComputationalGraph()
    s = _neuron_score(g)
    n = g.add_gate(NegateGate(), s, name="neg")
    e = g.add_gate(ExpGate(), n, name="exp")
    d = g.add_gate(AddGate(), e, 1.0, name="denominator")
    g.add_gate(ReciprocalGate(), d, name="f")
    return g, dict(NEURON_FEEDS)


def sigmoid_neuron() -> Circuit:
    """The same neuron with one SigmoidGate: dsigma/dx = (1 - sigma) sigma = 0.20."""
    g = ComputationalGraph()
    g.add_gate(SigmoidGate(), _neuron_score(g), name="f")
    return g, dict(NEURON_FEEDS)


def patterns() -> Circuit:
    """f = 2 (x y + max(z, w)): add distributes, max routes, multiply switches."""
    g = ComputationalGraph()
    x, y, z, w = (g.add_input(name) for name in ("x", "y", "z", "w"))
    xy = g.add_gate(MultiplyGate(), x, y, name="xy")
    m = g.add_gate(MaxGate(), z, w, name="max")
    s = g.add_gate(AddGate(), xy, m, name="sum")
    g.add_gate(MultiplyGate(), s, g.add_constant(2.0, name="two"), name="f")
    return g, {"x": 3.0, "y": -4.0, "z": 2.0, "w": -1.0}


def branches() -> Circuit:
    """f = x y + x z: x feeds two gates, so its gradients add (6 + 5 = 11)."""
    g = ComputationalGraph()
    x, y, z = g.add_input("x"), g.add_input("y"), g.add_input("z")
    xy = g.add_gate(MultiplyGate(), x, y, name="xy")
    xz = g.add_gate(MultiplyGate(), x, z, name="xz")
    g.add_gate(AddGate(), xy, xz, name="f")
    return g, {"x": 2.0, "y": 6.0, "z": 5.0}


def vectorized() -> Circuit:
    """f = ||W x||^2 with W: (2, 2), x: (2,): df/dW = 2 q x^T, df/dx = 2 W^T q."""
    g = ComputationalGraph()
    W, x = g.add_input("W"), g.add_input("x")
    q = g.add_gate(MatMulGate(), W, x, name="q")
    squares = g.add_gate(PowerGate(2), q, name="squares")
    g.add_gate(SumGate(), squares, name="f")
    return g, {"W": np.array([[0.1, 0.5], [-0.3, 0.8]]), "x": np.array([0.2, 0.4])}


CIRCUITS: dict[str, Callable[[], Circuit]] = {
    "add_multiply": add_multiply,
    "sigmoid_neuron_gates": sigmoid_neuron_gates,
    "sigmoid_neuron": sigmoid_neuron,
    "patterns": patterns,
    "branches": branches,
    "vectorized": vectorized,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, checked before any work; ``args.formats`` becomes a list of extensions."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="circuits", help="folder for the pictures (created if missing)")
    parser.add_argument(
        "--formats",
        default="png,svg,dot",
        help="comma-separated picture formats among png, svg, dot ('' for none)",
    )
    parser.add_argument("--only", choices=sorted(CIRCUITS), action="append", help="run only this circuit")
    parser.add_argument(
        "--animate", nargs="?", const="gif", choices=("gif", "html"),
        help="also write an animation of each backward pass into --out (gif by default, or html)",
    )
    args = parser.parse_args(argv)
    args.formats = [item.strip().lstrip(".").lower() for item in args.formats.split(",") if item.strip()]
    unknown = [item for item in args.formats if item not in FORMATS]
    if unknown:
        parser.error(f"argument --formats: unknown format {', '.join(map(repr, unknown))}; "
                     f"choose among {', '.join(FORMATS)}")
    if args.formats:
        options.check_output_folder(parser, "--out", args.out)
    if {"png", "svg"} & set(args.formats):
        options.require(parser, "matplotlib", "draw", "png and svg pictures (--formats dot needs nothing)")
    if args.animate:
        options.require(parser, "matplotlib", "draw", "--animate")
        options.check_output_folder(parser, "--out", args.out)
    return args


def main(argv: list[str] | None = None) -> dict[str, ComputationalGraph]:
    args = parse_args(argv)
    formats = args.formats
    if formats or args.animate:
        os.makedirs(args.out, exist_ok=True)
    graphs = {}
    for name, build in CIRCUITS.items():
        if args.only and name not in args.only:
            continue
        g, feeds = build()
        g.forward(feeds)
        g.backward()
        print(f"=== {name}: {build.__doc__.splitlines()[0]}")
        print(g.explain())
        check = gradcheck(g, feeds)
        print(f"gradcheck: {'passed' if check else 'FAILED'}, max relative error {check.max_rel_error:.1e}")
        for extension in formats:
            print("wrote", g.draw(os.path.join(args.out, f"{name}.{extension}")))
        if args.animate:
            print("wrote", animate(g, os.path.join(args.out, f"{name}_backward.{args.animate}")))
        print()
        graphs[name] = g
    return graphs


if __name__ == "__main__":
    main()
