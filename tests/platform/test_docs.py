"""The docs site's code runs, its tutorial pages are current, and docstrings stay short.

Every ```python block of the pages under docs/ runs here, page by page (one namespace per page,
blocks in order, a fresh folder each), through docs/check_code.py in one subprocess. Pages that
need a method plugin (docs/plugins/, and the README, whose plugin table shows one in use) run
in tests/plugins/test_plugin_docs.py, since tests/platform passes with no plugin installed. The
tutorial pages (docs/tutorials/) are rendered from tutorials/*.py, which their own tests run.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGE_BUDGET_S = 60  # a page's snippets are small: seconds each, once torch is imported
MAX_DOCSTRING_LINES = 25


def load_docs_module(name: str):
    """A helper script of docs/ (check_code, render_tutorials) as a module."""
    spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_code = load_docs_module("check_code")


def pages_with_code(pages) -> list[str]:
    return [
        str(page.relative_to(ROOT))
        for page in sorted(pages)
        if check_code.python_blocks(page.read_text())
    ]


def run_pages(pages: list[str], out: Path) -> dict[str, dict]:
    """Run the pages' blocks in one subprocess; ``{page: {"error", "seconds"}}``."""
    results = check_code.run_pages_in_subprocess([ROOT / p for p in pages], out, PAGE_BUDGET_S)
    return {str(Path(page).relative_to(ROOT)): outcome for page, outcome in results.items()}


HOST_PAGES = pages_with_code(
    page
    for page in DOCS.rglob("*.md")
    if not page.is_relative_to(DOCS / "tutorials") and not page.is_relative_to(DOCS / "plugins")
)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict]:
    return run_pages(HOST_PAGES, tmp_path_factory.mktemp("docs-code") / "outcomes.json")


def test_the_host_pages_have_code():
    assert {"docs/getting-started.md", "docs/guide/studies.md", "docs/authors/estimator.md"} <= set(
        HOST_PAGES
    )


@pytest.mark.parametrize("page", HOST_PAGES)
def test_page_code_runs(outcomes, page):
    outcome = outcomes[page]
    assert outcome["error"] is None, f"{page}:\n{outcome['error']}"
    assert outcome["seconds"] < PAGE_BUDGET_S, f"{page} took {outcome['seconds']:.0f} s"


def test_python_blocks_are_found_with_their_lines():
    text = (
        "intro\n\n```python\nx = 1\n```\n\n```console\n$ not python\n```\n```python\ny = 2\n```\n"
    )
    assert check_code.python_blocks(text) == [(4, "x = 1\n"), (11, "y = 2\n")]


def test_a_failing_block_names_its_page_and_line(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# page\n\n```python\nx = 1\n```\n\n```python\nassert x == 2\n```\n")
    outcome = check_code.run_page(page)
    assert outcome["error"] is not None
    assert f'File "{page}", line 8' in outcome["error"]


def test_toml_blocks_parse_and_study_files_load(tmp_path):
    """TOML on the site is valid; a block with a [simulator] table is a study file that loads."""
    from sbiplug.study_cli import load_study_config

    fence = re.compile(r"^```toml[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
    pages = [p for p in DOCS.rglob("*.md") if not p.is_relative_to(DOCS / "tutorials")]
    studies = 0
    for page in [*pages, ROOT / "README.md"]:
        if not page.is_file():
            continue
        for block in fence.findall(page.read_text()):
            tomllib.loads(block)
            if "[simulator]" in block:
                path = tmp_path / "study.toml"
                path.write_text(block)
                assert load_study_config(path).source == str(path), page
                studies += 1
    assert studies >= 1


def test_tutorial_pages_are_rendered_from_the_current_tutorials():
    render = load_docs_module("render_tutorials")
    for source in sorted((ROOT / "tutorials").glob("[0-9]*.py")):
        page = DOCS / "tutorials" / f"{source.stem}.md"
        assert page.is_file(), f"{page} is missing: run `make docs-tutorials`"
        first = page.read_text().splitlines()[0]
        assert first == f"{render.HASH_PREFIX}{render.source_hash(source)} -->", (
            f"{source.name} changed after {page.name} was rendered: run `make docs-tutorials`"
        )
        for figure in page.parent.joinpath(source.stem).glob("*.png"):
            assert f"({source.stem}/{figure.name})" in page.read_text(), figure


def test_pages_keep_no_lab_notes():
    """Pilot history belongs in docs/design/ and benchmarks/results/, not in the product."""
    pages = [p for p in DOCS.rglob("*.md") if not p.is_relative_to(DOCS / "design")]
    pages.append(ROOT / "README.md")
    for page in pages:
        if page.is_relative_to(DOCS / "tutorials"):
            continue
        text = page.read_text().lower()
        for phrase in ("pilot", "not adopted", "session"):
            assert phrase not in text, f"{page.relative_to(ROOT)} mentions {phrase!r}"


def test_module_docstrings_are_short():
    long = []
    for folder in ("platform", "plugins"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            docstring = ast.get_docstring(ast.parse(path.read_text()), clean=False)
            if docstring and len(docstring.strip().splitlines()) > MAX_DOCSTRING_LINES:
                lines = len(docstring.strip().splitlines())
                long.append(f"{path.relative_to(ROOT)} ({lines} lines)")
    assert not long, f"module docstrings over {MAX_DOCSTRING_LINES} lines: {', '.join(long)}"
