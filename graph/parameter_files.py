"""Saving and loading a graph's parameters as a .npz file, safely.

:func:`save_params` writes atomically: the arrays go to a temporary file in
the same folder, which is flushed to disk and then renamed over ``path`` in
one step, so a crash mid-write leaves either the old file or the new one,
never half of one.

:func:`load_params` is all or nothing: it reads the whole file (with pickle
disabled, so a file cannot run code) and checks every name and shape against
the graph before it changes a single parameter.  On success the values are
copied into the existing ``g.params`` arrays, so anything holding those
arrays (the graph's nodes, an optimizer) keeps seeing the current values.
"""

from __future__ import annotations

import os
import secrets
import struct
import zipfile
import zlib
from typing import TYPE_CHECKING

import numpy as np

from gates.base import Gate
from graph import gate_state
from graph.errors import ParameterFileError
from graph.values import to_array

if TYPE_CHECKING:
    from graph.computational_graph import ComputationalGraph

#: What reading a damaged or foreign file can raise, from zipfile, zlib, struct and numpy's
#: .npy reader (a damaged header can claim any zip version, dtype or shape).
READ_ERRORS = (
    OSError, ValueError, EOFError, KeyError, NotImplementedError, OverflowError, MemoryError,
    struct.error, zipfile.BadZipFile, zlib.error,
)


def save_params(g: ComputationalGraph, path: str | os.PathLike) -> None:
    """Write every parameter of ``g`` to the .npz file ``path``, atomically.

    The file is written to exactly ``path`` (no ".npz" is added) and holds one
    array per parameter, under the parameter's name, in the graph's dtype,
    and the state arrays of gates that keep some (batch norm's running
    averages) under ``state:{node name}.{key}``; ``np.load`` reads it.  An existing file at ``path`` is replaced only once the new one
    is complete on disk.

    Raises
    ------
    ParameterFileError
        If ``path`` is empty or names a folder.
    OSError
        If the folder does not exist or cannot be written; no temporary
        file is left behind.
    """
    path = check_file_target(path, "parameters", ParameterFileError)
    arrays = {name: to_array(value, _dtype(g, value), "parameter", name) for name, value in g.params.items()}
    arrays.update(_gate_states(g))
    write_npz_atomically(path, arrays)


def check_file_target(path: str | os.PathLike, what: str, error: type[Exception]) -> str:
    """``path`` as a string, or ``error`` naming it if it is empty or names a folder (a file cannot go there)."""
    text = os.fspath(path)
    if not isinstance(text, str) or not text:
        raise error(f"cannot save {what} to {text!r}: give a file name, e.g. 'net.npz'")
    if os.path.isdir(text) or text.endswith((os.sep, "/")):
        raise error(f"cannot save {what} to {text!r}: that is a folder; give a file name in it, e.g. 'net.npz'")
    return text


