"""Test helper: compare a graph's backward with centered differences of its forward."""

import numpy as np

from graph import ComputationalGraph
from graph.checking import numerical_gradient


def assert_graph_gradients_match(g: ComputationalGraph, feeds: dict, rng: np.random.Generator, rtol=1e-6, atol=1e-8):
    """Run g forward and backward with a random upstream; check every gradient numerically.

    ``feeds`` must hold writable float64 arrays (0-d for scalars, which the
    graph then runs as plain floats); each is perturbed in place.
    """
    out = g.forward(feeds)
    upstream = rng.standard_normal(np.shape(out)) if np.ndim(out) else float(rng.standard_normal())
    analytic = g.backward(upstream)
    targets = dict(feeds)
    targets.update(g.params)
    for name, target in targets.items():
        if name not in analytic:
            continue
        assert np.shape(analytic[name]) == target.shape, name
        numeric = numerical_gradient(lambda: g.forward(feeds), target, upstream)
        np.testing.assert_allclose(analytic[name], numeric, rtol=rtol, atol=atol, err_msg=name)
    return analytic


def graph_of(gate, shapes_or_values):
    """A graph applying ``gate`` to one input per entry; returns (graph, feeds-maker)."""
    g = ComputationalGraph()
    names = [f"in{i}" for i in range(len(shapes_or_values))]
    g.add_gate(gate, *[g.add_input(name) for name in names])
    return g, names
