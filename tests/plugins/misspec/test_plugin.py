"""Registration: thin plugin module, lazy package, the three specs."""

from __future__ import annotations

import subprocess
import sys

import sbiplug


def test_plugin_contributes_its_three_specs():
    assert sbiplug.estimators()["npe_mmd"].plugin == "misspec"
    assert sbiplug.diagnostics()["misspecification"].plugin == "misspec"
    assert sbiplug.simulators()["gaussian_means"].has_reference_posterior


def test_importing_the_plugin_does_not_import_torch():
    code = (
        "import sys, sbiplug_misspec.plugin, sbiplug_misspec; "
        "assert 'torch' not in sys.modules and 'sbi' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
