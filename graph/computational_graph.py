"""ComputationalGraph: inputs, parameters, constants and gates on a networkx DiGraph.

The lecture's recipe, run for real::

    forward:   for gate in topological order: value = gate.forward(*input values)
    backward:  the output's gradient is 1; for gate in reverse order:
               gradients = gate.backward(upstream)
               and where a value feeds several gates, the gradients add.

:meth:`ComputationalGraph.forward` and :meth:`ComputationalGraph.backward` are
those two loops.  The order, and from it a flat list of steps for each loop,
is computed once per change of the graph (:mod:`graph.schedule`).  Values
and gradients live in lists indexed by each node's slot.  Every value is a
numpy array or numpy float scalar of the graph's dtype (:mod:`graph.values`).
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import gc
import re
import threading
import types
from typing import Any, Iterator, Mapping

import networkx as nx
import numpy as np

from gates.base import wrong_input_count
from graph import gate_state
from graph.allocator import keep_freed_memory
from graph.errors import (
    BackwardError,
    ConcurrentUseError,
    FeedError,
    GateForwardError,
    GateInputCountError,
    GradientError,
    GraphBuildError,
    GraphError,
    NonFiniteError,
    NotAGateError,
    ReadOnlyAttributeError,
)
from graph.messages import gate_title, input_list, non_finite_kind, show
from graph.node import CONSTANT, GATE, INPUT, PARAM, Node, NodeKind
from graph.schedule import Schedule
from graph.values import (
    check_gradients,
    check_output,
    graph_dtype,
    read_only,
    to_array,
    to_value,
)

NodeLike = Node | str


class ComputationalGraph:
    """A graph of gates that runs forward to its output and backward to every input.

    Parameters
    ----------
    dtype : numpy float dtype
        ``np.float64`` (the default) or ``np.float32``.  Feeds, constants and
        parameters are converted to it, and every value and gradient stays
        in it.
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

    def __init__(self, dtype: Any = np.float64, check_finite: bool = False):
        keep_freed_memory()  # once per process: see graph.allocator
        self._set_dtype(graph_dtype(dtype))
        #: Parameter values by name: arrays of the graph's dtype, owned by the graph.
        #: Update them in place (``g.params["w"] -= lr * grad``) between passes.
        self.params: dict[str, np.ndarray] = {}
        self.check_finite = check_finite
        self._nodes: list[Node] = []  # by slot, in the order they were added
        self._by_name: dict[str, Node] = {}
        self._constants: dict[int, Any] = {}  # read-only constant values by slot
        self._output: Node | None = None
        self._training = True
        self._digraph = nx.DiGraph()  # filled in bulk when asked for, see digraph
        self._digraph_view: nx.DiGraph | None = None  # its read-only view, made once
        self._schedule: Schedule | None = None  # computed on the first pass after a change
        self._read_only_views: dict[int, tuple] = {}  # slot -> (array fed last pass, its read-only view)
        self._record_arrays: dict[int, np.ndarray] = {}  # leaf slot -> where the record keeps its gradient, see _hand_out
        self._senders: list[int] = []  # the gates sending a leaf a gradient, see _leaf_senders
        self._senders_of: Schedule | None = None  # the schedule _senders was worked out for
        self._forget_last_pass("run forward first")
        self._lock = threading.Lock()  # one pass at a time: see _reentry_error
        self._pass_owner: int | None = None  # the thread that last took the lock

    # ------------------------------------------------------------------ building

    def add_input(self, name: str, requires_grad: bool = True) -> Node:
        """Add an input, fed by name to :meth:`forward`.

        With ``requires_grad=False`` (data, labels) no gradient is computed
        for it, nor for gates that depend only on such values.
        """
        return self._add_node(self._check_new_name(name), INPUT, bool(requires_grad))

    def add_param(self, name: str, value: Any) -> Node:
        """Add a trainable parameter; a copy of ``value`` in the graph's dtype lives in ``g.params[name]``."""
        name = self._check_new_name(name)
        array = to_array(value, self.dtype, "parameter", name)
        node = self._add_node(name, PARAM, True)
        self.params[name] = array
        return node

    def add_constant(self, value: Any, name: str | None = None) -> Node:
        """Add a constant: a value that never gets a gradient and never changes."""
        name = self._check_new_name(name) if name is not None else self._fresh_name("constant")
        return self._add_constant_value(to_value(value, self.dtype, "constant", name), name)

    def add_gate(self, gate: Any, *inputs: Any, name: str | None = None) -> Node:
        """Add a gate computing ``gate.forward(*input values)``; returns its output node.

        ``inputs`` are Nodes of this graph, names of existing nodes, or plain
        numbers/arrays (added as constants).  The number of inputs must fit
        the gate's ``forward`` signature.  Each gate instance is used once.
        """
        gate_name = type(gate).__name__
        if isinstance(gate, type):
            raise NotAGateError(f"add_gate expects a gate instance, got the class {gate.__name__}: write {gate.__name__}()")
        if not (callable(getattr(gate, "forward", None)) and callable(getattr(gate, "backward", None))):
            raise NotAGateError(
                f"add_gate expects a gate (a gates.Gate subclass with forward and backward), got {gate_name}"
            )
        used_as = getattr(gate, "graph_node", None)
        if used_as is not None:
            where = "" if getattr(used_as, "graph", self) is self else " in another graph"
            raise GraphBuildError(
                f"this {gate_name} instance is already used (as {getattr(used_as, 'name', used_as)!r}{where}); "
                f"a gate is used in one place only: create a new {gate_name}() for each use"
            )
        try:
            wrong_count = wrong_input_count(gate, len(inputs))
        except TypeError as error:
            raise NotAGateError(str(error)) from None
        if wrong_count:
            raise GateInputCountError(wrong_count)
        if name is not None:
            name = self._check_new_name(name)
        resolved = [self._resolve_input(item, gate_name) for item in inputs]
        # Every check has passed: only now change the graph.
        input_nodes = []
        for item in resolved:
            if type(item) is not Node:  # a number or array: a constant, already converted
                item = self._add_constant_value(item, self._fresh_name("constant", reserved=name))
            input_nodes.append(item)
        needs = tuple([source.requires_grad for source in input_nodes])
        node = self._add_node(name or self._fresh_name(gate_name), GATE, True in needs, gate, tuple(input_nodes))
        gate.needs_input_grad = needs
        gate.training = self._training
        gate.graph_node = node
        return node

    @contextlib.contextmanager
    def all_or_nothing(self) -> Iterator[None]:
        """Add several nodes as one step: if the block raises, the nodes it added are taken out again.

        ``with g.all_or_nothing(): ...`` leaves the graph as it was before
        the block (names, parameters, constants, output) when an exception
        escapes it, so a block refused halfway, by a name already taken or
        sizes that do not fit, leaves no part of itself behind.  Every
        function of :mod:`graph.layers` builds inside one.  A node taken out
        is in no graph: giving it to this graph again raises GraphBuildError.
        """
        start, output = len(self._nodes), self._output
        try:
            yield
        except BaseException:
            self._take_out_nodes_from(start, output)
            raise

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
            return self._still_here(node_or_name)
        if isinstance(node_or_name, str):
            found = self._by_name.get(node_or_name)
            if found is None:
                raise GraphBuildError(f"this graph has no node named {node_or_name!r}{_suggest(node_or_name, self._by_name)}")
            return found
        raise GraphBuildError(f"expected a Node of this graph or a node name, got {type(node_or_name).__name__}")

    @property
    def nodes(self) -> list[Node]:
        """All nodes, in the order they were added (a node's ``index`` is its place here)."""
        return list(self._nodes)

    @property
    def nodes_by_name(self) -> Mapping[str, Node]:
        """All nodes by name (a read-only mapping)."""
        return types.MappingProxyType(self._by_name)

    def constant_value(self, node: NodeLike) -> Any:
        """The value of a constant node (read-only)."""
        node = self.node(node)
        if node.kind is not CONSTANT:
            raise GraphBuildError(f"{node.name!r} is a {node.kind}, not a constant")
        return self._constants[node.index]

    @property
    def digraph(self) -> nx.DiGraph:
        """The graph as a read-only networkx DiGraph: nodes are node names, edges input -> gate.

        Brought up to date in bulk when asked for, rather than one networkx
        call per added node, which costs more than the rest of adding a gate.
        The view is made once: it shows the graph as it is at every moment.
        """
        digraph, nodes = self._digraph, self._nodes
        known = digraph.number_of_nodes()
        if known < len(nodes):
            new = nodes[known:]
            digraph.add_nodes_from([node.name for node in new])
            digraph.add_edges_from([(source.name, node.name) for node in new for source in node.inputs])
        if self._digraph_view is None:
            view = digraph.copy(as_view=True)
            for method in _DIGRAPH_MUTATORS:  # as nx.freeze does, but with this package's error
                setattr(view, method, _refuse_digraph_edit)
            self._digraph_view = view
        return self._digraph_view

    def nodes_topologically_sorted(self) -> list[Node]:
        """All nodes, each after the nodes it depends on (networkx's topological sort)."""
        return list(self._current_schedule().order)

    # ------------------------------------------------------------------ modes

    @property
    def dtype(self) -> np.dtype:
        """What the graph computes in: ``np.dtype('float64')`` or ``np.dtype('float32')``, fixed when it is made."""
        return self._dtype

    @dtype.setter
    def dtype(self, value: Any) -> None:
        raise ReadOnlyAttributeError(
            f"g.dtype cannot be changed: parameters, constants and schedules are in {self._dtype}; build the graph "
            f"with ComputationalGraph(dtype=...), or run passes in another dtype inside g.computing_in(dtype)"
        )

    @property
    def training(self) -> bool:
        """True in training mode (the default), False after :meth:`eval`; setting it is calling train() or eval()."""
        return self._training

    @training.setter
    def training(self, value: bool) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise ReadOnlyAttributeError(f"g.training is True or False (or call g.train() / g.eval()), got {value!r}")
        self._set_mode(bool(value))

    def train(self) -> ComputationalGraph:
        """Training mode: batch norm uses the batch's statistics, dropout drops.  Returns the graph.

        A backward always runs in the mode of the forward it follows: after
        ``g.eval(); g.forward(...); g.train()``, ``g.backward()`` is the
        evaluation-mode backward of that forward.
        """
        self._set_mode(True)
        return self

    def eval(self) -> ComputationalGraph:
        """Evaluation mode: batch norm uses its running averages, dropout passes values through.  Returns the graph."""
        self._set_mode(False)
        return self

    # ------------------------------------------------------------------ running

    def forward(self, feeds: Mapping[str, Any] | None = None) -> Any:
        """Run every gate in topological order; return the output's value.

        Parameters
        ----------
        feeds : mapping of input name to number or array
            One value per input of the graph, converted to the graph's dtype
            (an array already of that dtype is read in place, not copied).

        Returns
        -------
        numpy scalar or read-only array: the value of ``g.output``.
        """
        me = threading.get_ident()
        if self._lock.locked() and self._pass_owner == me:
            raise self._reentry_error()
        with self._lock:  # passes from several threads run one after the other
            self._pass_owner = me
            schedule = self._schedule or self._current_schedule()
            self._values = self._grads = None  # whatever happens next, the last pass is gone
            try:
                values = self._leaf_values(schedule, feeds)
            except GraphError as error:
                self._why_no_values = f"the last forward was given bad feeds: {error}"
                raise
            dtype, scalar_type, check_finite = self.dtype, self._scalar_type, self.check_finite
            for node, forward, inputs_of, slot in schedule.forward_steps:
                inputs = inputs_of(values)
                try:
                    out = forward(*inputs)
                    # A value is a numpy scalar or an array of the graph's dtype; anything else is checked.
                    if type(out) is _ndarray and out.dtype is dtype:
                        out.setflags(False)  # read-only (write=False): the gates it goes to may not change it
                    elif type(out) is not scalar_type:
                        out = read_only(check_output(out, dtype, node))
                except Exception as error:
                    raise self._forward_failed(node, inputs, error) from error
                if check_finite and not np.isfinite(out).all():
                    raise self._non_finite_output(node, values, out)
                values[slot] = out
            self._values, self._pass_thread, self._pass_training = values, me, self._training
            return read_only(values[self._output.index])

    def backward(self, upstream: Any = None) -> dict[str, Any]:
        """Backpropagate from the output; return d(output)/d(x) for every input and parameter that requires it.

        Parameters
        ----------
        upstream : number or array, optional
            d(loss)/d(output), with the output's shape.  Defaults to 1 for a
            scalar output; required for any other output.

        Returns
        -------
        dict mapping each input (requires_grad=True) and parameter name to its
        gradient, with exactly that input's shape and the graph's dtype: a
        writable array that shares memory with nothing else (or a numpy scalar).
        The dict and its arrays are the caller's: changing them (clipping in
        place, say) changes nothing that grad(), gradients_sent(), explain(),
        draw() or animate() report.

        The backward runs in the mode (training or evaluation) of the forward
        it follows, even if train() or eval() was called in between.
        """
        me = threading.get_ident()
        if self._lock.locked() and self._pass_owner == me:
            raise self._reentry_error()
        with self._lock:
            self._pass_owner = me
            values = self._values
            if values is None or self._pass_thread != me:
                raise self._no_values_for_backward()
            if self._pass_training is self._training:
                return self._backward_pass(values, upstream)
            # The mode changed since the forward (g.eval() in between): the backward
            # belongs to that forward, so the gates run it in the forward's mode.
            self._set_gates_mode(self._pass_training)
            try:
                return self._backward_pass(values, upstream)
            finally:
                self._set_gates_mode(self._training)

    def _backward_pass(self, values: list, upstream: Any) -> dict[str, Any]:
        """backward's loop, once the lock is held and the forward's values are there."""
        schedule = self._schedule
        dtype, check_finite = self.dtype, self.check_finite
        grads = [None] * len(values)
        sent = {}  # gate slot -> the gradients it sent, for explain() and draw()
        grads[self._output.index] = self._first_upstream(upstream, values[self._output.index])
        for node, backward, inputs_of, out_slot, targets in schedule.backward_steps:
            upstream = grads[out_slot]
            if upstream is None:
                continue  # the output does not depend on this gate
            if type(upstream) is _ndarray:
                upstream.setflags(False)  # read-only: it may be another input's gradient as well
            try:
                returned = backward(upstream)
            except Exception as error:
                raise GradientError(f"{gate_title(node)} failed in backward: {type(error).__name__}: {error}") from error
            gradients = check_gradients(returned, inputs_of(values), values[out_slot], dtype, node)
            sent[out_slot] = gradients
            for position, slot in targets:
                grad = gradients[position]
                if grad is None:
                    continue  # no gradient flows to this input
                if check_finite and not np.isfinite(grad).all():
                    raise self._non_finite_gradient(node, position, upstream, grad, values)
                current = grads[slot]
                # Where a value branches, the gradients add.  Never in place:
                # a gradient may be a view shared with another input.
                grads[slot] = grad if current is None else current + grad
        self._grads, self._sent = grads, sent
        return self._hand_out(schedule, grads, sent)

    def value(self, node_or_name: NodeLike) -> Any:
        """The value of any node (input, parameter, constant or gate) after the last forward (read-only)."""
        node = self.node(node_or_name)
        if self._values is None or node.index >= len(self._values):
            raise BackwardError(f"no value for {node.name!r} yet: {self._why_no_values}")
        return read_only(self._values[node.index])

    def grad(self, node_or_name: NodeLike) -> Any:
        """d(output)/d(node) after the last backward, for any node, intermediate ones included.

        A copy: changing it changes nothing in the graph.  None for a node
        that requires no gradient (constants, inputs with requires_grad=False
        and what is computed only from them); zeros for one the output does
        not depend on.
        """
        node = self.node(node_or_name)
        if self._grads is None or node.index >= len(self._grads):
            raise BackwardError(f"no gradient for {node.name!r} yet: run forward, then backward")
        if not node.requires_grad:
            return None
        grad = self._grads[node.index]
        return self._zeros_like(self._values[node.index]) if grad is None else copy.copy(grad)

    def gradients_sent(self, node_or_name: NodeLike) -> tuple | None:
        """What a gate sent each of its inputs in the last backward, one entry per input.

        Each is already summed over broadcast axes (its input's shape), or
        None where the input got nothing.  None if the gate did not run
        backward (the output does not depend on it, or it needs no gradient).
        This is a record of the real pass: explain() and draw() read it,
        and never call a gate's backward again.  The arrays are copies:
        changing them changes nothing in the graph.
        """
        node = self.node(node_or_name)
        if self._grads is None:
            raise BackwardError(f"no gradients sent by {node.name!r} yet: run forward, then backward")
        sent = self._sent.get(node.index)
        return None if sent is None else tuple([None if grad is None else copy.copy(grad) for grad in sent])

    @property
    def has_forward(self) -> bool:
        """Whether the last forward succeeded (values are available)."""
        return self._values is not None

    @property
    def has_backward(self) -> bool:
        """Whether backward ran after the last forward (gradients are available)."""
        return self._grads is not None

    @contextlib.contextmanager
    def last_pass_kept(self) -> Iterator[None]:
        """Within this block, passes leave no trace: afterwards the graph is as it was before it.

        Values, gradients, each gate's cache, gate state (running averages)
        and random generators are restored on exit, so a gradient check in
        the middle of training changes nothing the next backward or step
        would see.  Parameters are the caller's to restore.
        """
        kept = (self._values, self._grads, self._sent, self._pass_thread, self._pass_training, self._why_no_values,
                self._record_arrays)
        gates = [node.gate for node in self._nodes if node.gate is not None]
        saved = [gate_state.snapshot(gate) for gate in gates]
        self._record_arrays = {}  # the kept record lives in these: passes in the block must not write into them
        try:
            yield
        finally:
            (self._values, self._grads, self._sent, self._pass_thread, self._pass_training, self._why_no_values,
             self._record_arrays) = kept
            for gate, snapshot in zip(gates, saved):
                gate_state.restore(gate, snapshot)

    @contextlib.contextmanager
    def computing_in(self, dtype: Any) -> Iterator[None]:
        """Within this block, passes compute in ``dtype`` (gradient checks use float64).

        Parameters and constants are converted copies inside the block; on
        exit ``g.params`` holds the original arrays again and the block's
        last pass is forgotten.
        """
        dtype = graph_dtype(dtype)
        if dtype is self.dtype:
            yield
            return
        saved = self.dtype, dict(self.params), self._constants, self._schedule
        self._set_dtype(dtype)
        self._schedule = None
        self._constants = {slot: read_only(np.asarray(value).astype(dtype)[()]) for slot, value in saved[2].items()}
        for name, value in saved[1].items():
            self.params[name] = np.array(value, dtype=dtype)
        try:
            yield
        finally:
            dtype, params, self._constants, self._schedule = saved
            self._set_dtype(dtype)
            self.params.clear()
            self.params.update(params)
            self._forget_last_pass(f"the last pass ran in {dtype} inside computing_in(): run forward again")

    # ------------------------------------------------------- the rest of the API

    def copy(self) -> ComputationalGraph:
        """A graph of new gates with the same structure that shares ``params`` with this one.

        The way to run one model in several threads: give each thread its own
        copy (``g.copy()``), all training or reading the same parameter arrays.
        """
        twin = copy.deepcopy(self, {id(self.params): self.params})
        return twin

    def __copy__(self):
        raise GraphError(
            "copy.copy(g) would share gates and passes between two graphs: use g.copy() for a graph sharing "
            "the parameters (e.g. one per thread) or copy.deepcopy(g) for an independent one"
        )

    def draw(self, path: str) -> str:
        """Save a picture of the graph (.png, .svg or .dot); see :mod:`graph.drawing`."""
        from graph.drawing import draw_graph

        return draw_graph(self, path)

    def explain(self) -> str:
        """The last pass as text, gate by gate; see :mod:`graph.explain`.

        A str; in Jupyter it shows as tables (``_repr_html_``).
        """
        from graph.explain import explain_pass

        return explain_pass(self)

    def animate(self, path: str) -> str:
        """Save the last backward pass as an animation (.gif or .html), one frame per gate; see :mod:`graph.animation`."""
        from graph.animation import animate

        return animate(self, path)

    def _repr_svg_(self) -> str | None:
        """Jupyter shows a graph as its picture: structure before a pass, values and gradients after."""
        from graph.notebook import graph_svg

        try:
            return graph_svg(self)
        except (GraphError, ModuleNotFoundError):
            return None  # an empty graph, or no matplotlib: Jupyter falls back to the repr

    def save_params(self, path: str) -> None:
        """Write every parameter to a .npz file, atomically; see :mod:`graph.parameter_files`."""
        from graph.parameter_files import save_params

        save_params(self, path)

    def load_params(self, path: str) -> None:
        """Load parameters saved by save_params, all or nothing; see :mod:`graph.parameter_files`."""
        from graph.parameter_files import load_params

        load_params(self, path)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_lock"] = None  # a lock cannot be copied: the copy gets its own
        state["_read_only_views"] = {}  # views of this graph's arrays: the copy makes its own
        state["_digraph_view"] = None  # likewise for the view of its digraph
        state["_senders_of"] = None  # worked out again for the copy's schedule
        state["_record_arrays"] = {}  # the copy's record gets arrays of its own on its next backward
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock, self._pass_owner = threading.Lock(), None

    def __repr__(self) -> str:
        counts = {kind: 0 for kind in NodeKind}
        for node in self._nodes:
            counts[node.kind] += 1
        return (
            f"<ComputationalGraph: {counts[INPUT]} inputs, {counts[PARAM]} params, "
            f"{counts[CONSTANT]} constants, {counts[GATE]} gates, {self.dtype}>"
        )

    # ------------------------------------------------------------- internals

    def _add_node(self, name, kind, requires_grad, gate=None, inputs=()) -> Node:
        node = Node(self, name, kind, len(self._nodes), requires_grad, gate, inputs)
        self._nodes.append(node)
        self._by_name[name] = node
        if kind is GATE:
            self._output = node
        self._schedule = None  # the graph changed: recompute the order on the next pass
        self._forget_last_pass("run forward first")
        return node

    def _take_out_nodes_from(self, start: int, output: Node | None) -> None:
        """Undo every node added since there were ``start`` of them (see all_or_nothing)."""
        added = self._nodes[start:]
        if not added:
            return
        del self._nodes[start:]
        names = [node.name for node in added]
        for node in added:
            del self._by_name[node.name]
            if node.kind is PARAM:
                self.params.pop(node.name, None)
            for kept in (self._constants, self._read_only_views, self._record_arrays):
                kept.pop(node.index, None)
            if node.gate is not None:
                node.gate.graph_node = None  # the gate may be added again
        self._digraph.remove_nodes_from([name for name in names if name in self._digraph])
        self._output = output
        self._schedule = None

    def _still_here(self, node: Node) -> Node:
        """node, unless all_or_nothing took it out again."""
        if node.index >= len(self._nodes) or self._nodes[node.index] is not node:
            raise GraphBuildError(
                f"node {node.name!r} is no longer in this graph: the all_or_nothing() block that added it raised"
            )
        return node

    def _forget_last_pass(self, why: str) -> None:
        self._values = self._grads = self._sent = self._pass_thread = self._pass_training = None
        self._why_no_values = why

    def _check_new_name(self, name: Any) -> str:
        if not isinstance(name, str) or not name:
            raise GraphBuildError(f"a node name must be a non-empty string, got {name!r}")
        if _UNWRITABLE.search(name):
            raise GraphBuildError(f"a node name cannot contain NUL or lone surrogate characters: {name!r}")
        if name in self._by_name:
            raise GraphBuildError(f"this graph already has a node named {name!r} ({self._by_name[name].kind})")
        return name

    def _fresh_name(self, prefix: str, reserved: str | None = None) -> str:
        # reserved: a name checked but not yet added (add_gate's own name).
        number = len(self._nodes)
        name = f"{prefix}_{number}"
        while name in self._by_name or name == reserved:
            number += 1
            name = f"{prefix}_{number}"
        return name

    def _add_constant_value(self, value: Any, name: str) -> Node:
        """Add a constant node holding ``value`` (already of the graph's dtype) under a checked name."""
        if type(value) is np.ndarray:
            value = value.copy()  # later changes to the caller's array must not leak in
            value.flags.writeable = False
        node = self._add_node(name, CONSTANT, False)
        self._constants[node.index] = value
        return node

    def _resolve_input(self, item: Any, gate_name: str) -> Any:
        if type(item) is Node or isinstance(item, Node):
            if item.graph is not self:
                raise GraphBuildError(f"{gate_name}: input node {item.name!r} belongs to another graph")
            return self._still_here(item)
        if isinstance(item, str):
            if item not in self._by_name:
                raise GraphBuildError(f"{gate_name}: this graph has no node named {item!r}{_suggest(item, self._by_name)}")
            return self._by_name[item]
        return to_value(item, self.dtype, f"{gate_name}: constant input")  # validated now, added later

    def _set_dtype(self, dtype: np.dtype) -> None:
        self._dtype = dtype
        self._scalar_type = dtype.type  # np.float64 or np.float32; reading dtype.type costs a little every time

    def _set_mode(self, training: bool) -> None:
        """Switch mode between passes: a pass running in another thread finishes in its own mode first."""
        if self._lock.locked() and self._pass_owner == threading.get_ident():
            raise ConcurrentUseError("a gate called train() or eval() of the graph it belongs to, during a pass")
        with self._lock:
            self._training = training
            self._set_gates_mode(training)

    def _set_gates_mode(self, training: bool) -> None:
        for node in self._nodes:
            if node.gate is not None:
                node.gate.training = training

    def _current_schedule(self) -> Schedule:
        if self._schedule is None:
            if self._output is None:
                raise GraphBuildError("the graph has no gates yet: add a gate (or set g.output) before running it")
            with _garbage_collection_paused():
                self._schedule = Schedule(self)
        return self._schedule

    def _reentry_error(self) -> ConcurrentUseError:
        """For a pass started inside a pass of the same thread (a gate calling its own graph).

        Passes from other threads wait for the lock; one from the thread
        holding it would wait forever.  While the lock is held, _pass_owner
        is the thread holding it.
        """
        return ConcurrentUseError("a gate called forward or backward of the graph it belongs to, during a pass")

    def _leaf_values(self, schedule: Schedule, feeds: Mapping[str, Any] | None) -> list:
        """A fresh value list with every input, parameter and constant filled in; checks every feed first."""
        if feeds is None:
            feeds = {}
        if type(feeds) is not dict and not isinstance(feeds, Mapping):
            raise FeedError(f"feeds must be a dict of input name -> value, got {type(feeds).__name__}")
        if len(feeds) != len(schedule.inputs):
            self._raise_feed_mismatch(schedule, feeds)
        dtype, views = self.dtype, self._read_only_views
        floats_fit = self._scalar_type is np.float64  # a Python float is a float64 already
        values = schedule.empty_values.copy()  # the constants, and a slot for every other value
        for name, slot in schedule.inputs:
            value = feeds.get(name, _MISSING)
            kind = type(value)
            if kind is float and floats_fit:  # the usual scalar feed
                values[slot] = _float64(value)
                continue
            if kind is not _ndarray or value.dtype is not dtype or not value.ndim:
                if value is _MISSING:
                    self._raise_feed_mismatch(schedule, feeds)
                value = to_value(value, dtype, "feed", name)
            last = views.get(slot)  # gates may not write into the caller's arrays: they get a read-only view
            values[slot] = last[1] if last is not None and last[0] is value else self._read_only(slot, value)
        params = self.params
        for name, slot in schedule.params:
            value = params.get(name)
            if type(value) is not _ndarray or value.dtype is not dtype:
                if value is None:
                    raise FeedError(f"parameter {name!r} is missing from g.params")
                value = params[name] = to_array(value, dtype, "parameter", name)
            last = views.get(slot)  # only g.params and load_params change a parameter: gates get a read-only view
            values[slot] = last[1] if last is not None and last[0] is value else self._read_only(slot, value)
        return values

    def _read_only(self, slot: int, value: Any) -> Any:
        """A read-only view of an array, kept to be handed out again while the same array comes back."""
        if type(value) is not np.ndarray:
            return value
        view = read_only(value)
        self._read_only_views[slot] = (value, view)
        return view

    def _raise_feed_mismatch(self, schedule: Schedule, feeds: Mapping[str, Any]) -> None:
        input_names = [name for name, _ in schedule.inputs]
        for name in feeds:
            if not isinstance(name, str):
                raise FeedError(f"feeds are keyed by input name (a str), got the key {name!r}")
            if name not in input_names:
                node = self._by_name.get(name)
                if node is not None:
                    hint = f"it is a {node.kind}, not an input"
                    if node.kind is PARAM:
                        hint += f"; change g.params[{name!r}] instead"
                else:
                    hint = f"this graph has no input named {name!r}{_suggest(name, input_names)}"
                raise FeedError(f"feed {name!r} matches no input of the graph: {hint}")
        missing = [name for name in input_names if name not in feeds]
        raise FeedError(
            f"no feed for input{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"(inputs: {', '.join(input_names)})"
        )

    def _forward_failed(self, node: Node, inputs: list, error: Exception) -> GateForwardError:
        shapes = " and ".join(f"{source.name!r} {np.shape(value)}" for source, value in zip(node.inputs, inputs))
        self._why_no_values = f"{gate_title(node)} failed in forward; run forward again with good input"
        if isinstance(error, GateForwardError):
            return error
        return GateForwardError(f"{gate_title(node)} failed in forward on inputs {shapes}: {type(error).__name__}: {error}")

    def _non_finite_output(self, node: Node, values: list, out: Any) -> NonFiniteError:
        values[node.index] = out
        self._why_no_values = f"{gate_title(node)} produced {non_finite_kind(out)}; run forward again with good input"
        return NonFiniteError(f"{gate_title(node)} produced {non_finite_kind(out)} in forward from {input_list(node, values)}")

    def _no_values_for_backward(self) -> GraphError:
        if self._values is None:
            return BackwardError(f"backward needs a successful forward first ({self._why_no_values})")
        return ConcurrentUseError(
            "the last forward of this graph ran in another thread, so its values are not this thread's: "
            "give each thread its own graph with g.copy() (the copies share g.params)"
        )

    def _first_upstream(self, upstream: Any, output_value: Any) -> Any:
        if upstream is None and type(output_value) is self._scalar_type:
            return self._scalar_type(1.0)  # the usual case: a scalar loss
        name, shape = self._output.name, output_value.shape
        if upstream is None:
            if shape != ():
                raise BackwardError(
                    f"the output {name!r} has shape {shape}, not a scalar: "
                    f"pass backward(upstream=...) with d(loss)/d({name}), shape {shape}"
                )
            return self._scalar_type(1.0)
        # The record keeps its own copy: the caller may reuse the array it passed.
        upstream = read_only(to_array(upstream, self.dtype, "upstream gradient")[()])
        if upstream.shape != shape:
            raise BackwardError(f"upstream gradient has shape {upstream.shape} but the output {name!r} has shape {shape}")
        if self.check_finite and not np.isfinite(upstream).all():
            raise NonFiniteError(f"the upstream gradient passed to backward contains {non_finite_kind(upstream)}")
        return upstream

    def _non_finite_gradient(self, node: Node, position: int, upstream, grad, values) -> NonFiniteError:
        return NonFiniteError(
            f"{gate_title(node)} produced {non_finite_kind(grad)} in backward, in the gradient for "
            f"{node.inputs[position].name!r}, from upstream {show(upstream)} and inputs {input_list(node, values, grad)}"
        )

    def _hand_out(self, schedule: Schedule, grads: list, sent: dict) -> dict[str, Any]:
        """backward's result: each leaf's gradient, as an array that only the caller holds.

        The caller gets the array the gates sent, and the record (``grads``
        and ``sent``, read by grad(), gradients_sent(), explain(), draw() and
        animate()) keeps a copy of it, so writing into the result (clipping
        in place, ``np.clip(g, -5, 5, out=g)``) changes nothing recorded.
        The copy goes into an array the graph keeps from pass to pass
        (:meth:`_record_copy`): a new array every pass page-faults, which
        measured 1.75 times numpy's time on the lecture's two-layer net.  A
        view, a read-only array (an upstream gradient passed on, as an add
        gate does) or an array already handed out to another leaf is handed
        out as a new copy instead.
        """
        result, handed = {}, {}  # handed: id of an array handed out -> the record's copy of it
        for name, slot in schedule.leaves:
            grad = grads[slot]
            if type(grad) is not _ndarray:
                # A numpy scalar is immutable: nothing to share.  None: the output does not depend on it.
                result[name] = self._zeros_like(self._values[slot]) if grad is None else grad
            elif id(grad) in handed:  # one array sent to two leaves
                result[name], grads[slot] = grad.copy(), handed[id(grad)]
            elif grad.flags.writeable and grad.base is None:
                result[name] = grad
                grads[slot] = handed[id(grad)] = self._record_copy(slot, grad)
            else:
                result[name] = grad.copy()
        if handed:  # the gates that sent a leaf its gradient hold the caller's array too: they get the copy
            for out_slot in self._leaf_senders(schedule):
                gradients = sent.get(out_slot)
                if gradients is not None:
                    sent[out_slot] = tuple([handed.get(id(grad), grad) for grad in gradients])
        return result

    def _record_copy(self, slot: int, grad: np.ndarray) -> np.ndarray:
        """A copy of a leaf's gradient for the record, in the array kept for that leaf since the last pass."""
        kept = self._record_arrays.get(slot)
        if kept is None or kept.shape != grad.shape or kept.dtype != grad.dtype:
            kept = self._record_arrays[slot] = np.empty_like(grad)
        np.copyto(kept, grad)
        return kept

    def _leaf_senders(self, schedule: Schedule) -> list[int]:
        """The slots of the gates that send some leaf a gradient (worked out once per schedule)."""
        if self._senders_of is not schedule:
            leaves = {slot for _, slot in schedule.leaves}
            self._senders = [out_slot for _, _, _, out_slot, targets in schedule.backward_steps
                             if any(slot in leaves for _, slot in targets)]
            self._senders_of = schedule
        return self._senders

    def _zeros_like(self, value: Any) -> Any:
        return np.zeros(value.shape, self.dtype) if value.shape else self._scalar_type(0.0)


_MISSING = object()
_ndarray, _float64 = np.ndarray, np.float64  # read on every pass: module names are quicker than np.*
#: The networkx methods that would change a graph; g.digraph refuses them.
_DIGRAPH_MUTATORS = (
    "add_node", "add_nodes_from", "remove_node", "remove_nodes_from", "add_edge", "add_edges_from",
    "add_weighted_edges_from", "remove_edge", "remove_edges_from", "update", "clear", "clear_edges",
)


def _refuse_digraph_edit(*args, **kwargs):
    raise GraphBuildError(
        "g.digraph is a read-only view of the graph: add nodes with g.add_input, g.add_param, "
        "g.add_constant and g.add_gate (or work on a copy: nx.DiGraph(g.digraph))"
    )

#: Characters a node name may not hold: NUL, and lone surrogates (no file or picture can hold them).
_UNWRITABLE = re.compile("[\x00\ud800-\udfff]")


def _suggest(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


@contextlib.contextmanager
def _garbage_collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a schedule is built.

    Building one allocates a few long-lived containers per node; each
    collection those allocations trigger walks every object in the process
    for nothing (a third of the time of a 200,000-gate chain's first pass).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
