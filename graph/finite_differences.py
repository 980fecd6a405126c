"""Finite differences: the numeric gradients every gradient check compares with.

The derivative of f at x is approximated by the centered difference::

    df/dx ~ (f(x + h) - f(x - h)) / (2 h)

It is off in two ways.  Truncation: about h² f'''(x) / 6, which shrinks with
h.  Rounding: f is computed to about machine epsilon (2.2e-16) times the size
of what it adds up, so the difference carries about ``EPSILON |f| / h``, which
grows as h shrinks.  Hence two rules here:

* the step follows each input's magnitude (:func:`step_sizes`): h = 1e-6 is
  far too coarse for log at x = 1e-4, and below the spacing of floats at 1e8;
* each difference comes with an estimate of its rounding noise, so that a
  check can tell a wrong gradient from an imprecise difference, element by
  element;
* where that noise drowns the difference (a sigmoid at x = 1e-4: the output
  0.5 hardly moves), :func:`refine_noisy` tries a larger step, and measures
  its truncation by comparing two step sizes.

For an array output, ``f`` is ``sum(upstream * output)``: the two outputs are
subtracted before they are weighted and summed, so output elements that x[i]
does not affect cancel exactly and add no noise.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from graph.errors import CheckError

#: Machine epsilon of float64: the relative rounding of one operation.
EPSILON = float(np.finfo(np.float64).eps)
#: An element's step is relative to its own size, but never below this fraction of its input's typical size.
SMALLEST_SCALE = 1e-3
#: An element whose rounding noise exceeds this fraction of its gradient is differenced again, with a larger step,
NOISY = 1e-7
#: chosen to bring the noise down to this fraction (noise shrinks as the step grows),
QUIET = 1e-9
#: but at most this many times the first step.
MAX_GROWTH = 1e4


def numerical_gradient(function: Callable[[], Any], x: np.ndarray, upstream: Any = 1.0, eps: float = 1e-6) -> np.ndarray:
    """Centered differences of ``sum(upstream * function())`` with respect to ``x``, with one step ``eps``.

    The course's helper: ``(f(x + eps) - f(x - eps)) / (2 eps)`` per element.

    Parameters
    ----------
    function : callable with no arguments
        Recomputes the output from the current contents of ``x``.
    x : float64 array, writable and C-contiguous
        Changed in place one element at a time and restored exactly afterwards.
    upstream : number or array of the output's shape
        Weights the output elements, so every element matters.
    eps : float
        Half the step, the same for every element.

    Returns
    -------
    float64 array of x's shape.

    Raises
    ------
    CheckError
        If x is not a writable, C-contiguous float64 array (a transposed
        array would be perturbed through a copy, silently).
    """
    gradient, _ = centered_differences(function, x, upstream, np.full(x.shape, float(eps)))
    return gradient


def step_sizes(x: np.ndarray, eps: float) -> np.ndarray:
    """Half steps, one per element: ``h_i = eps * max(|x_i|, SMALLEST_SCALE * rms(x))``.

    Relative to the element, so that x = 1e-4 gets a step small enough for
    log and x = 1e8 one large enough to change x at all; but not below a
    thousandth of the input's root mean square, so that an element at or
    near 0 still moves the output measurably.  ``eps`` where x is all zeros.
    """
    magnitude = np.abs(x)
    typical = float(np.sqrt(np.mean(np.square(magnitude)))) if x.size else 0.0
    if not np.isfinite(typical) or typical == 0.0:
        return np.full(x.shape, float(eps))
    return eps * np.maximum(magnitude, SMALLEST_SCALE * typical)


def centered_differences(
    function: Callable[[], Any], x: np.ndarray, upstream: Any, steps: np.ndarray, flat_indices=None
) -> tuple[np.ndarray, np.ndarray]:
    """Centered differences of ``sum(upstream * function())`` at each element of x, and their rounding noise.

    Parameters
    ----------
    function : callable with no arguments
        Recomputes the output from the current contents of ``x``.
    x : float64 array, C-contiguous
        Changed in place, one element at a time, and restored exactly (also
        when ``function`` raises).
    upstream : number or array of the output's shape
    steps : float64 array of x's shape
        Half step per element (see :func:`step_sizes`).
    flat_indices : sequence of int, optional
        The elements to difference (default: all); the others are 0.

    Returns
    -------
    gradient, noise : float64 arrays of x's shape
        ``gradient[i] = sum(upstream * (f(x + h) - f(x - h))) / step``, with
        ``step`` the one actually taken (``x + h`` is rounded); ``noise[i]``
        is the rounding error to expect in it, ``EPSILON * sum(|upstream|
        (|f(x + h)| + |f(x - h)|)) / step`` over the output elements that changed.

    Raises
    ------
    CheckError
        If x is not a writable, C-contiguous float64 array.
    """
    if not (isinstance(x, np.ndarray) and x.dtype == np.float64 and x.flags.writeable and x.flags.c_contiguous):
        raise CheckError(
            "finite differences perturb x in place: x must be a writable, C-contiguous float64 array "
            "(np.array(x, dtype=np.float64, order='C') makes one)"
        )
    gradient, noise = np.zeros(x.shape), np.zeros(x.shape)
    flat_x, flat_steps = x.reshape(-1), steps.reshape(-1)
    for i in range(x.size) if flat_indices is None else flat_indices:
        saved = flat_x[i]
        try:
            flat_x[i] = saved + flat_steps[i]
            plus, up = np.array(function(), dtype=np.float64), flat_x[i]  # a copy: an output may be a view of x
            flat_x[i] = saved - flat_steps[i]
            minus, down = np.array(function(), dtype=np.float64), flat_x[i]
        finally:
            flat_x[i] = saved
        difference, size = _weighted_difference(plus, minus, upstream)
        gradient.flat[i] = difference / (up - down)
        noise.flat[i] = EPSILON * size / (up - down)
    return gradient, noise


def refine_noisy(
    function: Callable[[], Any],
    x: np.ndarray,
    upstream: Any,
    steps: np.ndarray,
    gradient: np.ndarray,
    noise: np.ndarray,
    scale: np.ndarray,
    keep: np.ndarray | None = None,
) -> np.ndarray:
    """Where rounding noise drowns a difference, difference again with two larger steps; keep the better one.

    A relative step is right for log at x = 1e-4, but for a sigmoid there
    the output (0.5) is so much larger than its change that the difference
    is mostly noise.  So, for each element whose noise exceeds ``NOISY``
    times its size ``s = max(|scale|, |gradient|)``, the step grows by
    ``min(noise / (QUIET s), MAX_GROWTH)`` and the difference is taken at
    that step H and at H / 2.  From H to H / 2 truncation shrinks fourfold
    while rounding only doubles, so their disagreement measures the
    truncation at H: the error of the new difference is the larger of that
    and its rounding noise.  It replaces the old one where that error is
    smaller than the old noise; where it is not, the growth is tried again
    at its square root (truncation won).  Two step sizes, only where one is
    not enough.

    Parameters
    ----------
    function, x, upstream, steps
        As for :func:`centered_differences`.
    gradient, noise : float64 arrays of x's shape
        What :func:`centered_differences` returned; updated in place (NaN elements are left alone).
    scale : float64 array of x's shape
        The size the gradient should have (the analytic gradient).
    keep : bool array of x's shape, optional
        Elements to leave as they are (where a difference crossed a kink).

    Returns
    -------
    int array: the flat indices of the elements replaced.
    """
    size = np.maximum(np.abs(scale), np.abs(gradient))
    with np.errstate(invalid="ignore"):
        candidates = (noise > NOISY * size) & (size > 0) & np.isfinite(gradient)
    if keep is not None:
        candidates &= ~keep
    noisy = np.flatnonzero(candidates)
    growth = np.minimum(noise.flat[noisy] / (QUIET * size.flat[noisy]), MAX_GROWTH)
    replaced = []
    while noisy.size:
        larger = np.zeros(x.shape)
        larger.flat[noisy] = steps.flat[noisy] * growth
        first, first_noise = centered_differences(function, x, upstream, larger, noisy)
        second, _ = centered_differences(function, x, upstream, larger / 2, noisy)
        error = np.maximum(first_noise.flat[noisy], np.abs(first.flat[noisy] - second.flat[noisy]))
        better = error < noise.flat[noisy]
        gradient.flat[noisy[better]] = first.flat[noisy[better]]
        noise.flat[noisy[better]] = error[better]
        replaced.extend(noisy[better])
        # Truncation won where the step grew too much: try a growth of its square root.
        again = ~better & (growth > 4.0)
        noisy, growth = noisy[again], np.sqrt(growth[again])
    return np.sort(np.array(replaced, dtype=np.intp))


def directional_derivative(
    function: Callable[[], Any], x: np.ndarray, upstream: Any, direction: np.ndarray
) -> tuple[float, np.ndarray, float]:
    """The change of ``sum(upstream * function())`` from ``x - direction`` to ``x + direction``.

    One pair of forwards sees every element of x at once (PyTorch's fast
    gradcheck): a gradient ``a`` is right along that direction when
    ``sum(a * step)`` matches the change.

    Parameters
    ----------
    function : callable with no arguments
        Recomputes the output from the current contents of ``x``.
    x : float64 array
        Changed in place, restored exactly.
    upstream : number or array of the output's shape
    direction : float64 array of x's shape
        Half the step, per element.

    Returns
    -------
    change : float
        ``sum(upstream * (f(x + direction) - f(x - direction)))``.
    step : float64 array of x's shape
        The step actually taken, ``(x + direction) - (x - direction)`` after rounding.
    noise : float
        The rounding error to expect in ``change`` (as in :func:`centered_differences`).
    """
    saved = x.copy()
    try:
        np.add(saved, direction, out=x)
        plus, up = np.array(function(), dtype=np.float64), x.copy()
        np.subtract(saved, direction, out=x)
        minus, down = np.array(function(), dtype=np.float64), x.copy()
    finally:
        x[...] = saved
    change, size = _weighted_difference(plus, minus, upstream)
    return change, up - down, EPSILON * size


def _weighted_difference(plus: np.ndarray, minus: np.ndarray, upstream: Any) -> tuple[float, float]:
    """``sum(upstream * (plus - minus))``, and ``sum(|upstream| (|plus| + |minus|))`` over the elements that changed.

    If none changed, the change may have been rounded away: then over every element.
    """
    changed = plus != minus
    if not changed.any():
        changed = np.ones_like(changed)
    difference = float(np.sum(upstream * (plus - minus)))
    size = float(np.sum(np.abs(upstream) * np.where(changed, np.abs(plus) + np.abs(minus), 0.0)))
    return difference, size
