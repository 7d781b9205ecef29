"""sbiplug: a plugin platform for simulation-based inference on top of sbi.

Simulators, estimators, diagnostics and targets come from plugins registered through the
``sbiplug`` entry-point group; results are xarray DataTrees that ArviZ reads. Importing this
package is cheap: torch and sbi load only when something needs them.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

from sbiplug.errors import PluginConflictError, SbiplugPluginWarning, UnknownNameError
from sbiplug.hookspecs import hookimpl
from sbiplug.registry import (
    diagnostics,
    estimators,
    make_diagnostic,
    make_estimator,
    make_simulator,
    make_target,
    simulators,
    targets,
)
from sbiplug.specs import DiagnosticSpec, EstimatorSpec, SimulatorSpec, TargetSpec

if TYPE_CHECKING:
    from sbiplug.diagnostic import Diagnostic, DiagnosticContext, DiagnosticResult
    from sbiplug.results import StudyResult
    from sbiplug.simulation import SimulationOptions
    from sbiplug.simulator import Simulator
    from sbiplug.study import Study
    from sbiplug.target import Target

__version__ = "0.1.0"

__all__ = [
    "Diagnostic",
    "DiagnosticContext",
    "DiagnosticResult",
    "DiagnosticSpec",
    "EstimatorSpec",
    "PluginConflictError",
    "SbiplugPluginWarning",
    "SimulationOptions",
    "Simulator",
    "SimulatorSpec",
    "Study",
    "StudyResult",
    "Target",
    "TargetSpec",
    "UnknownNameError",
    "__version__",
    "diagnostics",
    "estimators",
    "hookimpl",
    "make_diagnostic",
    "make_estimator",
    "make_simulator",
    "make_target",
    "simulators",
    "targets",
]

# Attributes whose modules import torch: loaded on first access.
_LAZY = {
    "Simulator": "sbiplug.simulator",
    "Diagnostic": "sbiplug.diagnostic",
    "DiagnosticContext": "sbiplug.diagnostic",
    "DiagnosticResult": "sbiplug.diagnostic",
    "Target": "sbiplug.target",
    "Study": "sbiplug.study",
    "StudyResult": "sbiplug.results",
    "SimulationOptions": "sbiplug.simulation",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sbiplug' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


class _SbiplugPackage(types.ModuleType):
    """Keeps ``sbiplug.simulators()`` & co. callable.

    The built-in subpackages ``sbiplug.simulators``, ``.estimators`` and ``.diagnostics`` share
    their names with the public listing functions, and importing a subpackage would rebind the
    package attribute to the module. The subpackages stay importable through ``sys.modules``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LISTING_FUNCTIONS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # pickle by reference, as for plain modules (cloudpickle ships user simulators to dask)
        return import_module, (self.__name__,)


_LISTING_FUNCTIONS = frozenset({"simulators", "estimators", "diagnostics", "targets"})
sys.modules[__name__].__class__ = _SbiplugPackage
