"""Saving and restoring what a gate holds between passes, so that checks leave no trace.

A gate holds its forward cache (attributes such as ``self.x``), state arrays
(``state_dict()``: batch norm's running averages) and perhaps a random
generator (``self.rng``: dropout).  :func:`snapshot` takes all three and
:func:`restore` puts them back: a gradient check on a gate that belongs to a
live graph, or on the whole graph, runs between the two.

The snapshot is deep where a gate can change things in place: the contents
of every array it holds (``self.mean *= momentum`` changes the array, not the
attribute), of lists and dicts of them, and the state of every generator.
Restoring writes the saved contents back into the same objects, so whatever
else holds them (the graph, another gate) sees them as they were too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: How deep to follow lists, tuples and dicts held by a gate.
_DEPTH = 4


def snapshot(gate: Any) -> tuple:
    """(attributes, copies of the state arrays, the generator's state) of a gate.

    The attributes are recorded with copies of every array, list, dict and
    generator state in them (see the module docstring).
    """
    attributes = _record(dict(vars(gate)), _DEPTH) if hasattr(gate, "__dict__") else None
    state_dict = getattr(gate, "state_dict", None)
    state = {key: np.copy(value) for key, value in state_dict().items()} if callable(state_dict) else {}
    rng = getattr(gate, "rng", None)
    rng_state = rng.bit_generator.state if isinstance(rng, np.random.Generator) else None
    return attributes, state, rng_state


def restore(gate: Any, taken: tuple) -> None:
    """Put back what :func:`snapshot` took: the same attributes, holding the same contents."""
    attributes, state, rng_state = taken
    if attributes is not None:
        vars(gate).clear()
        vars(gate).update(_put_back(attributes))
    if state:
        gate.load_state_dict(state)
    if rng_state is not None:
        gate.rng.bit_generator.state = rng_state


def rewind_generator(gate: Any, taken: tuple) -> None:
    """Put back only the generator's state, so the next forward draws the same random numbers."""
    if taken[2] is not None:
        gate.rng.bit_generator.state = taken[2]


def _record(value: Any, depth: int) -> tuple:
    """(value, what to put back in it): a copy of an array, records of a container's items, a generator's state."""
    if isinstance(value, np.ndarray):
        return value, value.copy()
    if isinstance(value, np.random.Generator):
        return value, value.bit_generator.state
    if depth and isinstance(value, (list, tuple)):
        return value, [_record(item, depth - 1) for item in value]
    if depth and isinstance(value, dict):
        return value, {key: _record(item, depth - 1) for key, item in value.items()}
    return value, None


def _put_back(recorded: tuple) -> Any:
    """The recorded object, with its saved contents written back into it."""
    value, saved = recorded
    if saved is None:
        return value
    if isinstance(value, np.ndarray):
        if value.flags.writeable and value.shape == saved.shape:
            np.copyto(value, saved)
            return value
        # Read-only (so not changed through itself) or reshaped: if its contents moved, hand back the copy.
        unchanged = value.shape == saved.shape and np.array_equal(value, saved, equal_nan=saved.dtype.kind in "fc")
        return value if unchanged else saved
    if isinstance(value, np.random.Generator):
        value.bit_generator.state = saved
        return value
    if isinstance(value, dict):
        items = {key: _put_back(item) for key, item in saved.items()}
        value.clear()
        value.update(items)
        return value
    items = [_put_back(item) for item in saved]
    if isinstance(value, list):
        value[:] = items
        return value
    if type(value) is tuple and any(new is not old for new, old in zip(items, value)):
        return tuple(items)  # an array in it was replaced by its saved copy
    return value
