"""sbiplug_fff: free-form flows (FFF) and manifold free-form flows (M-FFF) for sbi.

Draxler et al., *Free-form Flows: Make Any Architecture a Normalizing Flow* (arXiv 2310.16624);
Sorrenson et al., *Learning Distributions on Manifolds with Free-form Flows* (arXiv 2312.09852).

Attributes are imported lazily so that loading the plugin (``sbiplug_fff.plugin``) does not
import torch or sbi.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ConditionalMixtureLatent",
    "FreeFormFlow",
    "FreeFormNPE",
    "ManifoldFreeFormFlow",
    "ManifoldNPE",
    "ProductVonMises",
    "UniformManifold",
    "VonMisesFisher",
    "build_fff",
    "build_mfff",
    "fit_flow",
    "get_manifold",
    "make_fff",
    "make_mfff",
    "so3",
    "sphere",
    "torus",
]

_LOCATIONS = {
    "ConditionalMixtureLatent": "latents",
    "FreeFormFlow": "flow",
    "ManifoldFreeFormFlow": "flow",
    "FreeFormNPE": "estimator",
    "ManifoldNPE": "estimator",
    "build_fff": "estimator",
    "build_mfff": "estimator",
    "make_fff": "estimator",
    "make_mfff": "estimator",
    "ProductVonMises": "distributions",
    "UniformManifold": "distributions",
    "VonMisesFisher": "distributions",
    "fit_flow": "fit",
    "get_manifold": "manifolds",
    "so3": "manifolds",
    "sphere": "manifolds",
    "torus": "manifolds",
}


def __getattr__(name: str) -> Any:
    if name not in _LOCATIONS:
        raise AttributeError(f"module 'sbiplug_fff' has no attribute {name!r}")
    module = importlib.import_module(f"sbiplug_fff.{_LOCATIONS[name]}")
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(__all__)
