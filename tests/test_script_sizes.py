"""Issue 20, point 2: thin scripts that share through the library, never through each other."""

import ast
import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(glob.glob(os.path.join(ROOT, "scripts", "*.py")))
NAMES = {os.path.splitext(os.path.basename(path))[0] for path in SCRIPTS}


def lines(path):
    with open(path, encoding="utf-8") as file:
        return file.read().splitlines()


def test_scripts_stay_within_their_sizes():
    sizes = {os.path.basename(path): len(lines(path)) for path in SCRIPTS}
    assert sum(sizes.values()) <= 2000, sizes
    assert sizes["train_digits.py"] <= 200 and sizes["train_cnn.py"] <= 200, sizes


def test_no_script_edits_sys_path_or_imports_another_script():
    for path in SCRIPTS:
        tree = ast.parse("\n".join(lines(path)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", None) == "sys":
                raise AssertionError(f"{os.path.basename(path)} uses sys.path (line {node.lineno})")
            imported = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in imported:
                assert name.split(".")[0] not in NAMES, f"{os.path.basename(path)} imports the script {name}"
