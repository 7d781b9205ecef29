"""Every plugin's ``plugin.py`` is thin: importing it and calling its hooks imports no torch.

One case per installed ``sbiplug`` entry point (whatever is installed: none in a host-only
environment) and per built-in plugin, each in a fresh interpreter so that nothing imported by
other tests hides an import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from sbiplug.plugins import BUILTIN_PLUGINS

HEAVY = ("torch", "sbi")
PLUGINS = {f"builtin:{name}": module for name, module in BUILTIN_PLUGINS.items()}
for _ep in entry_points(group="sbiplug"):
    if _ep.value not in PLUGINS.values():  # the same entry point seen twice is one plugin
        _id = _ep.name if _ep.name not in PLUGINS else f"{_ep.name}@{_ep.dist and _ep.dist.name}"
        PLUGINS[_id] = _ep.value

# Runs in the fresh interpreter: load the entry point's object as importlib.metadata would,
# call every contribution hook it has, print the heavy modules that got imported.
PROBE = """
import importlib, json, sys
from sbiplug.hookspecs import CONTRIBUTION_HOOKS

module_name, _, attribute = sys.argv[1].partition(":")
plugin = importlib.import_module(module_name)
for part in filter(None, attribute.split(".")):
    plugin = getattr(plugin, part)
called = []
for hook in CONTRIBUTION_HOOKS.values():
    function = getattr(plugin, hook, None)
    if function is not None:
        specs = list(function() or ())
        called.append([hook, [spec.name for spec in specs]])
heavy = [name for name in json.loads(sys.argv[2]) if name in sys.modules]
print(json.dumps({"called": called, "heavy": heavy}))
"""


@pytest.mark.parametrize("target", list(PLUGINS.values()), ids=list(PLUGINS))
def test_plugin_module_and_hooks_import_no_torch(target):
    result = subprocess.run(
        [sys.executable, "-c", PROBE, target, json.dumps(HEAVY)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["called"], f"{target} implements no contribution hook"
    assert all(names for _, names in report["called"]), report
    assert report["heavy"] == [], f"importing {target} and calling its hooks imported {report}"
