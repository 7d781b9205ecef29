"""TRADE: one normalizing flow for a family of distributions over an external condition.

S. Wahl, A. Rousselot, F. Draxler, H. Schopmans, U. Köthe, *TRADE: Transfer of Distributions
between External Conditions with Normalizing Flows*, arXiv 2410.19492. The flow q(x | c) is
trained as a boundary-value problem:

    L = lam_b * boundary(c0) + lam_trade(step) * E_c w(c) E_x rho(c * (d log q/dc - target(x, c)))

with the boundary term an NLL on samples at c0 (or a reverse KL at c0), plus, with samples, the
energy-matching term lam_e * Var_x[log q(x | c0) - log p~(x | c0)] (the log-variance divergence,
Richter et al., NeurIPS 2020); the target from :mod:`sbiplug_trade.residual`; c from the skewed
log-uniform curriculum; w(c) the causality weights; rho a Huber loss in log c; the loss ramped in
and clipped (:mod:`sbiplug_trade.schedule`). At the residual's conditions the importance weights
w ~ p~ / q of the flow's draws also give a mass-covering forward KL, lam_f * E_c[-sum_i w_i log
q(x_i | c)] (:func:`~sbiplug_trade.residual.importance_weighted_forward_kl`). Why each term is
there: docs/design/trade.md.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from sbiplug import Target
from sbiplug.toolkit import check_float, check_positive_int, seeded, z_score_moments
from sbiplug_trade.checks import check_condition, check_differentiable, condition_gradient
from sbiplug_trade.flow import ConditionalFlow
from sbiplug_trade.residual import (
    flow_condition_gradient_and_log_prob,
    importance_weighted_forward_kl,
    snis_condition_mean,
)
from sbiplug_trade.schedule import CausalityWeights, ConditionCurriculum, clip_loss, cosine_ramp

__all__ = ["TRADE"]

BOUNDARIES = ("samples", "reverse_kl")


@dataclass(frozen=True)
class _FitSettings:
    """The options of one :meth:`TRADE.fit` call (see its docstring)."""

    steps: int
    batch_size: int
    groups: int
    per_group: int
    data_per_group: int
    learning_rate: float
    boundary_weight: float
    energy_weight: float
    trade_weight: float
    forward_kl_weight: float
    pct_start: float
    huber_delta: float
    noise: float
    causality_epsilon: float
    causality_decay: float
    gradient_clip: float
    show_progress_bars: bool


class TRADE:
    """A conditional flow for ``target`` over its whole condition range.

    Arguments:
        target: The density family log p~(x | c) (differentiable in c).
        condition_range: Range to train on; the target's by default.
        latent: ``"auto"`` (temperature-scaled latent for temperature targets), ``"standard"``,
            ``"temperature"`` or ``"inverse_temperature"``.
        transforms: Spline transforms of the flow.
        hidden_features: Hidden widths of the hyper-networks.
        bins: Spline bins.
        spline_bound: Spline domain [-bound, bound] in standardised units.
        passes: Autoregressive passes (``None``: 2 for dim > 8 else fully autoregressive).
        seed: Seed of the initialisation and of all training randomness.
        show_progress_bars: Whether :meth:`fit` shows a progress bar.
    """

    def __init__(
        self,
        target: Target,
        *,
        condition_range: tuple[float, float] | None = None,
        latent: str = "auto",
        transforms: int = 4,
        hidden_features: tuple[int, ...] = (64, 64),
        bins: int = 8,
        spline_bound: float = 5.0,
        passes: int | None = None,
        seed: int = 0,
        show_progress_bars: bool = True,
    ) -> None:
        check_differentiable(target)
        self.target = target
        low, high = condition_range or target.condition_range
        if not 0 < low <= target.base_condition <= high:
            raise ValueError(
                f"TRADE on target {target.name!r}: condition_range {(low, high)} must be positive "
                f"and contain the base condition {target.base_condition}"
            )
        self.condition_range = (float(low), float(high))
        if latent == "auto":
            latent = getattr(target, "condition_kind", "standard")
            latent = latent if latent in ("temperature", "inverse_temperature") else "standard"
        self.flow_options: dict[str, Any] = {
            "latent": latent,
            "transforms": transforms,
            "hidden_features": tuple(hidden_features),
            "bins": bins,
            "spline_bound": spline_bound,
            "passes": passes if passes is not None else (2 if target.dim > 8 else None),
        }
        self.seed = seed
        self.show_progress_bars = show_progress_bars
        self.flow: ConditionalFlow | None = None
        self.history: dict[str, list[float]] = {}

    # -- building -----------------------------------------------------------------------------

    def build(self, reference: Tensor | None = None) -> ConditionalFlow:
        """Create the flow, standardised with the moments of ``reference`` ``(n, dim)`` if given."""
        shift = scale = None
        if reference is not None and len(reference) > 1:
            shift, scale = z_score_moments(reference)
        with seeded(self.seed):
            self.flow = ConditionalFlow(
                self.target.dim,
                self.target.base_condition,
                shift=shift,
                scale=scale,
                **self.flow_options,
            )
        return self.flow

    def _boundary_samples(self, boundary: str, samples: Tensor | None, count: int) -> Tensor | None:
        if boundary not in BOUNDARIES:
            raise ValueError(f"TRADE.fit: boundary must be one of {BOUNDARIES}, got {boundary!r}")
        if samples is None:
            if boundary == "reverse_kl":
                return None
            if not self.target.has_sampler:
                raise ValueError(
                    f"TRADE.fit on target {self.target.name!r}: boundary='samples' needs "
                    "boundary_samples (the target has no exact sampler); pass samples at the base "
                    "condition or use boundary='reverse_kl'"
                )
            samples = self.target.sample(count, self.target.base_condition)
        samples = torch.as_tensor(samples, dtype=torch.float32)
        if samples.ndim != 2 or samples.shape[1] != self.target.dim or len(samples) < 2:
            raise ValueError(
                f"TRADE.fit on target {self.target.name!r}: boundary_samples must have shape "
                f"(n >= 2, {self.target.dim}), got {tuple(samples.shape)}"
            )
        if not bool(torch.isfinite(samples).all()):
            raise ValueError(
                f"TRADE.fit on target {self.target.name!r}: boundary_samples has NaN/inf"
            )
        return samples

    # -- training -----------------------------------------------------------------------------

    def fit(
        self,
        boundary_samples: Tensor | None = None,
        boundary: str = "samples",
        *,
        steps: int = 2000,
        batch_size: int = 256,
        conditions_per_step: int = 4,
        samples_per_condition: int = 128,
        data_per_condition: int = 32,
        learning_rate: float = 1e-3,
        boundary_weight: float = 1.0,
        energy_weight: float = 1.0,
        trade_weight: float = 1.0,
        forward_kl_weight: float = 1.0,
        pct_start: float = 0.1,
        huber_delta: float = 0.5,
        noise: float = 0.0,
        causality_epsilon: float = 1.0,
        causality_decay: float = 0.5,
        gradient_clip: float = 3.0,
        num_boundary_samples: int = 20_000,
        show_progress_bars: bool | None = None,
    ) -> TRADE:
        """Train the flow on the boundary term plus the TRADE residual.

        Arguments:
            boundary_samples: Draws at the base condition, shape ``(n, dim)``; drawn from the
                target's exact sampler when omitted and ``boundary="samples"``.
            boundary: ``"samples"`` (NLL at c0) or ``"reverse_kl"`` (KL(q || p) at c0).
            steps: Optimisation steps.
            batch_size: Boundary batch (NLL rows or reverse-KL draws).
            conditions_per_step: Conditions drawn per step; each has its own IS group.
            samples_per_condition: Flow draws per condition: IS proposals and evaluation points.
            data_per_condition: Extra evaluation points per condition from the boundary samples.
            learning_rate: Adam learning rate (warm-up, then cosine decay).
            boundary_weight: Weight of the boundary term.
            energy_weight: Weight of the energy-matching term at c0 with ``boundary="samples"``:
                the variance over the boundary batch of log q(x | c0) - log p~(x | c0) (0: off,
                a plain NLL boundary).
            trade_weight: Final weight of the residual term (0: boundary only).
            forward_kl_weight: Weight, relative to the residual's, of the importance-weighted
                forward KL at the residual's conditions: -sum_i w_i log q(x_i | c) over the
                flow's draws with the residual's self-normalised weights w ∝ p~ / q (0: off).
                It moves mass between modes and into tails that q under-weights, where the
                derivative residual alone lags behind the target.
            pct_start: Fraction of steps before the residual weight ramps in.
            huber_delta: Huber threshold on the residual in log c.
            noise: Std of Gaussian noise added to the evaluation points.
            causality_epsilon: Causality strength (0: off).
            causality_decay: Causality strength at the end relative to the start.
            gradient_clip: Max gradient norm.
            num_boundary_samples: Exact draws taken when ``boundary_samples`` is omitted.
            show_progress_bars: Overrides the instance setting.

        Returns:
            ``self``.
        """
        for label, value in (
            ("steps", steps),
            ("batch_size", batch_size),
            ("conditions_per_step", conditions_per_step),
            ("samples_per_condition", samples_per_condition),
        ):
            check_positive_int(label, value, owner="TRADE.fit")
        for label, value in (
            ("boundary_weight", boundary_weight),
            ("energy_weight", energy_weight),
            ("trade_weight", trade_weight),
            ("forward_kl_weight", forward_kl_weight),
        ):
            check_float(label, value, minimum=0.0, owner="TRADE.fit")
        samples = self._boundary_samples(boundary, boundary_samples, num_boundary_samples)
        show = self.show_progress_bars if show_progress_bars is None else show_progress_bars
        with seeded(self.seed + 1):
            if self.flow is None:
                self.build(samples)
            settings = _FitSettings(
                steps=steps,
                batch_size=batch_size,
                groups=conditions_per_step,
                per_group=samples_per_condition,
                data_per_group=data_per_condition if samples is not None else 0,
                learning_rate=learning_rate,
                boundary_weight=boundary_weight,
                energy_weight=energy_weight if boundary == "samples" else 0.0,
                trade_weight=trade_weight,
                forward_kl_weight=forward_kl_weight,
                pct_start=pct_start,
                huber_delta=huber_delta,
                noise=noise,
                causality_epsilon=causality_epsilon,
                causality_decay=causality_decay,
                gradient_clip=gradient_clip,
                show_progress_bars=show,
            )
            self._train(samples, boundary, settings)
        return self

    def _train(self, samples: Tensor | None, boundary: str, settings: _FitSettings) -> None:
        flow, target, steps = self.flow, self.target, settings.steps
        c0 = float(target.base_condition)
        generator = torch.Generator().manual_seed(self.seed + 2)
        curriculum = ConditionCurriculum(self.condition_range, c0)
        causality = CausalityWeights(
            self.condition_range,
            c0,
            epsilon=settings.causality_epsilon,
            decay=settings.causality_decay,
        )
        optimizer = torch.optim.Adam(flow.parameters(), lr=settings.learning_rate)
        warmup = max(1, steps // 50)

        def learning_rate_factor(step: int) -> float:
            cosine = 0.5 * (1 + math.cos(math.pi * min(step / steps, 1.0)))
            return min(1.0, (step + 1) / warmup) * cosine

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, learning_rate_factor)
        ramp_begin = int(settings.pct_start * steps)
        history: dict[str, list[float]] = {
            "boundary": [],
            "energy": [],
            "residual": [],
            "forward_kl": [],
            "is_ess": [],
        }
        base_log_density = None
        if settings.energy_weight > 0:
            with torch.no_grad():
                base_log_density = target.log_density(samples, torch.full((len(samples), 1), c0))
        progress_bar = tqdm(
            range(steps), disable=not settings.show_progress_bars, desc=f"TRADE {target.name}"
        )
        flow.train()
        for step in progress_bar:
            # the curriculum's exponent grows from the ramp's start to the last step
            progress = max(0.0, (step - ramp_begin) / max(steps - ramp_begin, 1))
            boundary_loss, energy_loss = self._boundary_loss(
                samples, base_log_density, boundary, settings.batch_size, generator
            )
            loss = settings.boundary_weight * boundary_loss + settings.energy_weight * energy_loss
            weight = cosine_ramp(step, steps, settings.pct_start, 0.0, settings.trade_weight)
            residual_value = float("nan")
            if weight > 0:
                conditions = curriculum.sample(settings.groups, progress, generator)
                per_condition, forward_kl, ess = self._residual_losses(
                    conditions, samples, settings, generator
                )
                causality.update(conditions, per_condition)
                if step % 50 == 0:
                    causality.recompute(progress)
                residual = (causality(conditions) * per_condition).mean()
                loss = loss + weight * clip_loss(residual)
                if settings.forward_kl_weight > 0:
                    loss = loss + weight * settings.forward_kl_weight * forward_kl.mean()
                    history["forward_kl"].append(float(forward_kl.detach().mean()))
                residual_value = float(per_condition.detach().mean())
                history["is_ess"].append(float(ess.mean()))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(flow.parameters(), settings.gradient_clip)
            optimizer.step()
            scheduler.step()
            history["boundary"].append(float(boundary_loss.detach()))
            history["energy"].append(float(energy_loss.detach()))
            history["residual"].append(residual_value)
            if step % 25 == 0:
                progress_bar.set_postfix(
                    boundary=f"{float(boundary_loss.detach()):.3f}",
                    residual=f"{residual_value:.2e}",
                )
        flow.eval()
        for key, values in history.items():
            self.history.setdefault(key, []).extend(values)

    def _boundary_loss(
        self,
        samples: Tensor | None,
        base_log_density: Tensor | None,
        boundary: str,
        batch_size: int,
        generator: torch.Generator,
    ) -> tuple[Tensor, Tensor]:
        """The boundary term and the energy-matching term (zero when off), both scalars."""
        c0 = torch.full((batch_size, 1), float(self.target.base_condition))
        if boundary == "reverse_kl":
            x, log_q = self.flow.rsample_and_log_prob(c0)
            return (log_q - self.target.log_density(x, c0)).mean(), torch.zeros(())
        index = torch.randint(len(samples), (batch_size,), generator=generator)
        log_q = self.flow.log_prob(samples[index], c0)
        energy = torch.zeros(())
        if base_log_density is not None:
            log_ratio = log_q - base_log_density[index]
            log_ratio = log_ratio[torch.isfinite(log_ratio)]
            if len(log_ratio) > 1:
                energy = log_ratio.var()
        return -log_q.mean(), energy

    def _residual_losses(
        self,
        conditions: Tensor,
        samples: Tensor | None,
        settings: _FitSettings,
        generator: torch.Generator,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Per condition ``(k,)``: the Huber loss of the log-c residual, the importance-weighted
        forward KL of the flow's draws and the IS ESS."""
        groups, per_group, dim = len(conditions), settings.per_group, self.target.dim
        with torch.no_grad():
            rows = conditions.repeat_interleave(per_group)[:, None]
            proposals, log_q = self.flow.rsample_and_log_prob(rows)
            points = proposals.reshape(groups, per_group, dim)
            mean, ess = snis_condition_mean(
                self.target, points, log_q.reshape(groups, per_group), conditions
            )
            if settings.data_per_group:
                index = torch.randint(
                    len(samples), (groups, settings.data_per_group), generator=generator
                )
                points = torch.cat([points, samples[index]], dim=1)
            if settings.noise > 0:
                points = points + settings.noise * torch.randn(points.shape, generator=generator)
            count = points.shape[1]
            points = points.reshape(-1, dim)
            point_conditions = conditions.repeat_interleave(count)[:, None]
            log_density, target_gradient = condition_gradient(self.target, points, point_conditions)
            target_value = target_gradient - mean.repeat_interleave(count)
            finite = torch.isfinite(target_value)
        flow_gradient, log_q = flow_condition_gradient_and_log_prob(
            self.flow, points, point_conditions
        )
        # the forward KL's importance weights hold for the flow's own draws only: the first
        # per_group points of each group, unless noise has moved them
        if settings.noise > 0 and settings.forward_kl_weight > 0:
            with torch.no_grad():
                proposal_density = self.target.log_density(proposals, rows)
            forward_kl = importance_weighted_forward_kl(
                self.flow.log_prob(proposals, rows).reshape(groups, per_group),
                proposal_density.reshape(groups, per_group),
            )
        else:
            forward_kl = importance_weighted_forward_kl(
                log_q.reshape(groups, count)[:, :per_group],
                log_density.reshape(groups, count)[:, :per_group],
            )
        # residual of d log q / d log c: c times the derivative in c
        residual = point_conditions[:, 0] * (flow_gradient - target_value.nan_to_num(0.0))
        losses = F.huber_loss(
            residual, torch.zeros_like(residual), reduction="none", delta=settings.huber_delta
        )
        losses = torch.where(finite, losses, torch.zeros_like(losses))
        return losses.reshape(groups, count).mean(-1), forward_kl, ess

    # -- use ----------------------------------------------------------------------------------

    def _conditions(self, condition: float | Tensor, n: int) -> Tensor:
        if self.flow is None:
            raise RuntimeError(
                f"TRADE on target {self.target.name!r} is not fitted: call fit() first"
            )
        value = check_condition(self.target, condition).reshape(-1, 1)
        low, high = self.condition_range
        if bool((value < low * (1 - 1e-6)).any() or (value > high * (1 + 1e-6)).any()):
            warnings.warn(
                f"TRADE on target {self.target.name!r}: {self.target.condition_name}="
                f"{value.flatten().tolist()[:3]} lies outside the trained range "
                f"{self.condition_range}; "
                "the flow extrapolates there",
                stacklevel=3,
            )
        if len(value) not in (1, n):
            raise ValueError(f"condition must be a scalar or have {n} rows, got {len(value)}")
        return value.expand(n, 1)

    @torch.no_grad()
    def sample(
        self, num_samples: int, condition: float | Tensor, *, seed: int | None = None
    ) -> Tensor:
        """Draws from q(x | c), shape ``(num_samples, dim)``."""
        c = self._conditions(condition, num_samples)
        with seeded(seed):
            return self.flow(c).sample()

    @torch.no_grad()
    def sample_and_log_prob(
        self, num_samples: int, condition: float | Tensor, *, seed: int | None = None
    ) -> tuple[Tensor, Tensor]:
        """Draws from q(x | c) and their log q: ``(num_samples, dim)``, ``(num_samples,)``."""
        c = self._conditions(condition, num_samples)
        with seeded(seed):
            return self.flow.rsample_and_log_prob(c)

    @torch.no_grad()
    def log_prob(self, x: Tensor, condition: float | Tensor) -> Tensor:
        """log q(x | c), shape ``(n,)`` for ``x`` of shape ``(n, dim)``."""
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.ndim != 2 or x.shape[1] != self.target.dim:
            raise ValueError(
                f"TRADE.log_prob on target {self.target.name!r}: x must have shape "
                f"(n, {self.target.dim}), got {tuple(x.shape)}"
            )
        return self.flow.log_prob(x, self._conditions(condition, len(x)))

    def latent_decoder(self, condition: float | Tensor) -> tuple[Any, Any]:
        """The fitted flow's sampler z -> x at one condition and its latent.

        For sbiplug-flowanalysis's entropic metrics (its duck-typed protocol); see
        :meth:`ConditionalFlow.latent_decoder`.
        """
        return self.flow.latent_decoder(self._conditions(condition, 1)[0, 0])

    def __repr__(self) -> str:
        state = "fitted" if self.flow is not None else "unfitted"
        return f"TRADE(target={self.target.name!r}, range={self.condition_range}, {state})"
