"""Checking analytic gradients against numeric ones.

:func:`numerical_gradient` is the one finite-difference helper: the tests,
and the checks below, all use it.

* :func:`gradcheck` compares ``g.backward()`` with centered differences for
  every input and parameter of a graph that needs a gradient;
* :func:`check_gate` does the same for one gate on its own (your custom gate);
* :func:`check_gates` finds the broken gate of a graph: every gate on its
  own, at the inputs it received in one forward pass;
* :func:`jacobian` builds the full Jacobian, one backward per output element.

The first two return a :class:`GradientCheckResult` (:func:`check_gates`, one
per gate in a :class:`GatesCheckResult`): truthy when every
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

from gates.base import wrong_input_count
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
#: check_gates compares at most this many elements of each input, drawn at random.
DEFAULT_SAMPLE = 64
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

    Computed as ``sum(upstream * (f(x + eps) - f(x - eps))) / (2 eps)``, which
    keeps the rounding noise to the output elements each x[i] changes.

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
    return _centered_differences(function, x, upstream, eps, range(x.size))


def _centered_differences(function: Callable[[], Any], x: np.ndarray, upstream: Any, eps: float, flat_indices) -> np.ndarray:
    """:func:`numerical_gradient` at the flat indices given, in their order; the other elements stay 0.

    The two outputs are subtracted before they are weighted and summed: the
    output elements that x[i] does not affect cancel exactly, so the rounding
    noise is that of the affected elements only, not of the whole output
    (for x @ W, one column instead of every element).
    """
    gradient = np.zeros(x.shape)
    flat_x, flat_gradient = x.reshape(-1), gradient.reshape(-1)
    for i in flat_indices:
        saved = flat_x[i]
        flat_x[i] = saved + eps
        plus = np.array(function(), dtype=np.float64)  # a copy: an output may be a view of x
        flat_x[i] = saved - eps
        difference = plus - np.asarray(function(), dtype=np.float64)  # before x is restored
        flat_x[i] = saved
        flat_gradient[i] = np.sum(upstream * difference) / (2.0 * eps)
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
    checked : bool array of the input's shape, or None
        The elements compared when only a random sample was
        (:func:`check_gates` on a large input): elsewhere ``numeric`` is NaN
        and ``rel_error`` 0.  None when every element was compared.
    """

    name: str
    analytic: np.ndarray
    numeric: np.ndarray
    rel_error: np.ndarray
    kinks: np.ndarray
    kink_gates: list[str] = field(default_factory=list)
    checked: np.ndarray | None = None

    @property
    def checked_count(self) -> int:
        """How many elements were compared."""
        return self.rel_error.size if self.checked is None else int(self.checked.sum())

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

    def __init__(self, checks: list[InputCheck], tol: float, eps: float, subject: str, skipped=(), skip_reasons=None):
        self.checks = {check.name: check for check in checks}
        self.tol = tol
        self.eps = eps
        self.subject = subject
        self.skipped = list(skipped)
        self.skip_reasons = dict(skip_reasons or {})

    @property
    def ok(self) -> bool:
        """True when every relative error is at most ``tol``."""
        return self.max_rel_error <= self.tol

    @property
    def ok_away_from_kinks(self) -> bool:
        """True when every relative error is at most ``tol`` where no finite difference crossed a kink."""
        return all(check.max_rel_error_off_kinks <= self.tol for check in self.checks.values())

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
        header = (
            f"gradient check of {self.subject}: {verdict} "
            f"(max relative error {self.max_rel_error:.2e}, tol {self.tol:g}, eps {self.eps:g})"
        )
        return "\n".join([header, *self._detail_lines()])

    def _detail_lines(self) -> list[str]:
        """One line per input (two for a bad one), then the kink warnings."""
        lines = []
        width = max((len(name) for name in [*self.checks, *self.skipped]), default=0)
        shapes = {
            name: f"shape {check.rel_error.shape}" if check.rel_error.ndim else "scalar"
            for name, check in self.checks.items()
        }
        shape_width = max([14, *(len(shape) + 1 for shape in shapes.values())])
        for name, check in self.checks.items():
            error = check.max_rel_error
            where = f" at {list(check.worst_index)}" if check.rel_error.ndim else ""
            shape = shapes[name]
            mark = "ok " if error <= self.tol else "BAD"
            sample = (
                f"  (checked on a random sample of {check.checked_count} of {check.rel_error.size} elements)"
                if check.checked is not None
                else ""
            )
            lines.append(f"  {mark} {name:<{width}}  {shape:<{shape_width}} {error:.2e}{where}  {band(error)}{sample}")
            if error > self.tol:
                index = check.worst_index
                lines.append(
                    f"        analytic {check.analytic[index] + 0.0:.6g} vs numeric {check.numeric[index] + 0.0:.6g}"
                )
        for name in self.skipped:
            why = self.skip_reasons.get(name, "backward returned None (no gradient)")
            lines.append(f"  --  {name:<{width}}  not checked: {why}")
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
        return lines


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
    names = _input_names(gate, len(inputs))
    arrays = [to_array(value, np.dtype(np.float64), "check_gate input", name) for value, name in zip(inputs, names)]
    return _check_alone(
        gate, arrays, names, f"gate {gate_name}", eps, tol, lambda output: _default_upstream(upstream, output, seed)
    )


