"""Values flowing through a graph: one value type, and the one check of what gates return.

Every value a gate receives or returns is a numpy value in the graph's dtype
(float64 by default, or float32): an array, or a numpy float scalar such as
``np.float64(2.0)`` (``.shape == ()``, ``.dtype``, numpy's division: ``x / 0.0``
is inf with a warning, never ZeroDivisionError).

:func:`to_value` converts what users feed.  :func:`check_output` and
:func:`check_gradients` check what a gate's forward and backward return; the
graph, :func:`graph.checking.check_gate` and through them ``explain`` and
``draw`` all use these two, so a gate is held to one contract everywhere.
:func:`sum_to_shape` is the one place where broadcasting is undone.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from graph.errors import FeedError, FeedTypeError, GateForwardError, GradientError
from graph.formatting import short_repr

_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats
# Read once: the check below runs for every gate of every backward.
_ndarray = np.ndarray
#: The dtypes a graph can compute in.
DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
_FLOAT64 = DTYPES[0]


def graph_dtype(dtype: Any) -> np.dtype:
    """``dtype`` as a numpy dtype, if a graph can compute in it (float64 or float32)."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        dtype = None
    if dtype not in DTYPES:
        raise FeedTypeError(f"a graph computes in float64 or float32, not {dtype}")
    return dtype


def to_value(raw: Any, dtype: np.dtype, what: str, name: str | None = None) -> Any:
    """Convert a number or array-like to an array or numpy scalar of ``dtype``.

    Integers and booleans become floats (never truncated); other float types
    are cast.  An array already of ``dtype`` is returned as it is (read in
    place, not copied).  ``what`` and ``name`` name the value in messages,
    e.g. "feed 'x'".

    Raises
    ------
    FeedTypeError
        For text, objects, ragged lists, None and complex numbers.
    FeedError
        For a number too large for ``dtype`` (an integer beyond float64, or
        1e300 fed to a float32 graph).
    """
    kind = type(raw)
    if kind is np.ndarray and raw.dtype is dtype and raw.ndim:
        return raw
    if kind is dtype.type or (kind is float and dtype is _FLOAT64):  # a Python float is a float64
        return dtype.type(raw)
    if name is not None:
        what = f"{what} {name!r}"
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) > int(np.finfo(dtype).max):
        raise FeedError(f"{what} = {short_repr(raw)} is too large for a {dtype} (at most about {np.finfo(dtype).max:.2g})")
    try:
        array = np.asarray(raw)
    except (ValueError, TypeError) as error:  # ragged nested lists
        raise FeedTypeError(f"{what} is not a numeric array: {error}") from None
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise FeedTypeError(
            f"{what} must be numbers (int, float or bool), got {type(raw).__name__} "
            f"with dtype {array.dtype}: {short_repr(raw)}"
        )
    try:
        with np.errstate(over="raise"):  # 1e300 fed to a float32 graph must not become inf unnoticed
            array = array.astype(dtype, copy=False)
    except FloatingPointError:
        raise FeedError(f"{what} has values too large for {dtype} (at most about {np.finfo(dtype).max:.2g})") from None
    if array.ndim == 0:
        return array[()]  # a numpy scalar
    return array


def to_array(raw: Any, dtype: np.dtype, what: str, name: str | None = None) -> np.ndarray:
    """Like :func:`to_value`, but always a new array (0-d for a scalar) that nothing else holds."""
    return np.array(to_value(raw, dtype, what, name), dtype=dtype)


def read_only(value: Any) -> Any:
    """A read-only view of an array (numpy scalars are immutable already)."""
    if type(value) is np.ndarray and value.flags.writeable:
        value = value.view()
        value.setflags(write=False)
    return value


def check_output(out: Any, dtype: np.dtype, who: Any) -> Any:
    """A gate's forward output as a value of ``dtype``, or GateForwardError naming the gate.

    Called by the graph only when the output is not already an array or
    numpy scalar of the graph's dtype.  Real numbers of another type
    (a Python float, int or bool, float32 in a float64 graph) are converted.
    """
    if isinstance(out, (np.ndarray, np.generic, float, int)):
        kind = np.asarray(out).dtype.kind
        if kind in _NUMERIC_KINDS:
            return to_value(out, dtype, "output")
        returned = f"values of dtype {np.asarray(out).dtype}"
    else:
        returned = f"a {type(out).__name__}"
    raise GateForwardError(
        f"{describe(who)[0]}.forward returned {returned}; a gate returns real numbers (a numpy array or float)"
    )


