"""Checking analytic gradients against numeric ones.

The finite differences themselves live in :mod:`graph.finite_differences`
(``numerical_gradient``, importable from here too), the results and their
grading in :mod:`graph.check_results` (importable from here too).  The checks:

* :func:`gradcheck` compares ``g.backward()`` with centered differences for
  every element of every input and parameter of a graph that needs a gradient;
* :func:`check_gate` does the same for one gate on its own (your custom gate);
* :func:`check_gates` finds the broken gate of a graph: every gate on its
  own, at the inputs it received in one forward pass;
* :func:`jacobian` builds the full Jacobian, one backward per output element.

The first two return a :class:`GradientCheckResult` (:func:`check_gates`, one
per gate in a :class:`GatesCheckResult`): truthy when every gradient agrees,
and printable with the course's grading of the relative error
``|a - n| / max(|a|, |n|)``::

    <= 1e-7   good
    <= 1e-4   fine where a kink (max, min, ReLU) explains it, too high otherwise
    <= 1e-2   uncomfortable
    >  1e-2   wrong

How an element is graded, on its own scale:

* the step of its finite difference is relative to its own magnitude
  (:func:`graph.finite_differences.step_sizes`), so gates are checked alike at
  1e-4 and at 1e8;
* the relative error is ``|a - n| / max(|a|, |n|, floor)``, where the floor
  of that element is ``NOISE_FLOOR`` (1e7) times the rounding noise of its own
  finite difference (or, if larger, machine epsilon times the largest
  gradient of the same input: the rounding of backward's own sums).  With the
  default tolerance 1e-5, an element passes when it is within 1e-5 of the
  numeric gradient relative to itself, or within 100 times the noise of the
  difference: nothing else of the graph sets its scale.  A gradient 1.001x too
  large, anywhere, fails unless that element is so small that its difference
  is mostly rounding noise; the printout counts such elements.
* ``None`` returned for an input that needs a gradient counts as a zero
  gradient; an input that cannot be perturbed (forward fails, or the output
  jumps: labels, indices) and gets ``None`` is not checked, and says why.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

import numpy as np

from gates.base import Gate, wrong_input_count
from graph import gate_state
from graph.check_results import (
    DEFAULT_TOL,
    FLOOR,
    NOISE_FLOOR,
    DirectionalCheck,
    GatesCheckResult,
    GradientCheckResult,
    InputCheck,
    band,
    noise_floor,
    relative_error,
)
from graph.errors import CheckError, FeedTypeError, GateForwardError, GradientError, GraphError, JacobianTooLargeError
from graph.finite_differences import (
    EPSILON,
    centered_differences,
    directional_derivative,
    numerical_gradient,
    refine_noisy,
    step_sizes,
)
from graph.node import PARAM
from graph.values import check_gradients, check_output, to_array

__all__ = [
    "gradcheck",
    "check_gate",
    "check_gates",
    "jacobian",
    "numerical_gradient",
    "relative_error",
    "noise_floor",
    "band",
    "GradientCheckResult",
    "GatesCheckResult",
    "InputCheck",
    "DirectionalCheck",
    "DEFAULT_TOL",
    "NOISE_FLOOR",
    "FLOOR",
]

#: check_gates compares at most this many elements of each input, drawn at random.
DEFAULT_SAMPLE = 64
#: check_gates follows this many random directions through an input it samples.
DEFAULT_DIRECTIONS = 2
#: jacobian refuses to build more elements than this (80 MB of float64).
MAX_JACOBIAN_ELEMENTS = 10_000_000

def gradcheck(
    g: Any,
    feeds: Mapping[str, Any] | None = None,
    eps: float = 1e-6,
    tol: float = DEFAULT_TOL,
    upstream: Any = None,
    seed: int = 0,
) -> GradientCheckResult:
    """Compare ``g.backward()`` with centered differences for every element of every input and parameter needing one.

    Each element is graded on its own scale (see the module docstring): its
    step is ``eps`` relative to its magnitude, and its relative error
    ``|a - n| / max(|a|, |n|, floor)`` has a floor of ``NOISE_FLOOR`` times
    the rounding noise of its own difference, so a small gradient beside
    large ones is held to the same tolerance.  ``None`` from a gate counts
    as a zero gradient.

    Parameters
    ----------
    g : ComputationalGraph
    feeds : mapping of input name to number or array
        As for ``g.forward``.  Copied: your arrays are never perturbed.
    eps : float
        Relative half step, > 0: element x[i] is moved to x[i] ± eps *
        max(|x[i]|, a thousandth of the input's root mean square), or ± eps
        if the input is all zeros (:func:`graph.finite_differences.step_sizes`).
        Where rounding noise drowns a difference the step grows, checked
        against half of it (:func:`graph.finite_differences.refine_noisy`).
    tol : float
        Largest relative error that passes.  The default 1e-5 passes correct
        gates in float64 (typically 1e-11 to 1e-8; the worst seen over
        thousands of random checks of every gate is below 2e-7) and fails a
        gradient off by any constant factor c with |c - 1| / max(c, 1) > 1e-5
        (2x gives 0.5, 1.1x gives 0.09, 1.001x gives 1e-3), on every element
        larger than about 1e7 times its difference's rounding noise (the
        printout counts the others).
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
        If feeds is not a mapping, no input or parameter needs a gradient,
        eps, tol or seed is unusable, or the forward pass fails (or jumps)
        when an input is moved: labels or indices left needing a gradient
        are named, with the fix (``requires_grad=False``).
    FeedTypeError
        If a feed is not real numbers.

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
    _check_seed(seed)
    feeds = _float64_feeds(feeds)
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
        checks = []
        for name, gradient in analytic.items():
            kind = by_name[name].kind
            where = g.params if kind is PARAM else feeds
            original = where[name]
            perturbed = where[name] = np.array(original, dtype=np.float64, order="C")
            steps = step_sizes(perturbed, eps)
            try:
                numeric, noise, kinks, crossed = watcher.differences(forward, perturbed, upstream, steps)
                if not gradient.any() and _jumps(forward, perturbed, upstream, steps, numeric, noise):
                    raise CheckError(
                        f"{kind} {name!r} gets no gradient, and the output jumps when it is moved by ±eps "
                        f"(integers: labels or indices?): {_labels_advice(name, kind)}"
                    )
                refine_noisy(forward, perturbed, upstream, steps, numeric, noise, gradient, kinks)
            except CheckError:
                raise
            except GraphError as error:
                advice = _labels_advice(name, kind) if not gradient.any() else "check it away from the edges of the domain"
                raise CheckError(
                    f"moving {kind} {name!r} by ±eps (relative to its size) makes the forward pass fail: {advice}. "
                    f"The error: {error}"
                ) from None
            finally:
                where[name] = original
            checks.append(_input_check(name, gradient, numeric, noise, kinks, crossed))
    output_name = g.output.name if g.output is not None else "output"
    return GradientCheckResult(checks, tol, eps, f"graph output {output_name!r}{_dtype_note(g.dtype)}")


