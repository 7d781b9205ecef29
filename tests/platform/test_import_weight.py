"""Listing plugins stays cheap: `import sbiplug` and `sbiplug plugins` / `list` load no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
{statement}
heavy = sorted(name for name in ("torch", "sbi", "matplotlib", "arviz") if name in sys.modules)
print("heavy modules:", ",".join(heavy))
"""


@pytest.mark.parametrize(
    "statement",
    [
        "import sbiplug",
        "import sbiplug.cli",
        "import sbiplug.toolkit",
        "from sbiplug.cli import main; main(['plugins', '--all', '--json'])",
        "from sbiplug.cli import main; main(['list', 'estimators'])",
    ],
)
def test_listing_loads_no_heavy_library(statement):
    run = subprocess.run(
        [sys.executable, "-c", PROBE.format(statement=statement)],
        capture_output=True,
        text=True,
        check=True,
    )
    last = run.stdout.rstrip("\n").splitlines()[-1]
    assert last == "heavy modules: ", last
