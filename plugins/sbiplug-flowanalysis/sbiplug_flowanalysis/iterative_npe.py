"""``iterative_coupling``: neural posterior estimation with the constructive coupling flow.

Draxler, Wahl, Schnörr, Köthe, ICML 2024 (arXiv 2402.06578). :class:`IterativeCouplingNPE` is
sbi's NPE whose ``train()`` builds the posterior flow layer by layer
(:func:`~sbiplug_flowanalysis.iterative.fit_iterative_coupling`, conditional on x) instead of
running gradient descent on the whole flow; ``build_posterior()``, ``sample`` and ``log_prob``
are sbi's own::

    trainer = IterativeCouplingNPE(prior)
    trainer.append_simulations(theta, x).train()
    posterior = trainer.build_posterior()

It is single-round: simulations from a proposal other than the prior would need sbi's
proposal-corrected loss, which a layer-wise fit does not optimise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from sbi.inference import NPE
from torch import Tensor
from torch.distributions import Distribution

from sbiplug.sbi_internals import install_network, shows_progress_bars, trainer_device
from sbiplug.toolkit import (
    DEFAULT_DEVICE,
    DEFAULT_SHOW_PROGRESS_BARS,
    OptionError,
    check_float,
    check_positive_int,
    trainer_options,
    z_score_moments,
)
from sbiplug_flowanalysis.iterative import IterativeCouplingFlow, fit_iterative_coupling

__all__ = ["IterativeCouplingNPE", "build_iterative_coupling", "make_iterative_coupling"]


def build_iterative_coupling() -> Callable[[Tensor, Tensor], IterativeCouplingFlow]:
    """A builder of an empty (layer-less) flow sized on sbi's first batch; ``load_state_dict``
    then restores the fitted layers (what :func:`sbiplug.load_trainer` needs)."""

    def builder(batch_theta: Tensor, batch_x: Tensor) -> IterativeCouplingFlow:
        theta_shift, theta_scale = z_score_moments(batch_theta)
        x_shift, x_scale = z_score_moments(batch_x)
        return IterativeCouplingFlow(
            batch_theta.shape[-1],
            tuple(batch_x.shape[1:]),
            theta_shift=theta_shift,
            theta_scale=theta_scale,
            x_shift=x_shift,
            x_scale=x_scale,
        )

    return builder


class IterativeCouplingNPE(NPE):
    """NPE with a conditional coupling flow fitted layer by layer (no end-to-end training).

    Arguments:
        prior: Prior over theta.
        num_layers: Most coupling layers.
        num_rotations: Random rotations tried per layer (default 1: the network fit is the cost).
        coupling: ``"quantile"`` (each layer's network predicts ``knots`` conditional
            quantiles of the active half, mapped to the normal ones) or ``"affine"`` (the
            paper's conditional mean and std).
        knots: Quantiles per active coordinate of a quantile coupling.
        hidden_features: Widths of each layer's regression network on (z_p, x).
        network_steps: Adam steps of each layer's network.
        damping: eta in (0, 1], how far each layer standardises (0.5 in the paper).
        patience: Layers without validation improvement before stopping.
        max_failures: Failed tries in a row (no held-out NLL gain) before stopping.
        seed: Seed of the rotations, subsets and network batches (initial weights: torch's
            global generator, as in sbi).
        device, show_progress_bars, tracker, log_dir: See
            :func:`sbiplug.toolkit.trainer_options`.
    """

    def __init__(
        self,
        prior: Distribution | None = None,
        *,
        num_layers: int = 64,
        num_rotations: int = 1,
        coupling: str = "quantile",
        knots: int = 16,
        hidden_features: Sequence[int] = (64, 64),
        network_steps: int = 1000,
        damping: float = 0.5,
        patience: int = 8,
        max_failures: int = 3,
        seed: int = 0,
        device: str = DEFAULT_DEVICE,
        show_progress_bars: bool = DEFAULT_SHOW_PROGRESS_BARS,
        tracker: Any = None,
        log_dir: str | None = None,
    ):
        owner = "iterative_coupling"
        if coupling not in ("quantile", "affine"):
            raise OptionError(f"{owner}: coupling must be 'quantile' or 'affine', got {coupling!r}")
        if check_positive_int("knots", knots, owner=owner) < 2:
            raise OptionError(f"{owner}: knots must be >= 2, got {knots}")
        self.fit_options: dict[str, Any] = {
            "num_layers": check_positive_int("num_layers", num_layers, owner=owner),
            "num_rotations": check_positive_int("num_rotations", num_rotations, owner=owner),
            "coupling": coupling,
            "knots": check_positive_int("knots", knots, owner=owner),
            "hidden_features": tuple(int(h) for h in hidden_features),
            "network_steps": check_positive_int("network_steps", network_steps, owner=owner),
            "damping": check_float("damping", damping, minimum=0, maximum=1, owner=owner),
            "patience": check_positive_int("patience", patience, owner=owner),
            "max_failures": check_positive_int("max_failures", max_failures, owner=owner),
            "seed": int(seed),
            "conditioner": "network",
        }
        super().__init__(
            prior=prior,
            density_estimator=build_iterative_coupling(),
            **trainer_options(
                device=device,
                show_progress_bars=show_progress_bars,
                tracker=tracker,
                log_dir=log_dir,
            ),
        )

    def train(
        self,
        validation_fraction: float = 0.1,
        retrain_from_scratch: bool = False,
        show_train_summary: bool = False,
        **unused: Any,
    ) -> IterativeCouplingFlow:
        """Fit the flow on all appended simulations; the last ``validation_fraction`` (by a
        seeded permutation) decides how many layers to keep.

        Arguments:
            validation_fraction: Share of the simulations held out for the stopping rule.
            retrain_from_scratch, show_train_summary: As in sbi (a fit always starts afresh).
            **unused: sbi's gradient-training options (batch size, learning rate, epochs)
                have no meaning here; giving one is an error naming it.

        Returns:
            The fitted :class:`~sbiplug_flowanalysis.iterative.IterativeCouplingFlow`.
        """
        if unused:
            raise OptionError(
                f"iterative_coupling: train() got gradient-training options {sorted(unused)}; "
                "the flow is fitted layer by layer: set num_layers / network_steps on the "
                "estimator instead"
            )
        fraction = check_float(
            "validation_fraction", validation_fraction, minimum=0, maximum=0.9, owner="train"
        )
        theta, x, _ = self.get_simulations()
        theta, x = theta.float().cpu(), x.float().cpu()
        seed = self.fit_options["seed"]
        order = torch.randperm(len(theta), generator=torch.Generator().manual_seed(seed))
        num_val = int(fraction * len(theta))
        val, train = order[:num_val], order[num_val:]
        flow = fit_iterative_coupling(
            theta[train],
            x[train],
            validation=(theta[val], x[val]) if num_val >= 16 else None,
            show_progress_bars=shows_progress_bars(self),
            **self.fit_options,
        )
        install_network(self, flow.to(str(trainer_device(self))), x.shape[1:])
        if show_train_summary:
            history = flow.history
            print(
                f"iterative_coupling: {len(flow.net)} layers, training NLL "
                f"{history['nll'][0]:.3f} -> {history['nll'][-1]:.3f}, validation NLL "
                f"{history['validation_nll'][-1]:.3f}"
            )
        return flow


def make_iterative_coupling(prior: Distribution | None, **options: Any) -> IterativeCouplingNPE:
    """The registered estimator ``iterative_coupling``; options: :class:`IterativeCouplingNPE`."""
    return IterativeCouplingNPE(prior, **options)
