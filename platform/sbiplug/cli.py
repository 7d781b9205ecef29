"""The ``sbiplug`` command: list plugins and contributions, run and report studies.

User errors (bad names, bad TOML, bad options) print one clear line and exit with status 2;
no Python traceback. Subcommands are added with :func:`add_command` by the modules that own them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from sbiplug.errors import PluginConflictError, UnknownNameError
from sbiplug.plugins import get_plugin_manager

__all__ = ["UserError", "main"]

KINDS = ("simulators", "estimators", "diagnostics", "targets")


class UserError(Exception):
    """An error in what the user asked for; printed without a traceback."""


def _cmd_plugins(args: argparse.Namespace) -> int:
    infos = get_plugin_manager().plugins()
    if not args.all:
        infos = [info for info in infos if not info.builtin]
    if args.json:
        print(json.dumps([info.to_dict() for info in infos], indent=2))
        return 0
    if not infos:
        print("no plugins installed (use --all to include built-ins)")
        return 0
    width = max(len(info.name) for info in infos)
    for info in infos:
        contributed = "; ".join(
            f"{kind}: {', '.join(names)}" for kind, names in info.contributions.items()
        )
        status = info.status if info.status != "failed" else f"failed: {info.error}"
        version = info.version or "-"
        hooks = ", ".join(info.hooks) or "-"
        print(f"{info.name:<{width}}  {version:<8}  {status}")
        if info.status == "loaded":
            print(f"{'':<{width}}  hooks: {hooks}")
            if contributed:
                print(f"{'':<{width}}  {contributed}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    specs = get_plugin_manager().specs(args.kind)
    if args.json:
        rows = [
            {"name": s.name, "plugin": s.plugin, "description": s.description}
            for s in specs.values()
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not specs:
        print(f"no {args.kind} registered")
        return 0
    width = max(len(name) for name in specs)
    plugin_width = max(len(spec.plugin) for spec in specs.values())
    for spec in specs.values():
        print(f"{spec.name:<{width}}  {spec.plugin:<{plugin_width}}  {spec.description}")
    return 0


_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def add_command(register: Callable[[argparse._SubParsersAction], None]) -> None:
    """Add a subcommand; ``register(subparsers)`` must set ``func`` on its parser."""
    _EXTRA_COMMANDS.append(register)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sbiplug", description="Plugin platform for simulation-based inference."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)

    plugins = subparsers.add_parser("plugins", help="list installed plugins")
    plugins.add_argument("--all", action="store_true", help="include the built-in plugins")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.set_defaults(func=_cmd_plugins)

    listing = subparsers.add_parser("list", help="list simulators, estimators, ...")
    listing.add_argument("kind", choices=KINDS)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=_cmd_list)

    _register_study_commands(subparsers)
    for register in _EXTRA_COMMANDS:
        register(subparsers)
    return parser


def _register_study_commands(subparsers: argparse._SubParsersAction) -> None:
    try:
        from sbiplug import study_cli
    except ImportError:  # the Study commands are optional until their module exists
        return
    study_cli.register(subparsers)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, UnknownNameError, PluginConflictError, FileNotFoundError) as error:
        print(f"sbiplug: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sbiplug: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
