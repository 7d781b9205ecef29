"""sbiplug_fff: free-form flows (FFF), injective (FIF) and manifold (M-FFF) ones for sbi.

Draxler et al., *Free-form Flows: Make Any Architecture a Normalizing Flow* (arXiv 2310.16624);
Sorrenson et al., *Lifting Architectural Constraints of Injective Flows* (arXiv 2306.01843);
Sorrenson et al., *Learning Distributions on Manifolds with Free-form Flows* (arXiv 2312.09852).

Attributes are imported lazily so that loading the plugin (``sbiplug_fff.plugin``) does not
import torch or sbi.
"""

from __future__ import annotations

from sbiplug.toolkit import lazy_exports

__all__ = [
    "ConditionalMixtureLatent",
    "FIFManifoldDiagnostic",
    "FIFSummary",
    "FreeFormFlow",
    "FreeFormInjectiveFlow",
    "FreeFormNPE",
    "ManifoldFreeFormFlow",
    "ManifoldNPE",
    "ProductVonMises",
    "UniformManifold",
    "VonMisesFisher",
    "Waveform",
    "build_fff",
    "build_mfff",
    "fit_flow",
    "fit_injective_flow",
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
        "FIFManifoldDiagnostic": ".manifold_check",
        "FIFSummary": ".summaries",
        "FreeFormInjectiveFlow": ".injective",
        "Waveform": ".simulators.waveform",
        "fit_injective_flow": ".injective_fit",
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
