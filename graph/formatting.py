"""How values are written for people: the one formatter of explain(), the pictures, the notebook and error messages.

>>> import numpy as np
>>> format_value(0.7310585786)
'0.7311'
>>> format_value(np.array([[0.1, 0.5], [-0.3, 0.8]]))
'[[0.1, 0.5], [-0.3, 0.8]]'
>>> format_value(np.zeros((64, 100)))
'shape (64, 100), mean 0, range [0, 0]'
>>> format_value(-0.19661193, wire=True)
'-0.20'
>>> format_value(np.zeros((64, 100)), wire=True)
'64×100 ∈[0.00, 0.00]'
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np


def format_number(number: float, digits: int = 4) -> str:
    """A number in ``digits`` significant figures, without '-0': ``format_number(0.7310585786) == '0.7311'``."""
    number = float(number) + 0.0
    return f"{number:.{digits}g}"


def slide_number(number: float) -> str:
    """A number as on the lecture's slides: two decimals (0.73, -0.20), or two figures when tiny or huge (1.5e-05)."""
    number = float(number) + 0.0
    if number == 0.0 or 0.01 <= abs(number) < 1000.0:
        return f"{number:.2f}"
    if not math.isfinite(number):
        return str(number)
    return f"{number:.2g}"


def format_value(value: Any, digits: int = 4, in_full: int | None = None, stats: bool = True, wire: bool = False) -> str:
    """A value as text: a number, a small array in full, a larger one by its shape (and its mean and range).

    Parameters
    ----------
    value : number, array_like or None
        None is written "none" (an input that received no gradient).
    digits : int
        Significant figures of each number.
    in_full : int, optional
        Arrays of at most this many elements are written out in full, on one
        line: ``[[0.1, 0.5], [-0.3, 0.8]]``; by default 6, and 3 on a wire.
    stats : bool
        For a larger array, its mean and range after its shape
        (``shape (64, 100), mean 0, range [0, 0]``); else its shape alone.
    wire : bool
        The short form written along a picture's wires instead: numbers as
        on the lecture's slides (:func:`slide_number`, ``digits`` unused),
        1-D arrays of up to ``in_full`` elements in full, any other array
        as its shape and range, ``64×100 ∈[-0.30, 0.80]``.

    Returns
    -------
    str
        One line.
    """
    if value is None:
        return "none"
    number = slide_number if wire else lambda v: format_number(v, digits)
    if in_full is None:
        in_full = 3 if wire else 6
    if np.ndim(value) == 0:
        return number(value)
    array = np.asarray(value, dtype=np.float64)
    if array.size <= in_full and (array.ndim == 1 or not wire):
        text = np.array2string(array + 0.0, separator=", ", threshold=in_full + 1,
                               formatter={"float_kind": number})
        return re.sub(r"\s*\n\s*", " ", text)  # one line: [[0.1, 0.5], [-0.3, 0.8]]
    if wire:
        shape = f"({array.shape[0]},)" if array.ndim == 1 else "×".join(str(n) for n in array.shape)
        if array.size == 0:
            return f"{shape} empty"
        if not np.all(np.isfinite(array)):
            return f"{shape} has NaN/inf"
        return f"{shape} ∈[{number(array.min())}, {number(array.max())}]"
    if not stats:
        return f"shape {array.shape}"
    if not np.all(np.isfinite(array)):
        return f"shape {array.shape}, contains NaN or inf"
    return (
        f"shape {array.shape}, mean {format_number(array.mean(), 3)}, "
        f"range [{format_number(array.min(), 3)}, {format_number(array.max(), 3)}]"
    )


def short_repr(raw: Any, width: int = 60) -> str:
    """What the user passed, for a message: its repr, cut to ``width`` characters with "...".

    For anything, numeric or not (a text fed by mistake, a ragged list),
    where :func:`format_value` takes numbers only.
    """
    text = repr(raw)
    return text if len(text) <= width else text[: width - 3] + "..."
