"""ComputationalGraph: inputs, parameters, constants and gates on a networkx DiGraph.

The lecture's recipe, run for real::

    forward:   for gate in nodes_topologically_sorted(): gate.forward(...)
    backward:  the output's gradient is 1; for gate in reversed order:
               gradients = gate.backward(upstream)
               and where a value feeds several gates, the gradients add.

The topological order, and from it a flat list of forward and backward steps,
is computed once per change of the graph, not once per pass (see
:mod:`graph.schedule`).  Values and gradients live in lists indexed by each
node's slot, so a pass is a plain loop, or for a small graph the same steps
written out as straight-line code, with no dictionary lookups or graph walks
in it.
"""

from __future__ import annotations

import contextlib
import difflib
import gc
from typing import Any, Iterable, Mapping

import networkx as nx
import numpy as np

from gates.base import input_count
from graph.errors import (
    BackwardError,
    FeedError,
    GateForwardError,
    GateInputCountError,
    GradientError,
    GraphBuildError,
    NonFiniteError,
    NotAGateError,
)
from graph.messages import gate_title, input_list, non_finite_kind, show
from graph.node import CONSTANT, GATE, INPUT, PARAM, Node
from graph.schedule import Schedule
from graph.values import _FLOAT64, public, shape_of, sum_to_shape, to_array, to_value

NodeLike = Node | str


