"""Training checkpoints that survive a kill: ``save_checkpoint`` and ``load_checkpoint``.

A checkpoint is one uncompressed .npz file holding everything a training
loop needs to continue exactly where it was: the parameters, the optimizer's
state (``Optimizer.state_dict()``: Adam's moments and step count, SGD's
velocity), the state of every random generator it draws from, how far it got
(``progress``: epoch, iteration, ...), the histories it keeps (losses,
accuracies) and the settings that must not change between runs.  Arrays are
stored as arrays; everything else as one JSON text (``meta``).  Nothing is
pickled: ``np.load(path, allow_pickle=False)`` reads every entry.

Writing is atomic (a temporary file in the same folder, flushed and fsynced,
then renamed over ``path``): a run killed at any moment, even mid-write,
leaves the previous checkpoint or the new one, whole.  Loading is all or
nothing: the file is read completely and every name, shape, dtype, setting
and state is checked before a single parameter, optimizer array or
generator changes; anything that does not fit raises
:class:`~graph.errors.CheckpointError` listing the differences.

How to add checkpoints to a training script
-------------------------------------------
A loop of minibatches and epochs need not: :class:`graph.Solver` takes
``checkpoint=`` and ``resume=`` and does all of what follows.  For a loop of
your own (the char-RNN's):

1. Give it ``--checkpoint PATH`` and ``--resume PATH`` (``graph/cli.py``
   has ``add_checkpoint_options(parser)`` and checks both before any work).
2. Build the model, data and optimizer exactly as a fresh run does, from the
   same seed.  Then, with ``--resume``::

       done = load_checkpoint(args.resume, script="train_cnn", params=g.params,
                              optimizer=optimizer, rngs={"shuffle": rng},
                              settings=settings)
       start = done.progress["epoch"]
       history = done.histories

   ``rngs`` maps a name to each ``np.random.Generator`` the loop draws from
   (restored in place).  A script on the legacy global RNG
   (``np.random.seed``) passes the module itself: ``{"global": np.random}``.
   ``settings`` are the options that change the numbers (seed, learning
   rate, batch size, ...): a resume with other settings is refused.
3. At the end of each epoch (or every K iterations), once the parameters,
   optimizer and generators are all at that point::

       if args.checkpoint:
           save_checkpoint(args.checkpoint, params=g.params, optimizer=optimizer,
                           rngs={"shuffle": rng}, progress={"epoch": epoch + 1},
                           histories=history, script="train_cnn", settings=settings)

   Save where the loop can restart from: if a generator is drawn from at
   the start of an epoch (a shuffle), checkpoint between epochs, not
   mid-epoch, or the resumed epoch would draw a different order.  The
   loop then runs ``for epoch in range(start, epochs)``.  Resumed this way,
   a run ends with bit-identical parameters to one never interrupted
   (``tests/test_checkpoint.py`` kills scripts with SIGKILL to check).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from graph.errors import CheckpointError, OptimizerError
from graph.parameter_files import READ_ERRORS, check_file_target, write_npz_atomically

#: Written into every checkpoint; a file without it is not one.
FORMAT = "gategraph-checkpoint-1"


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` gives back besides the restored parameters, optimizer and generators."""

    script: str
    progress: dict[str, int]
    histories: dict[str, list[float]]
    settings: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    path: str | os.PathLike,
    *,
    params: Mapping[str, np.ndarray],
    optimizer: Any = None,
    rngs: Mapping[str, Any] | None = None,
    progress: Mapping[str, int],
    histories: Mapping[str, list[float]] | None = None,
    script: str,
    settings: Mapping[str, Any] | None = None,
) -> None:
    """Write a checkpoint to ``path`` atomically (the old one stays whole until the new one is).

    Parameters
    ----------
    path : str or PathLike
        The .npz file to write (no extension is added).
    params : dict of name -> array
        Usually ``g.params``; stored with their dtypes.
    optimizer : Optimizer, optional
        Its ``state_dict()`` is stored.
    rngs : dict of name -> numpy.random.Generator, RandomState or the ``np.random`` module
        Each generator's state is stored as JSON (the module: the legacy global RNG).
    progress : dict of name -> int
        How far training got, e.g. ``{"epoch": 3}`` or ``{"iteration": 500}``.
    histories : dict of name -> list of float
        Curves kept so far (stored exactly; NaN and inf included).
    script : str
        Which script or model wrote it; :func:`load_checkpoint` must be given the same.
    settings : dict, optional
        JSON-able options that must be the same to resume (seed, lr, ...).

    Raises
    ------
    CheckpointError
        If ``path`` is empty or a folder, or an argument cannot be stored.
    OSError
        If the folder is missing or not writable (no temporary file is left).
    """
    path = check_file_target(path, "a checkpoint", CheckpointError)
    arrays: dict[str, np.ndarray] = {}
    for name, value in params.items():
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise CheckpointError(f"cannot checkpoint parameter {name!r}: it holds {array.dtype} values")
        arrays[f"param.{name}"] = array
    if optimizer is not None:
        for key, value in optimizer.state_dict().items():
            arrays[f"optimizer.{key}"] = np.asarray(value)
    meta = {
        "format": FORMAT,
        "script": str(script),
        "settings": dict(settings or {}),
        "progress": _checked_progress(progress),
        "histories": {str(name): [float(value) for value in values] for name, values in (histories or {}).items()},
        "rngs": {str(name): _rng_state(name, rng) for name, rng in (rngs or {}).items()},
        "params": list(params),
        "optimizer": type(optimizer).__name__ if optimizer is not None else None,
        "entries": sorted(arrays),
    }
    try:
        text = json.dumps(meta, default=_json_value)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"cannot checkpoint the settings or histories: {error}") from None
    arrays["meta"] = np.array(text)
    write_npz_atomically(path, arrays)


