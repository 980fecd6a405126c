"""The one catalogue of gates the tests know: every gate, and how to draw inputs for it.

Adding a gate to gategraph means adding one entry here (and nothing else in
the tests): the finite-difference tests (test_gates.py), the check_gate
tests (test_checking.py), the float32 tests (test_dtypes.py) and the property
tests (test_properties.py) all read this dict.

Each entry is a :class:`GateCase`:

- ``make()``: a new gate instance (a gate is used in one place only);
- ``inputs(rng)``: sample inputs, float64 arrays, in the gate's smooth domain
  (away from kinks and poles), for a gate whose shapes are its own (MatMul,
  convolution, ...);
- or, for an elementwise gate, ``arity`` and ``domain``: the tests draw
  scalars, arrays and (binary gates) broadcasting pairs themselves, and the
  random graphs of test_properties.py use it;
- ``no_grad``: positions of inputs that never get a gradient (class labels,
  indices), fed with ``requires_grad=False``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import gates

# Domains of elementwise gates: where values are drawn so that the gate is smooth.
ANYWHERE, POSITIVE, AWAY_FROM_ZERO = "anywhere", "positive", "away from zero"


@dataclass(frozen=True)
class GateCase:
    """How to test one gate; see the module docstring."""

    make: Callable[[], gates.Gate]
    inputs: Callable[[np.random.Generator], list] | None = None
    arity: int = 0  # elementwise gates: 1 or 2
    domain: str = ANYWHERE
    no_grad: tuple[int, ...] = field(default_factory=tuple)

    @property
    def elementwise(self) -> bool:
        return self.inputs is None

    def sample(self, rng: np.random.Generator, shapes=None) -> list:
        """Inputs for one check: ``inputs(rng)``, or for an elementwise gate one array per shape."""
        if not self.elementwise:
            return [np.array(value, dtype=np.float64) for value in self.inputs(rng)]
        shapes = shapes if shapes is not None else [(3, 4)] * self.arity
        return [draw(rng, shape, self.domain) for shape in shapes]


def draw(rng: np.random.Generator, shape, domain: str) -> np.ndarray:
    """Random float64 values of ``shape`` (0-d for a scalar) inside ``domain``, all distinct."""
    if domain == POSITIVE:
        return rng.uniform(0.5, 2.0, shape)
    x = rng.standard_normal(shape)
    if domain == AWAY_FROM_ZERO:
        x = np.sign(x + (x == 0)) * rng.uniform(0.3, 2.0, shape)
    return np.asarray(x, dtype=np.float64)


def normal(*shapes):
    """inputs(rng) drawing standard normal arrays of the given shapes."""
    return lambda rng: [rng.standard_normal(shape) for shape in shapes]


def _labels(rng):
    return [rng.standard_normal((3, 4)), np.array([0.0, 3.0, 1.0])]


def _indices(shape, V=4, D=3):
    """inputs(rng) for EmbeddingGate: indices of ``shape`` into V rows (some repeated), a table (V, D)."""
    return lambda rng: [rng.integers(0, V, shape).astype(np.float64), rng.standard_normal((V, D))]


CASES: dict[str, GateCase] = {
    # ------------------------------------------------------------ arithmetic
    "AddGate": GateCase(gates.AddGate, arity=2),
    "SubtractGate": GateCase(gates.SubtractGate, arity=2),
    "MultiplyGate": GateCase(gates.MultiplyGate, arity=2),
    "DivideGate": GateCase(gates.DivideGate, arity=2, domain=AWAY_FROM_ZERO),
    "MaxGate": GateCase(gates.MaxGate, arity=2),
    "MinGate": GateCase(gates.MinGate, arity=2),
    "NegateGate": GateCase(gates.NegateGate, arity=1),
    "ExpGate": GateCase(gates.ExpGate, arity=1),
    "LogGate": GateCase(gates.LogGate, arity=1, domain=POSITIVE),
    "ReciprocalGate": GateCase(gates.ReciprocalGate, arity=1, domain=AWAY_FROM_ZERO),
    "PowerGate(2)": GateCase(lambda: gates.PowerGate(2), arity=1),
    "PowerGate(3)": GateCase(lambda: gates.PowerGate(3), arity=1),
    "PowerGate(0.5)": GateCase(lambda: gates.PowerGate(0.5), arity=1, domain=POSITIVE),
    "PowerGate(-1.5)": GateCase(lambda: gates.PowerGate(-1.5), arity=1, domain=POSITIVE),
    # ----------------------------------------------------------- activations
    "SigmoidGate": GateCase(gates.SigmoidGate, arity=1),
    "TanhGate": GateCase(gates.TanhGate, arity=1),
    "ReLUGate": GateCase(gates.ReLUGate, arity=1, domain=AWAY_FROM_ZERO),
    "LeakyReLUGate": GateCase(lambda: gates.LeakyReLUGate(alpha=0.1), arity=1, domain=AWAY_FROM_ZERO),
    "ELUGate": GateCase(lambda: gates.ELUGate(alpha=1.5), arity=1, domain=AWAY_FROM_ZERO),
    # ------------------------------------------------------------ reductions
    "SumGate": GateCase(gates.SumGate, normal((3, 4))),
    "SumGate(axis=(0, 2))": GateCase(lambda: gates.SumGate(axis=(0, 2)), normal((2, 3, 4))),
    "SumGate(axis=1, keepdims)": GateCase(lambda: gates.SumGate(axis=1, keepdims=True), normal((2, 3, 4))),
    "MeanGate": GateCase(gates.MeanGate, normal((3, 4))),
    "MeanGate(axis=-1)": GateCase(lambda: gates.MeanGate(axis=-1), normal((2, 3, 4))),
    "MeanGate(axis=0, keepdims)": GateCase(lambda: gates.MeanGate(axis=0, keepdims=True), normal((2, 3, 4))),
    # ---------------------------------------------------------------- linalg
    "MatMulGate": GateCase(gates.MatMulGate, normal((5, 3), (3, 2))),
    "MatMulGate(1-D, 2-D)": GateCase(gates.MatMulGate, normal((3,), (3, 2))),
    "MatMulGate(2-D, 1-D)": GateCase(gates.MatMulGate, normal((5, 3), (3,))),
    "MatMulGate(1-D, 1-D)": GateCase(gates.MatMulGate, normal((3,), (3,))),
    # ---------------------------------------------------------------- losses
    "SquaredErrorGate": GateCase(gates.SquaredErrorGate, normal((3, 4), (3, 4))),
    "SquaredErrorGate(broadcast)": GateCase(gates.SquaredErrorGate, normal((3, 4), (4,))),
    "LogSoftmaxGate": GateCase(gates.LogSoftmaxGate, normal((3, 4))),
    "LogSoftmaxGate(1-D)": GateCase(gates.LogSoftmaxGate, normal((5,))),
    "SoftmaxCrossEntropyGate": GateCase(gates.SoftmaxCrossEntropyGate, _labels, no_grad=(1,)),
    # ----------------------------------------------------- convolution (issue 12)
    "Conv2DGate": GateCase(gates.Conv2DGate, normal((2, 3, 5, 4), (2, 3, 3, 2), (2,))),
    "Conv2DGate(stride=2, padding=1)": GateCase(
        lambda: gates.Conv2DGate(stride=2, padding=1), normal((1, 2, 6, 5), (3, 2, 3, 3), (3,))
    ),
    "Conv2DGate(padding=2)": GateCase(lambda: gates.Conv2DGate(padding=2), normal((2, 1, 3, 4), (2, 1, 2, 3), (2,))),
    "MaxPool2DGate": GateCase(gates.MaxPool2DGate, normal((2, 3, 4, 6))),
    "MaxPool2DGate(3, stride=2), border dropped": GateCase(lambda: gates.MaxPool2DGate(3, 2), normal((1, 2, 6, 7))),
    "AvgPool2DGate": GateCase(gates.AvgPool2DGate, normal((2, 2, 5, 4))),
    "AvgPool2DGate(2, stride=1)": GateCase(lambda: gates.AvgPool2DGate(2, 1), normal((1, 2, 3, 4))),
    "BatchNormGate(N, D)": GateCase(gates.BatchNormGate, normal((5, 3), (3,), (3,))),
    "BatchNormGate(N, C, H, W)": GateCase(lambda: gates.BatchNormGate(momentum=0.8), normal((2, 3, 2, 3), (3,), (3,))),
    # The mask is held fixed by the checks, which restore the gate's rng before every forward.
    "DropoutGate": GateCase(lambda: gates.DropoutGate(0.3, np.random.default_rng(0)), normal((4, 5))),
    "FlattenGate": GateCase(gates.FlattenGate, normal((2, 3, 2, 2))),
    "ReshapeGate": GateCase(lambda: gates.ReshapeGate((-1, 1, 2, 3)), normal((4, 6))),
    # ------------------------------------------------------- recurrent (issue 13)
    "EmbeddingGate": GateCase(gates.EmbeddingGate, _indices((5,)), no_grad=(0,)),
    "EmbeddingGate((N, T), repeated)": GateCase(gates.EmbeddingGate, _indices((2, 6)), no_grad=(0,)),
    "SliceGate(int, axis=1)": GateCase(lambda: gates.SliceGate(2, axis=1), normal((2, 4, 3))),
    "SliceGate(slice)": GateCase(lambda: gates.SliceGate(slice(1, 3)), normal((3, 5))),
    "SliceGate(negative)": GateCase(lambda: gates.SliceGate(-1, axis=0), normal((3, 4))),
    "StackGate(axis=1)": GateCase(lambda: gates.StackGate(axis=1), normal((2, 3), (2, 3), (2, 3))),
    "StackGate(one input)": GateCase(gates.StackGate, normal((4,))),
    "ConcatenateGate": GateCase(gates.ConcatenateGate, normal((2, 3), (1, 3), (3, 3))),
    "ConcatenateGate(axis=-1)": GateCase(lambda: gates.ConcatenateGate(axis=-1), normal((2, 1), (2, 4))),
    "SoftmaxCrossEntropySumGate": GateCase(gates.SoftmaxCrossEntropySumGate, _labels, no_grad=(1,)),
    # ----------------------------------------------------- transformer (issue 21)
    "GELUGate": GateCase(gates.GELUGate, arity=1),
    'GELUGate(approximate="tanh")': GateCase(lambda: gates.GELUGate(approximate="tanh"), arity=1),
    "SoftmaxGate": GateCase(gates.SoftmaxGate, normal((2, 3, 4))),
    "SoftmaxGate(axis=0)": GateCase(lambda: gates.SoftmaxGate(axis=0), normal((3, 4))),
    "LayerNormGate": GateCase(gates.LayerNormGate, normal((2, 3, 5), (5,), (5,))),
    "LayerNormGate(N, D)": GateCase(lambda: gates.LayerNormGate(eps=1e-3), normal((4, 3), (3,), (3,))),
    "MatMulGate(batched)": GateCase(gates.MatMulGate, normal((2, 3, 4, 5), (2, 3, 5, 4))),
    "MatMulGate(stack @ matrix)": GateCase(gates.MatMulGate, normal((2, 3, 4), (4, 5))),
    "MatMulGate(matrix @ stack)": GateCase(gates.MatMulGate, normal((3, 4), (2, 4, 5))),
    "MatMulGate(broadcast batch)": GateCase(gates.MatMulGate, normal((2, 1, 3, 4), (3, 4, 2))),
    "MatMulGate(1-D @ stack)": GateCase(gates.MatMulGate, normal((4,), (2, 4, 3))),
    "MatMulGate(stack @ 1-D)": GateCase(gates.MatMulGate, normal((2, 3, 4), (4,))),
    "LinearGate": GateCase(gates.LinearGate, normal((2, 3, 4), (4, 5), (5,))),
    "LinearGate(N, D)": GateCase(gates.LinearGate, normal((3, 4), (4, 2), (2,))),
    "TransposeGate": GateCase(lambda: gates.TransposeGate((0, 2, 1, 3)), normal((2, 3, 4, 2))),
    "UnflattenGate": GateCase(lambda: gates.UnflattenGate((2, -1)), normal((2, 3, 6))),
    "FlattenLastGate": GateCase(gates.FlattenLastGate, normal((2, 3, 2, 3))),
    "CausalMaskGate": GateCase(gates.CausalMaskGate, normal((2, 4, 4))),
    "ScaledDotProductAttentionGate": GateCase(gates.ScaledDotProductAttentionGate, normal((2, 3, 4, 2), (2, 3, 4, 2), (2, 3, 4, 3))),
    "ScaledDotProductAttentionGate(causal=False)": GateCase(
        lambda: gates.ScaledDotProductAttentionGate(causal=False), normal((2, 3, 2), (2, 4, 2), (2, 4, 3))
    ),
    "ScaledDotProductAttentionGate(T < S)": GateCase(gates.ScaledDotProductAttentionGate, normal((3, 2), (4, 2), (4, 3))),
    "PositionEmbeddingGate": GateCase(gates.PositionEmbeddingGate, normal((2, 3), (5, 4)), no_grad=(0,)),
}


def gate_classes_in_catalogue() -> set[str]:
    """Names of the gate classes the catalogue covers."""
    return {type(case.make()).__name__ for case in CASES.values()}
