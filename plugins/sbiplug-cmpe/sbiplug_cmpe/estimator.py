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

import torch
from sbi.neural_nets.estimators import ConditionalDensityEstimator
from torch import Tensor, nn

from sbiplug.sbi_internals import check_condition_shape
from sbiplug.toolkit import Standardize, check_positive_int
from sbiplug_cmpe.network import ConsistencyNetwork
from sbiplug_cmpe.schedule import curriculum_intervals, karras_grid, pair_weights, pseudo_huber

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
        self._levels: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}

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

    def training_level(self, intervals: int, device: torch.device | str) -> tuple[Tensor, Tensor]:
        """The grid with ``intervals + 1`` points and its pair weights, built once per device.

        Returns:
            ``(grid (intervals + 1,), weights (intervals,))``; the weights are the discretised
            lognormal law of :func:`~sbiplug_cmpe.schedule.pair_weights`.
        """
        key = (intervals, str(device))
        if key not in self._levels:
            grid = karras_grid(intervals + 1, self.eps, self.max_time, device=device)
            self._levels[key] = (grid, pair_weights(grid))
        return self._levels[key]

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
                fixed one); ``None``: torch's global generators, on theta's device.

        Returns:
            Loss per row, shape ``(B,)``: mean over dimensions of pseudo-Huber / (t2 - t1).
        """
        theta = self.theta_standardize(theta.reshape(len(theta), -1))
        intervals = self.training_intervals() if num_intervals is None else num_intervals
        grid, weights = self.training_level(intervals, theta.device)
        if generator is None:
            index = torch.multinomial(weights, len(theta), replacement=True)
            noise = torch.randn_like(theta)
        else:
            # Drawn on the CPU, so fixed-noise losses are reproducible on any device.
            index = torch.multinomial(weights.cpu(), len(theta), True, generator=generator)
            index = index.to(theta.device)
            noise = torch.randn(theta.shape, generator=generator).to(theta)
        t_teacher, t_student = grid[index].unsqueeze(-1), grid[index + 1].unsqueeze(-1)
        # Student and teacher in one pass (half the per-layer overhead of two small passes);
        # the teacher half is detached, so it is a stop-gradient target.
        times = torch.cat([t_student, t_teacher])
        both = self.consistency_function(
            torch.cat([theta, theta]) + times * torch.cat([noise, noise]),
            times,
            torch.cat([context, context.detach()]),
        )
        student, teacher = both[: len(theta)], both[len(theta) :].detach()
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

        Everything that does not depend on the draws is computed before the step loop: the
        condition embedding (once per observation), the skip and output scalings of every
        level, the network's condition-and-time terms of every level and observation
        ``(steps, 1, B, W)``, and all noise in one tensor. Each step is then one pass of the
        draws ``(S, B, D)`` through the network's fused, in-place sampling path.

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
        batch, device = context.shape[1], context.device
        levels = self.sampling_grid(steps, device=device).reshape(steps, 1, 1, 1)
        sigma2 = self.sigma_data.square()
        shifted = levels - self.eps
        c_skip = sigma2 / (shifted.square() + sigma2)  # (steps, 1, 1, D)
        c_out = self.sigma_data * shifted / torch.sqrt(sigma2 + levels.square())
        # Evaluation mode takes the fused pass; training mode keeps dropout, so its own path.
        fused, time = not self.net.training, levels / self.max_time
        terms = (
            self.net.sampling_terms(time, context)
            if fused
            else self.net.context_terms(time, context)
        )
        network_update = self.net.sampling_update if fused else self.net.forward_terms
        renoise = (levels.square() - self.eps**2).clamp_min(0.0).sqrt()
        renoise[0] = self.max_time  # the initial noise has std T, not sigma_d
        noise = torch.randn((steps, num_draws, batch, self.dim), generator=generator, device=device)
        noise.mul_(renoise)
        theta = noise[0]
        for n in range(steps):
            theta_t = theta if n == 0 else theta.add_(noise[n])
            update = network_update(theta_t, [term[n] for term in terms])
            theta = update.mul_(c_out[n]).addcmul_(c_skip[n], theta_t)
        theta = self.theta_standardize.inverse(theta)
        return theta.reshape(*sample_shape, batch, *self.input_shape)

    def log_prob(self, input: Tensor, condition: Tensor, **kwargs) -> Tensor:
        raise NoDensityError()

    def sample_and_log_prob(self, sample_shape: torch.Size, condition: Tensor, **kwargs):
        raise NoDensityError()
