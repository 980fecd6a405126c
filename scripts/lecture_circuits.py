"""Build the lecture's circuits, run them, explain them and draw them.

Each circuit is run forward and backward at the lecture's numbers; the script
prints the pass step by step (``g.explain()``), checks the gradients against
finite differences (``gradcheck``) and saves a picture of each circuit, with
values in green above the wires and gradients in red below, as on the slides.

    python scripts/lecture_circuits.py --out circuits/

The circuits are ``graph.circuits.CIRCUITS``.  ``--animate`` (or
``--animate html``) also writes an animation of each backward pass, one
frame per gate (:mod:`graph.animation`).
"""

from __future__ import annotations

import argparse
import os

from graph import ComputationalGraph
from graph.animation import animate
from graph.checking import gradcheck
# The circuits by name too: docs/tutorial.ipynb and readers import them from here.
from graph.circuits import (  # noqa: F401
    CIRCUITS, add_multiply, branches, patterns, sigmoid_neuron, sigmoid_neuron_gates, vectorized,
)
from graph import cli as options

FORMATS = ("png", "svg", "dot")


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
