"""graph.text_data: reading a text, its vocabulary, random windows and drawing a character; graph.figures' PNGs."""

import importlib.util
import math

import numpy as np
import pytest

from graph import text_data


def test_a_byte_order_mark_is_not_a_character_of_the_text(tmp_path):
    path = tmp_path / "text.txt"
    path.write_bytes("\ufeffTo be, or not to be".encode("utf-8"))
    assert text_data.read_text(str(path)) == "To be, or not to be"


def test_without_a_path_the_text_is_the_modules_source():
    import heapq
    import textwrap

    with open(textwrap.__file__, encoding="utf-8") as first, open(heapq.__file__, encoding="utf-8") as second:
        expected = first.read() + second.read()
    assert text_data.read_text(None, ("textwrap", "heapq")) == expected
    assert text_data.CHAR_GPT_MODULES[:3] == text_data.CHAR_RNN_MODULES


def test_a_module_without_its_source_is_named(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "heapq" else real_find_spec(name))
    with pytest.raises(FileNotFoundError, match="'heapq' is not installed here; pass --text FILE"):
        text_data.standard_library_text(("textwrap", "heapq"))


def test_encode_gives_the_sorted_vocabulary_and_indices():
    chars, data = text_data.encode("banana")
    assert chars == ["a", "b", "n"]
    assert data.tolist() == [1, 0, 2, 0, 2, 0] and data.dtype == np.int64
    assert text_data.encode("banana", np.float64)[1].dtype == np.float64


def test_random_windows_are_windows_and_their_next_characters():
    data = np.arange(100) * 3
    x, y = text_data.random_windows(data, np.random.default_rng(0), batch=5, context=7)
    assert x.shape == y.shape == (5, 7)
    for row_x, row_y in zip(x, y):
        start = row_x[0] // 3
        assert row_x.tolist() == data[start:start + 7].tolist() and row_y.tolist() == data[start + 1:start + 8].tolist()
    again = text_data.random_windows(data, np.random.default_rng(0), batch=5, context=7)
    assert np.array_equal(again[0], x)  # the generator decides


def test_draw_character_draws_from_the_softmax():
    scores = np.array([1.0, 2.0, 0.5, -1.0])
    probabilities = np.exp(scores) / np.exp(scores).sum()
    drawn = [text_data.draw_character(scores, np.random.default_rng(seed)) for seed in range(4000)]
    frequencies = np.bincount(drawn, minlength=4) / len(drawn)
    assert np.all(np.abs(frequencies - probabilities) < 4 * np.sqrt(probabilities / len(drawn)) + 1e-3)
    # The same draw as numpy's own choice on those probabilities, from either kind of generator.
    assert text_data.draw_character(scores, np.random.default_rng(5)) == np.random.default_rng(5).choice(4, p=probabilities)
    np.random.seed(3)
    ours = text_data.draw_character(scores, np.random)
    np.random.seed(3)
    assert ours == np.random.choice(range(4), p=probabilities)
    assert text_data.draw_character(np.array([0.0, 800.0, 0.0]), np.random.default_rng(0)) == 1  # no overflow


def test_the_figures_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    from graph import figures

    curves = figures.loss_curves([(range(5), [5.0, 4.0, 3.0, 2.5, 2.0], {"label": "loss"}),
                                  ((0, 4), (math.log(65),) * 2, {"linestyle": "--"})],
                                 "loss", str(tmp_path / "loss.png"), title="t", log=True)
    assert curves.axes[0].get_yscale() == "log" and curves.axes[0].get_legend() is not None
    weights = [np.tril(np.ones((2, 4, 4))) / np.arange(1, 5)[:, None] for _ in range(3)]
    grid = figures.attention_map(weights, "abcd", str(tmp_path / "attention.png"))
    assert len(grid.axes) == 6
    for name in ("loss.png", "attention.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
