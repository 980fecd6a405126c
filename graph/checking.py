"""Checking analytic gradients against numeric ones.

:func:`numerical_gradient` is the one finite-difference helper: the tests,
and the checks below, all use it.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


def numerical_gradient(function: Callable[[], Any], x: Any, upstream: Any = 1.0, eps: float = 1e-6) -> Any:
    """Centered differences of ``sum(upstream * function())`` with respect to ``x``.

    Parameters
    ----------
    function : callable with no arguments
        Recomputes the output from the current contents of ``x``.
    x : float64 array
        Changed in place one element at a time (x[i] + eps, x[i] - eps) and
        restored exactly afterwards.
    upstream : number or array of the output's shape
        Weights the output elements, so every element matters.
    eps : float
        Half the step of the centered difference.

    Returns
    -------
    array of x's shape: (f(x + eps) - f(x - eps)) / (2 eps) per element.
    """
    if not (isinstance(x, np.ndarray) and x.dtype == np.float64 and x.flags.writeable and x.flags.c_contiguous):
        raise TypeError("numerical_gradient perturbs x in place: x must be a writable, contiguous float64 array")
    gradient = np.zeros(x.shape)
    flat_x, flat_gradient = x.reshape(-1), gradient.reshape(-1)
    for i in range(flat_x.size):
        saved = flat_x[i]
        flat_x[i] = saved + eps
        plus = np.sum(upstream * np.asarray(function(), dtype=np.float64))
        flat_x[i] = saved - eps
        minus = np.sum(upstream * np.asarray(function(), dtype=np.float64))
        flat_x[i] = saved
        flat_gradient[i] = (plus - minus) / (2.0 * eps)
    return gradient
