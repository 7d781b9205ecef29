"""The conditional consistency model of CMPE as an sbi ``ConditionalDensityEstimator``.

Schmitt, Pratz, Köthe, Bürkner, Radev, *Consistency Models for Scalable and Fast Simulation-Based
Inference*, arXiv 2312.05440. The consistency function

    f(theta_t, t, c) = c_skip(t) theta_t + c_out(t) F(theta_t, t/T, c)
    c_skip(t) = sigma_d^2 / ((t - eps)^2 + sigma_d^2)
    c_out(t) = sigma_d (t - eps) / sqrt(sigma_d^2 + t^2)

(sigma_d per dimension) maps a noised parameter theta + t z straight back to a posterior draw;
f(theta, eps, c) = theta by construction. ``sample`` runs the multistep consistency sampler
(Song et al. 2023, Algorithm 1). There is no tractable density: ``log_prob`` raises
:class:`NoDensityError`.

Deviation from the paper code: the teacher reuses the condition embedding of the student,
detached (``c.detach()``), instead of evaluating the embedding net a second time.
"""

from __future__ import annotations

import math

import torch
from sbi.neural_nets.estimators import ConditionalDensityEstimator
from torch import Tensor, nn

from sbiplug.sbi_internals import check_condition_shape
from sbiplug.toolkit import Standardize, check_positive_int
from sbiplug_cmpe.network import ConsistencyNetwork
from sbiplug_cmpe.schedule import (
    curriculum_intervals,
    karras_grid,
    pseudo_huber,
    sample_pair_indices,
)

__all__ = ["ConsistencyEstimator", "NoDensityError"]

NO_DENSITY_MESSAGE = (
    "CMPE (consistency model posterior estimation) has no tractable density: log_prob is not "
    "available. Use sample-based diagnostics instead (SBC via sbi.diagnostics.run_sbc, TARP "
    "via run_tarp, C2ST against reference samples), or a density estimator such as 'npe' "
    "when you need log q(theta | x)."
)


class NoDensityError(NotImplementedError):
    """Raised by ``log_prob`` of a sample-only estimator such as CMPE."""

    def __init__(self, message: str = NO_DENSITY_MESSAGE) -> None:
        super().__init__(message)


