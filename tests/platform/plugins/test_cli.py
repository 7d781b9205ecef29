"""The ``sbiplug`` command: plugin listing and name listing."""

from __future__ import annotations

import json
import subprocess
import sys

from sbiplug.cli import main


def test_plugins_json_lists_builtins_and_installed(capsys):
    assert main(["plugins", "--all", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["sbiplug.simulators"]["builtin"] is True
    assert "two_moons" in rows["sbiplug.simulators"]["contributions"]["simulators"]
    for plugin in ("cmpe", "misspec", "trade", "fff", "ood"):
        assert rows[plugin]["status"] == "loaded", rows[plugin]


def test_plugins_without_all_hides_builtins(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "sbiplug.simulators" not in out
    assert "cmpe" in out


def test_list_kinds(capsys):
    assert main(["list", "simulators"]) == 0
    out = capsys.readouterr().out
    assert "two_moons" in out and "sbiplug.simulators" in out
    assert main(["list", "estimators", "--json"]) == 0
    names = {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert {"npe", "nle", "nre", "fmpe", "npse"} <= names


def test_module_entry_point_and_bad_kind():
    result = subprocess.run(
        [sys.executable, "-m", "sbiplug", "list", "widgets"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "invalid choice: 'widgets'" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "sbiplug", "list", "simulators"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "slcp" in result.stdout
