"""The ``Gate`` base class: one operation with a forward and a backward.

A gate is the lecture's modular unit::

    class MultiplyGate(Gate):
        def forward(self, x, y):
            self.x, self.y = x, y        # cache what backward needs
            return x * y
        def backward(self, upstream):
            return upstream * self.y, upstream * self.x   # dz/dx = y, dz/dy = x

``forward(*inputs)`` takes one value per input, always a numpy value: an array
or a numpy float scalar (``np.float64(2.0)`` has ``.shape == ()``, ``.dtype``
and numpy's division semantics), in the graph's dtype (float64, or float32
when the graph was built with ``dtype=np.float32``), and returns the output
in that dtype.  ``backward(upstream)`` takes dL/d(output), with
the output's shape, and returns one gradient per input, in input order: the
upstream gradient times the local gradient.  ``None`` stands for "no gradient"
(treated as zero), for inputs such as integer labels.

In a graph, the arrays a gate receives are read-only: its inputs (another
gate may have cached them) and its upstream gradient (another input may have
received the same array).  Compute new arrays; never write into those.
The arrays a gate returns from forward become read-only too.

Gates never reduce broadcast gradients and never add up gradients from
several uses of a value: the graph does both, once, for every gate.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Sequence


class Gate:
    """Base class of every gate.  Subclass it and define ``forward`` and ``backward``.

    The number of inputs a gate takes is read from the signature of its
    ``forward`` (see :func:`input_count`).

    Attributes
    ----------
    needs_input_grad : tuple of bool or None
        Set by the graph when the gate is added, before any forward: one
        flag per input telling whether that input needs a gradient, as in
        PyTorch's custom functions.  A gate may skip the work for an input whose flag is
        False (``MatMulGate`` does).  ``None`` (a gate used on its own)
        means every input needs one, hence the idiom
        ``needs_x, needs_y = self.needs_input_grad or (True, True)``.
    symbol : str
        Short label used in pictures and traces, e.g. ``"+"`` or ``"exp"``.
    training : bool
        Set by the graph (``g.train()``, ``g.eval()``): True while training.
        Only gates that behave differently in evaluation read it (batch
        norm, dropout).  True for a gate used on its own.
    rng : numpy.random.Generator, optional
        A gate that draws random numbers (dropout) keeps its generator here.
        Gradient checks restore its state before every forward, so each
        forward of a check draws the same numbers.

    Notes
    -----
    Methods a gate may override, besides forward and backward:

    - ``piece(*inputs)``: for a piecewise gate (ReLU, max, pooling), an array
      that tells which piece of the formula each element is on; gradient
      checks warn when a finite difference changes it (it crossed a kink).
    - ``state_dict()`` / ``load_state_dict(state)``: arrays a gate keeps
      from pass to pass (batch norm's running averages); saved with the
      parameters and restored by gradient checks.
    """

    needs_input_grad: tuple[bool, ...] | None = None
    symbol: str = ""
    training: bool = True

    def forward(self, *inputs: Any) -> Any:
        """Compute the output from the inputs and cache what backward needs."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward(*inputs)")

    def backward(self, upstream: Any) -> Sequence[Any]:
        """Return one gradient per input: upstream times the local gradient."""
        raise NotImplementedError(f"{type(self).__name__} does not define backward(upstream)")

    def piece(self, *inputs: Any) -> Any:
        """Which piece of a piecewise formula each element is on, for the inputs of forward; None if smooth.

        For example ``np.sign(x)`` for ReLU (or a custom AbsGate), ``np.sign(x - y)``
        for max.  A gradient check compares it at x - eps and x + eps: where it
        changed, the finite difference crossed a kink and measures no derivative.
        """
        return None

    def state_dict(self) -> dict[str, Any]:
        """Arrays this gate keeps between passes (not parameters), by name; empty for most gates."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Set what :meth:`state_dict` returns, from copies of ``state``'s arrays."""
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state, got {sorted(state)}")

    def input_needs_grad(self, position: int) -> bool:
        """Whether input ``position`` needs a gradient (always True for a gate used alone)."""
        flags = self.needs_input_grad
        return flags is None or flags[position]

    def label(self) -> str:
        """The symbol if the gate has one, else its class name without 'Gate'."""
        return self.symbol or type(self).__name__.removesuffix("Gate")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def input_count(gate: Any) -> tuple[int, int | None]:
    """(fewest, most) inputs ``gate.forward`` accepts; most is None for ``*inputs``.

    Raises TypeError for a ``forward`` that is a staticmethod or classmethod:
    a gate's forward caches on ``self``.
    """
    cls, forward = type(gate), gate.forward
    declared = getattr(cls, "forward", None)
    if callable(declared):
        counts = _class_input_count(cls)  # raises for a staticmethod or classmethod
        if getattr(forward, "__func__", None) is declared:  # the class's own method, as usual
            return counts
    # A forward set on the instance itself.  (Not read from gate.__dict__:
    # that would give every gate a dictionary it does not otherwise need.)
    return _count_positional(forward, skip_first=False)


def wrong_input_count(gate: Any, count: int) -> str | None:
    """None if ``gate.forward`` takes ``count`` inputs, else why not: "SigmoidGate takes 1 input, got 2".

    Raises TypeError as :func:`input_count` does.
    """
    fewest, most = input_count(gate)
    if fewest <= count and (most is None or count <= most):
        return None
    takes = f"{fewest}" if fewest == most else f"{fewest} to {most}" if most else f"at least {fewest}"
    return f"{type(gate).__name__} takes {takes} input{'s' if most != 1 else ''}, got {count}"


@functools.lru_cache(maxsize=None)
def _class_input_count(cls: type) -> tuple[int, int | None]:
    # Cached per class: inspecting a class costs more than adding a gate.
    declared = inspect.getattr_static(cls, "forward", None)
    if isinstance(declared, (staticmethod, classmethod)):
        raise TypeError(
            f"{cls.__name__}.forward is a {type(declared).__name__}: a gate's forward is an ordinary "
            f"method, def forward(self, x, ...), so that it can cache what backward needs on self"
        )
    return _count_positional(cls.forward, skip_first=True)


@functools.lru_cache(maxsize=None)
def _count_positional(function: Any, skip_first: bool) -> tuple[int, int | None]:
    # Cached per class: inspecting a signature costs more than adding a gate.
    parameters = list(inspect.signature(function).parameters.values())[int(skip_first):]
    required, maximum = 0, 0
    for parameter in parameters:
        if parameter.kind is parameter.VAR_POSITIONAL:
            return required, None
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            maximum += 1
            if parameter.default is parameter.empty:
                required += 1
    return required, maximum
