"""The ``environment_extrapolation`` diagnostic: is an observed set unlike the simulated ones?

Runs by itself in every study whose estimator has a set encoder (requirement ``set_encoder``).
It embeds training simulations with the trained encoder, fits an
:class:`~sbiplug_context.extrapolation.EnvironmentScore`, calibrates its threshold on fresh
simulations at the false-alarm rate α, and flags observations beyond it (Müller et al.,
arXiv 2312.10107: warn about unwarranted extrapolation). A flagged observation's posterior is an
extrapolation of the network and should not be trusted.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import xarray as xr

from sbiplug import Diagnostic, DiagnosticContext, DiagnosticResult
from sbiplug.toolkit import (
    DiagnosticInputError,
    check_float,
    check_positive_int,
    figure_and_axes,
    require_observations,
    require_simulator,
    significance,
)
from sbiplug_context.encoders import find_set_encoder
from sbiplug_context.extrapolation import EnvironmentScore, embed_sets, false_alarm_bounds

__all__ = ["EnvironmentExtrapolation", "ExtrapolationWarning"]


class ExtrapolationWarning(UserWarning):
    """An observed set lies outside what the set encoder was trained on."""


class EnvironmentExtrapolation(Diagnostic):
    """Flag observations whose set embedding is beyond the calibrated Mahalanobis threshold.

    Arguments:
        false_alarm: α, the rate at which an in-distribution observation is flagged.
        num_fit: Training simulations the score is fitted on (at most).
        num_calibration: Fresh simulations the threshold is calibrated on.
    """

    name = "environment_extrapolation"

    def __init__(
        self, false_alarm: float = 0.05, num_fit: int = 2000, num_calibration: int = 1000
    ) -> None:
        owner = f"diagnostic {self.name!r}"
        self.false_alarm = check_float(
            "false_alarm", false_alarm, minimum=0, maximum=1, owner=owner
        )
        if not 0 < self.false_alarm < 1:
            raise ValueError(f"{owner}: false_alarm must lie in (0, 1), got {false_alarm}")
        self.num_fit = check_positive_int("num_fit", num_fit, owner=owner)
        self.num_calibration = check_positive_int("num_calibration", num_calibration, owner=owner)
        if self.num_fit < 2:
            raise ValueError(f"{owner}: num_fit must be at least 2, got {num_fit}")

    def run(self, context: DiagnosticContext) -> DiagnosticResult:
        simulator = require_simulator(context, self.name)
        observations = require_observations(context, self.name)
        encoder = find_set_encoder(context.estimator) or find_set_encoder(context.posterior)
        if encoder is None:
            raise DiagnosticInputError(
                f"diagnostic {self.name!r} needs an estimator whose embedding net is a set encoder"
                " ('set_deepsets' or 'set_transformer')"
            )
        if context.x is None or len(context.x) < 2:
            raise DiagnosticInputError(f"diagnostic {self.name!r} needs the training simulations")
        seed = 0 if context.seed is None else int(context.seed)
        rows = torch.randperm(len(context.x), generator=torch.Generator().manual_seed(seed))
        training = context.x[rows[: self.num_fit]]
        theta = simulator.sample_prior(self.num_calibration, seed=seed + 1)
        fresh = simulator.simulate(theta, seed=seed + 2)
        score = EnvironmentScore(self.false_alarm)
        score.fit(embed_sets(encoder, training)).calibrate(embed_sets(encoder, fresh))
        embedded = embed_sets(encoder, observations)
        scores, p_values = score.score(embedded), score.p_values(embedded)
        flagged = scores > score.threshold
        low, high = false_alarm_bounds(self.false_alarm, self.num_calibration)
        num_flagged = int(flagged.sum())
        message = (
            f"{num_flagged} of {len(observations)} observation(s) beyond the extrapolation "
            f"threshold {score.threshold:.3g} (false-alarm rate in [{low:.3f}, {high:.3f}] per "
            f"in-distribution observation; {self.num_calibration} calibration simulations)"
        )
        if num_flagged:
            warnings.warn(
                f"environment_extrapolation: {message}; their posteriors extrapolate the network",
                ExtrapolationWarning,
                stacklevel=2,
            )
        data = xr.Dataset(
            {
                "score": ("observation", scores.numpy()),
                "p_value": ("observation", p_values.numpy()),
                "flagged": ("observation", flagged.numpy().astype(np.int8)),
                "calibration_score": ("calibration", score.calibration_scores.numpy()),
            },
            attrs={
                "extrapolation_threshold": score.threshold,
                "false_alarm": self.false_alarm,
                "false_alarm_low": low,
            },
        )
        verdict: dict[str, Any] = significance(p_values.numpy(), self.false_alarm)
        return DiagnosticResult(
            name=self.name,
            statistic=float(scores.max()),
            **verdict,
            summary={
                "extrapolation_threshold": score.threshold,
                "num_flagged": float(num_flagged),
                "false_alarm_low": low,
                "false_alarm_high": high,
            },
            data=data,
            message=message,
        )

    def plot(self, result: DiagnosticResult, ax: Any = None) -> Any:
        """Calibration scores, the threshold and each observation's score."""
        figure, ax = figure_and_axes(ax, figsize=(5, 3.5))
        data = result.data
        ax.hist(
            np.asarray(data["calibration_score"].values),
            bins=40,
            color="0.7",
            label="held-out simulations",
        )
        ax.axvline(
            float(data.attrs["extrapolation_threshold"]), color="k", ls="--", label="threshold"
        )
        for value in np.asarray(data["score"].values):
            ax.axvline(float(value), color="C3", alpha=0.8)
        ax.set_xlabel("squared Mahalanobis distance of the set embedding")
        ax.set_ylabel("count")
        ax.legend(fontsize=8)
        return figure
