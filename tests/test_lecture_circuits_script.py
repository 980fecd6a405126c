"""scripts/lecture_circuits.py: every circuit explained, checked and drawn."""

import contextlib
import io
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import lecture_circuits  # noqa: E402


def test_every_circuit_is_explained_checked_and_drawn(tmp_path):
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        graphs = lecture_circuits.main(["--out", str(tmp_path / "circuits")])
    text = output.getvalue()
    assert set(graphs) == set(lecture_circuits.CIRCUITS)
    assert text.count("gradcheck: passed") == len(lecture_circuits.CIRCUITS)
    assert "FAILED" not in text
    for name in lecture_circuits.CIRCUITS:
        assert f"=== {name}:" in text
        for extension in ("png", "svg", "dot"):
            assert os.path.getsize(tmp_path / "circuits" / f"{name}.{extension}") > 0
    assert "df/dx = -4" in text and "0.7311" in text


@pytest.mark.slow
def test_runs_from_the_command_line(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "lecture_circuits.py"),
         "--out", str(tmp_path), "--only", "add_multiply", "--formats", "dot"],
        capture_output=True, text=True, check=True, cwd=str(tmp_path),
    )
    assert "df/dz = 3" in result.stdout
    assert os.listdir(tmp_path) == ["add_multiply.dot"]