def check_gates(
    g: Any,
    feeds: Mapping[str, Any] | None = None,
    upstream: Any = None,
    *,
    eps: float = 1e-6,
    tol: float = DEFAULT_TOL,
    seed: int = 0,
    max_elements: int | None = DEFAULT_SAMPLE,
) -> GatesCheckResult:
    """Find the broken gate: check every gate of a graph on its own, at the inputs it received in one pass.

    :func:`gradcheck` tells you *that* a graph's gradient is wrong; this tells
    you *where*.  One forward pass runs (in the graph's mode); then each gate,
    in topological order, runs alone in float64 on copies of the values that
    went into it in that pass, and its backward is compared with centered
    differences of its forward, as :func:`check_gate` does.  A gate is wrong
    when its relative error exceeds ``tol`` away from kinks; one whose only
    large errors are where a finite difference crossed a kink (a ReLU input of
    exactly 0, a tie in a max) passes, with a warning.

    Parameters
    ----------
    g : ComputationalGraph
    feeds : mapping of input name to number or array
        As for ``g.forward``.
    upstream : None or number
        What each gate's backward gets: None draws a random normal array of
        the gate's output shape (1 for a scalar output such as the loss), so
        every output element counts; a number gives every element that
        weight (1.0: the plain sum of the outputs).
    eps, tol : float
        As for :func:`gradcheck`.
    seed : int
        Seeds the random upstream gradients and samples.
    max_elements : int or None
        An input with more elements is checked on a random sample of this
        many (two forwards of the gate per element); None checks every one.

    Returns
    -------
    GatesCheckResult
        Truthy when no gate is wrong; ``wrong`` names the wrong gates in
        topological order; ``str()`` grades every gate, one section each.

    Raises
    ------
    CheckError
        If eps, tol or max_elements is unusable, or no gate has an input
        needing a gradient.
    GraphError
        If the forward pass fails (a bad feed, a gate failing in forward).

    Notes
    -----
    Inputs that need no gradient in the graph (data, labels, indices,
    constants) are not checked, and each gate is told so through
    ``needs_input_grad`` as in the graph.  A gate whose check raises (its
    backward fails, or returns gradients of the wrong shape) is wrong, with
    the error.  Random gates (dropout) draw the numbers of the pass again in
    every forward of their check.  The graph is left exactly as it was: its
    last pass, every gate's cache, state and generator
    (``g.last_pass_kept()``); parameters and feeds are never perturbed.

    Examples
    --------
    >>> import gates
    >>> from graph import ComputationalGraph
    >>> g = ComputationalGraph()
    >>> x, w = g.add_input("x", requires_grad=False), g.add_param("w", np.full((3, 2), 0.5))
    >>> h = g.add_gate(gates.SigmoidGate(), x @ w, name="h")
    >>> out = g.add_gate(gates.SumGate(), h, name="out")
    >>> result = check_gates(g, {"x": np.arange(6.0).reshape(2, 3)})
    >>> bool(result), result.wrong
    (True, [])
    """
    _check_step(eps, tol)
    if max_elements is not None and (
        isinstance(max_elements, bool) or not isinstance(max_elements, (int, np.integer)) or max_elements < 1
    ):
        raise CheckError(f"max_elements must be a positive integer or None, got {max_elements!r}")
    if upstream is not None:
        try:
            constant = float(upstream)
        except (TypeError, ValueError):
            raise CheckError(f"check_gates: upstream must be None or a number, got {upstream!r}") from None
    rng = np.random.default_rng(seed)

    def upstream_for(output: Any) -> Any:
        if upstream is not None:
            return np.full(np.shape(output), constant)[()]
        if np.ndim(output) == 0:
            return np.float64(1.0)
        return rng.standard_normal(np.shape(output))

    def sample(size: int) -> np.ndarray | None:
        if max_elements is None or size <= max_elements:
            return None
        return np.sort(rng.choice(size, size=max_elements, replace=False))

    gate_nodes = [node for node in g.nodes_topologically_sorted() if node.gate is not None]
    if not any(source.requires_grad for node in gate_nodes for source in node.inputs):
        raise CheckError("nothing to check: no gate of the graph has an input that needs a gradient")
    results, failures, unchecked = {}, {}, []
    with g.last_pass_kept():
        before = {node.name: gate_state.snapshot(node.gate) for node in gate_nodes}  # generators before the pass
        g.forward(feeds)
        for node in gate_nodes:
            needs = tuple(source.requires_grad for source in node.inputs)
            if not any(needs):
                unchecked.append(node.name)
                continue
            parameters = _input_names(node.gate, len(node.inputs))
            names = [f"{parameter} = {source.name}" for parameter, source in zip(parameters, node.inputs)]
            arrays = [np.array(g.value(source), dtype=np.float64, order="C") for source in node.inputs]
            subject = f"gate {node.name!r} ({type(node.gate).__name__})"
            try:
                results[node.name] = _check_alone(
                    node.gate, arrays, names, subject, eps, tol, upstream_for, needs, sample, before[node.name], node.name
                )
            except Exception as error:  # a backward that raises is a wrong gate: say so and go on
                failures[node.name] = f"{type(error).__name__}: {error}"
    subjects = {node.name: f"gate {node.name!r} ({type(node.gate).__name__})" for node in gate_nodes}
    return GatesCheckResult(results, failures, unchecked, subjects, tol, eps, g.training, _dtype_note(g.dtype))