class ConsistencyEstimator(ConditionalDensityEstimator):
    """Consistency model q(theta | x) that samples in a few network evaluations.

    Arguments:
        net: The free-form network F.
        input_shape: Event shape of theta, ``(D,)``.
        condition_shape: Event shape of x.
        embedding_net: Summary network h(x) (z-scoring included), trained jointly.
        theta_standardize: z-scoring of theta; the model works in standardised space.
        sigma_data: Per-dimension sigma_d in standardised space, shape ``(D,)``.
        max_time: Largest noise level T.
        eps: Smallest noise level.
        s0: Initial number of discretisation intervals of the curriculum.
        s1: Final number of discretisation intervals.
        steps: Default number of sampling steps.
    """

    def __init__(
        self,
        net: ConsistencyNetwork,
        input_shape: torch.Size,
        condition_shape: torch.Size,
        embedding_net: nn.Module,
        theta_standardize: Standardize,
        sigma_data: Tensor,
        max_time: float = 10.0,
        eps: float = 1e-3,
        s0: int = 10,
        s1: int = 50,
        steps: int = 10,
    ) -> None:
        super().__init__(net, input_shape, condition_shape)
        self._embedding_net = embedding_net
        self.theta_standardize = theta_standardize
        self.max_time, self.eps, self.s0, self.s1 = float(max_time), float(eps), s0, s1
        self.steps = steps
        self.register_buffer("sigma_data", sigma_data.detach().clone().float())
        # Curriculum state: saved with the state dict so resumed training continues it.
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("total_steps", torch.zeros((), dtype=torch.long))
        self.num_proposed = 0  # rows drawn by `sample`, read by the posterior's acceptance check

    @property
    def embedding_net(self) -> nn.Module:
        return self._embedding_net

    @property
    def dim(self) -> int:
        return self.input_shape.numel()

    def embed_condition(self, condition: Tensor) -> Tensor:
        """Summary c = h(x).

        Arguments:
            condition: Observations, shape ``(B, *condition_shape)``.

        Returns:
            Embeddings, shape ``(B, E)``.
        """
        return self._embedding_net(condition).reshape(len(condition), -1)

    def consistency_function(self, theta_t: Tensor, time: Tensor, context: Tensor) -> Tensor:
        """f(theta_t, t, c) in standardised parameter space.

        Arguments (leading shapes broadcast against each other):
            theta_t: Noised standardised parameters, shape ``(..., D)``.
            time: Noise levels t, shape ``(..., 1)``.
            context: Condition embeddings, shape ``(..., E)``.

        Returns:
            Denoised standardised parameters, shape ``(..., D)``.
        """
        sigma2 = self.sigma_data.square()
        shifted = time - self.eps
        c_skip = sigma2 / (shifted.square() + sigma2)
        c_out = self.sigma_data * shifted / torch.sqrt(sigma2 + time.square())
        return c_skip * theta_t + c_out * self.net(theta_t, time / self.max_time, context)

    def training_intervals(self) -> int:
        """N(k) of the curriculum at the current step (s1 once training length is unset)."""
        if int(self.total_steps) <= 0:
            return self.s1
        return curriculum_intervals(int(self.step), int(self.total_steps), self.s0, self.s1)

    def consistency_loss(
        self,
        theta: Tensor,
        context: Tensor,
        num_intervals: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Per-row iCT consistency loss with a stop-gradient teacher (no EMA).

        Arguments:
            theta: Parameters (original space), shape ``(B, D)``.
            context: Condition embeddings, shape ``(B, E)``; the teacher gets them detached.
            num_intervals: Grid intervals; default the curriculum's N(k).
            generator: CPU random number generator for noise and pairs (validation uses a
                fixed one); ``None``: torch's global generators.

        Returns:
            Loss per row, shape ``(B,)``: mean over dimensions of pseudo-Huber / (t2 - t1).
        """
        theta = self.theta_standardize(theta.reshape(len(theta), -1))
        intervals = self.training_intervals() if num_intervals is None else num_intervals
        grid = karras_grid(intervals + 1, self.eps, self.max_time, device=theta.device)
        # Pairs and noise are drawn on the CPU when a (CPU) generator is given, so validation
        # losses are reproducible on any device.
        index = sample_pair_indices(grid.cpu(), len(theta), generator=generator)
        index = index.to(theta.device)
        t_teacher, t_student = grid[index].unsqueeze(-1), grid[index + 1].unsqueeze(-1)
        if generator is None:
            noise = torch.randn_like(theta)
        else:
            noise = torch.randn(theta.shape, generator=generator).to(theta)
        student = self.consistency_function(theta + t_student * noise, t_student, context)
        with torch.no_grad():
            teacher = self.consistency_function(
                theta + t_teacher * noise, t_teacher, context.detach()
            )
        distance = pseudo_huber(student - teacher, self.dim) / (t_student - t_teacher)
        return distance.mean(dim=-1)

    def loss(self, input: Tensor, condition: Tensor, **kwargs) -> Tensor:
        """Consistency loss per row; ``input`` theta ``(B, D)``, ``condition`` x ``(B, ...)``."""
        return self.consistency_loss(input, self.embed_condition(condition), **kwargs)

    def sampling_grid(self, steps: int, device: torch.device | str | None = None) -> Tensor:
        """Decreasing re-noise levels tau_0 = T > ... > tau_{steps-1}, shape ``(steps,)``.

        Built with the training grid's function and convention (``steps + 1`` points); eps,
        the last point, is never a re-noise level.
        """
        grid = karras_grid(steps + 1, self.eps, self.max_time, device=device)
        return grid.flip(0)[:-1]

    @torch.no_grad()
    def sample(
        self,
        sample_shape: torch.Size,
        condition: Tensor,
        steps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Multistep consistency sampling, vectorised over draws and observations.

        The condition embedding is computed once per observation and broadcast over draws.

        Arguments:
            sample_shape: Shape of the draws per observation.
            condition: Observations, shape ``(B, *condition_shape)``.
            steps: Number of network evaluations (default ``self.steps``).
            generator: Random number generator (``None``: torch's global one).

        Returns:
            Samples, shape ``(*sample_shape, B, D)``.
        """
        steps = check_positive_int("steps", self.steps if steps is None else steps, owner="CMPE")
        check_condition_shape(self, condition)
        sample_shape = torch.Size(sample_shape)
        num_draws = sample_shape.numel()
        self.num_proposed += num_draws
        context = self.embed_condition(condition).unsqueeze(0)  # (1, B, E), once per observation
        batch = context.shape[1]
        levels = self.sampling_grid(steps, device=context.device)
        shape = (num_draws, batch, self.dim)

        def noise() -> Tensor:
            return torch.randn(shape, generator=generator, device=context.device)

        theta = None
        for level in levels.tolist():
            time = torch.full((1, 1, 1), level, device=context.device)  # broadcast over draws
            if theta is None:
                theta_t = self.max_time * noise()  # initial noise has std T, not sigma_d
            else:
                theta_t = theta + math.sqrt(max(level**2 - self.eps**2, 0.0)) * noise()
            theta = self.consistency_function(theta_t, time, context)
        theta = self.theta_standardize.inverse(theta)
        return theta.reshape(*sample_shape, batch, *self.input_shape)

    def log_prob(self, input: Tensor, condition: Tensor, **kwargs) -> Tensor:
        raise NoDensityError()

    def sample_and_log_prob(self, sample_shape: torch.Size, condition: Tensor, **kwargs):
        raise NoDensityError()
