"""Normalization and regularization gates that behave differently in training and evaluation.

Both read ``self.training``, which the graph sets (``g.train()``, ``g.eval()``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gates.base import Gate
from gates.linalg import column_sums, row_mean


class BatchNormGate(Gate):
    """out = gamma * (x - mean) / sqrt(var + eps) + beta, per feature (or per channel).

    Inputs ``x: (N, D)`` with ``gamma, beta: (D,)``, or ``x: (N, C, H, W)``
    with ``gamma, beta: (C,)`` (spatial batch norm: each channel is
    normalized over N, H and W).  Output: x's shape.

    Training mode: mean and var are the batch's (var the biased one, over
    the M = N or N H W values of each feature), and the running averages are
    updated in place, as in the course's assignment code::

        running_mean = momentum * running_mean + (1 - momentum) * mean
        running_var  = momentum * running_var  + (1 - momentum) * var

    Evaluation mode: mean and var are the running averages (which start at
    0 and 1).

    Local gradients, with x_hat = (x - mean) / sqrt(var + eps), dy = upstream,
    and sums over the M values of a feature::

        dbeta  = sum dy
        dgamma = sum dy * x_hat
        dx     = gamma / sqrt(var + eps) / M * (M dy - dbeta - x_hat * dgamma)   (training)
        dx     = gamma / sqrt(var + eps) * dy                                   (evaluation)

    The training dx is the course's compact form of
    ``gamma / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat))``.
    dgamma and dbeta are returned with gamma's shape: the sum over the batch
    (and positions) is part of the formula, as for a convolution's bias.

    Training on one value per feature (x (1, D), or (1, C, 1, 1)) is refused
    as PyTorch refuses it: the variance of one value is 0, so x_hat is 0,
    the output is beta whatever x is, and the running variance decays to 0.

    Caches x_hat, 1 / sqrt(var + eps) and gamma.  The running averages are the
    gate's state (:meth:`state_dict`); they take x's dtype on the first pass.
    """

    symbol = "bn"

    def __init__(self, momentum: float = 0.9, eps: float = 1e-5, num_features: int | None = None):
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNormGate: momentum must be in [0, 1], got {momentum!r}")
        if not eps > 0.0:
            raise ValueError(f"BatchNormGate: eps must be positive, got {eps!r}")
        self.momentum = float(momentum)
        self.eps = float(eps)
        self.running_mean: np.ndarray | None = None
        self.running_var: np.ndarray | None = None
        if num_features is not None:
            self.running_mean = np.zeros(num_features)
            self.running_var = np.ones(num_features)

    def forward(self, x, gamma, beta):
        axes, shape = self._axes(x, gamma, beta)
        if self.training and x.size == x.shape[1]:  # as PyTorch: one value per feature has variance 0
            raise ValueError(
                f"BatchNormGate: expected more than 1 value per channel when training, got x {x.shape}: "
                f"train on batches of 2 or more samples, or evaluate (g.eval())"
            )
        self._init_running(x.shape[1], x.dtype)
        if self.training:
            mean = x.mean(axis=axes)
            centered = x - mean.reshape(shape)
            var = np.square(centered).mean(axis=axes)  # the biased variance
            # In place: whoever holds these arrays (a parameter file loader) sees the update.
            self.running_mean *= self.momentum
            self.running_mean += (1.0 - self.momentum) * mean
            self.running_var *= self.momentum
            self.running_var += (1.0 - self.momentum) * var
        else:
            centered = x - self.running_mean.reshape(shape)
            var = self.running_var
        self.axes = axes
        self.inv_std = 1.0 / np.sqrt(var.reshape(shape) + self.eps)
        self.x_hat = centered * self.inv_std
        self.gamma = gamma.reshape(shape)
        return self.gamma * self.x_hat + beta.reshape(shape)

    def backward(self, upstream):
        needs_x, needs_gamma, needs_beta = self.needs_input_grad or (True, True, True)
        axes, x_hat, shape = self.axes, self.x_hat, self.gamma.shape
        dbeta = upstream.sum(axis=axes)
        dgamma = (upstream * x_hat).sum(axis=axes)
        dx = None
        if needs_x and self.training:
            M = upstream.size // dbeta.size
            dx = (self.gamma * self.inv_std / M) * (M * upstream - dbeta.reshape(shape) - x_hat * dgamma.reshape(shape))
        elif needs_x:
            dx = self.gamma * self.inv_std * upstream
        return dx, dgamma if needs_gamma else None, dbeta if needs_beta else None

    def state_dict(self) -> dict[str, Any]:
        """The running averages, {"running_mean", "running_var"} (empty before the first pass without num_features)."""
        if self.running_mean is None:
            return {}
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state) != {"running_mean", "running_var"}:
            raise ValueError(f"BatchNormGate keeps running_mean and running_var, got {sorted(state)}")
        mean, var = (np.array(state[key]) for key in ("running_mean", "running_var"))
        if mean.shape != var.shape or mean.ndim != 1:
            raise ValueError(
                f"BatchNormGate: running_mean {mean.shape} and running_var {var.shape} must be the same 1-D shape"
            )
        self.running_mean, self.running_var = mean, var

    def _axes(self, x, gamma, beta) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The axes to normalize over and the shape that broadcasts gamma against x."""
        if np.ndim(x) == 2:
            axes, shape = (0,), (1, -1)
        elif np.ndim(x) == 4:
            axes, shape = (0, 2, 3), (1, -1, 1, 1)
        else:
            raise ValueError(f"BatchNormGate expects x (N, D) or (N, C, H, W), got shape {np.shape(x)}")
        features = x.shape[1]
        if np.shape(gamma) != (features,) or np.shape(beta) != (features,):
            raise ValueError(
                f"BatchNormGate: gamma and beta must be ({features},) for x {x.shape}, "
                f"got gamma {np.shape(gamma)} and beta {np.shape(beta)}"
            )
        return axes, shape

    def _init_running(self, features: int, dtype) -> None:
        if self.running_mean is None:
            self.running_mean, self.running_var = np.zeros(features, dtype=dtype), np.ones(features, dtype=dtype)
        elif self.running_mean.shape != (features,):
            raise ValueError(
                f"BatchNormGate: running averages are for {self.running_mean.shape[0]} features, x has {features}"
            )
        elif self.running_mean.dtype != dtype:
            self.running_mean = self.running_mean.astype(dtype)
            self.running_var = self.running_var.astype(dtype)

    def __repr__(self) -> str:
        return f"BatchNormGate(momentum={self.momentum:g}, eps={self.eps:g})"


