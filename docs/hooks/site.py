"""mkdocs hooks: the API reference follows each package's ``__all__``; benchmark outputs ship.

- ``<!-- api: package -->`` in a page becomes one mkdocstrings entry per name in the package's
  ``__all__``, at the module that defines it, so a renamed or moved name cannot go stale in the
  docs. Names re-exported from another library (sbi) are listed, not rendered.
- ``<!-- options: module:factory -->`` becomes a table of the factory's keyword options with
  their defaults, read from its signature, and the first line of each one's docstring entry.
- ``benchmarks/results/*.txt`` are served as ``benchmarks/<name>.txt``, so pages link the raw
  benchmark outputs and the link checker sees them.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import warnings
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
OURS = (
    "sbiplug",
    "sbiplug_cmpe",
    "sbiplug_misspec",
    "sbiplug_trade",
    "sbiplug_fff",
    "sbiplug_ood",
    "sbiplug_flowanalysis",
    "sbiplug_distances",
    "sbiplug_context",
)
MARKER = re.compile(r"<!-- api: ([\w.]+) -->")
ROLE = re.compile(r":\w+:`~?([^`]+)`")  # reST roles such as :func:`x` read as code
OPTIONS = re.compile(r"<!-- options: ([\w.]+):([\w.]+) -->")
ARGUMENT = re.compile(r"^\s{0,8}(\w+(?:, \w+)*),?(?: \([^)]*\))?: (.+)$")


def on_files(files, config):
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.txt")):
        files.append(File.generated(config, f"benchmarks/{path.name}", abs_src_path=str(path)))
    return files


def _location(package: str, name: str, value: object) -> str | None:
    """Dotted path of the object where it is defined, or None when another library owns it."""
    if inspect.ismodule(value):
        return value.__name__
    module = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str) and "<" not in qualname:
        return f"{module}.{qualname}" if module.split(".")[0] in OURS else None
    for candidate in sorted(sys.modules):  # constants and aliases: a module that holds them
        if candidate.startswith(package + ".") and vars(sys.modules[candidate]).get(name) is value:
            return f"{candidate}.{name}"
    return f"{package}.{name}"


def _api(package: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = importlib.import_module(package)
        values = {name: getattr(module, name) for name in module.__all__}
    entries, foreign = [], []
    for name, value in values.items():
        if name.startswith("_"):
            continue
        location = _location(package, name, value)
        if location is None:
            foreign.append(f"- `{name}`: re-exported from `{value.__module__}`")
        else:
            entries.append(f"::: {location}\n")
    if foreign:
        entries.append("## Re-exported\n\n" + "\n".join(foreign) + "\n")
    return "\n".join(entries)


def _documented(docstring: str) -> dict[str, str]:
    """Each ``name: text`` entry of a docstring's ``Arguments:`` section, as one line."""
    meanings: dict[str, str] = {}
    inside, names, indent = False, [], 0
    for line in (docstring or "").splitlines():
        stripped = line.strip()
        depth = len(line) - len(line.lstrip())
        if stripped in ("Arguments:", "Args:", "Parameters:"):
            inside, names = True, []
        elif not inside or not stripped:
            continue
        elif names and depth > indent:  # a continuation line of the current entry
            for name in names:
                meanings[name] += " " + stripped
        elif match := ARGUMENT.match(line):
            names = [name.strip() for name in match.group(1).split(",") if name.strip()]
            indent = depth
            for name in names:
                meanings[name] = match.group(2).strip()
        elif depth <= 4:  # the next section (Returns:, Raises:, ...)
            inside = False
    return meanings


def _options(module_name: str, attribute: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        factory = importlib.import_module(module_name)
        for part in attribute.split("."):
            factory = getattr(factory, part)
    function = factory.__init__ if inspect.isclass(factory) else factory
    meanings = _documented(inspect.getdoc(factory) or "")
    meanings.update(_documented(inspect.getdoc(function) or ""))
    rows = ["| option | default | meaning |", "|---|---|---|"]
    for name, parameter in inspect.signature(function).parameters.items():
        if name in ("self", "prior") or parameter.kind in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
        ):
            continue
        default = "required" if parameter.default is parameter.empty else f"`{parameter.default!r}`"
        meaning = ROLE.sub(r"`\1`", meanings.get(name, "")).replace("|", "\\|")
        rows.append(f"| `{name}` | {default} | {meaning} |")
    return "\n".join(rows) + "\n"


def on_page_markdown(markdown, page, config, files):
    markdown = OPTIONS.sub(lambda match: _options(match.group(1), match.group(2)), markdown)
    return MARKER.sub(lambda match: _api(match.group(1)), markdown)
