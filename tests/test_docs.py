"""Every ```python block of README.md and of the pages under docs/ runs as written, and prints what the page says it prints.

The convention (for whoever edits README.md or a page under docs/):

* **A page is one session.** The ```python blocks of one page run in order,
  in one namespace, as a reader pasting them one after the other would run
  them: a later block may use what an earlier one built (``g``, a gate
  class, data). Each page starts afresh, in an empty temporary working
  directory (files it writes land there), with matplotlib's Agg backend.
  Nothing is skipped. A page that is a draft, not published, is listed in
  ``DRAFTS`` (and in mkdocs.yml's ``exclude_docs``) and does not run.
* **Output blocks.** A python block followed directly (blank lines only in
  between) by a plain ``` block: that block is everything the python block
  prints, line for line.
* **Output comments.** A ``print(...)`` statement at the top level of a block
  with a comment at the end of its line: the comment is what that print
  prints (``print(g.forward(feeds))   # -12.0``). So keep prose off print
  lines: put it on the line above. An expression statement that is not a
  print must not end in a comment that looks like a value (``g.forward(f)  # 3.0``):
  print it instead, or the page shows a value nobody checks.
* **Comparing.** Text outside numbers must match exactly (trailing spaces
  aside). Each number shown must be the printed number rounded to the
  digits shown (0.7311 matches 0.7310585786300049; -12.0 matches -12.0
  exactly). Two numbers both below 1e-6 in magnitude match: these are
  finite differences' rounding noise (a gradient check's "good"), which
  varies with the CPU's math library. ``...`` in the expected text matches
  anything, as in doctest.
* **Links.** Every relative link and image of a page points to a file of
  the repository (mkdocs checks the pages' links again when it builds).
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import tokenize
from dataclasses import dataclass

import matplotlib
import pytest

import gates  # noqa: F401  imported here, from this checkout, before any block runs in another directory
import graph  # noqa: F401

matplotlib.use("Agg")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
# Drafts the maintainers finish: not published (mkdocs.yml's exclude_docs) and not run.
DRAFTS: set[str] = set()
NOISE = 1e-6
NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"
# A number on its own: not part of a name (w0, fc1.act, MatMulGate_4) or of a longer number.
EXPECTED_NUMBER = re.compile(rf"(?<![\w.]){NUMBER}(?![\w.]\w)")


def pages() -> list[str]:
    """README.md and every published page under docs/, as paths relative to the repository."""
    found = ["README.md"]
    for folder, _, names in sorted(os.walk(DOCS)):
        for name in sorted(names):
            if name.endswith(".md"):
                page = os.path.relpath(os.path.join(folder, name), ROOT).replace(os.sep, "/")
                if page not in DRAFTS:
                    found.append(page)
    return found


@dataclass
class Block:
    language: str
    text: str
    line: int  # of the opening fence, 1-based
    end: int  # of the closing fence


def fenced_blocks(page: str) -> list[Block]:
    """Every fenced block of the page, in order."""
    blocks, open_block, lines = [], None, []
    with open(os.path.join(ROOT, page), encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if open_block is None and line.startswith("```"):
                open_block, lines = Block(line[3:].strip(), "", number, number), []
            elif open_block is not None and line.rstrip() == "```":
                open_block.text, open_block.end = "".join(lines), number
                blocks.append(open_block)
                open_block = None
            elif open_block is not None:
                lines.append(line)
    assert open_block is None, f"{page}: the block opened at line {open_block.line} is never closed"
    return blocks


def python_blocks(page: str) -> list[tuple[Block, Block | None]]:
    """(python block, the plain block right after it or None), in the page's order."""
    blocks = fenced_blocks(page)
    with open(os.path.join(ROOT, page), encoding="utf-8") as file:
        page_lines = file.read().split("\n")
    pairs = []
    for index, block in enumerate(blocks):
        if block.language != "python":
            continue
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        between = page_lines[block.end : following.line - 1] if following else []
        adjacent = following is not None and following.language == "" and not "".join(between).strip()
        pairs.append((block, following if adjacent else None))
    return pairs


def matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is ``expected`` by the convention above (numbers rounded, noise, ...)."""
    expected = "\n".join(line.rstrip() for line in expected.strip("\n").split("\n"))
    actual = "\n".join(line.rstrip() for line in actual.strip("\n").split("\n"))
    pattern, shown, position = [], [], 0
    for found in EXPECTED_NUMBER.finditer(expected):
        pattern.append(_literal(expected[position : found.start()]))
        pattern.append(f"({NUMBER})")
        shown.append(found.group())
        position = found.end()
    pattern.append(_literal(expected[position:]))
    match = re.fullmatch("".join(pattern), actual, re.DOTALL)
    if match is None:
        return False
    return all(_same_number(text, printed) for text, printed in zip(shown, match.groups()))


def _literal(text: str) -> str:
    return ".*?".join(re.escape(piece) for piece in text.split("..."))


def _same_number(shown: str, printed: str) -> bool:
    value, actual = float(shown), float(printed)
    if abs(value) < NOISE and abs(actual) < NOISE:
        return True
    mantissa, _, exponent = shown.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    half_unit = 0.5 * 10.0 ** (int(exponent or 0) - decimals)
    return abs(actual - value) <= half_unit * (1 + 1e-9) + 1e-12 * abs(value)


def trailing_comments(source: str) -> dict[int, str]:
    """Line number (1-based) -> the text of the comment ending that line, for lines with code before it."""
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and token.line[: token.start[1]].strip():
            comments[token.start[0]] = token.string[1:].strip()
    return comments


def is_print(statement: ast.stmt) -> bool:
    call = statement.value if isinstance(statement, ast.Expr) else None
    return isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print"


def run_block(block: Block, namespace: dict, page: str) -> tuple[str, list[tuple[int, str, str]]]:
    """Run a block statement by statement in ``namespace``; return (all it printed, [(line, comment, what that print printed)])."""
    tree = ast.parse(block.text, filename=f"{page}:{block.line}")
    comments = trailing_comments(block.text)
    printed, checks = io.StringIO(), []
    for statement in tree.body:
        code = compile(ast.Module(body=[statement], type_ignores=[]), f"{page}, block at line {block.line}", "exec")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(code, namespace)
        printed.write(out.getvalue())
        comment = comments.get(statement.end_lineno)
        if comment is None:
            continue
        line = block.line + statement.end_lineno
        if is_print(statement):
            checks.append((line, comment, out.getvalue()))
        elif isinstance(statement, ast.Expr) and re.match(r"[-\d{\[('\"]", comment):
            raise AssertionError(
                f"{page} line {line}: the comment {comment!r} shows a value that is not printed; "
                f"print it, so that this test can check it"
            )
    return printed.getvalue(), checks


PAGES = pages()
PAGES_WITH_CODE = [page for page in PAGES if python_blocks(page)]


def test_the_pages_have_python_blocks_and_shown_outputs():
    pairs = [pair for page in PAGES for pair in python_blocks(page)]
    assert len(pairs) >= 20
    assert sum(output is not None for _, output in pairs) >= 8
    assert "README.md" in PAGES_WITH_CODE


@pytest.mark.parametrize("page", PAGES_WITH_CODE)
def test_page_blocks_run_in_order_and_print_what_they_show(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for block, output in python_blocks(page):
        printed, checks = run_block(block, namespace, page)
        for line, comment, out in checks:
            assert matches(comment, out), f"{page} line {line}: the comment says {comment!r}, the print printed {out!r}"
        if output is not None:
            assert matches(output.text, printed), (
                f"{page} line {output.line}: the block shows\n{output.text}\nbut the code above it printed\n{printed}"
            )


# ---------------------------------------------------------------- links and the published site

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def relative_links(page: str) -> list[str]:
    """The targets of the page's markdown links and images that are files, not web addresses or anchors."""
    with open(os.path.join(ROOT, page), encoding="utf-8") as file:
        text = file.read()
    # Code is not a link: drop fenced blocks and inline code first.
    text = re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)
    text = re.sub(r"`[^`]*`", "", text)
    targets = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        targets.append(target.split("#")[0])
    return targets


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_points_to_a_file_of_the_repository(page):
    folder = os.path.dirname(os.path.join(ROOT, page))
    for target in relative_links(page):
        path = os.path.normpath(os.path.join(folder, target))
        assert os.path.commonpath([path, ROOT]) == ROOT, f"{page}: {target!r} points outside the repository"
        assert os.path.exists(path), f"{page}: {target!r} does not exist"


