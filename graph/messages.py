"""How gates and values are described in error messages: short, in the user's own names."""

from __future__ import annotations

from typing import Any

import numpy as np

from graph.formatting import format_value
from graph.node import Node


def gate_title(node: Node) -> str:
    """e.g. "gate 'h' (SigmoidGate)"."""
    return f"gate {node.name!r} ({type(node.gate).__name__})"


def input_list(node: Node, values: list, result: Any = None) -> str:
    """The values that went into a gate, for messages.

    Small values are shown in full; for a larger input, its shape and its
    element at the first NaN or inf of ``result`` (the gate's output by
    default), when the input broadcasts to ``result``.
    """
    if result is None:
        result = values[node.index]
    index = first_non_finite(result)
    parts = []
    for source in node.inputs:
        value = values[source.index]
        text = f"{source.name!r} = {show(value)}"
        if index is not None and np.size(value) > _SHOWN_IN_FULL:
            shape = np.shape(result)
            try:
                fits = np.broadcast_shapes(np.shape(value), shape) == shape
            except ValueError:
                fits = False
            if fits:
                text += f" ({float(np.broadcast_to(value, shape)[index]):.6g} at index {index})"
        parts.append(text)
    return ", ".join(parts)


_SHOWN_IN_FULL = 10  # arrays with at most this many elements are written out in messages


def show(value: Any) -> str:
    """A value for messages: '3' for a scalar, '[1, -1]' for a small array, else 'shape (N, D)'."""
    return format_value(value, digits=6, in_full=_SHOWN_IN_FULL, stats=False)


def first_non_finite(value: Any) -> tuple[int, ...] | None:
    """The index of the first NaN or inf in an array; None for a scalar or if there is none."""
    if np.ndim(value) == 0:
        return None
    bad = ~np.isfinite(value)
    if not bad.any():
        return None
    return tuple(int(i) for i in np.unravel_index(np.argmax(bad), bad.shape))


def non_finite_kind(value: Any) -> str:
    """'NaN', 'inf' or '-inf', and for an array where the first one is: 'NaN at index (1, 0)'."""
    index = first_non_finite(value)
    element = float(value if index is None else value[index])
    kind = "NaN" if np.isnan(element) else "inf" if element > 0 else "-inf"
    return kind if index is None else f"{kind} at index {index}"
