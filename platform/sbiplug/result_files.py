"""Reading a saved result: checks that name what is wrong, and the simulator rebuilt by name.

A result file is a netCDF DataTree of :mod:`sbiplug.result_layout`; whatever is not such a file
(corrupt, truncated, foreign, a newer layout) fails with :class:`ResultFileError`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sbiplug.errors import UserError

if TYPE_CHECKING:
    import xarray as xr

    from sbiplug.simulator import Simulator

__all__ = [
    "REQUIRED_GROUPS",
    "ResultFileError",
    "check_layout",
    "rebuild_simulator",
    "unsaved_warning",
]

REQUIRED_GROUPS = ("posterior", "observed_data")


class ResultFileError(UserError, ValueError):
    """A result file that is not a readable sbiplug result: corrupt, truncated or foreign."""


def check_layout(tree: xr.DataTree, path: Path) -> None:
    """Raise :class:`ResultFileError` unless ``tree`` has what :meth:`StudyResult.load` reads."""
    where = f"not a sbiplug result: {str(path)!r}"
    if tree.attrs.get("created_by") != "sbiplug":
        raise ResultFileError(f"{where} was not written by sbiplug (no created_by = 'sbiplug')")
    for attribute in ("provenance", "parameter_names"):
        try:
            json.loads(tree.attrs[attribute])
        except (KeyError, TypeError, ValueError):
            raise ResultFileError(f"{where} lacks a readable {attribute!r} attribute") from None
    groups = set(tree.children)
    for group in REQUIRED_GROUPS:
        if group not in groups:
            raise ResultFileError(
                f"{where} has no {group!r} group (it has: {', '.join(sorted(groups)) or 'none'})"
            )
    names = json.loads(tree.attrs["parameter_names"])
    variables = set(tree["posterior"].to_dataset().data_vars)
    missing = [name for name in names if name not in variables]
    if missing:
        raise ResultFileError(f"{where}: its 'posterior' group lacks parameters {missing}")


def unsaved_warning(estimator: str, unsaved: dict[str, str]) -> str:
    from sbiplug.embedding_nets import embedding_nets

    listed = ", ".join(f"{key} ({cls})" for key, cls in unsaved.items())
    again = ", ".join(f"{key!r}: ..." for key in unsaved)
    return (
        f"estimator {estimator!r}: {listed} is a module built outside sbiplug's registry and is "
        f"not saved; StudyResult.load needs it again, built as for training: "
        f"StudyResult.load(folder, estimator_options={{{again}}}). To save it by name, build it "
        f"with sbiplug.make_embedding_net (registered: {', '.join(sorted(embedding_nets()))})"
    )


def rebuild_simulator(provenance: dict[str, Any]) -> Simulator | None:
    name = provenance.get("simulator", "custom")
    if name == "custom":
        return None
    from sbiplug.registry import make_simulator

    try:
        return make_simulator(name, **provenance.get("simulator_options", {}))
    except Exception as error:  # a result must load even where its plugin is gone
        warnings.warn(f"could not rebuild simulator {name!r}: {error}", stacklevel=3)
        return None