class DropoutGate(Gate):
    """Inverted dropout: out = x * mask / (1 - p) in training, out = x in evaluation.

    x: any shape.  Each element is kept with probability 1 - p (mask = 1)
    and zeroed with probability p; the kept ones are scaled by 1 / (1 - p),
    so the expected output equals x and evaluation needs no rescaling.

    Local gradient: mask / (1 - p) in training, 1 in evaluation.

    The mask is drawn from ``rng``, a ``numpy.random.Generator``, so a run
    repeats with the same seed (and a gradient check, which restores
    ``rng``'s state before each forward, sees the same mask every time).
    Caches the scaled mask (None in evaluation).
    """

    symbol = "dropout"

    def __init__(self, p: float, rng: np.random.Generator):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"DropoutGate: p, the probability of dropping, must be in [0, 1), got {p!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"DropoutGate: rng must be a numpy.random.Generator such as np.random.default_rng(0), "
                f"got {type(rng).__name__}"
            )
        self.p = float(p)
        self.rng = rng

    def forward(self, x):
        if not self.training or self.p == 0.0:
            self.mask = None
            return x
        keep = self.rng.random(np.shape(x)) >= self.p
        dtype = x.dtype if isinstance(x, (np.ndarray, np.generic)) else np.float64
        self.mask = keep * np.asarray(1.0 / (1.0 - self.p), dtype=dtype)  # in x's dtype
        return x * self.mask

    def backward(self, upstream):
        return (upstream if self.mask is None else upstream * self.mask,)

    def __repr__(self) -> str:
        return f"DropoutGate(p={self.p:g})"


class LayerNormGate(Gate):
    """out = gamma * (x - mean) / sqrt(var + eps) + beta, over the last axis of x; as torch's layer_norm.

    x: (..., D), any leading shape (a transformer's (B, T, C));  gamma, beta:
    (D,);  out: x's shape.  Each row of D values is normalized by its own
    mean and (biased) variance, in training and evaluation alike, so the
    gate has no state and no mode.

    Local gradients, with x_hat = (x - mean) / sqrt(var + eps), dy = upstream,
    means over the D values of a row and sums over all rows::

        dbeta  = sum dy
        dgamma = sum dy * x_hat
        dx     = (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)) / sqrt(var + eps),   dx_hat = dy * gamma

    dgamma and dbeta are returned with gamma's shape: the sum over rows is
    part of the formula, as for batch norm.  Row means and the sums over rows
    are products with a vector (:func:`gates.linalg.row_mean`,
    :func:`gates.linalg.column_sums`).  Caches x_hat, 1 / sqrt(var + eps)
    and gamma.
    """

    symbol = "ln"

    def __init__(self, eps: float = 1e-5):
        if not eps > 0.0:
            raise ValueError(f"LayerNormGate: eps must be positive, got {eps!r}")
        self.eps = float(eps)

    def forward(self, x, gamma, beta):
        if np.ndim(x) < 1 or x.shape[-1] == 0:
            raise ValueError(f"LayerNormGate expects x (..., D) with D > 0, got shape {np.shape(x)}")
        D = x.shape[-1]
        if np.shape(gamma) != (D,) or np.shape(beta) != (D,):
            raise ValueError(
                f"LayerNormGate: gamma and beta must be ({D},) for x {x.shape}, "
                f"got gamma {np.shape(gamma)} and beta {np.shape(beta)}"
            )
        rows = x.reshape(-1, D)
        centered = rows - row_mean(rows)[:, np.newaxis]
        inv_std = 1.0 / np.sqrt(row_mean(np.square(centered)) + self.eps)
        self.inv_std = inv_std[:, np.newaxis]
        centered *= self.inv_std  # now x_hat, in the array just made
        self.x_hat, self.gamma = centered, gamma
        out = centered * gamma
        out += beta
        return out.reshape(x.shape)

    def backward(self, upstream):
        needs_x, needs_gamma, needs_beta = self.needs_input_grad or (True, True, True)
        x_hat = self.x_hat
        dy = upstream.reshape(x_hat.shape)
        dgamma = column_sums(dy * x_hat) if needs_gamma else None
        dbeta = column_sums(dy) if needs_beta else None
        dx = None
        if needs_x:
            dx_hat = dy * self.gamma
            correction = x_hat * row_mean(dx_hat * x_hat)[:, np.newaxis]
            correction += row_mean(dx_hat)[:, np.newaxis]
            dx_hat -= correction
            dx_hat *= self.inv_std
            dx = dx_hat.reshape(upstream.shape)
        return dx, dgamma, dbeta

    def __repr__(self) -> str:
        return f"LayerNormGate(eps={self.eps:g})"
