"""sbiplug_flowanalysis: what a trained normalizing flow has learned, and what it can learn.

Manifold entropic metrics (Galperin & Köthe, *Analyzing Generative Models by Manifold Entropic
Metrics*, AISTATS 2025, arXiv 2410.19426) read a flow's decoder z -> theta | x_o through its
Jacobian columns: :func:`entropic_metrics` gives the entropy spectrum (a non-linear PCA), the
pairwise manifold mutual information (MPMI), the manifold total correlation and the full
entropy; :func:`manifold_mutual_information` and :func:`mcpmi` compare index sets and models.
:func:`latent_decoder` finds the decoder of sbi NPE flows (nflows, zuko), sbiplug-fff's free-form
flows and sbiplug-trade's flows; the diagnostic ``entropic_metrics`` asks of a study "how many
effective dimensions has my posterior?", and :class:`TotalCorrelationNPE` (estimator
``npe_total_correlation``) trains an NPE flow with the total-correlation regulariser.

Coupling flows and volume preservation (Draxler, Wahl, Schnörr, Köthe, *On the Universality of
Volume-Preserving and Coupling-Based Normalizing Flows*, ICML 2024, arXiv 2402.06578): the
diagnostic ``volume_preservation`` flags posterior flows whose |det J| is (nearly) constant;
:func:`fit_iterative_coupling` (estimator ``iterative_coupling``, :class:`IterativeCouplingNPE`)
builds a coupling flow layer by layer as in the universality proof; :class:`CouplingFlow` has
volume-preserving (GIN) or free-scale affine coupling blocks.

Importing this package is cheap: torch loads only when an attribute below is first used.
"""

from __future__ import annotations

from sbiplug.toolkit import lazy_exports

__all__ = [
    "AffineCoupling",
    "CouplingFlow",
    "EntropicMetrics",
    "EntropicMetricsDiagnostic",
    "IterativeCouplingFlow",
    "IterativeCouplingNPE",
    "LatentDecoder",
    "LatentDecoderProvider",
    "NoDecoderError",
    "TotalCorrelationNPE",
    "VolumePreservationDiagnostic",
    "VolumePreservationWarning",
    "build_coupling_flow",
    "build_iterative_coupling",
    "chi2_law_test",
    "coupling_gain",
    "decoder_jacobian",
    "entropic_metrics",
    "fit_coupling_flow",
    "fit_iterative_coupling",
    "jacobian_metrics",
    "latent_decoder",
    "make_iterative_coupling",
    "manifold_entropy",
    "manifold_mutual_information",
    "mcpmi",
    "mpmi",
    "per_sample_total_correlation",
    "total_correlation_penalty",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "decoder_jacobian": ".jacobians",
        "EntropicMetrics": ".metrics",
        "entropic_metrics": ".metrics",
        "jacobian_metrics": ".metrics",
        "manifold_entropy": ".metrics",
        "manifold_mutual_information": ".metrics",
        "mcpmi": ".metrics",
        "mpmi": ".metrics",
        "per_sample_total_correlation": ".metrics",
        "LatentDecoder": ".adapters",
        "LatentDecoderProvider": ".adapters",
        "NoDecoderError": ".adapters",
        "latent_decoder": ".adapters",
        "EntropicMetricsDiagnostic": ".diagnostic",
        "TotalCorrelationNPE": ".regularizer",
        "total_correlation_penalty": ".regularizer",
        "AffineCoupling": ".coupling_flow",
        "CouplingFlow": ".coupling_flow",
        "build_coupling_flow": ".coupling_flow",
        "fit_coupling_flow": ".coupling_flow",
        "IterativeCouplingFlow": ".iterative",
        "fit_iterative_coupling": ".iterative",
        "coupling_gain": ".iterative_layers",
        "IterativeCouplingNPE": ".iterative_npe",
        "build_iterative_coupling": ".iterative_npe",
        "make_iterative_coupling": ".iterative_npe",
        "VolumePreservationDiagnostic": ".volume",
        "VolumePreservationWarning": ".volume",
        "chi2_law_test": ".volume",
    },
)
