"""Option checks shared by the scripts (and graph.Solver users): bad values fail at once, as argparse errors (exit code 2).

Every script checks its options before any work: a typo in ``--save`` must
not cost a whole training run, and a missing optional dependency is named
with the extra to install before training, not as a ModuleNotFoundError at
the end.

Types for ``parser.add_argument(..., type=...)``, each refusing with
``argument --lr: must be a number > 0, got '0'``::

    positive_int, non_negative_int, positive_float, non_negative_float, seed

Checks to call after ``parser.parse_args`` (each calls ``parser.error``)::

    check_output_file(parser, "--save", args.save)   # folder exists and is writable, not a folder itself
    check_input_file(parser, "--load", args.load)    # an existing, readable file
    require(parser, "matplotlib", "draw", "--plot")  # importable, or says: pip install -e ".[draw]"

and ``add_checkpoint_options(parser, every=100)`` / ``check_checkpoint_options(parser, args)``
for ``--checkpoint PATH``, ``--resume PATH`` (and ``--checkpoint-every K``);
``check_not_the_checkpoint(parser, args, "--save", "--plot")`` keeps outputs
off the checkpoint file.

After parsing, ``load_params(g, args.load)`` loads ``--load`` or fails, and
``fail(message)`` ends the script on input argparse cannot
judge (a data file or checkpoint that is not what it should be): one line
``prog: error: ...`` on stderr and exit code 2, as an argparse error.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import os
import secrets
import sys
from typing import Any, NoReturn

from graph.errors import GraphError

#: np.random.seed and default_rng both take seeds 0 .. 2**32 - 1 (default_rng takes more, seed() does not).
MAX_SEED = 2**32 - 1


def positive_int(text: str) -> int:
    """A whole number > 0."""
    return _whole(text, minimum=1, what="a whole number > 0")


def non_negative_int(text: str) -> int:
    """A whole number >= 0."""
    return _whole(text, minimum=0, what="a whole number >= 0")


def seed(text: str) -> int:
    """A random seed: a whole number from 0 to 2**32 - 1, as np.random.seed takes."""
    value = _whole(text, minimum=0, what=f"a whole number from 0 to {MAX_SEED}")
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {MAX_SEED}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (a learning rate)."""
    return _number(text, positive=True)


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (a weight decay)."""
    return _number(text, positive=False)


def _whole(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def _number(text: str, positive: bool) -> float:
    what = "a number > 0" if positive else "a number >= 0"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if not math.isfinite(value) or value < 0.0 or (positive and value == 0.0):
        raise argparse.ArgumentTypeError(f"must be a finite {what[2:]}, got {text!r}")
    return value


def check_output_file(parser: argparse.ArgumentParser, option: str, path: str | None) -> None:
    """parser.error unless a file can be written at ``path`` (None: the option was not given).

    The folder must exist and take a new file (tried by creating and
    removing an empty hidden one: permission bits alone say nothing for
    root or on a read-only disk), and ``path`` must not be a folder.
    """
    if path is None:
        return
    if not path:
        parser.error(f"argument {option}: give a file name, got ''")
    if os.path.isdir(path) or path.endswith((os.sep, "/")):
        parser.error(f"argument {option}: {path!r} is a folder; give a file name in it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        parser.error(f"argument {option}: cannot write {path!r}: there is no folder {folder!r}")
    probe = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.probe")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.remove(probe)
    except OSError as error:
        parser.error(f"argument {option}: cannot write {path!r}: {error.strerror} in folder {folder!r}")


def check_output_folder(parser: argparse.ArgumentParser, option: str, folder: str) -> None:
    """parser.error unless ``folder`` is a folder, or can be created: its nearest existing ancestor is a folder."""
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        parser.error(f"argument {option}: cannot make folder {folder!r}: {existing!r} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        parser.error(f"argument {option}: cannot write in folder {existing!r}")


def check_input_file(parser: argparse.ArgumentParser, option: str, path: str | None) -> None:
    """parser.error unless ``path`` is an existing, readable file (None: the option was not given)."""
    if path is None:
        return
    if not os.path.isfile(path):
        reason = "is a folder" if os.path.isdir(path) else "does not exist"
        parser.error(f"argument {option}: {path!r} {reason}")
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        parser.error(f"argument {option}: cannot read {path!r}: {error.strerror}")


def require(parser: argparse.ArgumentParser, module: str, extra: str, needed_for: str) -> None:
    """parser.error naming the extra to install unless ``module`` imports."""
    try:
        importlib.import_module(module)
    except ImportError:
        parser.error(
            f"{needed_for} needs {module}, which is not installed: pip install -e \".[{extra}]\" "
            f"(or pip install {_PIP_NAMES.get(module, module)})"
        )


_PIP_NAMES = {"sklearn": "scikit-learn"}


def add_checkpoint_options(parser: argparse.ArgumentParser, every: int | None = None) -> None:
    """--checkpoint PATH, --resume PATH, and with ``every`` --checkpoint-every K (default ``every``)."""
    parser.add_argument(
        "--checkpoint", metavar="NPZ",
        help="write a checkpoint here (atomically) as training goes, to continue with --resume after a crash",
    )
    if every is not None:
        parser.add_argument(
            "--checkpoint-every", type=positive_int, default=every, metavar="K",
            help=f"with --checkpoint: write it every K iterations and at the end (default {every})",
        )
    parser.add_argument(
        "--resume", metavar="NPZ",
        help="continue from this checkpoint (same settings as the run that wrote it): "
        "the result is bit-identical to a run never interrupted",
    )


def check_checkpoint_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--checkpoint must be writable, --resume readable, and --resume does not go with --load."""
    check_output_file(parser, "--checkpoint", args.checkpoint)
    check_input_file(parser, "--resume", args.resume)
    if args.resume is not None and getattr(args, "load", None) is not None:
        parser.error("argument --resume: not allowed with --load (the checkpoint holds the parameters)")


