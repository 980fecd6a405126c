"""Saving and restoring what a gate holds between passes, so that checks leave no trace.

A gate holds its forward cache (attributes such as ``self.x``), state arrays
(``state_dict()``: batch norm's running averages) and perhaps a random
generator (``self.rng``: dropout).  :func:`snapshot` takes all three and
:func:`restore` puts them back: a gradient check on a gate that belongs to a
live graph, or on the whole graph, runs between the two.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def snapshot(gate: Any) -> tuple:
    """(attributes, copies of the state arrays, the generator's state) of a gate."""
    attributes = dict(vars(gate)) if hasattr(gate, "__dict__") else None
    state_dict = getattr(gate, "state_dict", None)
    state = {key: np.copy(value) for key, value in state_dict().items()} if callable(state_dict) else {}
    rng = getattr(gate, "rng", None)
    rng_state = rng.bit_generator.state if isinstance(rng, np.random.Generator) else None
    return attributes, state, rng_state


def restore(gate: Any, taken: tuple) -> None:
    """Put back what :func:`snapshot` took."""
    attributes, state, rng_state = taken
    if attributes is not None:
        vars(gate).clear()
        vars(gate).update(attributes)
    if state:
        gate.load_state_dict(state)
    if rng_state is not None:
        gate.rng.bit_generator.state = rng_state


def rewind_generator(gate: Any, taken: tuple) -> None:
    """Put back only the generator's state, so the next forward draws the same random numbers."""
    if taken[2] is not None:
        gate.rng.bit_generator.state = taken[2]
