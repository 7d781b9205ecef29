"""The plugin pages' and the README's code runs, with every method plugin installed.

The same runner as tests/platform/test_docs.py (docs/check_code.py), for the pages that need a
method plugin: docs/plugins/*.md and README.md.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGE_BUDGET_S = 90

_spec = importlib.util.spec_from_file_location("docs_check_code", DOCS / "check_code.py")
check_code = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_code)

CANDIDATES = [
    *sorted((DOCS / "plugins").glob("*.md")),
    ROOT / "README.md",
]
PAGES = [
    str(page.relative_to(ROOT))
    for page in CANDIDATES
    if page.is_file() and check_code.python_blocks(page.read_text())
]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("plugin-docs-code") / "outcomes.json"
    results = check_code.run_pages_in_subprocess([ROOT / p for p in PAGES], out, PAGE_BUDGET_S)
    return {str(Path(p).relative_to(ROOT)): o for p, o in results.items()}


def test_every_plugin_has_a_page_with_code():
    for name in ("cmpe", "misspec", "trade", "fff", "ood", "flowanalysis", "distances", "context"):
        assert f"docs/plugins/{name}.md" in PAGES, name
    assert "README.md" in PAGES


@pytest.mark.parametrize("page", PAGES)
def test_page_code_runs(outcomes, page):
    outcome = outcomes[page]
    assert outcome["error"] is None, f"{page}:\n{outcome['error']}"
    assert outcome["seconds"] < PAGE_BUDGET_S, f"{page} took {outcome['seconds']:.0f} s"
