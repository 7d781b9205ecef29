"""README's "Result layout" table says what ``to_datatree()`` writes, group by group."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import exact_result

README = Path(__file__).resolve().parents[3] / "README.md"


def readme_layout() -> dict[str, str]:
    """``{group: "variables (dims)" cell}`` from the README's table."""
    section = README.read_text().split("## Result layout", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| (.+?) \|$", section, flags=re.MULTILINE)
    return dict(rows)


def test_every_written_group_is_in_the_readme_with_its_dims():
    tree = exact_result(2).to_datatree()
    layout = readme_layout()
    written = {node.path.lstrip("/") for node in tree.subtree if node.path != "/"}
    for path in written - {"diagnostics"}:
        group = "diagnostics/<name>" if path.startswith("diagnostics/") else path
        assert group in layout, f"README's layout table lacks the group {group!r}"
        if group.startswith("diagnostics/"):
            continue
        cell = layout[group].replace("[", "").replace("]", "")  # optional dims written [, ...]
        for name, variable in tree[path].ds.data_vars.items():
            listed = name if f"`{name}(" in cell else "<parameter>"
            assert f"`{listed}({', '.join(variable.dims)}" in cell, (group, name, variable.dims)
    # and nothing the table promises is missing here, except what needs a posterior density
    assert set(layout) - {"sample_stats"} <= written | {"diagnostics/<name>"}
