"""Indexing gates: row lookup (embedding), slicing, stacking and concatenation.

What a recurrent network needs besides arithmetic: turn character indices
into vectors (:class:`EmbeddingGate`), take time step t out of a sequence or
one of the LSTM's four gates out of a pre-activation (:class:`SliceGate`),
and put per-step values back together (:class:`StackGate`,
:class:`ConcatenateGate`).

None of them computes anything: their forward moves numbers and their
backward moves the upstream gradient back to where each number came from.
Where a number was read several times (a repeated index) its gradients add.
"""

from __future__ import annotations

import numpy as np

from gates.base import Gate


def class_indices(values, count: int, what: str, of: str = "classes") -> np.ndarray:
    """Class labels or row indices, which arrive as floats, as int64 indices in 0..count-1.

    The one check of every gate that takes indices (EmbeddingGate and the
    softmax cross-entropy losses).

    Parameters
    ----------
    values : array_like
        Any shape; each must be a whole number in 0..count-1.
    count : int
        How many classes (or table rows) there are.
    what : str
        How the message names them, e.g. ``"SoftmaxCrossEntropyGate: labels"``.
    of : str
        What an index counts, for the message: ``"classes"``, ``"rows of the table"``.

    Returns
    -------
    ndarray of int64
        ``values``' shape.

    Raises
    ------
    ValueError
        Naming the first value that is not a whole number in 0..count-1 (NaN included).
    """
    values = np.asarray(values)
    good = np.isfinite(values) & (values == np.round(values)) & (values >= 0) & (values < count)
    if not np.all(good):
        raise ValueError(
            f"{what} must be class indices 0..{count - 1}, got {values[~good][0]:g}: "
            f"whole numbers in 0..{count - 1}, one of the {count} {of}"
        )
    return values.astype(np.int64)


class EmbeddingGate(Gate):
    """z = table[indices]: one row of the table per index;  dz/dtable[v] = sum of upstream over the lookups of v.

    indices: (N,) or (N, T), class indices 0..V-1 (they arrive as floats and
    must be whole numbers; they get no gradient, backward returns None);
    table: (V, D); z: (N, D) or (N, T, D).

    The same as one-hot vectors times the table (``onehot(indices) @ table``)
    without building the one-hot vectors, so a character-level RNN's
    ``Wxh @ x_t`` is a row lookup.  A repeated index reads the same row
    several times, and the gradient of that row is the sum of their
    upstream gradients.  Caches the integer indices and V.
    """

    symbol = "embed"

    def forward(self, indices, table):
        if np.ndim(table) != 2 or np.ndim(indices) not in (1, 2):
            raise ValueError(
                f"EmbeddingGate takes indices of shape (N,) or (N, T) and a table of shape (V, D), "
                f"got indices {np.shape(indices)} and table {np.shape(table)}"
            )
        V = table.shape[0]
        self.indices = class_indices(indices, V, "EmbeddingGate: indices", "rows of the table")
        self.V, self.D = table.shape
        return table[self.indices]

    def backward(self, upstream):
        indices = self.indices.reshape(-1)
        rows = np.reshape(upstream, (indices.size, self.D))
        dtable = np.zeros((self.V, self.D), dtype=rows.dtype)
        np.add.at(dtable, indices, rows)  # unbuffered: a repeated index adds every one of its rows
        return None, dtable


class SliceGate(Gate):
    """z = x[..., index, ...] along one axis;  dz/dx = upstream where x was read, 0 elsewhere.

    ``index`` is an integer (the axis disappears: time step t of a sequence
    (N, T, H) is ``SliceGate(t, axis=1)``, shape (N, H)) or a slice (the axis
    stays: the LSTM's input gate out of a pre-activation (N, 4H) is
    ``SliceGate(slice(0, H))``, shape (N, H)).  ``axis`` defaults to the last.

    x: any shape with that axis; z: x's shape with the axis indexed.
    Forward returns a view (no copy); backward writes the upstream into
    zeros of x's shape.  Caches x's shape and the index tuple.
    """

    symbol = "[]"

    def __init__(self, index: int | slice, axis: int = -1):
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer, slice)):
            raise TypeError(f"SliceGate takes an integer or a slice, got {index!r}")
        self.index = int(index) if not isinstance(index, slice) else index
        self.axis = int(axis)

    def forward(self, x):
        ndim = np.ndim(x)
        if not -ndim <= self.axis < ndim:
            raise ValueError(f"SliceGate: axis {self.axis} is out of range for x of shape {np.shape(x)}")
        axis = self.axis % ndim
        if not isinstance(self.index, slice) and not -x.shape[axis] <= self.index < x.shape[axis]:
            raise ValueError(
                f"SliceGate: index {self.index} is out of range for axis {self.axis} of x of shape {x.shape}"
            )
        self.key = (slice(None),) * axis + (self.index,)
        self.shape, self.dtype = x.shape, x.dtype
        return x[self.key]

    def backward(self, upstream):
        dx = np.zeros(self.shape, dtype=self.dtype)
        dx[self.key] = upstream
        return (dx,)

    def __repr__(self) -> str:
        return f"SliceGate({self.index!r}, axis={self.axis})"


class StackGate(Gate):
    """z = np.stack([x1, ..., xK], axis);  dz/dxk = the k-th slice of upstream along axis.

    x1..xK: K >= 1 inputs of one shape, e.g. per-step hidden states (N, H);
    z: that shape with a new axis of length K, e.g. ``StackGate(axis=1)``
    gives (N, T, H).  Backward hands out views of the upstream (no copies).
    Caches nothing but the axis.
    """

    symbol = "stack"

    def __init__(self, axis: int = 0):
        self.axis = int(axis)

    def forward(self, *xs):
        if not xs:
            raise ValueError("StackGate takes at least one input, got none")
        shapes = {np.shape(x) for x in xs}
        if len(shapes) != 1:
            raise ValueError(f"StackGate: inputs must have one shape, got shapes {[np.shape(x) for x in xs]}")
        out = np.stack(xs, axis=self.axis)
        self.out_axis = self.axis % out.ndim
        return out

    def backward(self, upstream):
        return tuple(np.moveaxis(upstream, self.out_axis, 0))

    def __repr__(self) -> str:
        return f"StackGate(axis={self.axis})"


class ConcatenateGate(Gate):
    """z = np.concatenate([x1, ..., xK], axis);  dz/dxk = upstream's block of xk along axis.

    x1..xK: K >= 1 inputs whose shapes agree except along ``axis``, e.g.
    per-step hidden states (N, H) concatenated on axis 0 into (T N, H) rows,
    time step by time step, for one matrix product with the output weights.
    Backward hands out views of the upstream.  Caches the split points.
    """

    symbol = "concat"

    def __init__(self, axis: int = 0):
        self.axis = int(axis)

    def forward(self, *xs):
        if not xs:
            raise ValueError("ConcatenateGate takes at least one input, got none")
        try:
            out = np.concatenate(xs, axis=self.axis)
        except ValueError as error:  # numpy's AxisError is a ValueError too
            raise ValueError(
                f"ConcatenateGate(axis={self.axis}): cannot concatenate shapes {[np.shape(x) for x in xs]}: {error}"
            ) from None
        self.out_axis = self.axis % out.ndim
        self.splits = np.cumsum([x.shape[self.out_axis] for x in xs[:-1]])
        return out

    def backward(self, upstream):
        return tuple(np.split(upstream, self.splits, axis=self.out_axis))

    def __repr__(self) -> str:
        return f"ConcatenateGate(axis={self.axis})"
