"""FIF summaries: unsupervised low-dimensional summaries of x that come with a likelihood.

Sorrenson et al., *Lifting Architectural Constraints of Injective Flows* (ICLR 2024,
arXiv 2306.01843). :class:`FIFSummary` is an embedding net (registered as ``"fif"``) whose
forward pass is the encoder z = f(x) of a :class:`~sbiplug_fff.injective.FreeFormInjectiveFlow`.
It follows sbiplug's pretraining protocol (:mod:`sbiplug.toolkit.pretraining`): ``npe``,
``cmpe`` and ``npe_mmd`` call :meth:`FIFSummary.pretrain` on the training x before they train,
so the flow learns the simulations' manifold first, unsupervised. It then stays frozen
(default) or is fine-tuned with the estimator. The same flow gives each observation a
log-density on the manifold and a reconstruction error (the ``fif_manifold`` diagnostic).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from sbiplug.toolkit import check_positive_int
from sbiplug_fff.injective import FreeFormInjectiveFlow
from sbiplug_fff.injective_fit import check_training_data, train_injective_flow

__all__ = ["FIFSummary", "find_fif_summary"]


class FIFSummary(nn.Module):
    """Summaries z = f(x) ``(B, output_dim)`` of x ``(B, input_dim)`` from an injective flow.

    Arguments:
        input_dim: Dimension D of x (structured x is flattened: ``prod(x_shape)``).
        output_dim: Number of summaries d < D, the manifold dimension.
        fine_tune: Train the encoder further with the estimator (default: frozen after
            pretraining, so the summaries and the diagnostic's density stay those of x alone).
        num_steps, batch_size, learning_rate: Pretraining (Adam, cosine decay).
        beta, noise, hidden_features, num_blocks: Passed to the flow.
        seed: Seed of the pretraining (``None``: torch's global generator).
        show_progress_bars: A progress bar during pretraining.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int = 8,
        *,
        fine_tune: bool = False,
        num_steps: int = 2000,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        beta: float = 10.0,
        noise: float = 0.01,
        hidden_features: int = 128,
        num_blocks: int = 2,
        seed: int | None = 0,
        show_progress_bars: bool = False,
    ):
        super().__init__()
        owner = "embedding net 'fif'"
        input_dim = check_positive_int("input_dim", input_dim, owner=owner)
        output_dim = check_positive_int("output_dim", output_dim, owner=owner)
        if output_dim >= input_dim:
            raise ValueError(
                f"{owner}: output_dim (d = {output_dim}) must be smaller than input_dim "
                f"(D = {input_dim}); summaries reduce the dimension"
            )
        self.input_dim, self.output_dim = input_dim, output_dim
        self.fine_tune = bool(fine_tune)
        self.num_steps = check_positive_int("num_steps", num_steps, owner=owner)
        self.batch_size = check_positive_int("batch_size", batch_size, owner=owner)
        self.learning_rate = float(learning_rate)
        self.seed = seed
        self.show_progress_bars = bool(show_progress_bars)
        self.flow = FreeFormInjectiveFlow(
            input_dim,
            output_dim,
            beta=beta,
            noise=noise,
            hidden_features=hidden_features,
            num_blocks=num_blocks,
        )
        # saved with the weights, so a reloaded summary net knows it was trained
        self.register_buffer("pretrained", torch.tensor(False))
        self._freeze()

    def _freeze(self) -> None:
        self.flow.requires_grad_(self.fine_tune)

    def _flatten(self, x: Tensor, what: str = "x") -> Tensor:
        if not isinstance(x, Tensor) or x.ndim < 2 or x[0].numel() != self.input_dim:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"embedding net 'fif': {what} must have shape (B, {self.input_dim}) "
                f"(or (B, *x_shape) with {self.input_dim} numbers per row), got {shape}"
            )
        return x.reshape(x.shape[0], -1)

    def forward(self, x: Tensor) -> Tensor:
        """Summaries of x ``(B, *x_shape)``: ``(B, output_dim)``."""
        x = self._flatten(x)
        if self.fine_tune:
            return self.flow.encode(x)
        with torch.no_grad():
            return self.flow.encode(x)

    def pretrain(self, x: Tensor, *, force: bool = False) -> None:
        """Fit the flow to simulations x ``(n, *x_shape)`` (unsupervised); once, unless
        ``force``. Estimators call this before their own training."""
        if bool(self.pretrained) and not force:
            return
        x = check_training_data(self._flatten(x), self.output_dim, owner="embedding net 'fif'")
        if len(x) < 10 * self.output_dim:
            warnings.warn(
                f"embedding net 'fif': pretraining on only {len(x)} simulations for "
                f"{self.output_dim} summaries; the manifold will be poorly learned",
                stacklevel=2,
            )
        generator_state = torch.random.get_rng_state() if self.seed is not None else None
        if self.seed is not None:
            torch.manual_seed(self.seed)
        try:
            was_training = self.training
            self.flow.requires_grad_(True)
            self.flow.set_scaling(x)
            train_injective_flow(
                self.flow,
                x,
                num_steps=self.num_steps,
                batch_size=self.batch_size,
                learning_rate=self.learning_rate,
                show_progress_bars=self.show_progress_bars,
            )
            self.train(was_training)
        finally:
            self._freeze()
            if generator_state is not None:
                torch.random.set_rng_state(generator_state)
        self.pretrained.fill_(True)

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log-density of x's projection on the learned manifold, ``(B,)`` float64."""
        return self.flow.log_prob(self._flatten(x).float())

    def reconstruction_error(self, x: Tensor) -> Tensor:
        """Squared distance of x ``(B, *x_shape)`` from the learned manifold, ``(B,)``."""
        return self.flow.reconstruction_error(self._flatten(x).float())

    def extra_repr(self) -> str:
        return (
            f"input_dim={self.input_dim}, output_dim={self.output_dim}, "
            f"fine_tune={self.fine_tune}, pretrained={bool(self.pretrained)}"
        )


def find_fif_summary(network: nn.Module | None) -> tuple[FIFSummary, nn.Module] | None:
    """The :class:`FIFSummary` inside an estimator's network and the layers in front of it.

    Arguments:
        network: A trained estimator network or an embedding net (e.g. sbi's
            ``nn.Sequential(z-scoring, FIFSummary)``).

    Returns:
        ``(summary, front)`` where ``front`` maps raw x to what the summary sees, or ``None``.
    """
    if network is None:
        return None
    embedding = getattr(network, "embedding_net", network)
    if isinstance(embedding, FIFSummary):
        return embedding, nn.Identity()
    if isinstance(embedding, nn.Sequential):
        front: list[nn.Module] = []
        for layer in embedding:
            if isinstance(layer, FIFSummary):
                return layer, nn.Sequential(*front)
            front.append(layer)
    return None
