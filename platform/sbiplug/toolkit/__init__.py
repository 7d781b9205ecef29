"""sbiplug.toolkit: the documented helper API for plugin authors.

Everything a plugin needs beyond the top-level ``sbiplug`` API is imported from here
(``from sbiplug.toolkit import check_positive_int, Standardize``); the submodules are the
implementation. Each name loads its module (and torch, NumPy, matplotlib) on first use.

- Validation (:mod:`~sbiplug.toolkit.validation`): :class:`OptionError`, :func:`check_int`,
  :func:`check_positive_int`, :func:`check_float`, :func:`check_positive`,
  :func:`check_probability`; ranges declared in annotations (:mod:`~sbiplug.toolkit.constraints`):
  :class:`Interval`, :data:`Positive`, :data:`NonNegative`, :data:`Probability`,
  :data:`Unconstrained`.
- Random numbers (:mod:`~sbiplug.toolkit.rng`): :data:`SeedLike`, :func:`as_generator`,
  :func:`seeded`, :func:`derive_seed`, :func:`ensure_seed`, :func:`seed_all`.
- Standardisation (:mod:`~sbiplug.toolkit.standardize`): :class:`Standardize`,
  :func:`z_score_moments`, :data:`SCALE_FLOOR`.
- Trainer defaults, pretraining (``training``, ``pretraining``): :func:`trainer_options`,
  :func:`default_tracker`, :class:`NullTracker`, :func:`pretrain_embedding_net`.
- Diagnostics (:mod:`~sbiplug.toolkit.diagnostic_inputs`, :mod:`~sbiplug.toolkit.figures`,
  :mod:`~sbiplug.toolkit.diagnostic_results`, :mod:`~sbiplug.toolkit.pvalue`): context
  plumbing, :class:`DiagnosticInputError`, :func:`figure_and_axes`, :func:`significance`,
  :func:`monte_carlo_p_value`, :func:`bonferroni_p_value`.
- Simulators (:mod:`~sbiplug.toolkit.simulators`, :mod:`~sbiplug.toolkit.names`):
  :func:`check_num_samples`, :func:`as_observation`, :func:`default_parameter_names`.
- Files and packages: :func:`atomic_write`, :func:`atomic_write_text`, :func:`atomic_folder`,
  :func:`lazy_exports` (for a plugin's own ``__init__.py``, as here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sbiplug.toolkit.lazy import lazy_exports

if TYPE_CHECKING:
    from sbiplug.toolkit.atomic import atomic_folder, atomic_write, atomic_write_text
    from sbiplug.toolkit.constraints import (
        Interval,
        NonNegative,
        Positive,
        Probability,
        Unconstrained,
    )
    from sbiplug.toolkit.diagnostic_inputs import (
        HELD_OUT_KEY,
        DiagnosticInputError,
        calibration_pairs,
        parameter_names,
        posterior_draws,
        require_observations,
        require_posterior,
        require_simulator,
        resolve_progress,
        resolve_seed,
    )
    from sbiplug.toolkit.diagnostic_results import significance
    from sbiplug.toolkit.figures import figure_and_axes, require_variables
    from sbiplug.toolkit.names import default_parameter_names, parameter_names_or_default
    from sbiplug.toolkit.pretraining import (
        PRETRAIN_METHOD,
        pretrain_embedding_net,
        skip_pretraining,
    )
    from sbiplug.toolkit.pvalue import bonferroni_p_value, monte_carlo_p_value
    from sbiplug.toolkit.rng import (
        SeedLike,
        as_generator,
        derive_seed,
        ensure_seed,
        seed_all,
        seeded,
    )
    from sbiplug.toolkit.simulators import as_observation, check_num_samples
    from sbiplug.toolkit.standardize import SCALE_FLOOR, Standardize, z_score_moments
    from sbiplug.toolkit.training import (
        DEFAULT_DEVICE,
        DEFAULT_SHOW_PROGRESS_BARS,
        NullTracker,
        default_tracker,
        trainer_options,
    )
    from sbiplug.toolkit.validation import (
        OptionError,
        check_float,
        check_int,
        check_positive,
        check_positive_int,
        check_probability,
    )

__all__ = [
    "DEFAULT_DEVICE",
    "DEFAULT_SHOW_PROGRESS_BARS",
    "HELD_OUT_KEY",
    "PRETRAIN_METHOD",
    "SCALE_FLOOR",
    "DiagnosticInputError",
    "Interval",
    "NonNegative",
    "NullTracker",
    "OptionError",
    "Positive",
    "Probability",
    "SeedLike",
    "Standardize",
    "Unconstrained",
    "as_generator",
    "as_observation",
    "atomic_folder",
    "atomic_write",
    "atomic_write_text",
    "bonferroni_p_value",
    "calibration_pairs",
    "check_float",
    "check_int",
    "check_num_samples",
    "check_positive",
    "check_positive_int",
    "check_probability",
    "default_parameter_names",
    "default_tracker",
    "derive_seed",
    "ensure_seed",
    "figure_and_axes",
    "lazy_exports",
    "monte_carlo_p_value",
    "parameter_names",
    "parameter_names_or_default",
    "posterior_draws",
    "pretrain_embedding_net",
    "require_observations",
    "require_posterior",
    "require_simulator",
    "require_variables",
    "resolve_progress",
    "resolve_seed",
    "seed_all",
    "seeded",
    "significance",
    "skip_pretraining",
    "trainer_options",
    "z_score_moments",
]

_MODULES = {
    ".atomic": ("atomic_folder", "atomic_write", "atomic_write_text"),
    ".constraints": ("Interval", "NonNegative", "Positive", "Probability", "Unconstrained"),
    ".diagnostic_inputs": (
        "HELD_OUT_KEY",
        "DiagnosticInputError",
        "calibration_pairs",
        "parameter_names",
        "posterior_draws",
        "require_observations",
        "require_posterior",
        "require_simulator",
        "resolve_progress",
        "resolve_seed",
    ),
    ".diagnostic_results": ("significance",),
    ".figures": ("figure_and_axes", "require_variables"),
    ".names": ("default_parameter_names", "parameter_names_or_default"),
    ".pretraining": ("PRETRAIN_METHOD", "pretrain_embedding_net", "skip_pretraining"),
    ".pvalue": ("bonferroni_p_value", "monte_carlo_p_value"),
    ".rng": ("SeedLike", "as_generator", "derive_seed", "ensure_seed", "seed_all", "seeded"),
    ".simulators": ("as_observation", "check_num_samples"),
    ".standardize": ("SCALE_FLOOR", "Standardize", "z_score_moments"),
    ".training": (
        "DEFAULT_DEVICE",
        "DEFAULT_SHOW_PROGRESS_BARS",
        "NullTracker",
        "default_tracker",
        "trainer_options",
    ),
    ".validation": (
        "OptionError",
        "check_float",
        "check_int",
        "check_positive",
        "check_positive_int",
        "check_probability",
    ),
}

__getattr__, __dir__ = lazy_exports(
    __name__, {name: module for module, names in _MODULES.items() for name in names}
)
