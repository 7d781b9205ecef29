"""Densities and scores for density-based distances: one interface over many sources.

A density-based distance needs ``log p(x)`` (to price a path) and the score ``∇ log p(x)`` (to
relax it). :func:`as_density` wraps what a user has: analytic functions, a torch
``Distribution``, a trained zuko flow, any sbi posterior with ``log_prob`` (at its default or a
given observation), or any object with ``log_prob``; a separate score model (e.g. one trained by
denoising score matching, :func:`~sbiplug_distances.score_matching.train_score_model`) can
replace the autograd score. :func:`fit_flow` trains a zuko flow on samples
(Sorrenson et al., ICML 2025, https://arxiv.org/abs/2407.09297, learn the density with a flow).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from sbiplug.toolkit import OptionError, check_int, check_positive, check_positive_int, seeded

__all__ = ["Density", "as_density", "fit_flow"]

LogProb = Callable[[Tensor], Tensor]


class Density:
    """``log p`` and its score, evaluated in chunks without building a graph for the caller.

    Arguments:
        log_prob: Maps ``(n, D)`` to ``(n,)``; differentiable when ``score`` is not given.
        score: Maps ``(n, D)`` to ``(n, D)``; default: autograd of ``log_prob``.
        chunk_size: Points evaluated per call.
    """

    def __init__(
        self, log_prob: LogProb, score: LogProb | None = None, *, chunk_size: int = 8192
    ) -> None:
        self._log_prob = log_prob
        self._score = score
        self.chunk_size = check_positive_int("chunk_size", chunk_size, owner="Density")

    def log_prob(self, x: Tensor) -> Tensor:
        """``log p(x)``: shape ``(n, D)`` to ``(n,)`` (float64, no gradient)."""
        with torch.no_grad():
            parts = [self._call(self._log_prob, c).detach().reshape(-1) for c in self._chunks(x)]
        return torch.cat(parts).double() if parts else x.new_zeros(0, dtype=torch.float64)

    def score(self, x: Tensor) -> Tensor:
        """``∇ log p(x)``: shape ``(n, D)`` to ``(n, D)`` (float64); non-finite entries are 0."""
        parts = []
        for chunk in self._chunks(x):
            if self._score is not None:
                with torch.no_grad():
                    value = self._call(self._score, chunk).reshape(chunk.shape)
            else:
                value = self._autograd_score(chunk)
            parts.append(value.double())
        score = torch.cat(parts) if parts else x.new_zeros(x.shape, dtype=torch.float64)
        return torch.nan_to_num(score, nan=0.0, posinf=0.0, neginf=0.0)

    def _autograd_score(self, chunk: Tensor) -> Tensor:
        with torch.enable_grad():
            point = chunk.detach().clone().requires_grad_(True)
            value = self._call(self._log_prob, point).reshape(-1)
            finite = torch.isfinite(value)
            if not bool(finite.any()) or not value.requires_grad:
                return torch.zeros_like(chunk)  # a constant density has no score
            (gradient,) = torch.autograd.grad(value[finite].sum(), point, allow_unused=True)
        return torch.zeros_like(chunk) if gradient is None else gradient.detach()

    def _chunks(self, x: Tensor) -> list[Tensor]:
        return list(torch.split(x, self.chunk_size)) if len(x) else []

    @staticmethod
    def _call(function: LogProb, x: Tensor) -> Tensor:
        return torch.as_tensor(function(x.float()))


def as_density(source: Any, score: Any = None, *, x: Tensor | None = None) -> Density:
    """Wrap a density source as a :class:`Density`.

    Arguments:
        source: A :class:`Density`; a callable ``log_prob(x)``; a torch ``Distribution``; a
            zuko ``Flow`` (unconditional, or conditional with ``x`` as its context); an sbi
            posterior (``log_prob(theta, x=...)``; at ``x`` or its default observation); or any
            object with ``log_prob(x)``.
        score: A callable score ``(n, D) -> (n, D)`` or an ``nn.Module`` score model; default:
            autograd of the log-density.
        x: The observation (shape ``(1, *x_shape)`` or ``x_shape``) for a conditional source.

    Raises:
        OptionError: when ``source`` or ``score`` is none of the above.
    """
    if score is not None and not callable(score):
        raise OptionError(
            f"DensityDistance: score must be callable (n, D) -> (n, D), got {score!r}"
        )
    if isinstance(source, Density):
        return source if score is None else Density(source._log_prob, score)
    log_prob = _log_prob_function(source, x)
    if isinstance(score, nn.Module):
        score.eval()
    return Density(log_prob, score)


def _log_prob_function(source: Any, x: Tensor | None) -> LogProb:
    try:
        import zuko
    except ImportError:  # pragma: no cover - zuko ships with sbi
        zuko = None
    if zuko is not None and isinstance(source, zuko.flows.Flow):
        source.eval()
        context = None if x is None else torch.as_tensor(x).float().reshape(1, -1)
        if context is None:
            return lambda theta: source().log_prob(theta)
        return lambda theta: source(context.expand(len(theta), -1)).log_prob(theta)
    if isinstance(source, torch.distributions.Distribution):
        return lambda theta: source.log_prob(theta)
    log_prob = getattr(source, "log_prob", None)
    if callable(log_prob):
        if isinstance(source, nn.Module):
            source.eval()
        return _sbi_style(log_prob, x)
    if callable(source):
        return source
    raise OptionError(
        "DensityDistance: density must be a callable log_prob(x), a torch Distribution, a zuko "
        f"Flow, an sbi posterior or an object with log_prob, got {type(source).__name__}"
    )


def _sbi_style(log_prob: Callable[..., Tensor], x: Tensor | None) -> LogProb:
    """sbi posteriors take ``x=`` and normalise by default; skip that (a constant factor)."""
    try:
        parameters = inspect.signature(log_prob).parameters
    except (TypeError, ValueError):
        parameters = {}
    options: dict[str, Any] = {}
    if "x" in parameters and x is not None:
        options["x"] = torch.as_tensor(x).float().reshape(1, -1)
    if "norm_posterior" in parameters:
        # The leakage normalisation is one constant factor of the metric; skipping it spares
        # thousands of rejection draws per call.
        options["norm_posterior"] = False
    if "track_gradients" in parameters:
        options["track_gradients"] = True
    return lambda theta: log_prob(theta, **options)


class _StandardizedFlow(nn.Module):
    """A zuko flow on standardised samples, with the log-Jacobian of the standardisation."""

    def __init__(self, flow: nn.Module, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        self.flow = flow
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def log_prob(self, x: Tensor) -> Tensor:
        z = (x - self.mean) / self.std
        return self.flow().log_prob(z) - self.std.log().sum()


def fit_flow(
    samples: Tensor,
    *,
    transforms: int = 3,
    hidden_features: tuple[int, ...] = (64, 64),
    max_epochs: int = 300,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    patience: int = 15,
    validation_fraction: float = 0.1,
    seed: int = 0,
    show_progress_bars: bool = True,
) -> nn.Module:
    """Train a zuko neural spline flow on ``samples`` (standardised), early-stopped.

    Arguments:
        samples: Training points, shape ``(n, D)`` with ``n >= 20``.
        transforms: Number of spline transforms.
        hidden_features: Hidden widths of the conditioner networks.
        max_epochs: Upper bound on the training epochs.
        batch_size: Minibatch size.
        learning_rate: Adam's learning rate.
        patience: Epochs without validation improvement before stopping.
        validation_fraction: Share of the samples held out for early stopping.
        seed: Seed of the initialisation, split and minibatches.
        show_progress_bars: Show a progress bar (stderr) over the epochs.

    Returns:
        A module with ``log_prob(x)``: ``(n, D)`` to ``(n,)``, in evaluation mode, holding the
        weights of the best validation epoch.
    """
    import zuko
    from tqdm.auto import tqdm

    samples = _check_samples(samples, "fit_flow", minimum=20)
    max_epochs = check_positive_int("max_epochs", max_epochs, owner="fit_flow")
    patience = check_int("patience", patience, minimum=1, owner="fit_flow")
    check_positive("learning_rate", learning_rate, owner="fit_flow")
    mean, std = samples.mean(0), samples.std(0).clamp_min(1e-6)
    with seeded(seed):
        order = torch.randperm(len(samples))
        num_validation = max(1, int(validation_fraction * len(samples)))
        validation, train = samples[order[:num_validation]], samples[order[num_validation:]]
        dim = samples.shape[1]
        base = zuko.flows.NSF(dim, 0, transforms=transforms, hidden_features=hidden_features)
        model = _StandardizedFlow(base, mean, std)
        optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
        best, best_state, waited = float("inf"), None, 0
        bar = tqdm(range(max_epochs), desc="flow", disable=not show_progress_bars, leave=False)
        for _ in bar:
            model.train()
            for batch in torch.split(train[torch.randperm(len(train))], batch_size):
                loss = -model.log_prob(batch).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                value = float(-model.log_prob(validation).mean())
            bar.set_postfix(nll=f"{value:.3f}")
            if value < best - 1e-4:
                best, waited = value, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                waited += 1
                if waited >= patience:
                    break
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval()


def _check_samples(samples: Any, owner: str, minimum: int = 2) -> Tensor:
    if not isinstance(samples, Tensor) or samples.ndim != 2:
        raise OptionError(f"{owner}: samples must be a tensor of shape (n, D), got {samples!r:.80}")
    if len(samples) < minimum:
        raise OptionError(f"{owner}: needs at least {minimum} samples, got {len(samples)}")
    if not bool(torch.isfinite(samples).all()):
        raise OptionError(f"{owner}: samples contain NaN or infinite values")
    return samples.float()
