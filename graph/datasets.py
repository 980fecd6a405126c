"""The data sets of the training scripts: scikit-learn's digits and MNIST, as ``{"train", "val", "test"}`` splits.

Each loader returns a dict ``{"train": (X, y), "val": (X, y), "test": (X, y)}``
with ``y`` integer labels 0 to 9; :func:`solver_data` turns it into the
course's dict (``x_train``, ``y_train``, ``x_val``, ``y_val``) that
:class:`graph.Solver` takes.

* :func:`digits_split`: the 1797 8x8 digits shipped with scikit-learn (no
  download), split 60/20/20, stratified by class and fixed by the seed;
  :func:`digits_images`, the same as standardized 1 x 8 x 8 images.
* :func:`load_mnist`: MNIST from an ``.npz`` file (``x_train`` (60000, 28, 28)
  uint8, ``y_train``, ``x_test``, ``y_test``) or a folder holding
  ``mnist_train.csv`` and ``mnist_test.csv`` (label, then 784 pixels per row;
  a header row may be present).  Anything else raises :class:`DataError`
  saying what is wrong, in one line.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib

import numpy as np

from graph.errors import GraphError

MNIST_FILES = ("mnist_train.csv", "mnist_test.csv")
MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")
#: The validation set is the last ``min(MNIST_VALIDATION, N // 10)`` training images.
MNIST_VALIDATION = 5000

# What np.load and zipfile can raise on a damaged or foreign file.
_READ_ERRORS = (
    OSError, ValueError, EOFError, KeyError, NotImplementedError, OverflowError, MemoryError,
    struct.error, zipfile.BadZipFile, zlib.error,
)


class DataError(GraphError, ValueError):
    """A data file or folder that is not a data set in a layout the loaders read."""


Splits = dict[str, tuple[np.ndarray, np.ndarray]]


def digits_split(seed: int) -> Splits:
    """scikit-learn's digits, raw, split 60/20/20 stratified by class.

    Parameters
    ----------
    seed : int
        Fixes the split (``random_state`` of ``train_test_split``).

    Returns
    -------
    dict
        ``{"train", "val", "test"}``: (X (N, 64) pixels 0..16, y (N,) in 0..9);
        1077, 360 and 360 images.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=0.25, stratify=y_rest, random_state=seed
    )
    return {"train": (X_train, y_train), "val": (X_val, y_val), "test": (X_test, y_test)}


def digits_images(seed: int) -> Splits:
    """The digits split of :func:`digits_split` as images: ``{"train", "val", "test"}``: (X (N, 1, 8, 8), y (N,)).

    Standardized with one mean and one deviation over all pixels of the
    training set rather than per pixel: a convolution slides the same
    filter over every position, so every position must keep the same scale.
    """
    splits = digits_split(seed)
    mean, std = splits["train"][0].mean(), splits["train"][0].std()
    return {name: ((X.reshape(-1, 1, 8, 8) - mean) / std, y) for name, (X, y) in splits.items()}


def solver_data(splits: Splits) -> dict[str, np.ndarray]:
    """The course's data dict that :class:`graph.Solver` takes, from ``{"train", "val", ...}`` splits.

    Returns
    -------
    dict
        ``x_train`` (N, ...), ``y_train`` (N,), ``x_val`` (M, ...), ``y_val`` (M,): the arrays themselves, not copies.
    """
    return {
        "x_train": splits["train"][0], "y_train": splits["train"][1],
        "x_val": splits["val"][0], "y_val": splits["val"][1],
    }


