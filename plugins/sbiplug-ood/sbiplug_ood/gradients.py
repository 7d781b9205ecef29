"""OOD scores from layer-wise gradient norms of a generative model's log-likelihood.

For a group X_B of B inputs and every parameter tensor theta_j of a density model, the feature is

    u_j(X_B) = log(||grad_{theta_j} sum_{x in X_B} log p_theta(x)||^2 + 1e-10).

In-distribution, each squared norm is roughly a scaled chi-squared, and different layers are only
weakly correlated, so an independent Gaussian per feature, fitted on held-out in-distribution
data, gives the score: its negative log-density (higher = more out-of-distribution). Where the
layers *are* correlated, ``covariance="full"`` fits the joint Gaussian of the log features
instead, its covariance shrunk towards the independent model by the Ledoit-Wolf rule so that it
stays well conditioned with few fit groups (e.g. B = 5). Because the
gradient of log p with respect to theta ignores any fixed reparameterisation of x, the features
are invariant to the data representation, unlike the likelihood.

References:
    Approximations to the Fisher Information Metric of Deep Generative Models for
    Out-Of-Distribution Detection (Dauncey, Holmes, Williams, Falck; TMLR 2024)
    https://arxiv.org/abs/2403.01485

    OOD Detection with immature Models (Montazeran, Köthe; 2025)
    https://arxiv.org/abs/2502.00820

    A well-conditioned estimator for large-dimensional covariance matrices (Ledoit, Wolf;
    Journal of Multivariate Analysis 2004)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap
from tqdm.auto import tqdm

from sbiplug.toolkit import check_positive_int
from sbiplug_ood.inputs import (
    accepts_context,
    call_log_prob,
    check_density_model,
    group_context,
    group_inputs,
    model_dtype,
)

__all__ = ["MIN_FIT_GROUPS", "GradientNormScorer", "VectorizationWarning", "ledoit_wolf"]

#: The fewest in-distribution groups :meth:`GradientNormScorer.fit` accepts.
MIN_FIT_GROUPS = 10
#: Added to squared norms before the log, so frozen or unused tensors give a finite feature.
NORM_FLOOR = 1e-10
#: Rough bound on the bytes of per-input gradients held at once when no chunk size is given.
MEMORY_BUDGET = 2**28


class VectorizationWarning(UserWarning):
    """The model does not support ``torch.func.vmap``; features fall back to a loop."""


def ledoit_wolf(z: Tensor) -> tuple[Tensor, float]:
    r"""The Ledoit-Wolf shrinkage estimate of a covariance matrix.

    ``(1 - s) S + s m I``, with ``S`` the maximum-likelihood covariance of ``z``, ``m`` its mean
    eigenvalue and the shrinkage ``s`` in [0, 1] that minimises the expected Frobenius loss
    (Ledoit & Wolf, 2004). On standardised features, ``m ~ 1`` and ``I`` is the correlation of the
    independent model, so ``s`` interpolates between the joint and the independent Gaussian.

    Arguments:
        z: Samples, shape ``(n, p)``.

    Returns:
        The covariance, shape ``(p, p)``, and the shrinkage ``s``.
    """
    n, p = z.shape
    centered = z - z.mean(dim=0)
    sample = centered.T @ centered / n
    m = torch.trace(sample) / p
    identity = torch.eye(p, dtype=z.dtype)
    # Squared Frobenius norms scaled by 1 / p, as in the paper.
    d2 = (sample - m * identity).square().sum() / p
    # sum_k ||z_k z_k^T - S||^2 = sum_k ||z_k||^4 - n ||S||^2, without the (n, p, p) outer products.
    b2 = (centered.square().sum(dim=1).square().sum() - n * sample.square().sum()) / (p * n**2)
    shrinkage = 1.0 if float(d2) == 0.0 else float(torch.clamp(b2 / d2, max=1.0))
    return (1 - shrinkage) * sample + shrinkage * m * identity, shrinkage


class _GroupLogProb(nn.Module):
    """``sum_x log p(x)`` of one group, as a ``forward`` that ``functional_call`` can run."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return call_log_prob(self.model, x, context).sum()