def check_gate(
    gate: Any,
    *inputs: Any,
    eps: float = 1e-6,
    tol: float = DEFAULT_TOL,
    upstream: Any = None,
    seed: int = 0,
) -> GradientCheckResult:
    """Check one gate's backward against centered differences of its forward, element by element.

    The gate runs on its own, in float64, on copies of ``inputs``.  Its
    backward gets a random upstream gradient (from ``seed``), so every output
    element matters.  What it returns goes through the graph's own check
    (:func:`graph.values.check_gradients`: count, type, shape, and summing
    broadcast axes).  ``None`` for an input is compared as a zero gradient,
    unless the input cannot be perturbed (forward fails, or the output jumps:
    labels, indices): then it is not checked, and the result says why.  A
    gate that belongs to a graph is left exactly as it was (cache, state,
    generator, arrays it holds), so checking it between a forward and a
    backward changes nothing.

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
        For a class instead of a gate, a gate without forward or backward,
        the wrong number of inputs, inputs that are not real numbers, a
        negative seed, or a forward that fails when an input that gets a
        gradient is moved by eps.
    GateForwardError
        If forward fails on the inputs, or returns something that is not real numbers.
    GradientError
        If backward fails, or returns the wrong number of gradients, a wrong
        type, or a gradient of the wrong shape.

    Examples
    --------
    >>> import gates, numpy as np
    >>> bool(check_gate(gates.SigmoidGate(), np.array([-1.0, 0.5, 2.0])))
    True
    """
    _check_step(eps, tol)
    _check_seed(seed)
    gate_name = _check_gate_and_inputs(gate, inputs)
    names = _input_names(gate, len(inputs))
    arrays = [
        np.array(to_array(value, np.dtype(np.float64), "check_gate input", name), order="C")
        for value, name in zip(inputs, names)
    ]
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
    directions: int = DEFAULT_DIRECTIONS,
) -> GatesCheckResult:
    """Find the broken gate: check every gate of a graph on its own, at the inputs it received in one pass.

    :func:`gradcheck` tells you *that* a graph's gradient is wrong; this tells
    you *where*.  One forward pass runs (in the graph's mode); then each gate,
    in topological order, runs alone in float64 on copies of the values that
    went into it in that pass, and its backward is compared with centered
    differences of its forward, as :func:`check_gate` does (same grading,
    ``None`` compared as zeros).  An input larger than ``max_elements`` is
    compared element by element on a random sample, and as a whole along
    ``directions`` random directions (PyTorch's fast gradcheck: the change of
    the output from x - v to x + v against ``sum(gradient * 2v)``), so that
    every element is seen.  A gate is wrong when its relative error exceeds
    ``tol`` away from kinks; one whose only large errors are where a finite
    difference crossed a kink (a ReLU input of exactly 0, a tie in a max)
    passes, with a warning.

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
        Seeds the random upstream gradients, samples and directions (>= 0).
    max_elements : int or None
        An input with more elements is checked element by element on a
        random sample of this many (two forwards of the gate per element);
        None checks every one.
    directions : int
        Random directions followed through each sampled input (two forwards
        each), >= 1.

    Returns
    -------
    GatesCheckResult
        Truthy when no gate is wrong; ``wrong`` names the wrong gates in
        topological order; ``str()`` grades every gate, one section each, and
        says "all gates passed" only when every element of every input was
        seen and no difference crossed a kink.

    Raises
    ------
    CheckError
        If eps, tol, seed, max_elements or directions is unusable, or no gate
        has an input needing a gradient.
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
    last pass, every gate's cache, state, generator and arrays
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
    _check_seed(seed)
    if max_elements is not None and not _is_positive_int(max_elements):
        raise CheckError(f"max_elements must be a positive integer or None, got {max_elements!r}")
    if not _is_positive_int(directions):
        raise CheckError(f"directions must be a positive integer, got {directions!r}")
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
                    node.gate, arrays, names, subject, eps, tol, upstream_for, needs, sample, before[node.name],
                    node.name, directions, rng,
                )
            except Exception as error:  # a backward that raises is a wrong gate: say so and go on
                failures[node.name] = f"{type(error).__name__}: {error}"
    subjects = {node.name: f"gate {node.name!r} ({type(node.gate).__name__})" for node in gate_nodes}
    return GatesCheckResult(results, failures, unchecked, subjects, tol, eps, g.training, _dtype_note(g.dtype))


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
    directions: int = 0,
    rng: np.random.Generator | None = None,
) -> GradientCheckResult:
    """Run ``gate`` alone on ``arrays`` (float64 copies it may keep), backward once, and compare with differences.

    ``upstream_for(output)`` gives the upstream gradient.  ``needs`` is the
    gate's ``needs_input_grad`` during the check (None: every input); inputs
    that need none are not compared.  ``sample(size)`` gives the flat indices
    to compare for an input of that size (None: all); a sampled input is also
    followed along ``directions`` random directions drawn from ``rng``.  Before
    every forward the gate's generator is rewound to ``replay``'s state (a
    snapshot; default: now), so random gates draw the same numbers.  The gate
    is restored afterwards.
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
        try:
            output = run()
        except GraphError:
            raise
        except Exception as error:
            shapes = ", ".join(f"{name} {np.shape(a)}" for name, a in zip(names, arrays))
            raise GateForwardError(f"{subject}: forward failed on {shapes}: {type(error).__name__}: {error}") from error
        upstream = upstream_for(output)
        try:
            returned = gate.backward(upstream)
        except Exception as error:
            raise GradientError(f"{subject}: backward failed: {type(error).__name__}: {error}") from error
        gradients = check_gradients(returned, current(), output, np.dtype(np.float64), who)
        watcher = _KinkWatcher([gate] if _piece(gate, current()) is not None else [], lambda _: (gate, arrays), kink_name)
        checks, skipped, reasons = [], [], {}
        for position, (name, gradient, array) in enumerate(zip(names, gradients, arrays)):
            if needs is not None and not needs[position]:
                skipped.append(name)
                reasons[name] = "needs no gradient in the graph"
                continue
            indices = sample(array.size) if sample is not None else None
            steps = step_sizes(array, eps)
            try:
                numeric, noise, kinks, crossed = watcher.differences(run, array, upstream, steps, indices)
                jumps = gradient is None and _jumps(run, array, upstream, steps, numeric, noise)
            except Exception as error:
                if gradient is None:
                    skipped.append(name)
                    reasons[name] = (
                        f"backward returned None, and forward fails when it is moved by ±eps (labels or "
                        f"indices): {type(error).__name__}: {error}"
                    )
                    continue
                raise CheckError(
                    f"{subject}: forward fails when {name!r} is moved by ±eps (relative to its size); check "
                    f"it away from the edges of its domain: {type(error).__name__}: {error}"
                ) from error
            if jumps:
                skipped.append(name)
                reasons[name] = "backward returned None, and the output jumps when it is moved by ±eps (labels or indices)"
                continue
            analytic = np.zeros(array.shape) if gradient is None else np.array(gradient, dtype=np.float64)
            refine_noisy(run, array, upstream, steps, numeric, noise, analytic.reshape(array.shape), kinks)
            checked, followed = None, []
            if indices is not None:
                checked = np.zeros(array.shape, dtype=bool)
                checked.reshape(-1)[indices] = True
                for _ in range(directions):
                    direction = steps * rng.choice([-1.0, 1.0], size=array.shape)
                    followed.append(watcher.directional(run, array, upstream, direction, analytic))
            checks.append(
                _input_check(name, analytic, numeric, noise, kinks, crossed, checked, followed, gradient is None)
            )
    finally:
        gate_state.restore(gate, taken)
    return GradientCheckResult(checks, tol, eps, subject, skipped, reasons)


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
        Refuse when the Jacobian would have more elements than this (a positive integer).

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
        If ``wrt`` needs no gradient, or max_elements is not a positive integer.

    Notes
    -----
    The graph is left exactly as it was (``g.last_pass_kept()``).
    """
    if not _is_positive_int(max_elements):
        raise CheckError(f"max_elements must be a positive integer, got {max_elements!r}")
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
    """Runs finite differences while watching the pieces of piecewise gates (``gate.piece``).

    ``gate_and_inputs(item)`` gives a watched gate and its current inputs
    after a forward.  The differences evaluate x + h, then x - h, for each
    element in order, so calls 2i and 2i + 1 belong to the i-th difference.
    """

    def __init__(self, watched: list, gate_and_inputs: Callable[[Any], tuple], name: str | None = None):
        self.watched = watched
        self.gate_and_inputs = gate_and_inputs
        self.name = name  # how to call a watched gate in messages; default: its name, or its class

    def differences(self, function, x, upstream, steps, flat_indices=None) -> tuple:
        """(numeric gradient, noise, kinks crossed per element, gates crossed) at ``flat_indices`` (default: all).

        Elements not in ``flat_indices`` are NaN in the differences.
        """
        kinks = np.zeros(x.shape, dtype=bool)
        flat_kinks = kinks.reshape(-1)
        indices = range(x.size) if flat_indices is None else flat_indices
        crossed: list[str] = []

        def mark(pair: int) -> None:
            flat_kinks[indices[pair]] = True

        watched = self._watching(function, mark, crossed)
        gradient, noise = centered_differences(watched, x, upstream, steps, flat_indices)
        if flat_indices is not None:
            unchecked = np.ones(x.size, dtype=bool)
            unchecked[flat_indices] = False
            gradient.reshape(-1)[unchecked] = np.nan
        return gradient, noise, kinks, crossed

    def directional(self, function, x, upstream, direction, analytic) -> DirectionalCheck:
        """The directional derivative along ``direction``, against the change ``analytic`` predicts."""
        crossings = []
        watched = self._watching(function, crossings.append, [])
        change, step, noise = directional_derivative(watched, x, upstream, direction)
        products = analytic * step
        predicted = float(np.sum(products))
        floor = NOISE_FLOOR * max(noise, EPSILON * float(np.sum(np.abs(products))))
        error = float(relative_error(predicted, change, floor))
        return DirectionalCheck(predicted, change, error, bool(crossings))

    def _watching(self, function, crossed_at: Callable[[int], Any], crossed: list[str]) -> Callable[[], Any]:
        """``function``, also noting (``crossed_at(pair)``) each pair of calls across which a watched piece changed."""
        if not self.watched:
            return function
        calls, previous = [0], []

        def watched_function():
            out = function()
            pieces = [_piece(*self.gate_and_inputs(item)) for item in self.watched]
            if calls[0] % 2 == 1:
                for item, before, after in zip(self.watched, previous, pieces):
                    if not np.array_equal(before, after):
                        crossed_at(calls[0] // 2)
                        name = self.name or getattr(item, "name", None) or type(item).__name__
                        if name not in crossed:
                            crossed.append(name)
            previous[:] = pieces
            calls[0] += 1
            return out

        return watched_function


def _piece(gate: Any, inputs: list) -> Any:
    """``gate.piece(*inputs)``: where a piecewise gate is on its formula; None for a smooth gate."""
    piece = getattr(gate, "piece", None)
    return piece(*inputs) if callable(piece) else None


def _jumps(function, x, upstream, steps, numeric, noise) -> bool:
    """Whether the output jumps where x moves: halving the step keeps the change (labels, indices) instead of halving it.

    Only differences well above their rounding noise count: a difference made of noise (a sum of huge
    outputs, such as masked scores of -1e9) also doubles when the step halves, and is no jump.
    """
    moved = np.flatnonzero(np.abs(np.nan_to_num(numeric, nan=0.0)) > 100 * np.nan_to_num(noise, nan=np.inf))
    if moved.size == 0:
        return False
    half, _ = centered_differences(function, x, upstream, steps / 2, moved)
    return bool(np.any(np.abs(half.reshape(-1)[moved]) > 1.5 * np.abs(numeric.reshape(-1)[moved])))


def _labels_advice(name: str, kind: str) -> str:
    """What to do with labels or indices fed as an input that needs a gradient."""
    if kind is PARAM:
        return f"a parameter must be differentiable; {name!r} is not"
    return (
        f"if {name!r} holds labels or indices, add it with requires_grad=False: "
        f"g.add_input({name!r}, requires_grad=False)"
    )


def _input_check(name, analytic, numeric, noise, kinks, crossed, checked=None, directional=(), returned_none=False):
    """The InputCheck of one input: relative errors with the noise floor of each element.

    ``checked`` (a bool mask, or None for all) marks the elements compared;
    elsewhere the relative error is 0.
    """
    analytic = np.asarray(analytic, dtype=np.float64).reshape(numeric.shape)
    floor = noise_floor(noise, analytic, numeric)
    error = relative_error(analytic, numeric, floor)
    if checked is not None:
        error[~checked] = 0.0
    return InputCheck(name, analytic, numeric, error, kinks, crossed, checked, floor, list(directional), returned_none)


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


def _check_seed(seed: Any) -> None:
    """CheckError unless seed is an integer >= 0 (what numpy's generators take)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CheckError(f"seed must be an integer >= 0, got {seed!r}")


def _is_positive_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= 1


def _float64_feeds(feeds: Any) -> dict[str, np.ndarray]:
    """gradcheck's own float64 copies of the feeds, or CheckError/FeedTypeError naming what is wrong."""
    if feeds is None:
        return {}
    if not isinstance(feeds, Mapping):
        raise CheckError(
            f"feeds must be a dict of input name to number or array, got {type(feeds).__name__}: "
            f"write gradcheck(g, {{'x': ...}})"
        )
    for name in feeds:
        if not isinstance(name, str):
            raise CheckError(f"feeds are named by the input's name (a str), got {name!r}")
    return {name: np.array(to_array(value, np.dtype(np.float64), "feed", name), order="C") for name, value in feeds.items()}


def _check_gate_and_inputs(gate: Any, inputs: tuple) -> str:
    """The gate's class name, after checking it is a gate instance given the right number of inputs."""
    if isinstance(gate, type):
        raise CheckError(f"check_gate takes a gate instance, got the class {gate.__name__}: write {gate.__name__}()")
    if not (callable(getattr(gate, "forward", None)) and callable(getattr(gate, "backward", None))):
        raise CheckError(f"check_gate takes a gate (with forward and backward), got {type(gate).__name__}")
    name = type(gate).__name__
    for method in ("forward", "backward"):
        if isinstance(gate, Gate) and getattr(type(gate), method) is getattr(Gate, method) and method not in vars(gate):
            raise CheckError(f"check_gate: {name} does not define {method}(): a gate needs both forward and backward")
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