def load_mnist(path: str) -> Splits:
    """MNIST from an .npz file or a folder of CSV files, scaled to [0, 1] and standardized.

    The last ``min(5000, N // 10)`` training images are the validation set;
    one mean and one deviation over the remaining training pixels
    standardize all three sets.

    Parameters
    ----------
    path : str
        An .npz file with ``x_train`` (N, 28, 28) or (N, 784), ``y_train`` (N,),
        ``x_test``, ``y_test``; or a folder with ``mnist_train.csv`` and
        ``mnist_test.csv``.

    Returns
    -------
    dict
        ``{"train", "val", "test"}``: (X (N, 1, 28, 28) float64, y (N,) int64).

    Raises
    ------
    DataError
        If the file or folder is missing, unreadable, truncated, not text,
        holds labels that are not whole numbers 0 to 9, images of another
        size, or fewer than 10 training images (the validation set would be
        empty).
    """
    if os.path.isdir(path):
        missing = [name for name in MNIST_FILES if not os.path.isfile(os.path.join(path, name))]
        if missing:
            raise DataError(
                f"MNIST folder {path!r} lacks {' and '.join(missing)}: it must hold "
                f"{MNIST_FILES[0]} and {MNIST_FILES[1]} (label, then 784 pixels per row)"
            )
        (x_train, y_train), (x_test, y_test) = (read_mnist_csv(os.path.join(path, name)) for name in MNIST_FILES)
    else:
        x_train, y_train, x_test, y_test = read_mnist_npz(path)
    for name, images, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        _check_mnist_part(path, name, images, labels)
    validation = min(MNIST_VALIDATION, len(x_train) // 10)
    if validation == 0 or len(x_test) == 0:
        raise DataError(
            f"MNIST {path!r} has {len(x_train)} training and {len(x_test)} test images: the validation set is "
            f"the last tenth of the training images, so at least 10 training and 1 test image are needed"
        )
    scale = 255.0 if max(x_train.max(), x_test.max()) > 1 else 1.0
    x_train = x_train.reshape(-1, 1, 28, 28) / scale
    x_test = x_test.reshape(-1, 1, 28, 28) / scale
    y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    fit, val = slice(0, len(x_train) - validation), slice(len(x_train) - validation, None)
    mean, std = x_train[fit].mean(), x_train[fit].std()
    if not std > 0:
        raise DataError(f"MNIST {path!r}: every training pixel has the same value {mean:g}: nothing to learn")
    return {
        "train": ((x_train[fit] - mean) / std, y_train[fit]),
        "val": ((x_train[val] - mean) / std, y_train[val]),
        "test": ((x_test - mean) / std, y_test),
    }


def _check_mnist_part(path: str, name: str, images: np.ndarray, labels: np.ndarray) -> None:
    """DataError unless ``images`` are real numbers (N, 28, 28) or (N, 784) in [0, 255] and ``labels`` N whole 0..9."""
    if images.dtype.kind not in "biuf" or labels.dtype.kind not in "biuf":
        raise DataError(
            f"MNIST {path!r}: x_{name} and y_{name} must hold numbers, got {images.dtype} and {labels.dtype}"
        )
    if images.ndim < 2 or images.shape[1:] not in ((28, 28), (784,)) or labels.shape != (len(images),):
        raise DataError(
            f"MNIST {path!r}: x_{name} must be (N, 28, 28) (or (N, 784)) with one label each, "
            f"got x_{name} {images.shape} and y_{name} {labels.shape}"
        )
    if images.size and not (np.all(np.isfinite(images)) and images.min() >= 0 and images.max() <= 255):
        raise DataError(f"MNIST {path!r}: x_{name} must hold pixel values from 0 to 255")
    if labels.size and not (np.all(labels == np.round(labels)) and labels.min() >= 0 and labels.max() <= 9):
        raise DataError(f"MNIST {path!r}: y_{name} must hold whole labels 0 to 9, found {labels.min()}..{labels.max()}")


def read_mnist_npz(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) as stored in an .npz file, read completely.

    Raises
    ------
    DataError
        If ``path`` is no file, not a zip of arrays (a single .npy array,
        text, a truncated or damaged file), or lacks one of the four arrays.
    """
    if not os.path.isfile(path):
        raise DataError(
            f"no MNIST at {path!r}: give an .npz file ({', '.join(MNIST_KEYS)}) or a folder holding "
            f"{MNIST_FILES[0]} and {MNIST_FILES[1]}"
        )
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(f"{path!r} holds a single array, not an .npz with {', '.join(MNIST_KEYS)}")
        with archive:
            missing = [key for key in MNIST_KEYS if key not in archive.files]
            if missing:
                raise DataError(
                    f"MNIST file {path!r} lacks {', '.join(missing)} (it has {', '.join(archive.files) or 'nothing'}); "
                    f"the common layout is x_train (60000, 28, 28) uint8, y_train, x_test, y_test"
                )
            return tuple(archive[key] for key in MNIST_KEYS)
    except DataError:
        raise
    except _READ_ERRORS as error:
        raise DataError(f"cannot read {path!r} as an .npz file (truncated or damaged?): {error}") from error


def read_mnist_csv(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 784) int64, labels (N,)) from a CSV of rows ``label, 784 pixels``, with or without a header.

    Raises
    ------
    DataError
        If the file is not UTF-8 text, holds something other than whole
        numbers (a text label, say), or rows of another length.
    """
    try:
        with open(path, encoding="utf-8") as file:
            first = file.readline()
        header = not first.split(",")[0].strip().lstrip("-").isdigit()
        table = np.loadtxt(path, delimiter=",", skiprows=int(header), dtype=np.int64, ndmin=2, encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path!r} is not a text file: MNIST CSV rows are a label and 784 pixels") from None
    except (OSError, ValueError) as error:
        raise DataError(f"{path!r} is not a CSV of whole numbers (label, then 784 pixels): {error}") from error
    if table.shape[1] != 785:
        raise DataError(f"{path!r} has {table.shape[1]} columns per row; MNIST rows are a label and 784 pixels")
    return table[:, 1:], table[:, 0]
