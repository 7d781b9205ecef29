"""sbiplug_context: permutation-invariant set encoders, variable trial counts and context.

Müller, Kühmichel, Rohbeck, Radev, Köthe, *Towards Context-Aware Domain Generalization:
Representing Environments with Permutation-Invariant Networks* (arXiv 2312.10107). Offers:

- set encoders ``set_deepsets`` and ``set_transformer`` (registered embedding nets) over
  NaN-padded sets of varying size, for NPE, CMPE and npe_mmd (:func:`set_estimator_options`);
- set simulators with exact posteriors (``gaussian_sets``, ``mixed_effects``) and
  :func:`calibration_by_trial_count`;
- context-aware prediction f(X, φ(S)) (:class:`ContextRegressor`), the two necessary criteria
  (:func:`check_criteria`) and the model choice (:func:`choose_model`);
- the ``environment_extrapolation`` diagnostic (:class:`EnvironmentScore`).

Importing this package is cheap: torch loads only when an attribute below is first used.
"""

from __future__ import annotations

from sbiplug.toolkit import lazy_exports

_EXPORTS = {
    "ContextRegressor": "sbiplug_context.context_model",
    "CriteriaReport": "sbiplug_context.criteria",
    "DeepSetEncoder": "sbiplug_context.encoders",
    "EnvironmentExtrapolation": "sbiplug_context.diagnostic",
    "EnvironmentSCM": "sbiplug_context.scm",
    "EnvironmentScore": "sbiplug_context.extrapolation",
    "ExtrapolationWarning": "sbiplug_context.diagnostic",
    "GaussianSets": "sbiplug_context.simulators",
    "MixedEffects": "sbiplug_context.simulators",
    "SetEncoder": "sbiplug_context.encoders",
    "SetShapeError": "sbiplug_context.padding",
    "SetSimulator": "sbiplug_context.simulators",
    "SetTransformerEncoder": "sbiplug_context.encoders",
    "allow_missing_trials": "sbiplug.sbi_internals",
    "calibration_by_trial_count": "sbiplug_context.calibration",
    "check_criteria": "sbiplug_context.criteria",
    "choose_model": "sbiplug_context.criteria",
    "embed_sets": "sbiplug_context.extrapolation",
    "find_set_encoder": "sbiplug_context.encoders",
    "pad_sets": "sbiplug_context.padding",
    "random_sets": "sbiplug_context.context_model",
    "set_estimator_options": "sbiplug_context.options",
    "set_sizes": "sbiplug_context.padding",
    "simulate_with_trials": "sbiplug_context.calibration",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
