"""save_params to a folder or to "" is a ParameterFileError naming the path given, and writes nothing."""

import os

import numpy as np
import pytest

from graph import ComputationalGraph, GraphError, ParameterFileError


def small_graph():
    g = ComputationalGraph()
    w = g.add_param("w", np.arange(3.0))
    w * 2.0
    return g


@pytest.mark.parametrize(
    "path, message",
    [
        ("", r"cannot save parameters to '': give a file name, e\.g\. 'net\.npz'"),
        (".", r"cannot save parameters to '\.': that is a folder; give a file name in it"),
        ("{tmp}", r"cannot save parameters to '{tmp}': that is a folder"),
        ("{tmp}/sub/", r"cannot save parameters to '{tmp}/sub/': that is a folder"),
    ],
)
def test_saving_to_a_folder_or_nothing_names_the_path(tmp_path, monkeypatch, path, message):
    monkeypatch.chdir(tmp_path)
    path = path.replace("{tmp}", str(tmp_path))
    message = message.replace("{tmp}", str(tmp_path))
    g = small_graph()
    with pytest.raises(ParameterFileError, match=message) as caught:
        g.save_params(path)
    assert isinstance(caught.value, GraphError) and isinstance(caught.value, ValueError)
    assert os.listdir(tmp_path) == [] and os.listdir(tmp_path.parent).count(tmp_path.name) == 1
    g.save_params("net.npz")  # the graph still saves where it can
    assert os.listdir(tmp_path) == ["net.npz"]


def test_a_path_object_naming_a_folder(tmp_path):
    (tmp_path / "models").mkdir()
    with pytest.raises(ParameterFileError, match=r"'.*models': that is a folder"):
        small_graph().save_params(tmp_path / "models")
    assert os.listdir(tmp_path / "models") == []