def write_npz_atomically(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed .npz at ``path`` (no pickle): temporary file, fsync, rename.

    A crash at any moment leaves either the old file or the complete new
    one, never half of one, and no temporary file once this returns or raises.
    """
    folder = os.path.dirname(os.path.abspath(path))
    temporary, descriptor = _create_temporary(folder, os.path.basename(path))
    try:
        with os.fdopen(descriptor, "wb") as file:
            with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
                for name, array in arrays.items():
                    with archive.open(f"{name}.npy", "w", force_zip64=True) as entry:
                        np.lib.format.write_array(entry, array, allow_pickle=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    _sync_folder(folder)


def load_params(g: ComputationalGraph, path: str | os.PathLike) -> None:
    """Load parameters written by :func:`save_params` into ``g``, all or nothing.

    Every parameter of the graph must be in the file with the same shape,
    and the file must hold nothing else.  Values are converted to each
    parameter's dtype (the graph's) and copied into the existing
    ``g.params`` arrays in place.  Gate state (batch norm's running
    averages) is loaded too, also into a gate that has none yet (a bare
    ``BatchNormGate()`` before its first forward).

    Raises
    ------
    ParameterFileError
        If the file cannot be read (missing, truncated, not a .npz file,
        pickled objects), its names or shapes differ from the graph's, a
        value is too large for the graph's dtype (1e300 in a float32 graph,
        refused as the same feed is), or a gate refuses its state.  The
        message lists every difference; no parameter and no gate state has
        been changed.
    """
    path = os.fspath(path)
    loaded = _read_arrays(path)
    expected = {name: np.shape(value) for name, value in g.params.items()}
    expected.update({name: np.shape(value) for name, value in _gate_states(g).items()})
    # A gate that keeps state but has none yet takes whatever the file holds for it (its own check decides).
    no_state_yet = _gates_without_state(g)
    problems = []
    missing = [name for name in expected if name not in loaded]
    extra = [name for name in loaded if name not in expected and _state_owner(name) not in no_state_yet]
    if missing:
        why = (" (a gate's state is saved once it has one: after its first forward, "
               "or from the start with BatchNormGate(num_features=...))")
        problems.append(f"missing {_names(missing)}" + (why if any(name.startswith(STATE) for name in missing) else ""))
    if extra:
        problems.append(f"has {_names(extra)}, which this graph does not have")
    for name, array in loaded.items():
        if name in expected and array.shape != expected[name]:
            problems.append(f"{name!r} has shape {array.shape} in the file but {expected[name]} in the graph")
    if problems:
        raise ParameterFileError(
            f"parameter file {path!r} does not fit this graph: {'; '.join(problems)}. "
            "No parameter was changed."
        )
    graph_dtype = np.dtype(getattr(g, "dtype", np.float64))
    converted = {
        name: _converted(path, name, array, _dtype(g, g.params[name]) if name in g.params else graph_dtype)
        for name, array in loaded.items()
    }
    # Every check has passed: only now change anything.  Gate states first, as a
    # gate's load_state_dict may still refuse; then the parameters, which cannot fail.
    _load_gate_states(g, path, converted)
    for name, array in converted.items():
        if name not in g.params:  # a gate's state, loaded above
            continue
        current = g.params[name]
        if type(current) is np.ndarray and current.dtype == array.dtype and current.flags.writeable:
            np.copyto(current, array)
        else:  # not an array of the graph's dtype that it owns (the user replaced it): use the loaded one
            g.params[name] = array


def _load_gate_states(g: ComputationalGraph, path: str, converted: dict[str, np.ndarray]) -> None:
    """Give each gate its state from the file; if one refuses, put every gate back as it was and raise."""
    states: dict[str, dict[str, np.ndarray]] = {}
    for name, array in converted.items():
        if name not in g.params:  # the checks passed: a gate's state, state:{node name}.{key}
            node_name, key = name[len(STATE):].rsplit(".", 1)
            states.setdefault(node_name, {})[key] = array
    gates = {node_name: g.node(node_name).gate for node_name in states}
    taken = {node_name: gate_state.snapshot(gate) for node_name, gate in gates.items()}
    for node_name, state in states.items():
        gate = gates[node_name]
        try:
            gate.load_state_dict(state)
        except Exception as error:
            for restored, snapshot in taken.items():
                gate_state.restore(gates[restored], snapshot)
            raise ParameterFileError(
                f"parameter file {path!r}: gate {node_name!r} ({type(gate).__name__}) refuses the state in the "
                f"file: {type(error).__name__}: {error}. No parameter was changed."
            ) from error


def _converted(path: str, name: str, array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """An array of the file in ``dtype``, refused if a finite value would become inf (1e300 in float32)."""
    try:
        with np.errstate(over="raise"):
            return array.astype(dtype)
    except FloatingPointError:
        raise ParameterFileError(
            f"parameter file {path!r}: {name!r} has values too large for {dtype} "
            f"(at most about {np.finfo(dtype).max:.2g}), as a feed of them would be. No parameter was changed."
        ) from None


def _dtype(g, value) -> np.dtype:
    """The graph's dtype, or for a bare object with .params, the value's own float dtype."""
    dtype = getattr(g, "dtype", None)
    if dtype is None:
        dtype = np.asarray(value).dtype if np.asarray(value).dtype in (np.float32, np.float64) else np.float64
    return np.dtype(dtype)


#: Names of gate state arrays in a parameter file start with this.
STATE = "state:"


def _gate_states(g: ComputationalGraph) -> dict[str, np.ndarray]:
    """Every state array of the graph's gates, as ``state:{node name}.{key}``."""
    states = {}
    for node in getattr(g, "nodes", ()):  # anything with .params will do, e.g. a namespace
        state_dict = getattr(node.gate, "state_dict", None)
        if callable(state_dict):
            for key, value in state_dict().items():
                states[f"{STATE}{node.name}.{key}"] = to_array(value, g.dtype, "gate state", f"{node.name}.{key}")
    return states


def _gates_without_state(g: ComputationalGraph) -> set[str]:
    """Names of the nodes whose gate can keep state (its class defines load_state_dict) but has none yet."""
    return {
        node.name for node in getattr(g, "nodes", ())
        if getattr(type(node.gate), "load_state_dict", Gate.load_state_dict) is not Gate.load_state_dict
        and callable(getattr(node.gate, "state_dict", None)) and not node.gate.state_dict()
    }


def _state_owner(name: str) -> str | None:
    """The node name in a gate state entry's name (``state:{node name}.{key}``), None for a parameter."""
    return name[len(STATE):].rsplit(".", 1)[0] if name.startswith(STATE) and "." in name else None


def _read_arrays(path: str) -> dict[str, np.ndarray]:
    """Every array of the .npz file, read completely; each holds numbers (bool, integers or floats)."""
    if not os.path.isfile(path):
        raise ParameterFileError(f"cannot load parameters: there is no file {path!r}")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ParameterFileError(
                f"parameter file {path!r} holds a single array, not a .npz archive of named arrays; "
                "write one with g.save_params(path)"
            )
        with archive:
            loaded = {name: archive[name] for name in archive.files}
    except ParameterFileError:
        raise
    except READ_ERRORS as error:
        raise ParameterFileError(
            f"cannot read parameter file {path!r} (truncated, damaged or not written by save_params): "
            f"{type(error).__name__}: {error}"
        ) from error
    for name, array in loaded.items():
        if array.dtype.kind not in "biuf":
            raise ParameterFileError(
                f"parameter file {path!r}: {name!r} holds {array.dtype} values, not numbers"
            )
    return loaded


def _create_temporary(folder: str, base: str) -> tuple[str, int]:
    """A new, empty, hidden file next to the target, opened for writing.

    Created with the usual permissions (0o666 less the umask), as any new
    file, rather than the owner-only ones of the tempfile module.
    """
    while True:
        temporary = os.path.join(folder, f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        except OSError as error:  # name the file asked for, not the temporary one
            raise OSError(error.errno, error.strerror, os.path.join(folder, base)) from None
        return temporary, descriptor


def _sync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _names(names: list[str]) -> str:
    return ("parameter " if len(names) == 1 else "parameters ") + ", ".join(map(repr, names))