class GatesCheckResult:
    """What :func:`check_gates` found, gate by gate.  Truthy when no gate is wrong.

    Attributes
    ----------
    gates : dict of node name to GradientCheckResult
        The check of each gate with an input needing a gradient, in
        topological order.
    failures : dict of node name to str
        Gates whose check raised (e.g. their backward failed), with the error.
    unchecked : list of str
        Gates none of whose inputs needs a gradient (computed from data only).
    tol, eps : float
    """

    def __init__(
        self,
        gates: Mapping[str, GradientCheckResult],
        failures: Mapping[str, str],
        unchecked: list[str],
        subjects: Mapping[str, str],
        tol: float,
        eps: float,
        training: bool,
        dtype_note: str,
    ):
        self.gates = dict(gates)
        self.failures = dict(failures)
        self.unchecked = list(unchecked)
        self.tol = tol
        self.eps = eps
        self._subjects = subjects
        self._order = [name for name in subjects if name in self.gates or name in self.failures]
        self._training = training
        self._dtype_note = dtype_note

    @property
    def wrong(self) -> list[str]:
        """Names of the gates whose gradient is wrong (above tol away from kinks, or whose check raised), in topological order."""
        return [name for name in self._order if name in self.failures or not self.gates[name].ok_away_from_kinks]

    @property
    def kinks(self) -> list[str]:
        """Names of the gates that pass, but only away from kinks: large errors only where a difference crossed one."""
        wrong = set(self.wrong)
        return [name for name in self._order if name in self.gates and not self.gates[name].ok and name not in wrong]

    @property
    def ok(self) -> bool:
        """True when no gate is wrong."""
        return not self.wrong

    def __bool__(self) -> bool:
        return self.ok

    def __getitem__(self, name: str) -> GradientCheckResult:
        return self.gates[name]

    def __repr__(self) -> str:
        wrong = self.wrong
        verdict = "ok" if not wrong else f"wrong: {', '.join(wrong)}"
        return f"<GatesCheckResult {verdict}; {len(self._order)} gates checked, tol {self.tol:g}>"

    def __str__(self) -> str:
        wrong, kinks = self.wrong, self.kinks
        count = len(self._order)
        if wrong:
            names = ", ".join(repr(name) for name in wrong)
            header = f"check_gates: {len(wrong)} of {count} gate{'s' if count != 1 else ''} wrong: {names}"
        else:
            header = f"check_gates: all {count} gate{'s' if count != 1 else ''} passed"
        if kinks:
            header += f"; {len(kinks)} only away from kinks: " + ", ".join(repr(name) for name in kinks)
        mode = "training" if self._training else "evaluation"
        lines = [
            header,
            f"Each gate alone, at the inputs it received in one forward pass ({mode} mode),",
            f"against centered differences with a random upstream gradient (eps {self.eps:g}, tol {self.tol:g})"
            f"{self._dtype_note}.",
        ]
        for name in self._order:
            lines.append("")
            if name in self.failures:
                lines.append(f"{self._subjects[name]}: FAILED: the check raised {self.failures[name]}")
                continue
            result = self.gates[name]
            if result.ok:
                verdict = "passed"
            elif result.ok_away_from_kinks:
                verdict = "passed away from kinks"
            else:
                verdict = "FAILED"
            lines.append(f"{self._subjects[name]}: {verdict} (max relative error {result.max_rel_error:.2e})")
            lines.extend(result._detail_lines())
        if self.unchecked:
            lines.append("")
            lines.append(
                "Not checked (no input needs a gradient): " + ", ".join(repr(name) for name in self.unchecked)
            )
        return "\n".join(lines)


