"""A score model trained by denoising score matching, to guide the relaxation of geodesics.

``s(x) ≈ ∇ log p(x)`` is learned from samples alone: perturb ``x~ = x + sigma * eps`` and fit
``s(x~) ≈ -eps / sigma`` (Vincent, 2011). A smooth learned score replaces the flow's autograd
score in the relaxation (Sorrenson et al., ICML 2025, https://arxiv.org/abs/2407.09297); it is
the score of the data smoothed at the noise level ``sigma``, so ``sigma`` trades bias for noise.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sbiplug.toolkit import check_positive, check_positive_int, seeded
from sbiplug_distances.densities import _check_samples

__all__ = ["ScoreModel", "train_score_model"]


class ScoreModel(nn.Module):
    """An MLP score in standardised coordinates, mapped back: ``(n, D) -> (n, D)``."""

    def __init__(self, mean: Tensor, std: Tensor, hidden_features: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        dim, layers, width = len(mean), [], len(mean)
        for hidden in hidden_features:
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        z = (x.float() - self.mean) / self.std
        return self.net(z) / self.std  # chain rule: d/dx = (d/dz) / std


def train_score_model(
    samples: Tensor,
    *,
    sigma: float = 0.1,
    hidden_features: tuple[int, ...] = (128, 128),
    num_steps: int = 3000,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 0,
    show_progress_bars: bool = True,
) -> ScoreModel:
    """Fit a score model to ``samples`` ``(n, D)`` by denoising score matching.

    Arguments:
        samples: Training points, shape ``(n, D)``.
        sigma: Noise level in standardised units (each coordinate scaled to unit variance).
        hidden_features: Hidden widths of the MLP.
        num_steps: Adam steps.
        batch_size: Minibatch size.
        learning_rate: Adam's learning rate (cosine-annealed).
        seed: Seed of the initialisation, noise and minibatches.
        show_progress_bars: Progress bar over the steps (stderr).

    Returns:
        The trained :class:`ScoreModel`, in evaluation mode.
    """
    from tqdm.auto import tqdm

    samples = _check_samples(samples, "train_score_model", minimum=2)
    sigma = check_positive("sigma", sigma, owner="train_score_model")
    num_steps = check_positive_int("num_steps", num_steps, owner="train_score_model")
    mean, std = samples.mean(0), samples.std(0).clamp_min(1e-6)
    with seeded(seed):
        model = ScoreModel(mean, std, tuple(hidden_features))
        z = (samples - mean) / std
        optimizer = torch.optim.Adam(model.net.parameters(), lr=learning_rate)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, num_steps)
        bar = tqdm(range(num_steps), desc="score", disable=not show_progress_bars, leave=False)
        for _ in bar:
            batch = z[torch.randint(len(z), (batch_size,))]
            noise = torch.randn_like(batch)
            # sigma^2-weighted DSM loss: |sigma s(z~) + eps|^2, one scale across noise levels
            loss = (sigma * model.net(batch + sigma * noise) + noise).pow(2).sum(-1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        bar.close()
    return model.eval()
