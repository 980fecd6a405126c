"""What a gradient check found, and how it grades it.

:func:`relative_error` is the course's relative error, :func:`noise_floor`
its floor for one element (from that element's own rounding noise), and
:func:`band` the course's words for it.  :class:`GradientCheckResult` is
what :func:`graph.checking.gradcheck` and :func:`graph.checking.check_gate`
return, one :class:`InputCheck` per input; :class:`GatesCheckResult` is what
:func:`graph.checking.check_gates` returns, one GradientCheckResult per gate.
Each is truthy when the gradients agree and prints the course's grading::

    <= 1e-7   good
    <= 1e-4   fine where a kink (max, min, ReLU) explains it, too high otherwise
    <= 1e-2   uncomfortable
    >  1e-2   wrong
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from graph.finite_differences import EPSILON


#: Default tolerance on the relative error: ten times the worst rounding
#: error seen on correct gates with eps = 1e-6; see :func:`graph.checking.gradcheck`.
DEFAULT_TOL = 1e-5
#: The floor of an element's relative error is NOISE_FLOOR times the rounding
#: noise of its finite difference: with DEFAULT_TOL, 100 times the noise
#: passes (the worst seen on correct gates is 8 times).  See :func:`noise_floor`.
NOISE_FLOOR = 1e7
#: relative_error's default floor, for two numbers given without their noise.
FLOOR = 1e-8
#: A difference whose floor exceeds this many times its gradient could hide a 0.1% error: reported.
_UNRESOLVED = 100.0

_BANDS = (
    (1e-7, "good"),
    (1e-4, "acceptable with kinks, high without"),
    (1e-2, "uncomfortable"),
    (np.inf, "wrong"),
)


def relative_error(analytic: Any, numeric: Any, floor: Any = FLOOR) -> np.ndarray:
    """``|a - n| / max(|a|, |n|, floor)`` elementwise: the course's relative error.

    The floor (a number, or one per element) keeps two near-zero numbers (a
    gradient that is 0, and its finite difference that is 1e-11 of rounding
    noise) from counting as 100 % apart; below it the error is absolute.
    A NaN counts as an infinite error.
    """
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.abs(analytic - numeric) / scale
    error = np.where(np.abs(analytic - numeric) == 0, 0.0, error)
    return np.where(np.isnan(error), np.inf, error)


def noise_floor(noise: Any, analytic: Any, numeric: Any) -> np.ndarray:
    """The floor of each element's relative error: ``NOISE_FLOOR * max(noise, EPSILON * largest)``.

    Parameters
    ----------
    noise : float64 array
        The rounding noise of each element's finite difference
        (:func:`graph.finite_differences.centered_differences`).
    analytic, numeric : float64 arrays of the same shape
        One input's gradients: ``largest`` is their largest finite magnitude,
        so an element at the rounding level of backward's own sums passes.

    Returns
    -------
    float64 array of noise's shape.  Nothing but the element's own difference
    and its own input sets it: a small gradient beside large ones is graded
    relative to itself.
    """
    magnitudes = np.maximum(np.abs(np.asarray(analytic, dtype=np.float64)), np.abs(np.asarray(numeric, dtype=np.float64)))
    finite = magnitudes[np.isfinite(magnitudes)]
    largest = float(finite.max()) if finite.size else 0.0
    return NOISE_FLOOR * np.maximum(np.nan_to_num(np.asarray(noise, dtype=np.float64), nan=np.inf), EPSILON * largest)


def band(error: float) -> str:
    """How the course grades a relative error: good, ..., wrong."""
    for limit, words in _BANDS:
        if error <= limit:
            return words
    return "wrong"  # NaN


@dataclass
class DirectionalCheck:
    """One random directional derivative of an input: every element moved at once.

    Attributes
    ----------
    analytic : float
        ``sum(gradient * step)``: the change the gradient predicts.
    numeric : float
        The change of ``sum(upstream * output)`` between x - step/2 and x + step/2.
    rel_error : float
        :func:`relative_error` of the two, with the difference's noise floor.
    crossed_kink : bool
        Whether some max/min/ReLU winner changed along the way (then it says nothing).
    """

    analytic: float
    numeric: float
    rel_error: float
    crossed_kink: bool = False


@dataclass
class InputCheck:
    """The comparison for one input (or parameter).

    Attributes
    ----------
    name : str
    analytic, numeric : float64 arrays of the input's shape
        The backward pass's gradient (zeros where it returned None) and the
        centered differences.
    rel_error : float64 array of the input's shape
        :func:`relative_error` per element, with the floor of :func:`noise_floor`.
    kinks : bool array of the input's shape
        Where the finite difference crossed a kink: some max/min/ReLU winner
        was not the same at x - eps as at x + eps.
    kink_gates : list of str
        Names of the gates whose winner changed.
    checked : bool array of the input's shape, or None
        The elements compared when only a random sample was
        (:func:`graph.checking.check_gates` on a large input): elsewhere ``numeric`` is NaN
        and ``rel_error`` 0.  None when every element was compared.
    floor : float64 array of the input's shape, or None
        The floor of each element's relative error (:func:`noise_floor`).
    directional : list of DirectionalCheck
        Random directional derivatives, through every element at once (when
        only a sample was compared elementwise).
    returned_none : bool
        Whether backward returned None for this input (compared as zeros).
    """

    name: str
    analytic: np.ndarray
    numeric: np.ndarray
    rel_error: np.ndarray
    kinks: np.ndarray
    kink_gates: list[str] = field(default_factory=list)
    checked: np.ndarray | None = None
    floor: np.ndarray | None = None
    directional: list[DirectionalCheck] = field(default_factory=list)
    returned_none: bool = False

    @property
    def checked_count(self) -> int:
        """How many elements were compared one by one."""
        return self.rel_error.size if self.checked is None else int(self.checked.sum())

    @property
    def every_element_seen(self) -> bool:
        """Whether every element was compared: one by one, or through a directional derivative that crossed no kink."""
        return self.checked is None or any(not d.crossed_kink for d in self.directional)

    @property
    def max_rel_error(self) -> float:
        """The largest relative error over the elements and the directional derivatives (0 for an empty input)."""
        elements = float(self.rel_error.max()) if self.rel_error.size else 0.0
        return max([elements, *(d.rel_error for d in self.directional)])

    @property
    def worst_index(self) -> tuple[int, ...]:
        """Index of the element with the largest relative error (() for a scalar)."""
        if self.rel_error.size == 0:
            return ()
        return tuple(int(i) for i in np.unravel_index(np.argmax(self.rel_error), self.rel_error.shape))

    @property
    def max_rel_error_off_kinks(self) -> float:
        """The largest relative error among elements (and directions) whose difference crossed no kink."""
        clean = self.rel_error[~self.kinks]
        elements = float(clean.max()) if clean.size else 0.0
        return max([elements, *(d.rel_error for d in self.directional if not d.crossed_kink)])

    @property
    def unresolved(self) -> int:
        """How many elements compared are so small against their rounding noise that a 0.1 % error there would pass."""
        if self.floor is None:
            return 0
        size = np.maximum(np.abs(self.analytic), np.abs(self.numeric))
        seen = np.ones(size.shape, dtype=bool) if self.checked is None else self.checked
        with np.errstate(invalid="ignore"):
            return int(np.sum(seen & (size > 0) & (self.floor > _UNRESOLVED * size)))

    @property
    def mostly_unresolved(self) -> bool:
        """Whether most elements compared are unresolved: the whole gradient is tiny against the output (worth a note)."""
        size = np.maximum(np.abs(self.analytic), np.abs(self.numeric))
        seen = np.ones(size.shape, dtype=bool) if self.checked is None else self.checked
        return self.unresolved > 0.5 * int(np.sum(seen & (size > 0)))


class GradientCheckResult:
    """What :func:`graph.checking.gradcheck` or :func:`graph.checking.check_gate` found.  Truthy when every gradient agrees.

    Attributes
    ----------
    checks : dict of str to InputCheck
        One comparison per input and parameter, in graph order.
    tol, eps : float
        The tolerance on the relative error and the relative finite-difference step.
    subject : str
        What was checked, for the printout.
    skipped : list of str
        Inputs not checked: they need no gradient, or cannot be perturbed
        and backward returned None for them (labels, indices).
    skip_reasons : dict of str to str
        Why, per skipped input.
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

    @property
    def every_element_seen(self) -> bool:
        """True when every element of every checked input was compared (see :attr:`InputCheck.every_element_seen`)."""
        return all(check.every_element_seen for check in self.checks.values())

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
        return any(
            bool(check.kinks.any()) or any(d.crossed_kink for d in check.directional) for check in self.checks.values()
        )

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
        """One line per input (more for a bad one), then the kink warnings and notes."""
        lines = []
        width = max((len(name) for name in [*self.checks, *self.skipped]), default=0)
        shapes = {
            name: f"shape {check.rel_error.shape}" if check.rel_error.ndim else "scalar"
            for name, check in self.checks.items()
        }
        shape_width = max([14, *(len(shape) + 1 for shape in shapes.values())])
        for name, check in self.checks.items():
            error = check.max_rel_error
            elements = float(check.rel_error.max()) if check.rel_error.size else 0.0
            where = f" at {list(check.worst_index)}" if check.rel_error.ndim else ""
            mark = "ok " if error <= self.tol else "BAD"
            lines.append(
                f"  {mark} {name:<{width}}  {shapes[name]:<{shape_width}} {error:.2e}{where}  {band(error)}"
                f"{_sample_note(check)}"
            )
            if elements > self.tol:
                index = check.worst_index
                lines.append(
                    f"        analytic {check.analytic[index] + 0.0:.6g} vs numeric {check.numeric[index] + 0.0:.6g}"
                )
            for direction in check.directional:
                if direction.rel_error > self.tol and not direction.crossed_kink:
                    lines.append(
                        f"        along a random direction (every element at once): the gradient predicts a change "
                        f"of {direction.analytic:.6g}, the forward gives {direction.numeric:.6g}"
                    )
                    break
            if check.returned_none:
                lines.append("        backward returned None (no gradient) for it: compared as zeros")
        for name in self.skipped:
            why = self.skip_reasons.get(name, "backward returned None (no gradient)")
            lines.append(f"  --  {name:<{width}}  not checked: {why}")
        for check in self.checks.values():
            lines.extend(_kink_warnings(check))
            count = check.unresolved
            if check.mostly_unresolved:
                lines.append(
                    f"  note: {count} element{'s' if count > 1 else ''} of {check.name!r} "
                    f"{'are' if count > 1 else 'is'} too small against the rounding noise of the finite "
                    f"difference to grade to 0.1 % (a larger eps, or a loss of smaller size, resolves them)"
                )
        return lines


