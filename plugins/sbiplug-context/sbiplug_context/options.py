"""Estimator options for NaN-padded set data: a registered set encoder, sbi's z-scoring off.

Padded sets hold NaN, which sbi's z-scoring of x cannot take; the set encoders standardise
their input themselves (:mod:`sbiplug_context.encoders`), so each estimator's own x z-scoring
is switched off here, under the option name that estimator uses. NPE gets zuko's MAF
(:data:`SET_FLOWS`): sbi's default nflows MAF behind a set encoder sometimes stalls far from
the posterior.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SET_FLOWS", "Z_SCORE_OFF", "set_estimator_options"]

#: How each supported estimator is told not to z-score x.
Z_SCORE_OFF: dict[str, dict[str, Any]] = {
    "npe": {"z_score_x": "none"},
    "cmpe": {"z_score_x": False},
    "npe_mmd": {"density_estimator_options": {"z_score_x": "none"}},
}
#: The density estimator each estimator gets for set data, where it differs from its default.
SET_FLOWS: dict[str, dict[str, Any]] = {"npe": {"density_estimator": "zuko_maf"}}
ENCODERS = ("set_deepsets", "set_transformer")


def set_estimator_options(
    estimator: str = "npe",
    simulator: Any = None,
    *,
    encoder: str = "set_deepsets",
    element_dim: int | None = None,
    max_trials: int | None = None,
    min_trials: int | None = None,
    **encoder_options: Any,
) -> dict[str, Any]:
    """``estimator_options`` (JSON) that train ``estimator`` on padded sets with a set encoder.

    Arguments:
        estimator: ``"npe"``, ``"cmpe"`` or ``"npe_mmd"``.
        simulator: A set simulator (:class:`~sbiplug_context.SetSimulator`) to read
            ``element_dim``, ``min_trials`` and ``max_trials`` from.
        encoder: ``"set_deepsets"`` or ``"set_transformer"``.
        element_dim, max_trials, min_trials: Given explicitly instead of a simulator.
        encoder_options: Further options of the encoder (``output_dim``, ...).

    Returns:
        ``{"embedding_net": {"name": encoder, "options": {...}}, <z-scoring off>}``, plus
        ``density_estimator="zuko_maf"`` for NPE.
    """
    if estimator not in Z_SCORE_OFF:
        raise ValueError(
            f"set_estimator_options: estimator must be one of {', '.join(map(repr, Z_SCORE_OFF))}"
            f", got {estimator!r}"
        )
    if encoder not in ENCODERS:
        raise ValueError(
            f"set_estimator_options: encoder must be one of {', '.join(map(repr, ENCODERS))}, "
            f"got {encoder!r}"
        )
    shape = {
        "element_dim": element_dim if element_dim is not None else _from(simulator, "element_dim"),
        "max_trials": max_trials if max_trials is not None else _from(simulator, "max_trials"),
        "min_trials": min_trials if min_trials is not None else _from(simulator, "min_trials", 1),
    }
    return {
        "embedding_net": {"name": encoder, "options": {**shape, **encoder_options}},
        **Z_SCORE_OFF[estimator],
        **SET_FLOWS.get(estimator, {}),
    }


def _from(simulator: Any, name: str, default: Any = None) -> Any:
    value = getattr(simulator, name, default)
    if value is None:
        raise ValueError(
            f"set_estimator_options: give {name}= or a set simulator that has it "
            f"(got simulator {simulator!r})"
        )
    return int(value)