def test_the_readme_is_a_landing_page_linking_every_page():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as file:
        readme = file.read()
    assert len(readme.splitlines()) <= 250
    assert "https://cs231n.github.io/optimization-2/" in readme
    linked = {os.path.normpath(target) for target in relative_links("README.md")}
    manual = [page for page in PAGES if page.startswith("docs/") and "/reference/" not in page and page != "docs/index.md"]
    missing = [page for page in manual if os.path.normpath(page) not in linked]
    assert not missing, f"README.md links none of {missing}"


def test_every_published_page_is_in_the_mkdocs_nav_and_drafts_are_excluded():
    with open(os.path.join(ROOT, "mkdocs.yml"), encoding="utf-8") as file:
        config = file.read()
    nav = config[config.index("nav:") :]
    for page in PAGES:
        if page.startswith("docs/"):
            assert f" {page[len('docs/'):]}" in nav, f"{page} is not in mkdocs.yml's nav"
    excluded = config[config.index("exclude_docs:") : config.index("nav:")] if DRAFTS else ""
    for draft in DRAFTS:
        assert draft[len("docs/") :] in excluded, f"{draft} is a draft but mkdocs.yml publishes it"


@pytest.mark.parametrize("page", PAGES)
def test_every_script_a_page_names_exists(page):
    with open(os.path.join(ROOT, page), encoding="utf-8") as file:
        named = set(re.findall(r"scripts/(\w+\.py)", file.read()))
    missing = sorted(name for name in named if not os.path.exists(os.path.join(ROOT, "scripts", name)))
    assert not missing, f"{page} names scripts that do not exist: {missing}"


def public_modules() -> list[str]:
    """Every module of the packages gates and graph whose name does not start with an underscore."""
    found = []
    for package in ("gates", "graph", "graph/layers"):
        for name in sorted(os.listdir(os.path.join(ROOT, package))):
            if name.endswith(".py") and not name.startswith("_"):
                found.append(f"{package.replace('/', '.')}.{name[:-3]}")
    return found


def test_the_api_reference_has_every_public_module():
    reference = ""
    for name in sorted(os.listdir(os.path.join(DOCS, "reference"))):
        with open(os.path.join(DOCS, "reference", name), encoding="utf-8") as file:
            reference += file.read()
    listed = set(re.findall(r"^::: ([\w.]+)$", reference, flags=re.MULTILINE))
    missing = [module for module in public_modules() if module not in listed]
    assert not missing, f"docs/reference/ has no '::: module' line for {missing}"
    assert len(public_modules()) >= 40


# ---------------------------------------------------------------- the convention itself


@pytest.mark.parametrize(
    "expected, actual",
    [
        ("-12.0", "-12.0\n"),
        ("0.7311", "0.7310585786300049"),
        ("w0 -0.197", "w0 -0.19661193324148185"),
        ("max relative error 1.74e-08, tol 1e-05", "max relative error 3.10e-09, tol 1e-05"),
        ("shape (3, 4) at [2, 3]", "shape (3, 4) at [2, 3]  "),
        ("Distribution(mean=..., std=0.5)", "Distribution(mean=0.25, std=0.5)"),
        ("fc1.act 3", "fc1.act 3"),
    ],
)
def test_what_matches(expected, actual):
    assert matches(expected, actual)


@pytest.mark.parametrize(
    "expected, actual",
    [
        ("-12.0", "-12.5"),
        ("0.7311", "0.7312"),
        ("-12.0", "-12.0 extra"),
        ("shape (3, 4)", "shape (3, 5)"),
        ("tol 1e-05", "tol 1e-04"),
        ("fc1.act", "fc2.act"),
        ("error 1.0e-02", "error 3.0e-09"),
    ],
)
def test_what_does_not_match(expected, actual):
    assert not matches(expected, actual)