def load_checkpoint(
    path: str | os.PathLike,
    *,
    script: str,
    params: Mapping[str, np.ndarray] | None = None,
    optimizer: Any = None,
    rngs: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Checkpoint:
    """Read the checkpoint at ``path``, check it fits, then restore it in place; all or nothing.

    Restores the values of ``params`` (copied into the existing arrays), the
    optimizer's state and each generator of ``rngs``, and returns the rest
    (:class:`Checkpoint`: progress, histories, settings).

    Raises
    ------
    CheckpointError
        If the file is missing, truncated, damaged or not a checkpoint, was
        written by another script, or its parameters (names, shapes,
        dtypes), optimizer (class, hyperparameters, state), generators or
        settings differ from the ones given.  The message lists every
        difference; nothing has been changed.
    """
    path = os.fspath(path)
    meta, arrays = _read(path)
    where = f"checkpoint {path!r}"
    if meta["script"] != script:
        raise CheckpointError(
            f"{where} was written by {meta['script']!r}, not {script!r}; nothing was changed"
        )
    problems = []

    saved_settings = meta["settings"]
    wanted_settings = json.loads(json.dumps(dict(settings or {}), default=_json_value))
    for name in sorted(set(saved_settings) | set(wanted_settings)):
        if saved_settings.get(name, "(not set)") != wanted_settings.get(name, "(not set)"):
            problems.append(
                f"setting {name} was {saved_settings.get(name, '(not set)')!r}, "
                f"now {wanted_settings.get(name, '(not set)')!r}"
            )

    params = params if params is not None else {}
    saved_params = {name: arrays[f"param.{name}"] for name in meta["params"]}
    missing = [name for name in params if name not in saved_params]
    extra = [name for name in saved_params if name not in params]
    if missing:
        problems.append(f"it has no parameter {', '.join(map(repr, missing))}")
    if extra:
        problems.append(f"it has parameter {', '.join(map(repr, extra))}, which this model does not have")
    for name, array in saved_params.items():
        if name in params:
            here = np.asarray(params[name])
            if array.shape != here.shape or array.dtype != here.dtype:
                problems.append(
                    f"parameter {name!r} is {array.dtype} {array.shape} in the checkpoint "
                    f"but {here.dtype} {here.shape} here"
                )

    here_optimizer = type(optimizer).__name__ if optimizer is not None else None
    if meta["optimizer"] != here_optimizer:
        problems.append(f"it holds the state of optimizer {meta['optimizer']}, this run has {here_optimizer}")

    rngs = rngs if rngs is not None else {}
    restored_rngs = {}
    for name in sorted(set(meta["rngs"]) | set(rngs)):
        if name not in rngs or name not in meta["rngs"]:
            problems.append(f"random generator {name!r} is {'missing from' if name in rngs else 'not used by'} "
                            f"{'the checkpoint' if name in rngs else 'this run'}")
            continue
        try:
            restored_rngs[name] = _checked_rng_state(name, rngs[name], meta["rngs"][name])
        except CheckpointError as error:
            problems.append(str(error))

    if problems:
        raise CheckpointError(f"{where} does not fit this run: {'; '.join(problems)}. Nothing was changed.")
    if optimizer is not None:
        state = {key[len("optimizer."):]: value for key, value in arrays.items() if key.startswith("optimizer.")}
        try:
            optimizer.load_state_dict(state)  # checks everything itself before changing anything
        except OptimizerError as error:
            raise CheckpointError(f"{where} does not fit this run's optimizer: {error}") from error
    # Every check has passed: only now change the parameters and generators.
    for name, array in saved_params.items():
        current = params[name]
        if type(current) is np.ndarray and current.flags.writeable:
            np.copyto(current, array)
        else:
            params[name] = array.copy()
    for name, (rng, state) in restored_rngs.items():
        _set_rng_state(rng, state)
    return Checkpoint(
        script=meta["script"], progress=dict(meta["progress"]),
        histories={name: list(values) for name, values in meta["histories"].items()},
        settings=dict(saved_settings),
    )


# ---------------------------------------------------------------- reading


def _read(path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The meta dict and every array of a checkpoint, read completely (zip CRCs checked), or CheckpointError."""
    if not os.path.isfile(path):
        raise CheckpointError(f"cannot resume: there is no checkpoint file {path!r}")
    damaged = f"cannot read checkpoint {path!r} (truncated, damaged or not a checkpoint)"
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{damaged}: it holds a single array")
        with archive:
            arrays = {name: archive[name] for name in archive.files}
    except CheckpointError:
        raise
    except READ_ERRORS as error:
        raise CheckpointError(f"{damaged}: {type(error).__name__}: {error}") from error
    if "meta" not in arrays:
        raise CheckpointError(
            f"{damaged}: it has no 'meta' entry (a file written by --save or save_params holds parameters "
            "only; resume from a --checkpoint file)"
        )
    try:
        meta = json.loads(str(arrays.pop("meta")[()]))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format') if isinstance(meta, dict) else None!r}, not {FORMAT!r}")
        for key, kind in (("script", str), ("settings", dict), ("progress", dict), ("histories", dict),
                          ("rngs", dict), ("params", list), ("entries", list)):
            if not isinstance(meta.get(key), kind):
                raise ValueError(f"'{key}' is not a {kind.__name__}")
        if sorted(arrays) != sorted(meta["entries"]):
            raise ValueError("its entries are not the ones it lists")
        if any(not isinstance(name, str) or f"param.{name}" not in arrays for name in meta["params"]):
            raise ValueError("it lists parameters it does not hold")
    except (ValueError, TypeError, KeyError, IndexError) as error:
        raise CheckpointError(f"{damaged}: {error}") from error
    return meta, arrays


# ---------------------------------------------------------------- what is stored


def _checked_progress(progress: Mapping[str, int]) -> dict[str, int]:
    checked = {}
    for name, value in progress.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise CheckpointError(f"progress {name!r} must be a whole number, got {value!r}")
        checked[str(name)] = int(value)
    return checked


def _json_value(value: Any) -> Any:
    """numpy values inside settings or generator states, as JSON (arrays keep their dtype)."""
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} {value!r} cannot be stored")


def _from_json(value: Any) -> Any:
    """The inverse of :func:`_json_value`, through nested dicts and lists."""
    if isinstance(value, dict):
        if set(value) == {"__array__", "dtype"}:
            return np.array(value["__array__"], dtype=np.dtype(value["dtype"]))
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    return value


def _is_legacy(rng: Any) -> bool:
    return rng is np.random or isinstance(rng, np.random.RandomState)


def _rng_state(name: str, rng: Any) -> dict[str, Any]:
    if isinstance(rng, np.random.Generator):
        return {"kind": "Generator", "state": rng.bit_generator.state}
    if _is_legacy(rng):
        return {"kind": "RandomState", "state": rng.get_state(legacy=False)}
    raise CheckpointError(
        f"random generator {name!r} is a {type(rng).__name__}: give a numpy.random.Generator, "
        "a RandomState, or the np.random module for the legacy global RNG"
    )


def _checked_rng_state(name: str, rng: Any, saved: Any) -> tuple[Any, Any]:
    """(rng, state) once the saved state is known to restore into a generator like ``rng``."""
    kind = "Generator" if isinstance(rng, np.random.Generator) else "RandomState" if _is_legacy(rng) else None
    if kind is None:
        raise CheckpointError(f"random generator {name!r} is a {type(rng).__name__}, not a numpy generator")
    if not isinstance(saved, dict) or saved.get("kind") != kind:
        got = saved.get("kind") if isinstance(saved, dict) else None
        raise CheckpointError(f"random generator {name!r} was a {got} in the checkpoint, here a {kind}")
    state = _from_json(saved.get("state"))
    try:  # try it on a fresh generator of the same kind, so the real one changes only once all is checked
        if kind == "Generator":
            type(rng.bit_generator)().state = state
        else:
            np.random.RandomState().set_state(state)
    except (TypeError, ValueError, KeyError) as error:
        raise CheckpointError(f"random generator {name!r}: the saved state does not fit it ({error})") from None
    return rng, state


def _set_rng_state(rng: Any, state: Any) -> None:
    if isinstance(rng, np.random.Generator):
        rng.bit_generator.state = state
    else:
        rng.set_state(state)
