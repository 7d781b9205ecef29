"""sbiplug_fff: free-form flows (FFF) and manifold free-form flows (M-FFF) for sbi.

Draxler et al., *Free-form Flows: Make Any Architecture a Normalizing Flow* (arXiv 2310.16624);
Sorrenson et al., *Learning Distributions on Manifolds with Free-form Flows* (arXiv 2312.09852).

Attributes are imported lazily so that loading the plugin (``sbiplug_fff.plugin``) does not
import torch or sbi.
"""

from __future__ import annotations

from sbiplug.toolkit import lazy_exports

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

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ConditionalMixtureLatent": ".latents",
        "FreeFormFlow": ".flow",
        "ManifoldFreeFormFlow": ".flow",
        "FreeFormNPE": ".estimator",
        "ManifoldNPE": ".estimator",
        "build_fff": ".estimator",
        "build_mfff": ".estimator",
        "make_fff": ".estimator",
        "make_mfff": ".estimator",
        "ProductVonMises": ".distributions",
        "UniformManifold": ".distributions",
        "VonMisesFisher": ".distributions",
        "fit_flow": ".fit",
        "get_manifold": ".manifolds",
        "so3": ".manifolds",
        "sphere": ".manifolds",
        "torus": ".manifolds",
    },
)
