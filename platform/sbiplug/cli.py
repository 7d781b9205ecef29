"""The ``sbiplug`` command: list plugins and contributions, run and report studies.

User errors (bad names, bad TOML, bad options, bad files) print one clear line on stderr and
exit with status 2, without a traceback; an internal error (a bug) keeps its traceback, adds one
line saying it is internal and exits with status 1. Subcommands are added with
:func:`add_command` by the modules that own them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from sbiplug import study_cli
from sbiplug.errors import (
    FactoryImportError,
    PluginConflictError,
    UnknownNameError,
    UserError,
)
from sbiplug.plugins import PluginInfo, get_plugin_manager
from sbiplug.specs import SPEC_KINDS
from sbiplug.toolkit.validation import OptionError

__all__ = ["UserError", "is_user_error", "main", "one_line"]

KINDS = ("simulators", "estimators", "diagnostics", "targets", "embedding_nets")


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
    origins = [f"{info.distribution} {info.version}".strip() or "-" for info in infos]
    width = max(len(info.name) for info in infos)
    origin_width = max(len(origin) for origin in origins)
    for info, origin in zip(infos, origins, strict=True):
        print(f"{info.name:<{width}}  {origin:<{origin_width}}  {_plugin_status(info)}")
        for line in _plugin_details(info):
            print(f"{'':<{width}}  {line}")
    return 0


def _plugin_status(info: PluginInfo) -> str:
    if info.status == "failed":
        return f"failed: {info.error}"
    if info.status == "disabled" and info.disabled_by:
        return f"disabled by {info.disabled_by}"
    return info.status


def _plugin_details(info: PluginInfo) -> list[str]:
    """Hooks, contributions, names shared with other plugins and specs that failed."""
    if info.status != "loaded":
        return []
    lines = [f"hooks: {', '.join(info.hooks) or '-'}"]
    contributed = "; ".join(
        f"{kind}: {', '.join(names)}" for kind, names in info.contributions.items()
    )
    if contributed:
        lines.append(contributed)
    for kind, names in info.conflicts.items():
        for name, others in names.items():
            also = ", ".join(repr(other) for other in others)
            lines.append(
                f"conflict: {SPEC_KINDS[kind].kind} {name!r} is also contributed by plugin "
                f"{also}: the name is disabled"
            )
    for kind, failed in info.failed_specs.items():
        for name, reason in failed.items():
            lines.append(f"failed: {SPEC_KINDS[kind].kind} {name!r}: {reason}")
    return lines


def _cmd_list(args: argparse.Namespace) -> int:
    manager = get_plugin_manager()
    specs = manager.specs(args.kind)
    if args.json:
        rows = [
            {"name": s.name, "plugin": s.plugin, "description": s.description}
            for s in specs.values()
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not specs:
        print(f"no {args.kind} registered")
    else:
        width = max(len(name) for name in specs)
        plugin_width = max(len(spec.plugin) for spec in specs.values())
        for spec in specs.values():
            print(f"{spec.name:<{width}}  {spec.plugin:<{plugin_width}}  {spec.description}")
    for name, plugins in manager.conflicts(args.kind).items():
        print(f"unavailable: {name} (contributed by plugins {', '.join(plugins)})")
    for name, error in manager.failed_specs(args.kind).items():
        print(f"unavailable: {name} (plugin {error.plugin}: {error.reason})")
    return 0


_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def add_command(register: Callable[[argparse._SubParsersAction], None]) -> None:
    """Add a subcommand; ``register(subparsers)`` must set ``func`` on its parser."""
    _EXTRA_COMMANDS.append(register)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (subcommands' parsers too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sbiplug", description="Plugin platform for simulation-based inference.")
    subparsers = parser.add_subparsers(dest="command", required=True)

    plugins = subparsers.add_parser("plugins", help="list installed plugins")
    plugins.add_argument("--all", action="store_true", help="include the built-in plugins")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.set_defaults(func=_cmd_plugins)

    listing = subparsers.add_parser("list", help="list simulators, estimators, ...")
    listing.add_argument("kind", choices=KINDS)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=_cmd_list)

    study_cli.register(subparsers)
    for register in _EXTRA_COMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sbiplug`` command; returns the exit status.

    0 on success, 2 for a user error (one line on stderr), 1 for an internal error (its
    traceback, then one line saying so), 130 when interrupted.
    """
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exit:  # --help, or a usage error already printed in one line
            return exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 2
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at exit
        return status
    except BrokenPipeError:
        # The reader went away (`sbiplug plugins --json | head -1`). As Python's docs advise,
        # point stdout at devnull so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("sbiplug: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if is_user_error(error):
            print(f"sbiplug: error: {one_line(str(error))}", file=sys.stderr)
            return 2
        traceback.print_exc()
        print(
            f"sbiplug: internal error ({type(error).__name__}): the traceback above is a bug in "
            "sbiplug or in a plugin, not a problem with your input; please report it",
            file=sys.stderr,
        )
        return 1


_USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError,
    UnknownNameError,
    PluginConflictError,
    FactoryImportError,
    OptionError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
)
# Raised by modules that import torch: looked up only once imported, so that `sbiplug plugins`
# stays light; an error of one of these types implies its module is loaded.
_LAZY_USER_ERRORS = (
    ("sbiplug.simulator", "SimulatorOutputError"),
    ("sbiplug.simulation", "SimulationFolderError"),
    ("sbiplug.study_inputs", "StudyError"),
)


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` is the user's (bad input: exit 2) rather than a bug (exit 1)."""
    if isinstance(error, _USER_ERRORS):
        return True
    for module_name, name in _LAZY_USER_ERRORS:
        module = sys.modules.get(module_name)
        kind = getattr(module, name, None) if module is not None else None
        if isinstance(kind, type) and isinstance(error, kind):
            return True
    return False


def one_line(message: str) -> str:
    """``message`` with its line breaks (and the indentation after them) folded into spaces."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


if __name__ == "__main__":
    raise SystemExit(main())
