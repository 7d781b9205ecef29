"""``power_posterior``: a posterior with its likelihood or its prior raised to a power alpha.

    likelihood power: p(theta | x_o, alpha) ∝ pi(theta) L(theta)^alpha
    prior power:      p(theta | x_o, alpha) ∝ pi(theta)^alpha L(theta)

so d/dalpha log p~ = log L(theta) (resp. log pi(theta)) and the TRADE target is log L minus its
mean under p_alpha: the exact derivative, not the public code's alpha-scaled one (TRADE, Wahl et
al., arXiv 2410.19492; see the method note's pitfall 1). The likelihood comes from a simulator
with ``log_likelihood(theta, x)``, from a trained NLE estimator (its density estimator's
``log_prob(x, condition=theta)``) or from any callable. A prior with bounded support is handled in
unconstrained coordinates u = T^-1(theta) (``torch.distributions.biject_to``), the Jacobian
being independent of alpha.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Distribution, biject_to, constraints

from sbiplug import Target

__all__ = ["COMPONENTS", "PowerPosterior", "make_power_posterior", "nle_log_likelihood"]

COMPONENTS = ("likelihood", "prior")


class PowerPosterior(Target):
    """pi(theta)^a L(theta)^b with (a, b) = (1, alpha) or (alpha, 1), in unconstrained coordinates.

    Arguments:
        log_likelihood: theta ``(n, d)`` -> log L(theta) ``(n,)`` for the fixed observation.
        prior: A torch distribution with event shape ``(d,)``.
        component: ``"likelihood"`` or ``"prior"``: which factor carries the power.
        condition_range: Range of alpha.
        name: Name shown in messages.
    """

    condition_name = "alpha"
    condition_kind = "power"
    base_condition = 1.0

    def __init__(
        self,
        log_likelihood: Callable[[Tensor], Tensor],
        prior: Distribution,
        *,
        component: str = "likelihood",
        condition_range: tuple[float, float] = (0.5, 2.0),
        name: str = "power_posterior",
    ) -> None:
        if component not in COMPONENTS:
            raise ValueError(
                f"target {name!r}: component must be one of {COMPONENTS}, got {component!r}"
            )
        if not callable(log_likelihood):
            raise TypeError(f"target {name!r}: log_likelihood must be callable theta -> (n,)")
        if not isinstance(prior, Distribution) or len(prior.event_shape) != 1:
            raise TypeError(
                f"target {name!r}: prior must be a torch Distribution with event shape (d,)"
            )
        low, high = float(condition_range[0]), float(condition_range[1])
        if not 0 < low <= 1.0 <= high:
            raise ValueError(
                f"target {name!r}: alpha range must contain 1 and be positive, got {(low, high)}"
            )
        self.name = name
        self.log_likelihood = log_likelihood
        self.prior = prior
        self.component = component
        self.condition_range = (low, high)
        self.dim = int(prior.event_shape[0])
        support = prior.support
        base = getattr(support, "base_constraint", support)
        self.bijection = None if base is constraints.real else biject_to(support)

    def to_parameters(self, u: Tensor) -> Tensor:
        """theta = T(u), shape ``(n, d)``."""
        return u if self.bijection is None else self.bijection(u)

    def from_parameters(self, theta: Tensor) -> Tensor:
        """u = T^-1(theta), shape ``(n, d)``."""
        return theta if self.bijection is None else self.bijection.inv(theta)

    def _log_jacobian(self, u: Tensor, theta: Tensor) -> Tensor:
        if self.bijection is None:
            return torch.zeros(len(u))
        ladj = self.bijection.log_abs_det_jacobian(u, theta)
        return ladj if ladj.ndim == 1 else ladj.sum(-1)

    def log_prior_and_likelihood(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """log pi(theta) and log L(theta) at theta = T(u), shapes ``(n,)``."""
        theta = self.to_parameters(u)
        return self.prior.log_prob(theta), self.log_likelihood(theta).reshape(-1)

    def log_density(self, x: Tensor, c: Tensor) -> Tensor:
        """log of pi^a L^b times |dT/du| at unconstrained ``x`` ``(n, d)``; ``c`` is alpha."""
        alpha = torch.as_tensor(c, dtype=x.dtype).reshape(-1)
        log_prior, log_likelihood = self.log_prior_and_likelihood(x)
        jacobian = self._log_jacobian(x, self.to_parameters(x))
        if self.component == "likelihood":
            return log_prior + alpha * log_likelihood + jacobian
        return alpha * log_prior + log_likelihood + jacobian


def nle_log_likelihood(estimator, x_o: Tensor) -> Callable[[Tensor], Tensor]:
    """log L(theta) = log q_NLE(x_o | theta) from a trained NLE trainer or density estimator."""
    from sbiplug.sbi_internals import is_trainer, trained_network  # imports sbi: only here

    net = trained_network(estimator) if is_trainer(estimator) else estimator
    if net is None or not hasattr(net, "log_prob"):
        raise TypeError(
            "power_posterior: estimator must be a trained NLE trainer or density estimator"
        )
    x_o = torch.as_tensor(x_o, dtype=torch.float32).reshape(1, 1, -1)

    def log_likelihood(theta: Tensor) -> Tensor:
        inputs = x_o.expand(1, len(theta), x_o.shape[-1])
        return net.log_prob(inputs, condition=theta).reshape(-1)

    return log_likelihood


def make_power_posterior(
    simulator="gaussian_linear",
    *,
    x_o: Tensor | None = None,
    estimator=None,
    log_likelihood: Callable[[Tensor], Tensor] | None = None,
    component: str = "likelihood",
    alpha_range: tuple[float, float] = (0.5, 2.0),
    seed: int = 0,
    **simulator_options,
) -> PowerPosterior:
    """A :class:`PowerPosterior` for one observation of a simulator.

    Arguments:
        simulator: A registered simulator name or a :class:`~sbiplug.Simulator`.
        x_o: The observation; simulated from the prior with ``seed`` when omitted.
        estimator: A trained NLE trainer whose likelihood replaces the simulator's.
        log_likelihood: A callable theta -> log L(theta) replacing both.
        component: ``"likelihood"`` or ``"prior"``.
        alpha_range: Range of the power.
        seed: Seed of the simulated observation.
        simulator_options: Passed to ``make_simulator`` when ``simulator`` is a name.
    """
    if isinstance(simulator, str):
        from sbiplug import make_simulator

        simulator = make_simulator(simulator, **simulator_options)
    if x_o is None:
        theta = simulator.sample_prior(1, seed=seed)
        x_o = simulator.simulate(theta, seed=seed)[0]
    x_o = torch.as_tensor(x_o, dtype=torch.float32)
    if log_likelihood is None and estimator is not None:
        log_likelihood = nle_log_likelihood(estimator, x_o)
    if log_likelihood is None:
        if not getattr(simulator, "has_log_likelihood", False):
            raise ValueError(
                f"power_posterior: simulator {simulator.name!r} has no log_likelihood; pass a "
                "trained NLE estimator or a log_likelihood callable"
            )
        observation = x_o

        def log_likelihood(theta: Tensor) -> Tensor:
            return simulator.log_likelihood(
                theta, observation.expand(len(theta), *observation.shape)
            )

    target = PowerPosterior(
        log_likelihood,
        simulator.prior,
        component=component,
        condition_range=alpha_range,
        name="power_posterior",
    )
    target.x_o = x_o
    target.simulator = simulator
    return target
