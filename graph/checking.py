"""Checking analytic gradients against numeric ones.

:func:`numerical_gradient` is the one finite-difference helper: the tests,
and the checks below, all use it.

* :func:`gradcheck` compares ``g.backward()`` with centered differences for
  every input and parameter of a graph that needs a gradient;
* :func:`check_gate` does the same for one gate on its own (your custom gate);
* :func:`jacobian` builds the full Jacobian, one backward per output element.

Both checks return a :class:`GradientCheckResult`: truthy when every
gradient agrees, and printable with the course's grading of the relative
error ``|a - n| / max(|a|, |n|)``::

    <= 1e-7   good
    <= 1e-4   fine where a kink (max, min, ReLU) explains it, too high otherwise
    <= 1e-2   uncomfortable
    >  1e-2   wrong
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from gates.base import input_count
from graph import gate_state
from graph.errors import CheckError, FeedTypeError, JacobianTooLargeError
from graph.node import PARAM
from graph.values import check_gradients, check_output, to_array

#: Default tolerance on the relative error: ten times the worst rounding
#: error seen on correct gates with eps = 1e-6; see :func:`gradcheck`.
DEFAULT_TOL = 1e-5
#: Relative errors are divided by at least FLOOR and RELATIVE_FLOOR times the
#: largest gradient element of the check; see :func:`error_floor`.
FLOOR = 1e-8
RELATIVE_FLOOR = 1e-3
#: jacobian refuses to build more elements than this (80 MB of float64).
MAX_JACOBIAN_ELEMENTS = 10_000_000

_BANDS = (
    (1e-7, "good"),
    (1e-4, "acceptable with kinks, high without"),
    (1e-2, "uncomfortable"),
    (np.inf, "wrong"),
)



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


def relative_error(analytic: Any, numeric: Any, floor: float = FLOOR) -> np.ndarray:
    """``|a - n| / max(|a|, |n|, floor)`` elementwise: the course's relative error.

    The floor keeps two near-zero numbers (a gradient that is 0, and its
    finite difference that is 1e-11 of rounding noise) from counting as 100 %
    apart; below it the error is absolute.  A NaN counts as an infinite error.
    """
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
    with np.errstate(invalid="ignore"):
        error = np.abs(analytic - numeric) / scale
    return np.where(np.isnan(error), np.inf, error)


def error_floor(analytics: list[np.ndarray]) -> float:
    """The floor of the relative error for one check: ``max(FLOOR, RELATIVE_FLOOR * max |analytic|)``.

    A finite difference has rounding noise of about 1e-10 times the size of
    the output, whatever the element: an element a thousand times smaller
    than the largest gradient is therefore compared in absolute terms.
    """
    largest = max((float(np.nanmax(np.abs(a))) for a in analytics if a.size), default=0.0)
    return max(FLOOR, RELATIVE_FLOOR * largest) if np.isfinite(largest) else FLOOR


def band(error: float) -> str:
    """How the course grades a relative error: good, ..., wrong."""
    for limit, words in _BANDS:
        if error <= limit:
            return words
    return "wrong"  # NaN


@dataclass
class InputCheck:
    """The comparison for one input (or parameter).

    Attributes
    ----------
    name : str
    analytic, numeric : float64 arrays of the input's shape
        The backward pass's gradient and the centered differences.
    rel_error : float64 array of the input's shape
        :func:`relative_error` per element.
    kinks : bool array of the input's shape
        Where the finite difference crossed a kink: some max/min/ReLU winner
        was not the same at x - eps as at x + eps.
    kink_gates : list of str
        Names of the gates whose winner changed.
    """

    name: str
    analytic: np.ndarray
    numeric: np.ndarray
    rel_error: np.ndarray
    kinks: np.ndarray
    kink_gates: list[str] = field(default_factory=list)

    @property
    def max_rel_error(self) -> float:
        """The largest relative error over the elements (0 for an empty input)."""
        return float(self.rel_error.max()) if self.rel_error.size else 0.0

    @property
    def worst_index(self) -> tuple[int, ...]:
        """Index of the element with the largest relative error (() for a scalar)."""
        if self.rel_error.size == 0:
            return ()
        return tuple(int(i) for i in np.unravel_index(np.argmax(self.rel_error), self.rel_error.shape))

    @property
    def max_rel_error_off_kinks(self) -> float:
        """The largest relative error among elements whose difference crossed no kink."""
        clean = self.rel_error[~self.kinks]
        return float(clean.max()) if clean.size else 0.0


class GradientCheckResult:
    """What :func:`gradcheck` or :func:`check_gate` found.  Truthy when every gradient agrees.

    Attributes
    ----------
    checks : dict of str to InputCheck
        One comparison per input and parameter, in graph order.
    tol, eps : float
        The tolerance on the relative error and the finite-difference step.
    subject : str
        What was checked, for the printout.
    skipped : list of str
        Inputs not checked because backward returned None for them (check_gate).
    """

    def __init__(self, checks: list[InputCheck], tol: float, eps: float, subject: str, skipped=()):
        self.checks = {check.name: check for check in checks}
        self.tol = tol
        self.eps = eps
        self.subject = subject
        self.skipped = list(skipped)

    @property
    def ok(self) -> bool:
        """True when every relative error is at most ``tol``."""
        return self.max_rel_error <= self.tol

    def __bool__(self) -> bool:
        return self.ok

    @property
    def max_rel_error(self) -> float:
        """The largest relative error over every element of every input."""
        return max((check.max_rel_error for check in self.checks.values()), default=0.0)

    @property
    def errors(self) -> dict[str, float]:
        """The largest relative error per input name."""
        return {name: check.max_rel_error for name, check in self.checks.items()}

    @property
    def worst(self) -> tuple[str, tuple[int, ...]] | None:
        """(input name, element index) of the largest error, None if nothing was checked."""
        if not self.checks:
            return None
        check = max(self.checks.values(), key=lambda item: item.max_rel_error)
        return check.name, check.worst_index

    @property
    def crossed_kink(self) -> bool:
        """Whether any finite difference crossed a kink of a max/min/ReLU-family gate."""
        return any(bool(check.kinks.any()) for check in self.checks.values())

    def __getitem__(self, name: str) -> InputCheck:
        return self.checks[name]

    def __repr__(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return f"<GradientCheckResult {verdict}: max relative error {self.max_rel_error:.2e}, tol {self.tol:g}>"

    def __str__(self) -> str:
        verdict = "passed" if self.ok else "FAILED"
        lines = [
            f"gradient check of {self.subject}: {verdict} "
            f"(max relative error {self.max_rel_error:.2e}, tol {self.tol:g}, eps {self.eps:g})"
        ]
        width = max((len(name) for name in [*self.checks, *self.skipped]), default=0)
        for name, check in self.checks.items():
            error = check.max_rel_error
            where = f" at {list(check.worst_index)}" if check.rel_error.ndim else ""
            shape = f"shape {check.rel_error.shape}" if check.rel_error.ndim else "scalar"
            mark = "ok " if error <= self.tol else "BAD"
            lines.append(f"  {mark} {name:<{width}}  {shape:<14} {error:.2e}{where}  {band(error)}")
            if error > self.tol:
                index = check.worst_index
                lines.append(
                    f"        analytic {check.analytic[index] + 0.0:.6g} vs numeric {check.numeric[index] + 0.0:.6g}"
                )
        for name in self.skipped:
            lines.append(f"  --  {name:<{width}}  not checked: backward returned None (no gradient)")
        for check in self.checks.values():
            count = int(check.kinks.sum())
            if count:
                gate_names = ", ".join(repr(name) for name in check.kink_gates)
                first = [int(i) for i in np.argwhere(check.kinks)[0]] if check.kinks.ndim else []
                where = f" at {first}" if count == 1 else f", the first at {first}"
                where = "" if not check.kinks.ndim else where
                away = (
                    f" Away from kinks the largest error is {check.max_rel_error_off_kinks:.2e}."
                    if count < check.kinks.size
                    else ""
                )
                lines.append(
                    f"  warning: {count} finite difference{'s' if count > 1 else ''} for {check.name!r}{where} "
                    f"crossed a kink of {gate_names} (the winner changed between x - eps and x + eps): "
                    f"there the difference is no derivative, and a large error does not mean a wrong "
                    f"gradient.{away}"
                )
        return "\n".join(lines)


def gradcheck(
    g: Any,
    feeds: Mapping[str, Any] | None = None,
    eps: float = 1e-6,
    tol: float = DEFAULT_TOL,
    upstream: Any = None,
    seed: int = 0,
) -> GradientCheckResult:
    """Compare ``g.backward()`` with centered differences for every input and parameter needing a gradient.

    Parameters
    ----------
    g : ComputationalGraph
    feeds : mapping of input name to number or array
        As for ``g.forward``.  Copied: your arrays are never perturbed.
    eps : float
        Half the step of the centered difference (x + eps and x - eps), > 0.
    tol : float
        Largest relative error that passes.  The default 1e-5 passes correct
        gates in float64 (typically 1e-11 to 1e-8; the worst seen over
        thousands of random checks of every gate is below 1e-6) and fails a
        gradient off by any constant factor c with |c - 1| / max(c, 1) > 1e-5
        (2x gives 0.5, 1.1x gives 0.09, 1.001x gives 1e-3).
    upstream : number or array of the output's shape, optional
        d(loss)/d(output).  Defaults to 1 for a scalar output and to a random
        normal array (from ``seed``) otherwise, so every output element counts.
    seed : int
        Seed of that random upstream.

    Returns
    -------
    GradientCheckResult
        Truthy when every relative error is at most ``tol``.

    Raises
    ------
    CheckError
        If no input or parameter needs a gradient, or eps or tol is unusable.

    Notes
    -----
    Always computed in float64, whatever the graph's dtype (float32 has too
    few digits for finite differences); the result says so.  Runs in the
    graph's mode: in training mode, random gates (dropout) draw the same
    numbers in every forward of the check, and state such as batch norm's
    running averages is restored.  The graph is left exactly as it was: its
    last pass, gate caches, state and parameters (``g.last_pass_kept()``).
    Costs two forward passes per element of every checked input: use small
    shapes.

    Examples
    --------
    >>> from graph import ComputationalGraph
    >>> g = ComputationalGraph()
    >>> x, y, z = g.add_input("x"), g.add_input("y"), g.add_input("z")
    >>> f = (x + y) * z
    >>> bool(gradcheck(g, {"x": -2.0, "y": 5.0, "z": -4.0}))
    True
    """
    _check_step(eps, tol)
    feeds = {name: np.array(value, dtype=np.float64) for name, value in (feeds or {}).items()}
    order = g.nodes_topologically_sorted()
    gate_nodes = [node for node in order if node.gate is not None]
    with g.last_pass_kept(), g.computing_in(np.float64):
        taken = [gate_state.snapshot(node.gate) for node in gate_nodes]

        def forward():
            for node, state in zip(gate_nodes, taken):  # the same random draws every time
                gate_state.rewind_generator(node.gate, state)
            return g.forward(feeds)

        output = forward()
        upstream = _default_upstream(upstream, output, seed)
        analytic = {name: np.array(grad, dtype=np.float64) for name, grad in g.backward(upstream).items()}
        if not analytic:
            raise CheckError("nothing to check: no input or parameter of the graph needs a gradient")
        watcher = _KinkWatcher(
            [node for node in gate_nodes if _piece(node.gate, [g.value(source) for source in node.inputs]) is not None],
            lambda node: (node.gate, [g.value(source) for source in node.inputs]),
        )
        by_name = g.nodes_by_name
        rows = []
        for name, gradient in analytic.items():
            where = g.params if by_name[name].kind is PARAM else feeds
            original = where[name]
            perturbed = where[name] = np.array(original, dtype=np.float64, order="C")
            try:
                numeric, kinks, crossed = watcher.differences(forward, perturbed, upstream, eps)
            finally:
                where[name] = original
            rows.append((name, gradient, numeric, kinks, crossed))
    output_name = g.output.name if g.output is not None else "output"
    return GradientCheckResult(_compare(rows), tol, eps, f"graph output {output_name!r}{_dtype_note(g.dtype)}")


def check_gate(
    gate: Any,
    *inputs: Any,
    eps: float = 1e-6,
    tol: float = DEFAULT_TOL,
    upstream: Any = None,
    seed: int = 0,
) -> GradientCheckResult:
    """Check one gate's backward against centered differences of its forward.

    The gate runs on its own, in float64, on copies of ``inputs``.  Its
    backward gets a random upstream gradient (from ``seed``), so every output
    element matters.  What it returns goes through the graph's own check
    (:func:`graph.values.check_gradients`: count, type, shape, and summing
    broadcast axes); ``None`` means "no gradient" and is not compared.  A gate
    that belongs to a graph is left exactly as it was (cache, state,
    generator), so checking it between a forward and a backward changes
    nothing.

    Parameters
    ----------
    gate : Gate
        An instance with ``forward(*inputs)`` and ``backward(upstream)``.
    *inputs : numbers or arrays
        Where to check, one per input of forward.  Keep clear of kinks
        (x == y for max, 0 for ReLU) and of the edges of a domain (0 for log).
    eps, tol, upstream, seed
        As for :func:`gradcheck`.

    Returns
    -------
    GradientCheckResult
        One comparison per input, named after the parameters of ``forward``.

    Raises
    ------
    CheckError
        For a class instead of a gate, the wrong number of inputs, or inputs
        that are not real numbers.
    GateForwardError, GradientError
        If forward returns something that is not real numbers, or backward
        returns the wrong number of gradients, a wrong type, or a gradient
        of the wrong shape.

    Examples
    --------
    >>> import gates, numpy as np
    >>> bool(check_gate(gates.SigmoidGate(), np.array([-1.0, 0.5, 2.0])))
    True
    """
    _check_step(eps, tol)
    gate_name = _check_gate_and_inputs(gate, inputs)
    arrays = [to_array(value, np.dtype(np.float64), "check_gate input", name) for value, name in zip(inputs, _input_names(gate, len(inputs)))]
    names = _input_names(gate, len(arrays))
    who = (f"gate {gate_name}", names)
    taken = gate_state.snapshot(gate)

    def run() -> Any:
        gate_state.rewind_generator(gate, taken)
        out = gate.forward(*[a[()] if a.ndim == 0 else a for a in arrays])  # 0-d: a numpy scalar, as the graph passes it
        if not (type(out) in (np.ndarray, np.float64) and out.dtype == np.float64):
            out = check_output(out, np.dtype(np.float64), who)
        return out

    gate.needs_input_grad = None  # on its own, every input needs a gradient
    try:
        output = run()
        upstream = _default_upstream(upstream, output, seed)
        returned = gate.backward(upstream)
        inputs_now = [a[()] if a.ndim == 0 else a for a in arrays]
        gradients = check_gradients(returned, inputs_now, output, np.dtype(np.float64), who)
        watcher = _KinkWatcher([gate] if _piece(gate, inputs_now) is not None else [], lambda _: (gate, arrays))
        rows, skipped = [], []
        for name, gradient, array in zip(names, gradients, arrays):
            if gradient is None:  # "needs no gradient" (labels): nothing to compare
                skipped.append(name)
                continue
            numeric, kinks, crossed = watcher.differences(run, array, upstream, eps)
            rows.append((name, np.array(gradient, dtype=np.float64), numeric, kinks, crossed))
    finally:
        gate_state.restore(gate, taken)
    return GradientCheckResult(_compare(rows), tol, eps, f"gate {gate_name}", skipped)


def jacobian(
    g: Any, feeds: Mapping[str, Any] | None, wrt: Any, max_elements: int = MAX_JACOBIAN_ELEMENTS
) -> np.ndarray:
    """The full Jacobian d(output)/d(wrt), one backward pass per output element.

    Parameters
    ----------
    g : ComputationalGraph
    feeds : mapping of input name to number or array
    wrt : Node or str
        Any node that needs a gradient: an input, a parameter or a gate.
    max_elements : int
        Refuse when the Jacobian would have more elements than this.

    Returns
    -------
    array of the graph's dtype, of shape ``output.shape + wrt.shape``:
    element ``[i..., j...]`` is d output[i...] / d wrt[j...].

    Raises
    ------
    JacobianTooLargeError
        When output.size * wrt.size > max_elements.  The lecture's point: a
        4096-wide elementwise layer on a batch of 100 has a 409600 x 409600
        Jacobian; backward never builds it, it multiplies by it implicitly.
    CheckError
        If ``wrt`` needs no gradient.

    Notes
    -----
    The graph is left exactly as it was (``g.last_pass_kept()``).
    """
    node = g.node(wrt)
    if not node.requires_grad:
        raise CheckError(f"{node.name!r} needs no gradient ({node.kind}), so it has no Jacobian")
    with g.last_pass_kept():
        output = g.forward(feeds)
        in_shape = np.shape(g.value(node))
        in_size = int(np.prod(in_shape, dtype=np.int64))
        total = output.size * in_size
        if total > max_elements:
            raise JacobianTooLargeError(
                f"the Jacobian of {g.output.name!r} {output.shape} with respect to {node.name!r} {in_shape} "
                f"would be {output.size:,} x {in_size:,} = {total:,} elements ({total * 8 / 1e9:.3g} GB), "
                f"more than max_elements={max_elements:,}; backward never builds it: it computes "
                f"upstream x Jacobian directly (the lecture's 409600 x 409600 example)"
            )
        result = np.zeros(output.shape + in_shape, dtype=g.dtype)
        rows = result.reshape(output.size, in_size)
        upstream = np.zeros(output.shape, dtype=g.dtype)
        flat_upstream = upstream.reshape(-1)
        for k in range(output.size):
            flat_upstream[k] = 1.0
            g.backward(upstream)
            rows[k] = np.ravel(g.grad(node))
            flat_upstream[k] = 0.0
    return result


# ---------------------------------------------------------------- helpers


class _KinkWatcher:
    """Runs centered differences while watching the pieces of piecewise gates (``gate.piece``).

    ``gate_and_inputs(item)`` gives a watched gate and its current inputs
    after a forward.  numerical_gradient evaluates x[i] + eps, then
    x[i] - eps, for i in order, so calls 2i and 2i + 1 belong to element i.
    """

    def __init__(self, watched: list, gate_and_inputs: Callable[[Any], tuple]):
        self.watched = watched
        self.gate_and_inputs = gate_and_inputs

    def differences(self, function, x, upstream, eps) -> tuple[np.ndarray, np.ndarray, list[str]]:
        kinks = np.zeros(x.shape, dtype=bool)
        flat_kinks = kinks.reshape(-1)
        crossed: list[str] = []
        if not self.watched:
            return numerical_gradient(function, x, upstream, eps), kinks, crossed
        calls = [0]
        previous: list = []

        def watched_function():
            out = function()
            pieces = [_piece(*self.gate_and_inputs(item)) for item in self.watched]
            if calls[0] % 2 == 1:
                for item, before, after in zip(self.watched, previous, pieces):
                    if not np.array_equal(before, after):
                        flat_kinks[calls[0] // 2] = True
                        name = getattr(item, "name", None) or type(item).__name__
                        if name not in crossed:
                            crossed.append(name)
            previous[:] = pieces
            calls[0] += 1
            return out

        return numerical_gradient(watched_function, x, upstream, eps), kinks, crossed


def _piece(gate: Any, inputs: list) -> Any:
    """``gate.piece(*inputs)``: where a piecewise gate is on its formula; None for a smooth gate."""
    piece = getattr(gate, "piece", None)
    return piece(*inputs) if callable(piece) else None


def _compare(rows: list[tuple]) -> list[InputCheck]:
    """InputChecks from (name, analytic, numeric, kinks, kink gates) rows, with one floor for all."""
    rows = [
        (name, np.asarray(analytic, dtype=np.float64).reshape(numeric.shape), numeric, kinks, crossed)
        for name, analytic, numeric, kinks, crossed in rows
    ]
    floor = error_floor([row[1] for row in rows])
    return [
        InputCheck(name, analytic, numeric, relative_error(analytic, numeric, floor), kinks, crossed)
        for name, analytic, numeric, kinks, crossed in rows
    ]


def _default_upstream(upstream: Any, output: Any, seed: int) -> Any:
    if upstream is not None:
        return np.asarray(upstream, dtype=np.float64)[()]
    if np.ndim(output) == 0:
        return np.float64(1.0)
    return np.random.default_rng(seed).standard_normal(np.shape(output))


def _check_step(eps: Any, tol: Any) -> None:
    """CheckError unless eps > 0 and tol >= 0 are finite numbers."""
    for what, value, low in (("eps", eps, "> 0"), ("tol", tol, ">= 0")):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise CheckError(f"{what} must be a number {low}, got {value!r}") from None
        if not np.isfinite(number) or number < 0 or (what == "eps" and number == 0):
            raise CheckError(f"{what} must be a finite number {low}, got {value!r}")


def _check_gate_and_inputs(gate: Any, inputs: tuple) -> str:
    """The gate's class name, after checking it is a gate instance given the right number of inputs."""
    if isinstance(gate, type):
        raise CheckError(f"check_gate takes a gate instance, got the class {gate.__name__}: write {gate.__name__}()")
    if not (callable(getattr(gate, "forward", None)) and callable(getattr(gate, "backward", None))):
        raise CheckError(f"check_gate takes a gate (with forward and backward), got {type(gate).__name__}")
    name = type(gate).__name__
    try:
        fewest, most = input_count(gate)
    except TypeError as error:
        raise CheckError(str(error)) from None
    if len(inputs) < fewest or (most is not None and len(inputs) > most):
        takes = f"{fewest}" if fewest == most else f"{fewest} to {most}" if most else f"at least {fewest}"
        raise CheckError(f"check_gate: {name}.forward takes {takes} input(s), got {len(inputs)}")
    for position, value in enumerate(inputs):
        try:
            to_array(value, np.dtype(np.float64), "input")
        except FeedTypeError as error:
            raise CheckError(f"check_gate: input {position} of {name} is not real numbers: {error}") from None
    return name


def _dtype_note(dtype: Any) -> str:
    return "" if np.dtype(dtype) == np.float64 else f" (checked in float64; the graph computes in {np.dtype(dtype)})"


def _input_names(gate: Any, count: int) -> list[str]:
    """The names of forward's parameters (x, y, W ...), or input0, input1 ..."""
    try:
        parameters = [
            p.name
            for p in inspect.signature(gate.forward).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        parameters = []
    if len(parameters) >= count and len(set(parameters[:count])) == count:
        return parameters[:count]
    return [f"input{i}" for i in range(count)]