def _sample_note(check: InputCheck) -> str:
    """"(checked on a random sample of 64 of 10000 elements, all of them along 2 random directions)", or ""."""
    if check.checked is None:
        return ""
    note = f"  (checked on a random sample of {check.checked_count} of {check.rel_error.size} elements"
    count = len(check.directional)
    if count:
        note += f", all of them along {count} random direction{'s' if count != 1 else ''}"
    return note + ")"


def _kink_warnings(check: InputCheck) -> list[str]:
    """The warnings of one input: elements, and random directions, whose difference crossed a kink."""
    lines = []
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
    crossed = sum(direction.crossed_kink for direction in check.directional)
    if crossed:
        unseen = "" if check.every_element_seen else ": the elements outside the sample were not all seen"
        lines.append(
            f"  warning: {crossed} of {len(check.directional)} random directions for {check.name!r} "
            f"crossed a kink{unseen}"
        )
    return lines


class GatesCheckResult:
    """What :func:`graph.checking.check_gates` found, gate by gate.  Truthy when no gate is wrong.

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
        """Names of the gates that pass only away from kinks: large errors, or directions not followed, only at kinks."""
        wrong = set(self.wrong)
        return [
            name
            for name in self._order
            if name in self.gates and name not in wrong and not (self.gates[name].ok and self.gates[name].every_element_seen)
        ]

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
        gates_word = f"gate{'s' if count != 1 else ''}"
        if wrong:
            names = ", ".join(repr(name) for name in wrong)
            header = f"check_gates: {len(wrong)} of {count} {gates_word} wrong: {names}"
        elif kinks:
            header = f"check_gates: none of {count} {gates_word} wrong"
        else:
            header = f"check_gates: all {count} {gates_word} passed"
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
