"""sbiplug: a plugin platform for simulation-based inference on top of sbi.

Simulators, estimators, diagnostics and targets come from plugins registered through the
``sbiplug`` entry-point group; results are xarray DataTrees that ArviZ reads. Importing this
package is cheap: torch and sbi load only when something needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sbiplug.embedding_nets import embedding_nets, make_embedding_net
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
from sbiplug.specs import (
    DiagnosticSpec,
    EmbeddingNetSpec,
    EstimatorSpec,
    SimulatorSpec,
    TargetSpec,
)
from sbiplug.toolkit.lazy import lazy_exports

if TYPE_CHECKING:
    from sbiplug.density import density_estimator
    from sbiplug.diagnostic import Diagnostic, DiagnosticContext, DiagnosticResult
    from sbiplug.results import StudyResult
    from sbiplug.simulation import SimulationOptions
    from sbiplug.simulator import Simulator
    from sbiplug.study import Study
    from sbiplug.target import Target

__version__ = "0.2.0"

__all__ = [
    "Diagnostic",
    "DiagnosticContext",
    "DiagnosticResult",
    "DiagnosticSpec",
    "EmbeddingNetSpec",
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
    "density_estimator",
    "diagnostics",
    "embedding_nets",
    "estimators",
    "hookimpl",
    "make_diagnostic",
    "make_embedding_net",
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
    "density_estimator": "sbiplug.density",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
