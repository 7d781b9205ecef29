"""The import contracts of pyproject.toml hold (``lint-imports``, also ``make imports`` in CI).

The host never imports a plugin, plugins never import each other, plugins import only the
host's public API, and host modules import each other without cycles. It needs every plugin
installed (they are root packages of the contracts), hence here and not in tests/platform.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_import_contracts_are_kept():
    assert LINT_IMPORTS.exists(), "import-linter (the dev extra) is not installed"
    run = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "4 kept, 0 broken" in report
