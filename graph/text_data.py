"""Character-level text data, as the char-RNN and the character GPT read it.

A text becomes a vocabulary (``sorted(set(text))``) and an array of
character indices; the GPT trains on random windows of it; both draw their
samples one character at a time from the softmax of their scores.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

#: Standard-library modules whose source, concatenated, is the char-RNN's default text.
CHAR_RNN_MODULES = ("textwrap", "heapq", "difflib")
#: The character GPT's default text (about 470 KB): it needs more than the char-RNN.
CHAR_GPT_MODULES = CHAR_RNN_MODULES + ("argparse", "inspect", "typing")


def standard_library_text(modules: tuple[str, ...] = CHAR_RNN_MODULES) -> str:
    """The source of ``modules``, concatenated: a text every Python installation has.

    Parameters
    ----------
    modules : tuple of str
        Standard-library module names, read in this order.

    Returns
    -------
    str
        Their source files' text, one after the other.

    Raises
    ------
    FileNotFoundError
        If this Python ships without a module's source (compiled files only).
    """
    parts = []
    for module in modules:
        origin = getattr(importlib.util.find_spec(module), "origin", None)
        if not origin or not origin.endswith(".py") or not os.path.isfile(origin):
            raise FileNotFoundError(
                f"the source of the standard library module {module!r} is not installed here; pass --text FILE"
            )
        with open(origin, encoding="utf-8") as file:
            parts.append(file.read())
    return "".join(parts)


def read_text(path: str | None, modules: tuple[str, ...] = CHAR_RNN_MODULES) -> str:
    """The UTF-8 text at ``path`` without a byte-order mark, or with ``path`` None :func:`standard_library_text`.

    Parameters
    ----------
    path : str or None
        A UTF-8 text file.  A byte-order mark at its start (Windows editors
        write one) is not a character of the text and is dropped.
    modules : tuple of str
        The modules whose source is the text when ``path`` is None.

    Returns
    -------
    str
        The text.

    Raises
    ------
    OSError
        If the file cannot be read (FileNotFoundError: nor the modules' source).
    UnicodeDecodeError
        If the file is not UTF-8.
    """
    if path is None:
        return standard_library_text(modules)
    with open(path, encoding="utf-8-sig") as file:
        return file.read()


def encode(text: str, dtype=np.int64) -> tuple[list[str], np.ndarray]:
    """The vocabulary ``sorted(set(text))`` and the text as indices into it.

    Parameters
    ----------
    text : str
        Any text.
    dtype : numpy dtype
        Of the indices: int64, or float64 for a graph that reads its data as floats.

    Returns
    -------
    chars : list of str
        The V distinct characters, sorted.
    data : numpy.ndarray
        (len(text),): ``chars.index(c)`` for each character c of the text.
    """
    chars = sorted(set(text))
    index = {char: i for i, char in enumerate(chars)}
    return chars, np.array([index[char] for char in text], dtype=dtype)


def random_windows(data: np.ndarray, rng: np.random.Generator, batch: int, context: int):
    """nanoGPT's get_batch: ``batch`` random windows of ``data`` and the characters that follow them.

    Parameters
    ----------
    data : numpy.ndarray
        (L,) character indices, L > ``context``.
    rng : numpy.random.Generator
        Draws the ``batch`` start positions, uniform in [0, L - context).
    batch, context : int
        Windows B and characters per window T.

    Returns
    -------
    x, y : numpy.ndarray
        (B, T) each: the windows, and each shifted one character on (the targets).
    """
    starts = rng.integers(0, len(data) - context, size=batch)
    rows = starts[:, None] + np.arange(context)
    return data[rows], data[rows + 1]


def draw_character(scores: np.ndarray, generator) -> int:
    """An index drawn from ``softmax(scores)``: ``generator.choice(V, p=...)``.

    Parameters
    ----------
    scores : numpy.ndarray
        (V,) unnormalized log-probabilities of the next character.
    generator : numpy.random.Generator or the module numpy.random
        What draws: a Generator, or numpy's global generator as min-char-rnn samples.

    Returns
    -------
    int
        The character's index in the vocabulary.
    """
    scores = np.asarray(scores, dtype=np.float64)
    probabilities = np.exp(scores - scores.max())
    return int(generator.choice(len(scores), p=probabilities / probabilities.sum()))