def check_gradients(returned: Any, inputs: Sequence[Any], output: Any, dtype: np.dtype, who: Any) -> tuple:
    """What a gate's backward returned, checked and brought to its inputs' shapes.

    The one check of a backward: the graph, check_gate and explain all rely on
    it.  ``returned`` must hold one gradient per input (a tuple or list),
    each None (no gradient) or real numbers with the input's shape, or the
    gate output's shape or the inputs' broadcast shape (then summed over the
    broadcast axes, see :func:`sum_to_shape`).  Gradients of another real dtype are converted to
    ``dtype``.

    Parameters
    ----------
    returned : what ``gate.backward(upstream)`` returned
    inputs : the values that went into the gate's forward, in order (arrays or numpy scalars of ``dtype``)
    output : the gate's output (its shape is allowed for a broadcast input)
    dtype : the graph's dtype
    who : the gate's Node, or (title, input names) for a gate on its own: for messages

    Returns
    -------
    tuple of gradients (or None), one per input, each of its input's shape.

    Raises
    ------
    GradientError
        Naming the gate, the input and both shapes.
    """
    if type(returned) is tuple and len(returned) == len(inputs):
        for grad, value in zip(returned, inputs):
            # The common cases, in a few reads: None, for a scalar input a
            # numpy scalar of its type (inputs are values of ``dtype``, so that
            # is the dtype too), or an array of the dtype and the input's shape.
            kind = type(grad)
            if kind is not _ndarray:
                if grad is None or kind is type(value):
                    continue
            elif grad.dtype is dtype and grad.shape == value.shape:
                continue
            break
        else:
            return returned
    return _check_slowly(returned, inputs, output, dtype, who)


def _check_slowly(returned: Any, inputs: Sequence[Any], output: Any, dtype: np.dtype, who: Any) -> tuple:
    """check_gradients for anything but the common cases: errors, conversions, broadcast inputs."""
    if type(returned) is not tuple:
        if type(returned) is not list:
            _raise_not_a_tuple(returned, *describe(who))
        returned = tuple(returned)
    if len(returned) != len(inputs):
        raise GradientError(
            f"{describe(who)[0]}.backward returned {len(returned)} gradient(s) but the gate has "
            f"{len(inputs)} input(s); return one per input, None for none"
        )
    title, names = describe(who)
    output_shape = np.shape(output)
    try:
        broadcast = np.broadcast_shapes(*[np.shape(value) for value in inputs])
    except ValueError:
        broadcast = output_shape
    return tuple(
        None if grad is None else _fit_gradient(grad, value, (output_shape, broadcast), dtype, title, name)
        for grad, value, name in zip(returned, inputs, names)
    )


def describe(who: Any) -> tuple[str, list[str]]:
    """(title, input names) of a gate for messages, from its Node or as given."""
    if isinstance(who, tuple):
        return who
    return f"gate {who.name!r} ({type(who.gate).__name__})", [source.name for source in who.inputs]


def _fit_gradient(grad, value, broadcast_shapes, dtype, gate_title, name):
    """One gradient: converted to ``dtype`` and to the input's shape, or GradientError.

    ``broadcast_shapes``: (the gate output's shape, the inputs' broadcast shape).
    """
    if not isinstance(grad, (np.ndarray, np.generic, float, int)) or np.asarray(grad).dtype.kind not in _NUMERIC_KINDS:
        kind = f"dtype {grad.dtype}" if isinstance(grad, (np.ndarray, np.generic)) else f"a {type(grad).__name__}"
        raise GradientError(
            f"{gate_title}.backward returned {kind} as the gradient for input {name!r}; "
            f"a gradient is real numbers (a numpy array or float), or None for no gradient"
        )
    grad = np.asarray(grad)
    if grad.dtype != dtype:
        grad = grad.astype(dtype)
    shape = value.shape
    if grad.shape != shape:
        fitted = sum_to_shape(grad, shape) if grad.shape in broadcast_shapes else None
        if fitted is None:
            output_shape, broadcast = broadcast_shapes
            raise GradientError(
                f"{gate_title}.backward returned a gradient of shape {grad.shape} for input {name!r} of shape "
                f"{shape}; a gradient has the input's shape, or, for an input that was broadcast, the gate "
                f"output's shape {output_shape} or the inputs' broadcast shape {broadcast}"
            )
        grad = fitted
    return grad[()] if grad.ndim == 0 else grad


def sum_to_shape(gradient: Any, shape: tuple[int, ...]) -> Any:
    """Sum a gradient over the axes that numpy broadcasting added or stretched.

    The one place where broadcasting is undone.  For ``x`` of shape (3, 1)
    broadcast against (2, 3, 4), the gradient (2, 3, 4) is summed over axis 0
    (added) and axis 2 (stretched from 1) back to (3, 1).  Keeps the
    gradient's dtype.

    Returns None if ``gradient`` cannot be reduced to ``shape``.
    """
    gradient = np.asarray(gradient)
    extra = gradient.ndim - len(shape)
    if extra < 0:
        return None
    if extra:
        gradient = np.add.reduce(gradient, axis=tuple(range(extra)))
    stretched = tuple(axis for axis, (have, want) in enumerate(zip(gradient.shape, shape)) if want == 1 and have != 1)
    if stretched:
        gradient = np.add.reduce(gradient, axis=stretched, keepdims=True)
    if gradient.shape != tuple(shape):
        return None
    return gradient


def _raise_not_a_tuple(returned: Any, gate_title: str, names: Sequence[str]) -> None:
    if isinstance(returned, np.ndarray):
        what = f"an array of shape {returned.shape}"
    else:
        what = str(returned) if isinstance(returned, np.generic) else short_repr(returned)
    example = "(dx,)" if len(names) == 1 else "(" + ", ".join(f"d{name}" for name in names) + ")"
    raise GradientError(
        f"{gate_title}.backward returned {what}, not one gradient per input: "
        f"return a tuple such as {example}, None for an input that needs none"
    )

