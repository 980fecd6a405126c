"""Values flowing through a graph: converting feeds, and fitting gradients to shapes.

A value is a plain Python float (scalar circuits run on floats, which are
float64 and much cheaper than numpy scalars) or a float64 numpy array.
Values leaving the graph are given back as numpy float64 scalars or arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graph.errors import FeedError, FeedTypeError

_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats
_FLOAT64 = np.dtype(np.float64)


def to_value(raw: Any, what: str, name: str | None = None) -> float | np.ndarray:
    """Convert a number or array-like to a float or a float64 array.

    Integers and booleans become float64 (never truncated); float32 is
    widened.  ``what`` and ``name`` name the value in error messages, e.g.
    "feed 'x'" (kept apart so the message is only built when needed).

    Raises
    ------
    FeedTypeError
        For text, objects, ragged lists and complex numbers.
    """
    kind = type(raw)
    if kind is float:
        return raw
    if kind is np.ndarray and raw.dtype is _FLOAT64 and raw.ndim > 0:
        return raw  # read in place, never copied
    if name is not None:
        what = f"{what} {name!r}"
    if kind is int or kind is bool:
        try:
            return float(raw)
        except OverflowError:
            raise FeedError(f"{what} = {_short(raw)} is too large for a float64 (at most about 1.8e308)") from None
    try:
        array = np.asarray(raw)
    except (ValueError, TypeError) as error:  # ragged nested lists
        raise FeedTypeError(f"{what} is not a numeric array: {error}") from None
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise FeedTypeError(
            f"{what} must be numbers (int, float or bool), got {type(raw).__name__} "
            f"with dtype {array.dtype}: {_short(raw)}"
        )
    array = array.astype(np.float64, copy=False)
    if array.ndim == 0:
        return float(array)
    return array


def to_array(raw: Any, what: str, name: str | None = None) -> np.ndarray:
    """Like :func:`to_value`, but always an array (0-d for a scalar), copied."""
    return np.array(to_value(raw, what, name), dtype=np.float64)


def shape_of(value: Any) -> tuple[int, ...]:
    """The shape of a value, () for a float."""
    return getattr(value, "shape", ())


def public(value: Any) -> Any:
    """A value as users get it: plain numbers become numpy float64 scalars."""
    if isinstance(value, (float, int)):
        return np.float64(value)
    return value


def sum_to_shape(gradient: Any, shape: tuple[int, ...]) -> Any:
    """Sum a gradient over the axes that numpy broadcasting added or stretched.

    The one place where broadcasting is undone.  For ``x`` of shape (3, 1)
    broadcast against (2, 3, 4), the gradient (2, 3, 4) is summed over axis 0
    (added) and axis 2 (stretched from 1) back to (3, 1).

    Returns None if ``gradient`` cannot be reduced to ``shape``.
    """
    gradient = np.asarray(gradient, dtype=np.float64)
    extra = gradient.ndim - len(shape)
    if extra < 0:
        return None
    if extra:
        gradient = gradient.sum(axis=tuple(range(extra)))
    stretched = tuple(
        axis for axis, (have, want) in enumerate(zip(gradient.shape, shape)) if want == 1 and have != 1
    )
    if stretched:
        gradient = gradient.sum(axis=stretched, keepdims=True)
    if gradient.shape != tuple(shape):
        return None
    return gradient


def _short(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."
