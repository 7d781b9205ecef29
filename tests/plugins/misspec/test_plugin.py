"""Registration: the three specs (that plugin.py imports no torch is a platform test)."""

from __future__ import annotations

import sbiplug


def test_plugin_contributes_its_three_specs():
    assert sbiplug.estimators()["npe_mmd"].plugin == "misspec"
    assert sbiplug.diagnostics()["misspecification"].plugin == "misspec"
    assert sbiplug.simulators()["gaussian_means"].has_reference_posterior
