"""What every layer function shares: it builds as one step, and checks its sizes and generator first."""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

import numpy as np

from graph.computational_graph import ComputationalGraph
from graph.errors import GraphBuildError, GraphBuildTypeError

Layer = TypeVar("Layer", bound=Callable)


def one_step(layer: Layer) -> Layer:
    """Run ``layer(g, ...)`` inside ``g.all_or_nothing()``: a layer refused halfway leaves nothing behind.

    A transformer block whose attention finds that the heads do not divide
    the width has already added its first layer norm; without this, those
    nodes would stay in the graph, and a second try would find their names taken.

    Raises
    ------
    GraphBuildTypeError
        If ``g`` is not a ComputationalGraph.
    """

    @functools.wraps(layer)
    def build(g, *args, **kwargs):
        if not isinstance(g, ComputationalGraph):
            raise GraphBuildTypeError(f"{layer.__name__} adds to a ComputationalGraph, got {type(g).__name__}")
        with g.all_or_nothing():
            return layer(g, *args, **kwargs)

    return build


def check_rng(rng: object) -> None:
    """Refuse anything but a numpy Generator, the one way layers draw their initial weights.

    Parameters
    ----------
    rng : object
        Should be a ``numpy.random.Generator``, e.g. ``np.random.default_rng(0)``.

    Raises
    ------
    GraphBuildTypeError
        For anything else (the legacy ``np.random`` module or a ``RandomState`` included).
    """
    if not isinstance(rng, np.random.Generator):
        raise GraphBuildTypeError(
            f"expected a numpy.random.Generator such as np.random.default_rng(0), got {type(rng).__name__}"
        )


def check_sizes(layer: str, name: str, **sizes: int) -> None:
    """Refuse a size that is not a positive whole number, naming the layer, its name and the size.

    Raises
    ------
    GraphBuildTypeError
        For a size that is not a whole number (text, a float, a bool).
    GraphBuildError
        For one below 1.
    """
    for what, value in sizes.items():
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise GraphBuildTypeError(f"{layer} {name!r}: {what} must be a positive integer, got {value!r}")
        if value < 1:
            raise GraphBuildError(f"{layer} {name!r}: {what} must be a positive integer, got {value!r}")