def _check_alone(
    gate: Any,
    arrays: list[np.ndarray],
    names: list[str],
    subject: str,
    eps: float,
    tol: float,
    upstream_for: Callable[[Any], Any],
    needs: tuple[bool, ...] | None = None,
    sample: Callable[[int], np.ndarray | None] | None = None,
    replay: tuple | None = None,
    kink_name: str | None = None,
) -> GradientCheckResult:
    """Run ``gate`` alone on ``arrays`` (float64 copies it may keep), backward once, and compare with differences.

    ``upstream_for(output)`` gives the upstream gradient.  ``needs`` is the
    gate's ``needs_input_grad`` during the check (None: every input); inputs
    that need none are not compared.  ``sample(size)`` gives the flat indices
    to compare for an input of that size (None: all).  Before every forward the
    gate's generator is rewound to ``replay``'s state (a snapshot; default: now),
    so random gates draw the same numbers.  The gate is restored afterwards.
    """
    who = (subject, names)
    taken = gate_state.snapshot(gate)
    replay = taken if replay is None else replay

    def current() -> list:
        return [a[()] if a.ndim == 0 else a for a in arrays]  # 0-d: a numpy scalar, as the graph passes it

    def run() -> Any:
        gate_state.rewind_generator(gate, replay)
        out = gate.forward(*current())
        if not (type(out) in (np.ndarray, np.float64) and out.dtype == np.float64):
            out = check_output(out, np.dtype(np.float64), who)
        return out

    gate.needs_input_grad = needs  # None: on its own, every input needs a gradient
    try:
        output = run()
        upstream = upstream_for(output)
        returned = gate.backward(upstream)
        gradients = check_gradients(returned, current(), output, np.dtype(np.float64), who)
        watched = [gate] if _piece(gate, current()) is not None else []
        watcher = _KinkWatcher(watched, lambda _: (gate, arrays), kink_name)
        rows, skipped, reasons = [], [], {}
        for position, (name, gradient, array) in enumerate(zip(names, gradients, arrays)):
            if needs is not None and not needs[position]:
                skipped.append(name)
                reasons[name] = "needs no gradient in the graph"
                continue
            if gradient is None:  # "needs no gradient" (labels): nothing to compare
                skipped.append(name)
                continue
            indices = sample(array.size) if sample is not None else None
            numeric, kinks, crossed = watcher.differences(run, array, upstream, eps, indices)
            checked = None
            if indices is not None:
                checked = np.zeros(array.shape, dtype=bool)
                checked.reshape(-1)[indices] = True
            rows.append((name, np.array(gradient, dtype=np.float64), numeric, kinks, crossed, checked))
    finally:
        gate_state.restore(gate, taken)
    return GradientCheckResult(_compare(rows), tol, eps, subject, skipped, reasons)


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

    def __init__(self, watched: list, gate_and_inputs: Callable[[Any], tuple], name: str | None = None):
        self.watched = watched
        self.gate_and_inputs = gate_and_inputs
        self.name = name  # how to call a watched gate in messages; default: its name, or its class

    def differences(self, function, x, upstream, eps, flat_indices=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Centered differences at ``flat_indices`` (default: every element), kinks crossed, gates crossed.

        Elements not in ``flat_indices`` are NaN in the differences.
        """
        kinks = np.zeros(x.shape, dtype=bool)
        flat_kinks = kinks.reshape(-1)
        crossed: list[str] = []
        indices = range(x.size) if flat_indices is None else flat_indices
        if not self.watched:
            return self._differences(function, x, upstream, eps, flat_indices), kinks, crossed
        calls = [0]
        previous: list = []

        def watched_function():
            out = function()
            pieces = [_piece(*self.gate_and_inputs(item)) for item in self.watched]
            if calls[0] % 2 == 1:
                for item, before, after in zip(self.watched, previous, pieces):
                    if not np.array_equal(before, after):
                        flat_kinks[indices[calls[0] // 2]] = True
                        name = self.name or getattr(item, "name", None) or type(item).__name__
                        if name not in crossed:
                            crossed.append(name)
            previous[:] = pieces
            calls[0] += 1
            return out

        return self._differences(watched_function, x, upstream, eps, flat_indices), kinks, crossed

    @staticmethod
    def _differences(function, x, upstream, eps, flat_indices) -> np.ndarray:
        if flat_indices is None:
            return numerical_gradient(function, x, upstream, eps)
        gradient = _centered_differences(function, x, upstream, eps, flat_indices)
        unchecked = np.ones(x.size, dtype=bool)
        unchecked[flat_indices] = False
        gradient.reshape(-1)[unchecked] = np.nan
        return gradient


def _piece(gate: Any, inputs: list) -> Any:
    """``gate.piece(*inputs)``: where a piecewise gate is on its formula; None for a smooth gate."""
    piece = getattr(gate, "piece", None)
    return piece(*inputs) if callable(piece) else None


def _compare(rows: list[tuple]) -> list[InputCheck]:
    """InputChecks from (name, analytic, numeric, kinks, kink gates[, checked]) rows, with one floor for all.

    ``checked`` (a bool mask, or None for all) marks the elements compared;
    elsewhere the relative error is 0.
    """
    rows = [
        (row[0], np.asarray(row[1], dtype=np.float64).reshape(row[2].shape), *row[2:5], row[5] if len(row) > 5 else None)
        for row in rows
    ]
    floor = error_floor([row[1] for row in rows])
    checks = []
    for name, analytic, numeric, kinks, crossed, checked in rows:
        error = relative_error(analytic, numeric, floor)
        if checked is not None:
            error[~checked] = 0.0
        checks.append(InputCheck(name, analytic, numeric, error, kinks, crossed, checked))
    return checks


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
        wrong_count = wrong_input_count(gate, len(inputs))
    except TypeError as error:
        raise CheckError(str(error)) from None
    if wrong_count:
        raise CheckError(f"check_gate: {wrong_count}")
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
