"""The ``sbiplug`` command: plugin listing and name listing."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from importlib.metadata import entry_points, version

import sbiplug
from sbiplug import cli
from sbiplug.cli import main

INSTALLED: dict = {}  # name -> entry point, the first found as importlib finds it; {} host-only
for _entry_point in entry_points(group="sbiplug"):
    INSTALLED.setdefault(_entry_point.name, _entry_point)

BROKEN_PARTS = """
    import sbiplug

    @sbiplug.hookimpl
    def register_simulators():
        yield sbiplug.SimulatorSpec(name="two_moons", factory="builtins:dict")
        yield sbiplug.SimulatorSpec(name="phantom", factory="phantom_package_xyz:Model")
"""


def test_plugins_json_lists_builtins_and_installed(capsys):
    assert main(["plugins", "--all", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["sbiplug.simulators"]["builtin"] is True
    assert "two_moons" in rows["sbiplug.simulators"]["contributions"]["simulators"]
    for builtin in ("sbiplug.simulators", "sbiplug.estimators", "sbiplug.diagnostics"):
        assert rows[builtin]["distribution"] == "sbiplug"
        assert rows[builtin]["version"] == version("sbiplug")
    for name, entry_point in INSTALLED.items():
        assert rows[name]["status"] == "loaded", rows[name]
        assert rows[name]["distribution"] == entry_point.dist.name
        assert rows[name]["version"] == entry_point.dist.version


def test_plugins_without_all_hides_builtins(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "sbiplug.simulators" not in out
    if not INSTALLED:
        assert "no plugins installed" in out
    for name, entry_point in INSTALLED.items():
        line = next(line for line in out.splitlines() if line.startswith(f"{name} "))
        assert f"{entry_point.dist.name} {entry_point.dist.version}" in line
        assert line.rstrip().endswith("loaded")


def test_plugins_shows_conflicts_and_failed_specs(
    install, quiet_manager, installed_as_current, capsys
):
    install("parts-dist", {"parts": "parts_plugin"}, {"parts_plugin": BROKEN_PARTS})
    installed_as_current(quiet_manager({"SBIPLUG_LOAD_PLUGINS": "parts"}))
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["parts", "parts-dist", "1.2.3", "loaded"]
    assert (
        "conflict: simulator 'two_moons' is also contributed by plugin 'sbiplug.simulators'" in out
    )
    assert "failed: simulator 'phantom': no module named 'phantom_package_xyz'" in out
    assert main(["list", "simulators"]) == 0
    out = capsys.readouterr().out
    assert "unavailable: two_moons (contributed by plugins sbiplug.simulators, parts)" in out
    assert "unavailable: phantom (plugin parts: no module named 'phantom_package_xyz')" in out
    assert main(["plugins", "--json"]) == 0
    row = {row["name"]: row for row in json.loads(capsys.readouterr().out)}["parts"]
    assert row["failed_specs"] == {
        "simulators": {"phantom": "no module named 'phantom_package_xyz'"}
    }
    assert row["conflicts"] == {"simulators": {"two_moons": ["sbiplug.simulators"]}}


def test_requesting_a_broken_name_is_one_line_and_status_2(
    install, quiet_manager, installed_as_current, capsys
):
    install("parts-dist", {"parts": "parts_plugin"}, {"parts_plugin": BROKEN_PARTS})
    installed_as_current(quiet_manager({"SBIPLUG_LOAD_PLUGINS": "parts"}))

    def show(args: argparse.Namespace) -> int:
        sbiplug.make_simulator(args.name)
        return 0

    def add(subparsers: argparse._SubParsersAction) -> None:
        parser = subparsers.add_parser("show-simulator")
        parser.add_argument("name")
        parser.set_defaults(func=show)

    cli.add_command(add)
    try:
        for name, expected in [
            ("two_moons", "contributed by both plugin 'sbiplug.simulators' and plugin 'parts'"),
            ("phantom", "simulator 'phantom' of plugin 'parts' is unavailable"),
        ]:
            assert main(["show-simulator", name]) == 2
            err = capsys.readouterr().err
            assert err.startswith("sbiplug: error: ") and expected in err
            assert len(err.splitlines()) == 1
    finally:
        cli._EXTRA_COMMANDS.remove(add)


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


def test_a_closed_pipe_ends_quietly():
    # `sbiplug plugins --json | head -1`: the reader is gone before the first write, always
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "sbiplug", "plugins", "--all", "--json"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write_end)
    assert "BrokenPipeError" not in result.stderr and "Traceback" not in result.stderr
    assert result.stderr == ""
    assert result.returncode == 1