def check_choice_divides(parser: argparse.ArgumentParser, option: str, value: int, by_option: str, by: int) -> None:
    """parser.error unless ``value`` is a multiple of ``by`` (``--width`` must split evenly into ``--heads``)."""
    if value % by:
        parser.error(f"argument {option}: must be a multiple of {by_option} ({by}), got {value}")


class _Lines:
    """What :func:`progress_bar` gives without tqdm: no bar, lines printed as they come."""

    def update(self, count: int = 1) -> None:
        pass

    def write(self, line: str) -> None:
        print(line, flush=True)

    def close(self) -> None:
        pass


def progress_bar(total: int, initial: int = 0):
    """A tqdm bar on stderr if tqdm is installed (the ``train`` extra), else an object with the same three methods.

    Use ``bar.update()`` after each iteration, ``bar.write(line)`` to print a
    line above the bar (stdout), and ``bar.close()`` at the end.
    """
    if importlib.util.find_spec("tqdm") is None:
        return _Lines()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="it", leave=False, file=sys.stderr, mininterval=1.0)


def check_not_the_checkpoint(parser: argparse.ArgumentParser, args: argparse.Namespace, *outputs: str) -> None:
    """parser.error if an output option (``"--save"``, ``"--plot"``) names the --checkpoint or --resume file.

    Those outputs are written at the end of the run: over a checkpoint, they would destroy it.
    """
    for option in outputs:
        path = getattr(args, option.lstrip("-").replace("-", "_"))
        for checkpoint_option in ("--checkpoint", "--resume"):
            checkpoint = getattr(args, checkpoint_option[2:], None)
            if path and checkpoint and os.path.realpath(path) == os.path.realpath(checkpoint):
                parser.error(f"argument {option}: {path!r} is the {checkpoint_option} file; give another name")


def fail(message: str) -> NoReturn:
    """End the script as argparse ends it on a bad option: ``prog: error: message`` on stderr, exit code 2.

    For what only reading a file reveals (a parameter file of another model,
    a damaged checkpoint), after the options were accepted.

    Raises
    ------
    SystemExit
        Always, with code 2.
    """
    sys.stderr.write(f"{os.path.basename(sys.argv[0])}: error: {message}\n")
    raise SystemExit(2)


def load_params(graph: Any, path: str | None) -> None:
    """``graph.load_params(path)`` for ``--load PATH`` (nothing if None); a file of another model ends the script.

    Parameters
    ----------
    graph : ComputationalGraph
        The graph whose parameters (and gate state) the file replaces, in place.
    path : str or None
        The ``--load`` option's value.

    Raises
    ------
    SystemExit
        Through :func:`fail` (code 2, ``argument --load PATH: why`` on stderr)
        if the file is damaged or holds another model's parameters; nothing
        is changed then.
    """
    if path is None:
        return
    try:
        graph.load_params(path)
    except GraphError as error:  # another model's file, or not a parameter file: one line, no traceback
        fail(f"argument --load {path}: {error}")