class GradientNormScorer:
    r"""Layer-wise gradient-norm features, their Gaussian fit and the OOD score.

    Arguments:
        model: A torch module with ``log_prob(x)`` (or ``log_prob(x, context)``) returning one
            log-density per row. It is used in eval mode and left as it was.
        batch_size: The group size B: a feature is the gradient of the sum of log p over B
            disjoint inputs. Use the same B to fit and to score.
        covariance: ``"diagonal"`` fits an independent Gaussian to each log feature (Dauncey
            et al.); ``"full"`` fits their joint Gaussian, with a Ledoit-Wolf shrunk
            correlation matrix (see :func:`ledoit_wolf`), which also uses how the layers' norms
            move together.
        chunk_size: Groups whose per-input gradients are held at once; by default sized so
            that they take about 256 MiB.
        vectorize: ``True`` computes per-group gradients with ``torch.func.vmap`` (fast) and
            raises when the model does not support it; ``False`` loops with
            ``torch.autograd.grad``; ``"auto"`` tries ``vmap`` and falls back to the loop with a
            :class:`VectorizationWarning` (e.g. nflows splines, which index with boolean masks).
        show_progress_bars: Whether feature extraction shows a progress bar.

    Example:
        >>> scorer = GradientNormScorer(flow).fit(x_fit)   # held-out in-distribution data
        >>> scores = scorer.score(x_test)                  # higher = more out-of-distribution
    """

    def __init__(
        self,
        model: nn.Module,
        batch_size: int = 1,
        *,
        covariance: Literal["diagonal", "full"] = "diagonal",
        chunk_size: int | None = None,
        vectorize: bool | Literal["auto"] = "auto",
        show_progress_bars: bool = False,
    ) -> None:
        self.model = check_density_model(model)
        self.batch_size = check_positive_int("batch_size", batch_size)
        if chunk_size is not None:
            check_positive_int("chunk_size", chunk_size)
        if covariance not in ("diagonal", "full"):
            raise ValueError(f"covariance must be 'diagonal' or 'full', got {covariance!r}")
        if vectorize not in (True, False, "auto"):
            raise ValueError(f"vectorize must be True, False or 'auto', got {vectorize!r}")
        self.covariance = covariance
        self.chunk_size = chunk_size
        self.vectorize = vectorize
        self.show_progress_bars = show_progress_bars
        self.feature_names: list[str] = [
            name for name, p in model.named_parameters() if p.requires_grad
        ]
        if not self.feature_names:
            raise ValueError(
                f"the density model {type(model).__name__} has no trainable parameters "
                "(requires_grad=True): there is nothing to differentiate"
            )
        self.event_shape: tuple[int, ...] | None = None
        self.mean: Tensor | None = None
        self.std: Tensor | None = None
        self.kept: Tensor | None = None
        #: Cholesky factor of the shrunk correlation of the kept standardised features
        #: (``covariance="full"``), and the Ledoit-Wolf shrinkage it used.
        self.cholesky: Tensor | None = None
        self.shrinkage: float | None = None

    # -- features -----------------------------------------------------------------------------

    def features(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """Log squared gradient norms, one column per parameter tensor.

        Arguments:
            x: Inputs, shape ``(n, *event_shape)``; the trailing ``n % batch_size`` are left out.
            context: Conditions for a conditional model, shape ``(n, *context_shape)``.

        Returns:
            Features ``log(||grad_j||^2 + 1e-10)``, shape ``(n // batch_size, num_features)``,
            columns in the order of :attr:`feature_names` (``named_parameters`` order).
        """
        dtype = model_dtype(self.model)
        groups = group_inputs(x, self.batch_size, event_shape=self.event_shape, dtype=dtype)
        context_groups = group_context(context, x, self.batch_size, dtype=dtype)
        if context_groups is not None and not accepts_context(self.model):
            raise TypeError(
                f"a context was given but {type(self.model).__name__}.log_prob takes no context"
            )
        squared = self._squared_norms(groups, context_groups)
        return torch.log(squared + NORM_FLOOR)

    def _squared_norms(self, groups: Tensor, context: Tensor | None) -> Tensor:
        was_training = self.model.training
        self.model.eval()  # freeze data-dependent layers (BatchNorm statistics, ActNorm init)
        try:
            if self.vectorize is False:
                return self._looped(groups, context)
            try:
                return self._vectorized(groups, context)
            except (RuntimeError, NotImplementedError) as error:
                if self.vectorize is True:
                    raise RuntimeError(
                        f"the density model {type(self.model).__name__} does not support "
                        f"torch.func.vmap ({error}); pass vectorize=False (or 'auto') to "
                        "compute the features with a per-group autograd loop instead"
                    ) from error
                warnings.warn(
                    f"{type(self.model).__name__} does not support torch.func.vmap "
                    f"({str(error).splitlines()[0][:160]}); falling back to a per-group "
                    "autograd loop, which is slower",
                    VectorizationWarning,
                    stacklevel=4,
                )
                self.vectorize = False
                return self._looped(groups, context)
        finally:
            self.model.train(was_training)

    def _chunks(self, num_groups: int) -> list[slice]:
        size = self.chunk_size
        if size is None:
            num_parameters = sum(p.numel() for p in self.model.parameters())
            size = MEMORY_BUDGET // (4 * num_parameters * self.batch_size)
            size = int(min(max(size, 1), 1024))
        return [slice(i, i + size) for i in range(0, num_groups, size)]

    def _vectorized(self, groups: Tensor, context: Tensor | None) -> Tensor:
        wrapper = _GroupLogProb(self.model)
        parameters = {name: p.detach() for name, p in wrapper.named_parameters() if p.requires_grad}
        frozen = {name: p.detach() for name, p in wrapper.named_parameters() if not p.requires_grad}
        buffers = {name: b for name, b in wrapper.named_buffers()}

        def group_log_prob(params: dict[str, Tensor], x: Tensor, c: Tensor | None) -> Tensor:
            return functional_call(wrapper, (params, frozen, buffers), (x, c))

        def squared_norms(params: dict[str, Tensor], x: Tensor, c: Tensor | None) -> Tensor:
            gradients = grad(group_log_prob)(params, x, c)
            return torch.stack([g.square().sum() for g in gradients.values()])

        batched: Callable[..., Tensor] = vmap(
            squared_norms, in_dims=(None, 0, None if context is None else 0)
        )
        outputs = []
        with torch.enable_grad():
            for chunk in tqdm(
                self._chunks(len(groups)), disable=not self.show_progress_bars, desc="features"
            ):
                c = None if context is None else context[chunk]
                outputs.append(batched(parameters, groups[chunk], c).detach())
        return torch.cat(outputs)

    def _looped(self, groups: Tensor, context: Tensor | None) -> Tensor:
        parameters = [p for p in self.model.parameters() if p.requires_grad]
        rows = []
        with torch.enable_grad():
            for i in tqdm(range(len(groups)), disable=not self.show_progress_bars, desc="features"):
                c = None if context is None else context[i]
                log_prob = call_log_prob(self.model, groups[i], c).sum()
                gradients = torch.autograd.grad(log_prob, parameters, allow_unused=True)
                rows.append(
                    torch.stack(
                        [
                            torch.zeros((), dtype=log_prob.dtype) if g is None else g.square().sum()
                            for g in gradients
                        ]
                    )
                )
        return torch.stack(rows).detach()

    # -- fit and score ------------------------------------------------------------------------

    def fit(self, x: Tensor, context: Tensor | None = None) -> GradientNormScorer:
        """Fit a Gaussian to the features of in-distribution data.

        Use inputs the model was not trained on (the "fit half" of a held-out split), so that
        the fit reflects how unseen in-distribution inputs look. Features with zero variance
        (e.g. tensors that never receive a gradient) are dropped. With
        ``covariance="diagonal"`` each kept feature gets its own Gaussian; with ``"full"`` the
        standardised kept features get a joint Gaussian with a shrunk correlation matrix.

        Arguments:
            x: In-distribution inputs, shape ``(n, *event_shape)`` with
                ``n >= MIN_FIT_GROUPS * batch_size``.
            context: Conditions for a conditional model, shape ``(n, *context_shape)``.

        Returns:
            The scorer itself.
        """
        self.event_shape = None
        groups = len(x) // self.batch_size if isinstance(x, Tensor) and x.ndim >= 2 else None
        if groups is not None and groups < MIN_FIT_GROUPS:
            raise ValueError(
                f"fit needs at least {MIN_FIT_GROUPS} groups of batch_size={self.batch_size} "
                f"in-distribution inputs ({MIN_FIT_GROUPS * self.batch_size} inputs), "
                f"got {len(x)}"
            )
        u = self.features(x, context).double()
        finite = torch.isfinite(u).all(dim=1)
        if not bool(finite.all()):
            raise ValueError(
                f"{int((~finite).sum())} of {len(u)} in-distribution groups have non-finite "
                "gradient features (log_prob is NaN or infinite there); check the model and x"
            )
        std = u.std(dim=0)
        kept = std > 0
        if not bool(kept.any()):
            raise ValueError("every gradient feature has zero variance on x: nothing to fit")
        self.event_shape = tuple(x.shape[1:])
        self.mean, self.std, self.kept = u.mean(dim=0), std, kept
        self.cholesky = self.shrinkage = None
        if self.covariance == "full":
            z = (u[:, kept] - self.mean[kept]) / std[kept]
            correlation, self.shrinkage = ledoit_wolf(z)
            cholesky, info = torch.linalg.cholesky_ex(correlation)
            if int(info) != 0:
                # Exactly collinear features and no sampling noise to shrink: a tiny ridge.
                identity = torch.eye(len(correlation), dtype=correlation.dtype)
                cholesky = torch.linalg.cholesky(correlation + 1e-6 * identity)
            self.cholesky = cholesky
        return self

    def score(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """The OOD score: the Gaussian negative log-density of the kept features.

        Arguments:
            x: Inputs, shape ``(n, *event_shape)``.
            context: Conditions for a conditional model, shape ``(n, *context_shape)``.

        Returns:
            Scores, shape ``(n // batch_size,)``; higher means more out-of-distribution, and a
            group whose features are not finite scores ``+inf``.
        """
        if self.mean is None:
            raise RuntimeError("the scorer is not fitted: call fit(x_in_distribution) first")
        u = self.features(x, context).double()[:, self.kept]
        mean, std = self.mean[self.kept], self.std[self.kept]
        z = (u - mean) / std
        if self.cholesky is None:
            nll = 0.5 * (z.square() + torch.log(2 * math.pi * std.square()))
            scores = nll.sum(dim=1)
        else:
            # -log N(u; mean, D R D) with D = diag(std) and R = L L^T the shrunk correlation.
            finite = torch.isfinite(z).all(dim=1)
            z = torch.where(finite[:, None], z, torch.zeros_like(z))
            white = torch.linalg.solve_triangular(self.cholesky, z.T, upper=False).T
            log_det = 2 * self.cholesky.diagonal().log().sum() + 2 * std.log().sum()
            scores = 0.5 * (white.square().sum(dim=1) + log_det + len(std) * math.log(2 * math.pi))
            scores = torch.where(finite, scores, torch.full_like(scores, math.inf))
        return torch.where(torch.isfinite(scores), scores, torch.full_like(scores, math.inf))

    @property
    def kept_feature_names(self) -> list[str]:
        """Names of the features the fit kept (non-zero variance)."""
        if self.kept is None:
            raise RuntimeError("the scorer is not fitted: call fit(x_in_distribution) first")
        return [n for n, keep in zip(self.feature_names, self.kept.tolist()) if keep]

    def __repr__(self) -> str:
        fitted = "fitted" if self.mean is not None else "not fitted"
        return (
            f"GradientNormScorer({type(self.model).__name__}, batch_size={self.batch_size}, "
            f"covariance={self.covariance!r}, features={len(self.feature_names)}, {fitted})"
        )