class ComputationalGraph:
    """A graph of gates that runs forward to its output and backward to every input.

    Parameters
    ----------
    check_finite : bool
        If True, every gate's output (forward) and every gradient (backward)
        is checked, and the first NaN or inf raises :class:`NonFiniteError`
        naming the gate and the values that went into it.  Off by default:
        it costs a pass over every array.

    Examples
    --------
    >>> g = ComputationalGraph()
    >>> x, y, z = g.add_input("x"), g.add_input("y"), g.add_input("z")
    >>> f = (x + y) * z
    >>> float(g.forward({"x": -2, "y": 5, "z": -4}))
    -12.0
    >>> {name: float(grad) for name, grad in g.backward().items()}
    {'x': -4.0, 'y': -4.0, 'z': 3.0}
    """

    def __init__(self, check_finite: bool = False):
        self._digraph = nx.DiGraph()  # filled lazily, see the digraph property
        #: Parameter values by name: float64 arrays owned by the graph.
        #: Update them in place (``g.params["w"] -= lr * grad``) between passes.
        self.params: dict[str, np.ndarray] = {}
        self.check_finite = check_finite
        self._nodes: list[Node] = []  # by slot, in the order they were added
        self._by_name: dict[str, Node] = {}
        self._output: Node | None = None
        self._plan: Schedule | None = None  # compiled on the first pass after a change
        self._values: list | None = None  # of the last successful forward
        self._grads: list | None = None  # of the last successful backward
        self._failure: str | None = None  # why the last forward failed
        self._constants: dict[int, Any] = {}  # constant values by slot
        self._training = True

    # ------------------------------------------------------------------ building

    def add_input(self, name: str, requires_grad: bool = True) -> Node:
        """Add an input, fed by name to :meth:`forward`.

        With ``requires_grad=False`` (data, labels) no gradient is computed
        for it, nor for gates that depend only on such values.
        """
        return self._add_node(self._check_new_name(name), INPUT, bool(requires_grad))

    def add_param(self, name: str, value: Any) -> Node:
        """Add a trainable parameter; its value (copied to float64) lives in ``g.params[name]``."""
        name = self._check_new_name(name)
        array = to_array(value, f"parameter {name!r}")
        node = self._add_node(name, PARAM, True)
        self.params[name] = array
        return node

    def add_constant(self, value: Any, name: str | None = None) -> Node:
        """Add a constant: a value that never gets a gradient."""
        name = self._check_new_name(name) if name is not None else None
        value = to_value(value, "constant", name)
        if isinstance(value, np.ndarray):
            value = value.copy()  # later changes to the caller's array must not leak in
        node = self._add_node(name or self._fresh_name("constant"), CONSTANT, False)
        self._constants[node.index] = value
        return node

    def add_gate(self, gate: Any, *inputs: Any, name: str | None = None) -> Node:
        """Add a gate computing ``gate.forward(*input values)``; returns its output node.

        ``inputs`` are Nodes of this graph, names of existing nodes, or plain
        numbers/arrays (added as constants).  The number of inputs must fit
        the gate's ``forward`` signature.  Each gate instance is used once.
        """
        if not (callable(getattr(gate, "forward", None)) and callable(getattr(gate, "backward", None))):
            raise NotAGateError(
                f"add_gate expects a gate (a gates.Gate subclass with forward and backward), "
                f"got {type(gate).__name__}"
            )
        if isinstance(gate, type):
            raise NotAGateError(
                f"add_gate expects a gate instance, got the class {gate.__name__}: write {gate.__name__}()"
            )
        gate_name = type(gate).__name__
        used_as = getattr(gate, "graph_node", None)
        if used_as is not None:
            where = "" if getattr(used_as, "graph", self) is self else " in another graph"
            raise GraphBuildError(
                f"this {gate_name} instance is already used (as {getattr(used_as, 'name', used_as)!r}{where}); "
                f"a gate is used in one place only: create a new {gate_name}() for each use"
            )
        fewest, most = input_count(gate)
        if len(inputs) < fewest or (most is not None and len(inputs) > most):
            takes = f"{fewest}" if fewest == most else f"{fewest} to {most}" if most else f"at least {fewest}"
            raise GateInputCountError(
                f"{gate_name} takes {takes} input{'s' if most != 1 else ''}, got {len(inputs)}"
            )
        if name is not None:
            name = self._check_new_name(name)
        resolved = [self._resolve_input(item, gate_name) for item in inputs]
        # Every check has passed: only now change the graph.
        input_nodes = tuple(
            item if isinstance(item, Node) else self.add_constant(item, self._fresh_name("constant", reserved=name))
            for item in resolved
        )
        requires_grad = any(node.requires_grad for node in input_nodes)
        node = self._add_node(name or self._fresh_name(gate_name), GATE, requires_grad, gate, input_nodes)
        gate.needs_input_grad = tuple(node.requires_grad for node in input_nodes)
        gate.training = self._training
        gate.graph_node = node
        return node

    # ------------------------------------------------------------------ modes

    @property
    def training(self) -> bool:
        """True in training mode (the default), False after :meth:`eval`."""
        return self._training

    def train(self) -> ComputationalGraph:
        """Training mode: batch norm uses the batch's statistics, dropout drops.  Returns the graph."""
        self._set_mode(True)
        return self

    def eval(self) -> ComputationalGraph:
        """Evaluation mode: batch norm uses its running averages, dropout is the identity.  Returns the graph."""
        self._set_mode(False)
        return self

    def _set_mode(self, training: bool) -> None:
        self._training = training
        for node in self._nodes:
            if node.gate is not None:
                node.gate.training = training

    @property
    def output(self) -> Node | None:
        """The node whose value forward returns: the last gate added unless set."""
        return self._output

    @output.setter
    def output(self, node: NodeLike) -> None:
        self._output = self.node(node)
        self._grads = None

    def node(self, node_or_name: NodeLike) -> Node:
        """The Node of this graph for a Node or a name."""
        if isinstance(node_or_name, Node):
            if node_or_name.graph is not self:
                raise GraphBuildError(f"node {node_or_name.name!r} belongs to another graph")
            return node_or_name
        if isinstance(node_or_name, str):
            found = self._by_name.get(node_or_name)
            if found is None:
                raise GraphBuildError(
                    f"this graph has no node named {node_or_name!r}{self._suggest(node_or_name, self._by_name)}"
                )
            return found
        raise TypeError(f"expected a Node or a node name, got {type(node_or_name).__name__}")

    @property
    def digraph(self) -> nx.DiGraph:
        """The graph as a networkx DiGraph: nodes are node names (``g.node(name)`` gives the Node), edges input -> gate.

        Brought up to date in bulk when asked for, rather than one networkx
        call per added node, which costs more than the rest of adding a gate.
        """
        digraph, nodes = self._digraph, self._nodes
        known = digraph.number_of_nodes()
        if known < len(nodes):
            new = nodes[known:]
            digraph.add_nodes_from([node.name for node in new])
            digraph.add_edges_from((source.name, node.name) for node in new for source in node.inputs)
        return digraph

    @property
    def nodes(self) -> list[Node]:
        """All nodes, in the order they were added."""
        return list(self._nodes)

    def nodes_topologically_sorted(self) -> list[Node]:
        """All nodes, each after the nodes it depends on (networkx's topological sort)."""
        return list(self._compiled().order)

    # ------------------------------------------------------------------ running

    def forward(self, feeds: Mapping[str, Any] | None = None) -> Any:
        """Run every gate in topological order; return the output's value.

        Parameters
        ----------
        feeds : mapping of input name to number or array
            One value per input of the graph, converted to float64.

        Returns
        -------
        float64 scalar or array: the value of ``g.output``.
        """
        plan = self._plan
        if plan is None or plan.output_slot != self._output.index:
            plan = self._compiled()
        # Whatever happens next, the last pass's values are gone: a backward
        # after a failed forward must not quietly use them.
        self._values = self._grads = None
        try:
            values = self._read_leaves(plan, feeds if feeds is not None else {})
        except (ValueError, TypeError) as error:
            self._failure = f"the last forward was given bad feeds: {error}"
            raise
        self._failure = "a forward pass failed"
        if plan.forward_pass is None or self.check_finite:
            self._run_gates(plan, values)
        else:
            try:
                plan.forward_pass(values)
            except Exception as error:
                self._raise_gate_failure(values, plan.failing_slot(error.__traceback__, backward=False), error)
        self._values = values
        self._failure = None
        out = values[plan.output_slot]
        return out if isinstance(out, (np.ndarray, np.generic)) else public(out)

    def backward(self, upstream: Any = None) -> dict[str, Any]:
        """Backpropagate from the output; return d(output)/d(x) for every input and parameter that requires it.

        Parameters
        ----------
        upstream : number or array, optional
            d(loss)/d(output), with the output's shape.  Defaults to 1.0 for a
            scalar output; required for any other output.

        Returns
        -------
        dict mapping each input (requires_grad=True) and parameter name to its
        gradient, with exactly that input's shape.  Treat them as read-only:
        some are views shared with other gradients.
        """
        values = self._values
        if values is None:
            raise BackwardError(f"backward needs a successful forward first ({self._why_no_values()})")
        plan = self._plan
        if plan is None or plan.output_slot != self._output.index:
            plan = self._compiled()
        grads = [None] * len(values)
        if upstream is None and isinstance(values[plan.output_slot], float):
            grads[plan.output_slot] = 1.0  # the usual case: a scalar loss
        else:
            grads[plan.output_slot] = self._upstream(upstream, values[plan.output_slot])
        if plan.backward_pass is None or self.check_finite:
            self._run_backward(plan, values, grads)
        else:
            try:
                plan.backward_pass(values, grads, self._fit_gradient, self._gradient_tuple)
            except Exception as error:
                out_slot = plan.failing_slot(error.__traceback__, backward=True)
                if out_slot is None:
                    raise  # not from a gate: from fit or as_tuple, already a GradientError
                self._raise_backward_failure(out_slot, error)
        self._grads = grads
        result, handed_out = {}, set()
        for name, slot in plan.gradient_leaves:
            grad = grads[slot]
            if type(grad) is not np.ndarray:
                grad = _zeros_like(values[slot]) if grad is None else public(grad)
            elif id(grad) in handed_out:  # AddGate passes one array to both inputs:
                grad = grad.copy()  # give each name its own, so editing one leaves the other
            else:
                handed_out.add(id(grad))
            result[name] = grad
        return result

    def value(self, node_or_name: NodeLike) -> Any:
        """The value of any node (input, parameter, constant or gate) after the last forward."""
        node = self.node(node_or_name)
        if self._values is None or node.index >= len(self._values):
            raise BackwardError(f"no value for {node.name!r} yet: {self._why_no_values()}")
        return public(self._values[node.index])

    def grad(self, node_or_name: NodeLike) -> Any:
        """d(output)/d(node) for any node after the last backward, intermediate ones included.

        None for a node that requires no gradient (constants, inputs with
        requires_grad=False and what is computed only from them); zeros for
        one the output does not depend on.
        """
        node = self.node(node_or_name)
        if self._grads is None or node.index >= len(self._grads):
            raise BackwardError(f"no gradient for {node.name!r} yet: run forward, then backward")
        if not node.requires_grad:
            return None
        grad = self._grads[node.index]
        return public(grad) if grad is not None else _zeros_like(self._values[node.index])

    @property
    def has_forward(self) -> bool:
        """Whether the last forward succeeded (values are available)."""
        return self._values is not None

    @property
    def has_backward(self) -> bool:
        """Whether backward ran after the last forward (gradients are available)."""
        return self._grads is not None

    # ------------------------------------------------------- the rest of the API

    def draw(self, path: str) -> str:
        """Save a picture of the graph (.png, .svg or .dot); see :mod:`graph.drawing`."""
        from graph.drawing import draw_graph

        return draw_graph(self, path)

    def explain(self) -> str:
        """The last pass as text, gate by gate; see :mod:`graph.explain`."""
        from graph.explain import explain_pass

        return explain_pass(self)

    def save_params(self, path: str) -> None:
        """Write every parameter to a .npz file, atomically; see :mod:`graph.parameter_files`."""
        from graph.parameter_files import save_params

        save_params(self, path)

    def load_params(self, path: str) -> None:
        """Load parameters saved by save_params, all or nothing; see :mod:`graph.parameter_files`."""
        from graph.parameter_files import load_params

        load_params(self, path)

    def __getstate__(self) -> dict:
        # A copy (copy.deepcopy, pickle) leaves the schedule behind and builds
        # its own on its first pass: the straight-line code of this one calls
        # this graph's gates, not the copy's.
        state = self.__dict__.copy()
        state["_plan"] = None
        return state

    def __repr__(self) -> str:
        counts = {kind: 0 for kind in (INPUT, PARAM, CONSTANT, GATE)}
        for node in self._nodes:
            counts[node.kind] += 1
        return (
            f"<ComputationalGraph: {counts[INPUT]} inputs, {counts[PARAM]} params, "
            f"{counts[CONSTANT]} constants, {counts[GATE]} gates>"
        )

    # ------------------------------------------------------------- internals

    def _add_node(self, name, kind, requires_grad, gate=None, inputs=()) -> Node:
        node = Node(self, name, kind, len(self._nodes), requires_grad, gate, inputs)
        self._nodes.append(node)
        self._by_name[name] = node
        if kind == GATE:
            self._output = node
        self._plan = None  # the graph changed: recompute the order on the next pass
        self._values = self._grads = None
        return node

    def _check_new_name(self, name: Any) -> str:
        if not isinstance(name, str) or not name:
            raise GraphBuildError(f"a node name must be a non-empty string, got {name!r}")
        if name in self._by_name:
            raise GraphBuildError(f"this graph already has a node named {name!r} ({self._by_name[name].kind})")
        return name

    def _fresh_name(self, prefix: str, reserved: str | None = None) -> str:
        # reserved: a name checked but not yet added (add_gate's own name).
        number = len(self._nodes)
        while f"{prefix}_{number}" in self._by_name or f"{prefix}_{number}" == reserved:
            number += 1
        return f"{prefix}_{number}"

    def _resolve_input(self, item: Any, gate_name: str) -> Any:
        if isinstance(item, Node):
            if item.graph is not self:
                raise GraphBuildError(f"{gate_name}: input node {item.name!r} belongs to another graph")
            return item
        if isinstance(item, str):
            if item not in self._by_name:
                raise GraphBuildError(
                    f"{gate_name}: this graph has no node named {item!r}{self._suggest(item, self._by_name)}"
                )
            return self._by_name[item]
        return to_value(item, f"{gate_name}: constant input")  # validated now, added later

    @staticmethod
    def _suggest(name: str, known: Iterable[str]) -> str:
        close = difflib.get_close_matches(name, list(known), n=1)
        return f"; did you mean {close[0]!r}?" if close else ""

    def _compiled(self) -> Schedule:
        if self._plan is None:
            if self._output is None:
                raise GraphBuildError("the graph has no gates yet: add a gate (or set g.output) before running it")
            with _garbage_collection_paused():
                self._plan = Schedule(self)
        elif self._plan.output_slot != self._output.index:
            self._plan.set_output(self._output)
        return self._plan

    def _why_no_values(self) -> str:
        if self._failure is not None:
            return f"{self._failure}; run forward again with good input"
        return "run forward first"

    def _read_leaves(self, plan: Schedule, feeds: Mapping[str, Any]) -> list:
        """A fresh value list with every input, parameter and constant filled in.

        Checks every feed before anything changes.
        """
        values = plan.template.copy()
        try:
            for name, slot in plan.inputs:
                value = feeds[name]
                if type(value) is not np.ndarray or value.dtype is not _FLOAT64 or not value.ndim:
                    value = to_value(value, "feed", name)  # a float64 array is read as it is, without a call
                values[slot] = value
        except KeyError:
            self._raise_feed_mismatch(plan, feeds)
        except TypeError:
            if not isinstance(feeds, Mapping):
                raise FeedError(f"feeds must be a dict of input name -> value, got {type(feeds).__name__}") from None
            raise
        if len(feeds) != len(plan.inputs):
            self._raise_feed_mismatch(plan, feeds)
        params = self.params
        for name, slot in plan.params:
            value = params.get(name)
            if type(value) is not np.ndarray or value.dtype is not _FLOAT64:
                if value is None:
                    raise FeedError(f"parameter {name!r} is missing from g.params")
                value = params[name] = to_array(value, f"parameter {name!r}")
            values[slot] = value
        return values

    def _raise_feed_mismatch(self, plan: Schedule, feeds: Mapping[str, Any]) -> None:
        input_names = [name for name, _ in plan.inputs]
        for name in feeds:
            if name not in input_names:
                node = self._by_name.get(name)
                if node is not None:
                    hint = f"it is a {node.kind}, not an input"
                    if node.kind == PARAM:
                        hint += f"; change g.params[{name!r}] instead"
                else:
                    hint = f"this graph has no input named {name!r}{self._suggest(name, input_names)}"
                raise FeedError(f"feed {name!r} matches no input of the graph: {hint}")
        missing = [name for name in input_names if name not in feeds]
        raise FeedError(
            f"no feed for input{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"(inputs: {', '.join(input_names)})"
        )

    def _run_gates(self, plan: Schedule, values: list) -> None:
        """The forward steps as a loop (for big graphs, and to check every value with check_finite)."""
        check_finite = self.check_finite
        out_slot = None
        try:
            for forward, slots, out_slot in plan.forward_steps:
                # One and two inputs, the common cases, without building a list.
                if len(slots) == 2:
                    first, second = slots
                    out = forward(values[first], values[second])
                elif len(slots) == 1:
                    out = forward(values[slots[0]])
                else:
                    out = forward(*[values[slot] for slot in slots])
                values[out_slot] = out
                if check_finite and not np.all(np.isfinite(out)):
                    break
            else:
                return
        except Exception as error:
            self._raise_gate_failure(values, out_slot, error)
        node = self._nodes[out_slot]
        self._failure = f"{gate_title(node)} produced {non_finite_kind(out)}"
        raise NonFiniteError(
            f"{gate_title(node)} produced {non_finite_kind(out)} in forward from {input_list(node, values)}"
        )

    def _raise_gate_failure(self, values: list, out_slot: int, error: Exception) -> None:
        node = self._nodes[out_slot]
        shapes = " and ".join(f"{source.name!r} {shape_of(values[source.index])}" for source in node.inputs)
        self._failure = f"{gate_title(node)} failed in forward"
        raise GateForwardError(
            f"{gate_title(node)} failed in forward on inputs {shapes}: {type(error).__name__}: {error}"
        ) from error

    def _upstream(self, upstream: Any, output_value: Any) -> Any:
        name = self._output.name
        output_shape = shape_of(output_value)
        if upstream is None:
            if output_shape != ():
                raise BackwardError(
                    f"the output {name!r} has shape {output_shape}, not a scalar: "
                    f"pass backward(upstream=...) with d(loss)/d({name}), shape {output_shape}"
                )
            return 1.0
        upstream = to_value(upstream, "upstream gradient")
        if shape_of(upstream) != output_shape:
            raise BackwardError(
                f"upstream gradient has shape {shape_of(upstream)} but the output {name!r} "
                f"has shape {output_shape}"
            )
        if self.check_finite and not np.all(np.isfinite(upstream)):
            raise NonFiniteError(f"the upstream gradient passed to backward contains {non_finite_kind(upstream)}")
        return upstream

    def _run_backward(self, plan: Schedule, values: list, grads: list) -> None:
        """The backward steps as a loop (for big graphs, and to check every gradient with check_finite)."""
        check_finite = self.check_finite
        for backward, arity, targets, out_slot in plan.backward_steps:
            upstream = grads[out_slot]
            if upstream is None:
                continue  # the output does not depend on this gate
            try:
                input_grads = backward(upstream)
            except Exception as error:
                self._raise_backward_failure(out_slot, error)
            if type(input_grads) is not tuple or len(input_grads) != arity:
                input_grads = self._gradient_tuple(input_grads, out_slot)
            for position, slot in targets:
                grad = input_grads[position]
                if grad is None:
                    continue  # None: no gradient flows to this input
                value = values[slot]
                if getattr(grad, "shape", None) != getattr(value, "shape", None):
                    grad = self._fit_gradient(grad, value, out_slot, slot)
                if check_finite and not np.all(np.isfinite(grad)):
                    self._raise_non_finite_gradient(values, out_slot, slot, upstream, grad)
                current = grads[slot]
                # Where a value branches, the gradients add.  Never in place:
                # a gradient may be a view shared with another input.
                grads[slot] = grad if current is None else current + grad

    def _raise_backward_failure(self, out_slot: int, error: Exception) -> None:
        raise GradientError(
            f"{gate_title(self._nodes[out_slot])} failed in backward: {type(error).__name__}: {error}"
        ) from error

    def _gradient_tuple(self, input_grads: Any, out_slot: int) -> Any:
        """What a backward returned, if it is one gradient per input (a list will do); else GradientError."""
        if type(input_grads) is list and len(input_grads) == len(self._nodes[out_slot].inputs):
            return input_grads
        self._raise_gradient_count(out_slot, input_grads)

    def _raise_non_finite_gradient(self, values, out_slot, slot, upstream, grad) -> None:
        node = self._nodes[out_slot]
        raise NonFiniteError(
            f"{gate_title(node)} produced {non_finite_kind(grad)} in backward, in the gradient for "
            f"{self._nodes[slot].name!r}, from upstream {show(upstream)} and inputs {input_list(node, values, grad)}"
        )

    def _raise_gradient_count(self, out_slot: int, input_grads: Any) -> None:
        node = self._nodes[out_slot]
        if not isinstance(input_grads, (tuple, list)):
            returned = f"an array of shape {input_grads.shape}" if np.ndim(input_grads) else repr(input_grads)
            names = ", ".join(f"d{source.name}" for source in node.inputs)
            example = "(dx,)" if len(node.inputs) == 1 else f"({names})"
            raise GradientError(
                f"{gate_title(node)}.backward returned {returned}, not one gradient per input: "
                f"return a tuple such as {example}, None for an input that needs none"
            )
        raise GradientError(
            f"{gate_title(node)}.backward returned {len(input_grads)} gradient(s) "
            f"but the gate has {len(node.inputs)} input(s); return one per input, None for none"
        )

    def _fit_gradient(self, grad: Any, value: Any, out_slot: int, slot: int) -> Any:
        """Bring a gate's gradient to its input's shape, summing broadcast axes."""
        node, source = self._nodes[out_slot], self._nodes[slot]
        try:
            fitted = sum_to_shape(grad, shape_of(value))
        except (TypeError, ValueError):
            fitted = None
        if fitted is None:
            raise GradientError(
                f"{gate_title(node)}.backward returned a gradient of shape {np.shape(grad)} for input "
                f"{source.name!r} of shape {shape_of(value)}; it cannot be summed to that shape"
            )
        return float(fitted) if type(value) is float else fitted


@contextlib.contextmanager
def _garbage_collection_paused():
    """Pause the cyclic garbage collector while building many long-lived containers.

    Sorting and scheduling a graph allocates a few objects per node, all of
    which live on; each collection the allocations trigger would walk every
    object in the process for nothing (a third of the time at 200k gates).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _zeros_like(value: Any) -> Any:
    return np.zeros(shape_of(value)) if np.ndim(value) else np.float64(0.0)
